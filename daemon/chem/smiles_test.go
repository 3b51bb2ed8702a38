package chem

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"qmd/scheduler/runner"
)

// fakeRunner records the commands it is given and answers with a canned result, so the
// argument handling and Open Babel's odd exit codes can be tested without Open Babel.
type fakeRunner struct {
	calls []runner.Command
	res   runner.Result
	err   error
}

func (f *fakeRunner) Run(_ context.Context, c runner.Command) (runner.Result, error) {
	f.calls = append(f.calls, c)
	return f.res, f.err
}

// needObabel returns the obabel path, skipping the test when Open Babel is missing on a
// developer machine but failing it in CI, where a silent skip would hide lost coverage.
func needObabel(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("obabel")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("obabel not found on PATH and CI is set: %v", err)
		}
		t.Skipf("obabel not found on PATH: %v", err)
	}
	return p
}

func TestCheckSMILES(t *testing.T) {
	for _, s := range []string{"CCO", "[NH4+]", "C[C@@H](O)C(=O)O", "c1ccccc1", "C%10CC%10",
		"[2H]C", "F/C=C/F", `C\C=C/C`, "C#N", "[Na+].[Cl-]", "C$C", "[CH3:1]C",
		strings.Repeat("C", MaxSMILES)} {
		if err := CheckSMILES(s); err != nil {
			t.Errorf("CheckSMILES(%q): %v", s, err)
		}
	}
	tests := []struct{ in, want string }{
		{"", "the SMILES string is empty"},
		{strings.Repeat("C", MaxSMILES+1), "the SMILES string is 2001 characters long; " +
			"the limit is 2000"},
		{"CCO ethanol", "the SMILES string contains whitespace or a control character at " +
			"position 4; give the SMILES alone, without a name"},
		{"C\tC", "the SMILES string contains whitespace or a control character at position 2; " +
			"give the SMILES alone, without a name"},
		{"C\x00", "the SMILES string contains whitespace or a control character at position 2; " +
			"give the SMILES alone, without a name"},
		{"CC;rm", "the SMILES string contains ';' at position 3, which is not a SMILES character"},
		{"CCé", "the SMILES string contains 'é' at position 3, which is not a SMILES character"},
		{"-CC", "the SMILES string starts with '-', a bond with no atom before it"},
		{"--help", "the SMILES string starts with '-', a bond with no atom before it"},
		{"C(C", "SMILES: 1 branch(es) opened with '(' are never closed"},
		{"C)C", "SMILES: ')' at position 2 closes no branch"},
		{"[NH4+", "SMILES: a bracket atom '[' is never closed with ']'"},
		{"N]", "SMILES: ']' at position 2 closes no bracket atom"},
		{"[[N]]", "SMILES: '[' at position 2 inside another bracket atom"},
		{"*C", "SMILES: wildcard atom '*' at position 1 has no element; replace it with a " +
			"real atom"},
	}
	for _, tt := range tests {
		err := CheckSMILES(tt.in)
		var ie *InputError
		if !errors.As(err, &ie) || err.Error() != tt.want {
			t.Errorf("CheckSMILES(%q) = %v\n                want %q", tt.in, err, tt.want)
		}
	}
}

func TestSMILESCharge(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"CCO", 0}, {"[NH4+]", 1}, {"[O-]", -1}, {"[Fe+2]", 2}, {"[N++]", 2}, {"[O--]", -2},
		{"CC(=O)[O-]", -1}, {"[Na+].[Cl-]", 0}, {"[NH3+]CC([O-])=O", 0},
		{"[C@@H+:12]", 1}, {"[13CH3-]", -1}, {"[Co+3]", 3}, {"[Fe-4]", -4},
	}
	for _, tt := range tests {
		if got, err := SMILESCharge(tt.in); err != nil || got != tt.want {
			t.Errorf("SMILESCharge(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"[N+-]", "[N+x]", "[N+99]", "[NH4+"} {
		if _, err := SMILESCharge(bad); err == nil {
			t.Errorf("SMILESCharge(%q) succeeded", bad)
		}
	}
}

func TestSMILESFromFile(t *testing.T) {
	s, name, err := SMILESFromFile([]byte("\n  CC(=O)O  acetic   acid\nCCO second\n"))
	if err != nil || s != "CC(=O)O" || name != "acetic acid" {
		t.Errorf("got %q, %q, %v", s, name, err)
	}
	_, _, err = SMILESFromFile([]byte("\n\nC(C x\n"))
	want := "line 3: SMILES: 1 branch(es) opened with '(' are never closed"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v", err)
	}
	if _, _, err = SMILESFromFile([]byte(" \n")); err == nil ||
		err.Error() != "the input is empty" {
		t.Errorf("error = %v", err)
	}
}

const ethanolXYZOut = "9\n\n" +
	"C          0.93508       -0.06969       -0.01470\n" +
	"C          2.44937       -0.06894       -0.02190\n" +
	"O          2.93105        0.77042       -1.06091\n" +
	"H          0.55028       -0.70492        0.78794\n" +
	"H          0.54308       -0.43316       -0.97027\n" +
	"H          0.54960        0.94602        0.12225\n" +
	"H          2.84079       -1.07915       -0.17627\n" +
	"H          2.83636        0.30925        0.92878\n" +
	"H          2.59147        0.42029       -1.90211\n"

// TestFromSMILESCommand checks the exact command: the SMILES as one argv element glued to
// "-:", no stdin, a timeout; and that output is turned into a molecule with bonds.
func TestFromSMILESCommand(t *testing.T) {
	f := &fakeRunner{res: runner.Result{Stdout: []byte(ethanolXYZOut),
		Stderr: []byte("1 molecule converted\n")}}
	m, err := FromSMILES(context.Background(), f, "/opt/ob/bin/obabel", "CCO")
	if err != nil {
		t.Fatal(err)
	}
	want := runner.Command{Argv: []string{"/opt/ob/bin/obabel", "-:CCO", "-oxyz", "--gen3d"},
		Timeout: 60 * time.Second, Env: []string{"OMP_NUM_THREADS=1"}}
	if len(f.calls) != 1 || !reflect.DeepEqual(f.calls[0], want) {
		t.Fatalf("commands = %#v, want %#v", f.calls, want)
	}
	if m.Title != "CCO" || m.Charge == nil || *m.Charge != 0 || m.Dimension != "3D" ||
		!reflect.DeepEqual(m.Bonds, ethanolBonds) || elements(m) != "CCOHHHHHH" {
		t.Errorf("molecule = %+v", m)
	}
	f.calls = nil
	if _, err := FromSMILES(context.Background(), f, "", "C"); err != nil {
		t.Fatal(err)
	}
	if f.calls[0].Argv[0] != "obabel" {
		t.Errorf("default program = %q", f.calls[0].Argv[0])
	}
}

// TestFromSMILESFailures covers every way the Open Babel step can go wrong, and checks
// that only problems with the user's SMILES come back as *InputError.
func TestFromSMILESFailures(t *testing.T) {
	invalid := "==============================\n*** Open Babel Warning  in ParseSmiles\n" +
		"  Invalid SMILES string: 1 unmatched ring bonds.\n\n0 molecules converted\n"
	tests := []struct {
		name, smiles string
		f            *fakeRunner
		want         string
		input, ran   bool
	}{
		{"rejected before running", "--version", &fakeRunner{},
			"the SMILES string starts with '-', a bond with no atom before it", true, false},
		{"bad charge", "[N+x]", &fakeRunner{}, "SMILES: cannot read the charge of [N+x]",
			true, false},
		{"obabel says invalid", "C1CC", &fakeRunner{res: runner.Result{Stderr: []byte(invalid)}},
			`invalid SMILES "C1CC": Invalid SMILES string: 1 unmatched ring bonds.`, true, true},
		{"obabel silent", "[Xx]", &fakeRunner{res: runner.Result{
			Stderr: []byte("0 molecules converted\n")}},
			`invalid SMILES "[Xx]": Open Babel could not read it (0 molecules converted)`,
			true, true},
		{"output but zero converted", "C", &fakeRunner{res: runner.Result{
			Stdout: []byte("\n"), Stderr: []byte("0 molecules converted\n")}},
			`invalid SMILES "C": Open Babel could not read it (0 molecules converted)`,
			true, true},
		{"obabel missing", "C", &fakeRunner{err: errors.New("run obabel: executable not found")},
			`Open Babel on SMILES "C": run obabel: executable not found`, false, true},
		{"obabel crashed", "C", &fakeRunner{err: &runner.CommandError{Program: "obabel",
			ExitCode: 139, Stderr: "segfault"}},
			`Open Babel on SMILES "C": obabel: exit status 139: segfault`, false, true},
		{"garbage output", "C", &fakeRunner{res: runner.Result{Stdout: []byte("hello\n")}},
			`reading Open Babel's XYZ for SMILES "C": line 1: expected the number of atoms, ` +
				`got "hello"`, false, true},
		{"two molecules", "C", &fakeRunner{res: runner.Result{
			Stdout: []byte("1\n\nC 0 0 0\n1\n\nC 5 0 0\n")}},
			`Open Babel returned 2 molecules for SMILES "C", expected 1`, false, true},
		{"no 3D", "CC", &fakeRunner{res: runner.Result{
			Stdout: []byte("2\n\nC 0 0 0\nC 0 0 0\n")}},
			`Open Babel could not generate 3D coordinates for SMILES "CC"`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromSMILES(context.Background(), tt.f, "obabel", tt.smiles)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v\n      want %s", err, tt.want)
			}
			var ie *InputError
			if errors.As(err, &ie) != tt.input {
				t.Errorf("*InputError = %v, want %v", !tt.input, tt.input)
			}
			if (len(tt.f.calls) > 0) != tt.ran {
				t.Errorf("obabel ran %d times", len(tt.f.calls))
			}
		})
	}
	var ce *runner.CommandError
	f := &fakeRunner{err: &runner.CommandError{Program: "obabel", ExitCode: 1}}
	if _, err := FromSMILES(context.Background(), f, "obabel", "C"); !errors.As(err, &ce) {
		t.Errorf("CommandError not wrapped: %v", err)
	}
}

func TestTo3DCommand(t *testing.T) {
	out := fixture(t, "ethanol_v2000.mol")
	f := &fakeRunner{res: runner.Result{Stdout: out, Stderr: []byte("1 molecule converted\n")}}
	in := fixture(t, "ethanol_2d.mol")
	m, err := To3D(context.Background(), f, "obabel", in)
	if err != nil {
		t.Fatal(err)
	}
	want := runner.Command{Argv: []string{"obabel", "-imol", "-omol", "-h", "--gen3d"},
		Stdin: in, Timeout: 60 * time.Second, Env: []string{"OMP_NUM_THREADS=1"}}
	if len(f.calls) != 1 || !reflect.DeepEqual(f.calls[0], want) {
		t.Fatalf("commands = %#v, want %#v", f.calls, want)
	}
	if len(m.Atoms) != 9 || Needs3D(m) {
		t.Errorf("molecule = %+v", m)
	}

	tests := []struct {
		name string
		in   []byte
		f    *fakeRunner
		want string
	}{
		{"empty", []byte("\n"), &fakeRunner{}, "the input is empty"},
		{"too big", make([]byte, MaxInputBytes+1), &fakeRunner{},
			"input is 1048577 bytes; the limit is 1048576 bytes (1 MiB)"},
		{"unreadable", in, &fakeRunner{res: runner.Result{
			Stderr: []byte("0 molecules converted\n")}},
			"Open Babel could not read the MOL record: Open Babel could not read it " +
				"(0 molecules converted)"},
		{"several records", in, &fakeRunner{res: runner.Result{
			Stdout: fixture(t, "multi.sdf")}},
			"expected one MOL record, Open Babel read 3; pass a single record"},
		{"still flat", in, &fakeRunner{res: runner.Result{Stdout: in}},
			"Open Babel could not generate 3D coordinates"},
	}
	for _, tt := range tests {
		if _, err := To3D(context.Background(), tt.f, "obabel", tt.in); err == nil ||
			err.Error() != tt.want {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestOpenBabel runs the real obabel, because the contract this package depends on
// (output layout, exit 0 on bad input, message wording) belongs to Open Babel.
func TestOpenBabel(t *testing.T) {
	obabel := needObabel(t)
	ctx := context.Background()
	r := runner.Local{}

	t.Run("ethanol", func(t *testing.T) {
		m, err := FromSMILES(ctx, r, obabel, "CCO")
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Atoms) != 9 || elements(m) != "CCOHHHHHH" || *m.Charge != 0 {
			t.Fatalf("molecule = %+v", m)
		}
		if !reflect.DeepEqual(m.Bonds, ethanolBonds) {
			t.Errorf("bonds = %v", m.Bonds)
		}
		if g := EquivalenceGroups(m.Atoms, m.Bonds); !reflect.DeepEqual(g,
			[]int{1, 2, 3, 4, 4, 4, 5, 5, 6}) {
			t.Errorf("groups = %v", g)
		}
		if err := Validate(m, 0, 1); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
	t.Run("ammonium", func(t *testing.T) {
		m, err := FromSMILES(ctx, r, obabel, "[NH4+]")
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Atoms) != 5 || m.Charge == nil || *m.Charge != 1 {
			t.Fatalf("molecule = %+v", m)
		}
		if err := Validate(m, 1, 1); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
	t.Run("TMS", func(t *testing.T) {
		m, err := FromSMILES(ctx, r, obabel, "C[Si](C)(C)C")
		if err != nil {
			t.Fatal(err)
		}
		g := EquivalenceGroups(m.Atoms, m.Bonds)
		if len(m.Atoms) != 17 || g[0] != g[2] || g[0] != g[4] || g[5] != g[16] {
			t.Errorf("atoms %d, groups %v", len(m.Atoms), g)
		}
	})
	invalid := []struct{ smiles, reason string }{
		{"C1CC", "Invalid SMILES string: 1 unmatched ring bonds."},
		{"CXC", "SMILES string contains a character 'X' which is invalid"},
		{"[Xx]", "Open Babel could not read it (0 molecules converted)"},
	}
	for _, tt := range invalid {
		t.Run("invalid "+tt.smiles, func(t *testing.T) {
			_, err := FromSMILES(ctx, r, obabel, tt.smiles)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error = %v, want *InputError", err)
			}
			want := "invalid SMILES \"" + tt.smiles + "\": " + tt.reason
			if err.Error() != want {
				t.Errorf("error = %q\n      want %q", err, want)
			}
		})
	}
	t.Run("To3D", func(t *testing.T) {
		in := fixture(t, "ethanol_2d.mol")
		before := parseOne(t, "mol", in)
		if !Needs3D(before) {
			t.Fatal("2D fixture not recognised")
		}
		m, err := To3D(ctx, r, obabel, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Atoms) != 9 || Needs3D(m) || m.Title != "ethanol 2D" || len(m.Bonds) != 8 {
			t.Errorf("molecule = %+v", m)
		}
		if err := Validate(m, 0, 1); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
	t.Run("To3D keeps charge", func(t *testing.T) {
		in := []byte("acetate\n  test              2D\n\n" +
			"  4  3  0  0  0  0  0  0  0  0999 V2000\n" +
			"    0.0000    0.0000    0.0000 C   0  0\n" +
			"    1.2990    0.7500    0.0000 C   0  0\n" +
			"    2.5981    0.0000    0.0000 O   0  0\n" +
			"    1.2990    2.2500    0.0000 O   0  0\n" +
			"  1  2  1  0\n  2  3  1  0\n  2  4  2  0\n" +
			"M  CHG  1   3  -1\nM  END\n")
		m, err := To3D(ctx, r, obabel, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Atoms) != 7 || m.Charge == nil || *m.Charge != -1 {
			t.Errorf("molecule = %+v", m)
		}
	})
}
