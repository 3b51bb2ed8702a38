package nwchem

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current code")

// sample is one stdout/stderr pair with the process facts Check needs. The real samples come
// from facts/samples/nwchem (exit codes from its INDEX.md); the synthetic ones are derived
// from them in code so the derivation is reviewable.
type sample struct {
	name    string // golden file stem
	stdout  func(t *testing.T) []byte
	stderr  func(t *testing.T) []byte
	exit    int
	signal  int
	natoms  int
	wantOpt bool
	kind    FailureKind // "" means Check must succeed
}

func file(name string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return readTestdata(t, name) }
}

func readFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := readFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	waterOut   = "water_draft_gas_opt_nmr.out"
	waterErr   = "water_draft_gas_opt_nmr.err"
	ethanolOut = "ethanol_draft_chcl3_opt_nmr.trimmed.out"
	ethanolErr = "ethanol_draft_chcl3_opt_nmr.err"
)

// truncatedWater is the water run cut at half its size, as if the process died mid-run.
func truncatedWater(t *testing.T) []byte {
	b := readTestdata(t, waterOut)
	return b[:len(b)/2]
}

// unknownSolventEthanol is the ethanol run as NWChem prints it for "solvent foobar": the
// COSMO block says solvname_long: unknown and dielec 78.4000 (facts §3), exit status 0.
func unknownSolventEthanol(t *testing.T) []byte {
	s := string(readTestdata(t, ethanolOut))
	r := strings.NewReplacer(
		"  solvent chcl3\n", "  solvent foobar\n",
		" solvname_short: chcl3", " solvname_short: foobar",
		" solvname_long:  chloroform", " solvname_long:  unknown   ",
		" dielec:        4.7113", " dielec:       78.4000",
	)
	out := r.Replace(s)
	if out == s || !strings.Contains(out, "solvname_long:  unknown") {
		t.Fatal("unknown-solvent fixture: replacements did not apply")
	}
	return []byte(out)
}

// waterWithoutShieldings drops the GIAO section (header up to the property task's timing
// line) from the water run, leaving an otherwise clean, finished output.
func waterWithoutShieldings(t *testing.T) []byte {
	s := string(readTestdata(t, waterOut))
	i := strings.Index(s, "          -----------------------------------------\n"+
		"          Chemical Shielding Tensors")
	j := strings.Index(s, " Task  times  cpu:")
	for j >= 0 && j < i {
		k := strings.Index(s[j+1:], " Task  times  cpu:")
		if k < 0 {
			j = -1
			break
		}
		j += 1 + k
	}
	if i < 0 || j < 0 {
		t.Fatal("no-shieldings fixture: GIAO section not found")
	}
	return []byte(s[:i] + s[j:])
}

var samples = []sample{
	{name: "water_draft_gas_opt_nmr", stdout: file(waterOut), stderr: file(waterErr),
		exit: 0, natoms: 3, wantOpt: true},
	{name: "ethanol_draft_chcl3_opt_nmr", stdout: file(ethanolOut), stderr: file(ethanolErr),
		exit: 0, natoms: 9, wantOpt: true},
	{name: "fail_maxiter1", stdout: file("fail_maxiter1.out"),
		stderr: file("fail_maxiter1.err"), exit: 255, natoms: 3, wantOpt: true,
		kind: OptNotConverged},
	{name: "fail_scf_noconv", stdout: file("fail_scf_noconv.out"),
		stderr: file("fail_scf_noconv.err"), exit: 255, natoms: 3, kind: SCFNotConverged},
	{name: "fail_badbasis", stdout: file("fail_badbasis.out"),
		stderr: file("fail_badbasis.err"), exit: 255, natoms: 3, kind: MissingBasis},
	{name: "fail_baddirective", stdout: file("fail_baddirective.out"),
		stderr: file("fail_baddirective.err"), exit: 255, natoms: 3, kind: InputError},
	{name: "fail_oom3", stdout: file("fail_oom3.out"), stderr: file("fail_oom3.err"),
		exit: 52, natoms: 3, kind: OutOfMemory},
	{name: "synthetic_truncated_killed", stdout: truncatedWater, exit: -1, signal: 9,
		natoms: 3, wantOpt: true, kind: Killed},
	{name: "synthetic_truncated_exit0", stdout: truncatedWater, exit: 0,
		natoms: 3, wantOpt: true, kind: Incomplete},
	{name: "synthetic_unknown_solvent", stdout: unknownSolventEthanol, exit: 0,
		natoms: 9, wantOpt: true, kind: BadSolvent},
	{name: "synthetic_no_shieldings", stdout: waterWithoutShieldings, exit: 0,
		natoms: 3, wantOpt: true, kind: NoShieldings},
}

type golden struct {
	Output  *Output  `json:"output"`
	Failure *Failure `json:"failure"`
}

func (s sample) run(t *testing.T) (*Output, *Failure) {
	t.Helper()
	stdout := s.stdout(t)
	var stderr []byte
	if s.stderr != nil {
		stderr = s.stderr(t)
	}
	out, err := Parse(bytes.NewReader(stdout))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return out, Check(out, stdout, stderr, s.exit, s.signal, s.natoms, s.wantOpt)
}

func TestGolden(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			out, f := s.run(t)
			got, err := json.MarshalIndent(golden{out, f}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", s.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file; run with -update if the "+
					"change is intended\ngot:\n%s", path, got)
			}
		})
	}
}

func TestSampleKinds(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			_, f := s.run(t)
			switch {
			case s.kind == "" && f != nil:
				t.Fatalf("want success, got %v\n%s", f, f.Excerpt)
			case s.kind != "" && f == nil:
				t.Fatalf("want %s, got success", s.kind)
			case f != nil && f.Kind != s.kind:
				t.Fatalf("want %s, got %v\n%s", s.kind, f, f.Excerpt)
			}
			if f == nil {
				return
			}
			if f.Summary == "" || strings.Contains(f.Summary, "\n") {
				t.Errorf("summary must be one non-empty line: %q", f.Summary)
			}
			if n := strings.Count(f.Excerpt, "\n") + 1; n > maxExcerpt || f.Excerpt == "" {
				t.Errorf("excerpt has %d lines (max %d):\n%s", n, maxExcerpt, f.Excerpt)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestWater(t *testing.T) {
	out, f := samples[0].run(t)
	if f != nil {
		t.Fatalf("water failed: %v", f)
	}
	if !out.OptConverged || out.OptFailed || out.OptSteps != 3 {
		t.Errorf("optimisation: converged=%v failed=%v steps=%d",
			out.OptConverged, out.OptFailed, out.OptSteps)
	}
	// The last "Total DFT energy" is the property step's SCF, not the optimisation's.
	if !out.HasEnergy || !near(out.Energy, -76.407024175852) {
		t.Errorf("energy = %v (has=%v)", out.Energy, out.HasEnergy)
	}
	want := []Shielding{
		{1, "O", 317.4531, 39.2669},
		{2, "H", 31.9730, 17.3645},
		{3, "H", 31.9730, 17.3645},
	}
	if len(out.Shieldings) != len(want) {
		t.Fatalf("shieldings = %+v", out.Shieldings)
	}
	for i, w := range want {
		g := out.Shieldings[i]
		if g.Atom != w.Atom || g.Element != w.Element || !near(g.Isotropic, w.Isotropic) {
			t.Errorf("shielding %d = %+v, want %+v", i, g, w)
		}
		if w.Anisotropy != 0 && !near(g.Anisotropy, w.Anisotropy) {
			t.Errorf("anisotropy %d = %v, want %v", i, g.Anisotropy, w.Anisotropy)
		}
	}
	if len(out.Geometry) != 3 || out.Geometry[0] != (Atom{"O", 0, 0, 0.12447054}) ||
		out.Geometry[1] != (Atom{"H", -0.76261810, 0, -0.47278527}) {
		t.Errorf("geometry = %+v", out.Geometry)
	}
	if !out.Finished || out.Version != "7.0.2" || out.Solvent != "" || out.Dielectric != 0 {
		t.Errorf("finished=%v version=%q solvent=%q dielec=%v",
			out.Finished, out.Version, out.Solvent, out.Dielectric)
	}
}

func TestEthanol(t *testing.T) {
	out, f := samples[1].run(t)
	if f != nil {
		t.Fatalf("ethanol failed: %v", f)
	}
	if len(out.Shieldings) != 9 {
		t.Fatalf("got %d shieldings, want 9", len(out.Shieldings))
	}
	c1, h9 := out.Shieldings[0], out.Shieldings[8]
	if c1.Element != "C" || !near(c1.Isotropic, 170.7217) || !near(c1.Anisotropy, 27.1602) ||
		h9.Atom != 9 || h9.Element != "H" || !near(h9.Isotropic, 31.7047) {
		t.Errorf("shieldings = %+v", out.Shieldings)
	}
	if !out.OptConverged || out.OptSteps != 11 || !near(out.Energy, -155.037731259447) {
		t.Errorf("converged=%v steps=%d energy=%v", out.OptConverged, out.OptSteps, out.Energy)
	}
	if out.Solvent != "chcl3" || out.SolventLong != "chloroform" || out.Dielectric != 4.7113 {
		t.Errorf("solvent %q/%q dielec %v", out.Solvent, out.SolventLong, out.Dielectric)
	}
	if len(out.Geometry) != 9 || out.Geometry[2].Element != "O" ||
		!near(out.Geometry[8].Z, -0.40619671) {
		t.Errorf("geometry = %+v", out.Geometry)
	}
}

func TestFailureDetails(t *testing.T) {
	byName := map[string]sample{}
	for _, s := range samples {
		byName[s.name] = s
	}
	cases := []struct {
		name      string
		summary   string // substring of Summary
		excerpt   string // substring of Excerpt
		noGeomOut bool
	}{
		{"fail_maxiter1", "did not converge in 1 step", "Failed to converge in maximum", true},
		{"fail_scf_noconv", "SCF did not converge", "dft energy failed", true},
		{"fail_badbasis", "6-31gssx", "non-existing file", true},
		{"fail_baddirective", "unknown directive foobar", "5: foobar 12", true},
		{"fail_oom3", "xc_setquad: out of memory", "stderr: [0] ARMCI Error", true},
		{"synthetic_truncated_killed", "signal 9", "", true},
		{"synthetic_unknown_solvent", `"foobar"`, "solvname_long:  unknown", false},
		{"synthetic_no_shieldings", "expected 3 atoms", "Total times", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, f := byName[c.name].run(t)
			if f == nil {
				t.Fatal("no failure")
			}
			if !strings.Contains(f.Summary, c.summary) {
				t.Errorf("summary %q lacks %q", f.Summary, c.summary)
			}
			if !strings.Contains(f.Excerpt, c.excerpt) {
				t.Errorf("excerpt lacks %q:\n%s", c.excerpt, f.Excerpt)
			}
			if c.noGeomOut && out.Geometry != nil {
				t.Errorf("geometry without a converged optimisation: %+v", out.Geometry)
			}
		})
	}
}
