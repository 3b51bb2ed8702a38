package nwchem

import (
	"bytes"
	"strings"
	"testing"
)

// errBlock renders an error box in the shape NWChem 7.0.2 prints (facts §5), for markers
// that have no real sample (Memory_Defaults, usage: task, xc_input, odd electrons).
func errBlock(message, inputLine, category string) string {
	d := " " + strings.Repeat("-", 72) + "\n"
	s := d + " " + message + strings.Repeat(" ", 60) + "0\n" + d + d +
		"  current input line : \n    " + inputLine + "\n" + d + d
	if category != "" {
		s += " " + category + "\n" + d
	} else {
		s += d
	}
	return s + " For more information see the NWChem manual at https://example.invalid\n\n"
}

const (
	inputCat = "There is an error in the input file"
	header   = "             Northwest Computational Chemistry Package (NWChem) 7.0.2\n"
)

func TestCheckTable(t *testing.T) {
	water := string(readTestdata(t, waterOut))
	noConverged := strings.Replace(water, "Optimization converged", "Optimization stopped", 1)
	convergedAt := strings.Index(water, "Optimization converged")
	scfLate := water[:convergedAt+200] + "\n      Calculation failed to converge\n" +
		water[convergedAt+200:]
	scfEarly := water[:convergedAt-2000] + "\n      Calculation failed to converge\n" +
		water[convergedAt-2000:]
	killedStderr := "mpirun noticed that process rank 0 with PID 4242 on node vm " +
		"exited on signal 9 (Killed).\n"

	cases := []struct {
		name           string
		stdout, stderr string
		exit, signal   int
		natoms         int
		wantOpt        bool
		want           FailureKind // "" = success
		summary        string      // substring of the summary
	}{
		{"bad task, exit 143 is not a kill", header + errBlock("usage: task <string theory>",
			"21: task dft optimise", inputCat), "", 143, 0, 3, true, InputError, "usage: task"},
		{"memory far too small", header + errBlock(
			"Memory_Defaults: Global memory limit unreasonable", "3: memory total 5 mb",
			inputCat), "", 80, 0, 3, true, OutOfMemory, "Global memory limit"},
		{"odd electrons", header + errBlock("Odd number of electrons. Please specify a "+
			"restricted open-shell or open-shell calculation", "21: task dft energy", inputCat),
			"", 9, 0, 3, false, InputError, "Odd number of electrons"},
		{"bad functional", header + errBlock("xc_input: invalid format", "15: xc b3lypp",
			inputCat), "", 255, 0, 3, false, InputError, "xc_input"},
		{"MA allocation failure", header + errBlock("dft_scf: ma_push_get failed",
			"21: task dft energy", ""), "", 255, 0, 3, false, OutOfMemory, "ma_push_get"},
		{"other input error", header + errBlock("geom_input: bad atom line",
			"9: C 0 0", inputCat), "", 255, 0, 3, false, InputError, "geom_input"},
		{"unknown error", header + errBlock("geom_binvr: #indep variables incorrect",
			"21: task dft optimize", ""), "", 255, 0, 3, true, NWChemError, "geom_binvr"},
		{"error block despite exit 0 and Total times", header + errBlock(
			"input_parse: unknown directive foo", "5: foo", inputCat) +
			" Total times  cpu:        0.1s     wall:        0.1s\n", "", 0, 0, 3, true,
			InputError, "unknown directive foo"},
		{"exit 137, no output end", header, "", 137, 0, 3, true, Killed, "137"},
		{"exit 143 without error block", header, "", 143, 0, 3, true, Killed, "SIGTERM"},
		{"signal only on stderr", header, killedStderr, -1, 0, 3, true, Killed, "signal 9"},
		{"shell Killed on stderr", header, "Killed\n", -1, 0, 3, true, Killed, "Killed"},
		{"stdout lost, stderr has the cause", "", "[0] ARMCI Error: 0:xc_setquad: " +
			"out of memory:\n", 52, 0, 3, false, OutOfMemory, "xc_setquad: out of memory"},
		{"empty output", "", "", 0, 0, 3, true, Incomplete, "Total times"},
		{"complete, exit unknown", water, "", -1, 0, 3, true, "", ""},
		{"complete, non-zero exit", water, "", 3, 0, 3, true, NWChemError, "status 3"},
		{"complete, then killed", water, "", -1, 15, 3, true, Killed, "SIGTERM"},
		{"complete, wrong atom count", water, "", 0, 0, 4, true, NoShieldings, "3 isotropic"},
		{"optimisation-only check", water, "", 0, 0, 0, false, "", ""},
		{"no converged marker", noConverged, "", 0, 0, 3, true, OptNotConverged, "report"},
		{"no converged marker, opt not wanted", noConverged, "", 0, 0, 3, false, "", ""},
		{"SCF failure after the optimisation", scfLate, "", 0, 0, 3, true, SCFNotConverged,
			"SCF"},
		{"SCF failure during the optimisation", scfEarly, "", 0, 0, 3, true, "", ""},
		{"recovered SCF failure does not explain a later error", scfEarly + errBlock(
			"cphf: solver stalled", "23: task dft property", ""), "", 255, 0, 3, true,
			NWChemError, "cphf: solver stalled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := Check(nil, []byte(c.stdout), []byte(c.stderr), c.exit, c.signal, c.natoms,
				c.wantOpt)
			if c.want == "" {
				if f != nil {
					t.Fatalf("want success, got %v\n%s", f, f.Excerpt)
				}
				return
			}
			if f == nil {
				t.Fatalf("want %s, got success", c.want)
			}
			if f.Kind != c.want || !strings.Contains(f.Summary, c.summary) {
				t.Fatalf("got %v, want kind %s with %q\n%s", f, c.want, c.summary, f.Excerpt)
			}
			if strings.Contains(f.Summary, "\n") {
				t.Errorf("multi-line summary %q", f.Summary)
			}
		})
	}
}

// A deck echoed at the top of the output must not count as NWChem's own messages.
func TestEchoIgnored(t *testing.T) {
	stdout := "============================== echo of input deck " +
		"==============================\n" +
		"title \"Optimization converged\"\n" +
		"      Optimization converged\n" +
		" Total times  cpu: 1s wall: 1s\n" +
		"# out of memory, Calculation failed to converge\n" +
		strings.Repeat("=", 80) + "\n" + header
	out, err := Parse(strings.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if out.OptConverged || out.Finished || out.Version != "7.0.2" {
		t.Errorf("echo leaked into the parse: %+v", out)
	}
	f := Check(out, []byte(stdout), nil, 0, 0, 3, true)
	if f == nil || f.Kind != Incomplete {
		t.Errorf("got %v, want incomplete", f)
	}
}

func TestParseSpacingAndExponents(t *testing.T) {
	stdout := strings.Join([]string{
		"Total DFT energy=-7.6406808936619D+01",
		"@ 7  -76.4 -1.3D-08 0 0 0 0 1.0",
		"   Optimization converged   ",
		" Output coordinates in angstroms (scale by  1.889725989 to convert to a.u.)",
		"",
		"  No.       Tag          Charge          X              Y              Z",
		" ---- ---------------- ---------- -------------- -------------- --------------",
		"    1 Cl1   17.0000  1.0D+00 -2.5E-01  .5",
		"    2 bq    0.0000   0 0 0",
		"",
		"   Chemical Shielding Tensors (GIAO, in ppm)",
		"  Atom:  1  Cl",
		"  isotropic=  9.5D+02",
		"  anisotropy =   1.25",
		"  Atom: 2 bq",
		"  isotropic = ********",
		" Task  times  cpu: 1.0s wall: 1.0s",
		"  Atom: 3 C",
		"  isotropic = 1.0",
		" Total times cpu: 1.0s wall: 2.0s",
	}, "\n")
	out, err := Parse(strings.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if !out.HasEnergy || !near(out.Energy, -76.406808936619) {
		t.Errorf("energy %v", out.Energy)
	}
	if out.OptSteps != 7 || !out.OptConverged || !out.Finished {
		t.Errorf("steps %d converged %v finished %v", out.OptSteps, out.OptConverged,
			out.Finished)
	}
	wantGeom := []Atom{{"Cl", 1, -0.25, 0.5}, {"bq", 0, 0, 0}}
	if len(out.Geometry) != 2 || out.Geometry[0] != wantGeom[0] ||
		out.Geometry[1] != wantGeom[1] {
		t.Errorf("geometry %+v", out.Geometry)
	}
	// The unparsable value is dropped (so Check reports missing shieldings) and nothing
	// after the task's timing line counts as part of the GIAO section.
	if len(out.Shieldings) != 1 || out.Shieldings[0] != (Shielding{1, "Cl", 950, 1.25}) {
		t.Errorf("shieldings %+v", out.Shieldings)
	}
}

func TestParseKeepsLastSection(t *testing.T) {
	section := func(v string) string {
		return " Optimization converged\n Output coordinates in angstroms\n" +
			"  1 H 1.0 " + v + " 0 0\n\n" +
			" Chemical Shielding Tensors (GIAO, in ppm)\n Atom: 1 H\n isotropic = " + v +
			"\n Task  times  cpu: 1s\n Total DFT energy = -" + v + "\n"
	}
	out, err := Parse(strings.NewReader(section("1.5") + section("2.5")))
	if err != nil {
		t.Fatal(err)
	}
	if out.Energy != -2.5 || len(out.Shieldings) != 1 || out.Shieldings[0].Isotropic != 2.5 ||
		len(out.Geometry) != 1 || out.Geometry[0].X != 2.5 {
		t.Errorf("later sections must replace earlier ones: %+v", out)
	}
}

func TestParseGeometryNeedsConvergence(t *testing.T) {
	stdout := " Output coordinates in angstroms\n  1 H 1.0 1 2 3\n\n"
	out, _ := Parse(strings.NewReader(stdout))
	if out.Geometry != nil {
		t.Errorf("start geometry taken as final: %+v", out.Geometry)
	}
}

func TestParseLongLine(t *testing.T) {
	stdout := header + strings.Repeat("x", maxLine+1) + "\n Total times cpu: 1s wall: 1s\n"
	out, err := Parse(strings.NewReader(stdout))
	if err == nil {
		t.Fatal("want an error for an over-long line")
	}
	if out == nil || out.Version != "7.0.2" {
		t.Errorf("partial output lost: %+v", out)
	}
}

func TestElementOf(t *testing.T) {
	for tag, want := range map[string]string{
		"C": "C", "c1": "C", "Cl": "Cl", "CL2": "Cl", "Hb": "H", "O_a": "O", "Si": "Si",
		"bq": "bq", "bqH": "bqH", "X": "X", "": "", "1": "1",
	} {
		if got := elementOf(tag); got != want {
			t.Errorf("elementOf(%q) = %q, want %q", tag, got, want)
		}
	}
}

func TestParseFloat(t *testing.T) {
	for in, want := range map[string]float64{
		"-1.3D-08": -1.3e-08, "1.0d+00": 1, "-76.406808936619": -76.406808936619,
		".5": 0.5, "7.": 7, "2E3": 2000,
	} {
		if got, ok := parseFloat(in); !ok || got != want {
			t.Errorf("parseFloat(%q) = %v, %v", in, got, ok)
		}
	}
	if _, ok := parseFloat("*******"); ok {
		t.Error("Fortran overflow stars must not parse")
	}
}

func TestFailureError(t *testing.T) {
	f := &Failure{Kind: SCFNotConverged, Summary: "SCF did not converge"}
	if got := f.Error(); got != "nwchem: scf_not_converged: SCF did not converge" {
		t.Errorf("Error() = %q", got)
	}
	var nilF *Failure
	if nilF.Error() == "" {
		t.Error("nil Failure must still describe itself")
	}
}

func TestExcerptLimits(t *testing.T) {
	lines := make([]string, 100)
	for i := range lines {
		lines[i] = strings.Repeat("y", 1000)
	}
	ex := excerpt(lines, "[0] ARMCI Error: 0:boom:")
	got := strings.Split(ex, "\n")
	if len(got) != maxExcerpt || !strings.HasPrefix(got[len(got)-1], "stderr: ") {
		t.Fatalf("excerpt has %d lines, last %q", len(got), got[len(got)-1])
	}
	if n := len([]rune(got[0])); n > maxLineChars+1 {
		t.Errorf("line not clipped: %d runes", n)
	}
}

func FuzzParse(f *testing.F) {
	// Small seeds: the fuzzer minimises every new input, which is slow on whole outputs.
	water := string(readTestdataF(f, waterOut))
	giao := strings.Index(water, "      Atom:    1  O")
	f.Add([]byte(water[giao : giao+600]))
	basis := readTestdataF(f, "fail_badbasis.out")
	f.Add(basis[len(basis)-900:])
	f.Add([]byte(header + errBlock("xc_setquad: out of memory", "1: task dft", "")))
	f.Add([]byte(" Optimization converged\n Output coordinates in angstroms\n" +
		"  1 H 1.0 1D0 2 3\n Chemical Shielding Tensors (GIAO\n Atom: 1 H\n isotropic = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Parse(bytes.NewReader(data))
		if out == nil {
			t.Fatalf("nil Output (err %v)", err)
		}
		for _, s := range out.Shieldings {
			if s.Atom < 1 {
				t.Fatalf("shielding for atom %d", s.Atom)
			}
		}
		for _, natoms := range []int{0, 3} {
			if fl := Check(out, data, data, 0, 0, natoms, true); fl != nil &&
				(fl.Kind == "" || strings.Contains(fl.Summary, "\n")) {
				t.Fatalf("bad failure %+v", fl)
			}
		}
	})
}

func readTestdataF(f *testing.F, name string) []byte {
	b, err := readFile(name)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
