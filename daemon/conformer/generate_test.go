package conformer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"qmd/daemon/chem"
	"qmd/scheduler/runner"
)

// dihedral returns the torsion angle a–b–c–d in degrees, in (−180, 180].
func dihedral(atoms []chem.Atom, a, b, c, d int) float64 {
	sub := func(p, q chem.Atom) [3]float64 {
		return [3]float64{p.X - q.X, p.Y - q.Y, p.Z - q.Z}
	}
	cross := func(u, v [3]float64) [3]float64 {
		return [3]float64{u[1]*v[2] - u[2]*v[1], u[2]*v[0] - u[0]*v[2], u[0]*v[1] - u[1]*v[0]}
	}
	dot := func(u, v [3]float64) float64 { return u[0]*v[0] + u[1]*v[1] + u[2]*v[2] }
	b1, b2, b3 := sub(atoms[b], atoms[a]), sub(atoms[c], atoms[b]), sub(atoms[d], atoms[c])
	n1, n2 := cross(b1, b2), cross(b2, b3)
	m := cross(n1, b2)
	return math.Atan2(dot(m, n2)/math.Sqrt(dot(b2, b2)), dot(n1, n2)) * 180 / math.Pi
}

// checkConformers asserts what Generate promises for every result: 1..max conformers,
// atoms in the input's order with the input's bonds, energies ascending and within the
// window, and no two conformers closer than the RMSD threshold.
func checkConformers(t *testing.T, in chem.Molecule, cs []Conformer, o Options) {
	t.Helper()
	o = o.withDefaults()
	if len(cs) < 1 || len(cs) > o.MaxConformers {
		t.Fatalf("%d conformers, want 1..%d", len(cs), o.MaxConformers)
	}
	want := chem.PerceiveBonds(in.Atoms)
	for k, c := range cs {
		if len(c.Atoms) != len(in.Atoms) {
			t.Fatalf("conformer %d has %d atoms, input %d", k, len(c.Atoms), len(in.Atoms))
		}
		for i := range c.Atoms {
			if c.Atoms[i].Element != in.Atoms[i].Element {
				t.Fatalf("conformer %d atom %d is %s, input %s", k, i+1, c.Atoms[i].Element,
					in.Atoms[i].Element)
			}
		}
		if got := chem.PerceiveBonds(c.Atoms); !slices.Equal(got, want) {
			t.Errorf("conformer %d bonds %v, input %v", k, got, want)
		}
		if k > 0 && c.Energy < cs[k-1].Energy {
			t.Errorf("energies not ascending: %g after %g", c.Energy, cs[k-1].Energy)
		}
		if c.Energy-cs[0].Energy > o.EnergyWindow {
			t.Errorf("conformer %d is %.3f kcal/mol up, window %g", k,
				c.Energy-cs[0].Energy, o.EnergyWindow)
		}
		for j := range k {
			if d := RMSD(c.Atoms, cs[j].Atoms); d < o.RMSDThreshold {
				t.Errorf("conformers %d and %d are %.3f Å apart", j, k, d)
			}
		}
	}
}

// TestGenerate runs the real Open Babel on the two molecules the package is for and
// checks the chemistry of the lowest conformer: all-anti diethyl ether (both C–C–O–C
// torsions near 180°) and the Z ester of ethyl acetate (C–O–C=O near 0°).
func TestGenerate(t *testing.T) {
	obabel := needObabel(t)
	tests := []struct {
		name, smiles string
		min          int // fewest conformers accepted
		check        func(t *testing.T, lowest []chem.Atom)
	}{
		{"diethyl ether", "CCOCC", 3, func(t *testing.T, a []chem.Atom) {
			// Atoms 0–4 are C C O C C in SMILES order; anti-anti is the minimum.
			for _, d := range []float64{dihedral(a, 0, 1, 2, 3), dihedral(a, 1, 2, 3, 4)} {
				if math.Abs(d) < 150 {
					t.Errorf("lowest conformer has a C–C–O–C torsion of %.0f°", d)
				}
			}
		}},
		{"ethyl acetate", "CCOC(C)=O", 2, func(t *testing.T, a []chem.Atom) {
			// Atoms 0–5 are C C O C C O; in the Z ester CH2–O–C=O is cis.
			if d := dihedral(a, 1, 2, 3, 5); math.Abs(d) > 30 {
				t.Errorf("lowest conformer has CH2–O–C=O at %.0f°, want near 0°", d)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mol := fromSMILES(t, obabel, tc.smiles)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			o := Options{Obabel: obabel}
			start := time.Now()
			cs, err := Generate(ctx, runner.Local{}, mol, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d conformers in %v", tc.name, len(cs), time.Since(start).Round(
				time.Millisecond))
			for _, c := range cs {
				t.Logf("  %.3f kcal/mol (%s)", c.Energy, c.ForceField)
			}
			checkConformers(t, mol, cs, o)
			if len(cs) < tc.min {
				t.Errorf("%d conformers, want at least %d", len(cs), tc.min)
			}
			if cs[0].ForceField != "MMFF94" {
				t.Errorf("force field %q, want MMFF94", cs[0].ForceField)
			}
			tc.check(t, cs[0].Atoms)
		})
	}
}

// TestGenerateAtomOrder feeds diethyl ether with its atoms reversed (hydrogens first) and
// checks that every conformer comes back in that order, not in one Open Babel prefers.
func TestGenerateAtomOrder(t *testing.T) {
	obabel := needObabel(t)
	mol := fromSMILES(t, obabel, "CCOCC")
	slices.Reverse(mol.Atoms)
	mol.Bonds = chem.PerceiveBonds(mol.Atoms)
	cs, err := Generate(context.Background(), runner.Local{}, mol,
		Options{Obabel: obabel, MaxConformers: 8})
	if err != nil {
		t.Fatal(err)
	}
	checkConformers(t, mol, cs, Options{MaxConformers: 8})
	if cs[0].Atoms[0].Element != "H" || cs[0].Atoms[len(mol.Atoms)-1].Element != "C" {
		t.Errorf("atom order not kept: first %s, last %s", cs[0].Atoms[0].Element,
			cs[0].Atoms[len(mol.Atoms)-1].Element)
	}
}

// TestGenerateMaxConformers checks that the bound holds for a molecule with more low
// conformers than asked for (hexane has about ten within 3 kcal/mol).
func TestGenerateMaxConformers(t *testing.T) {
	obabel := needObabel(t)
	mol := fromSMILES(t, obabel, "CCCCCC")
	o := Options{Obabel: obabel, MaxConformers: 3}
	cs, err := Generate(context.Background(), runner.Local{}, mol, o)
	if err != nil {
		t.Fatal(err)
	}
	checkConformers(t, mol, cs, o)
}

// counting records how often Open Babel was run.
type counting struct {
	runner.Runner
	n int
}

func (c *counting) Run(ctx context.Context, cmd runner.Command) (runner.Result, error) {
	c.n++
	return c.Runner.Run(ctx, cmd)
}

// TestGenerateRigid checks that a molecule without rotatable bonds comes back as given,
// as the single conformer, without running Open Babel.
func TestGenerateRigid(t *testing.T) {
	obabel := needObabel(t)
	for _, smiles := range []string{"CC", "c1ccccc1", "CN(C)C=O"} {
		t.Run(smiles, func(t *testing.T) {
			mol := fromSMILES(t, obabel, smiles)
			r := &counting{Runner: runner.Local{}}
			cs, err := Generate(context.Background(), r, mol, Options{Obabel: obabel})
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 1 || !slices.Equal(cs[0].Atoms, mol.Atoms) {
				t.Fatalf("got %d conformers, want the input alone", len(cs))
			}
			if r.n != 0 {
				t.Errorf("Open Babel ran %d times", r.n)
			}
		})
	}
}

// script is a fake runner: each Open Babel run is answered by the function for its
// stage (1 search, 2 rough minimisation, 3 final minimisation).
type script struct {
	t     *testing.T
	calls []runner.Command
	stage func(n int, c runner.Command) (runner.Result, error)
}

func (s *script) Run(_ context.Context, c runner.Command) (runner.Result, error) {
	s.calls = append(s.calls, c)
	if !slices.Contains(c.Env, "OMP_NUM_THREADS=1") {
		s.t.Errorf("run %d without OMP_NUM_THREADS=1: %v", len(s.calls), c.Env)
	}
	return s.stage(len(s.calls), c)
}

// writeSearch plays Open Babel's search: it writes something to the -O file.
func writeSearch(t *testing.T, c runner.Command) {
	t.Helper()
	i := slices.Index(c.Argv, "-O")
	if i < 0 {
		t.Fatalf("no -O in %v", c.Argv)
	}
	if err := os.WriteFile(c.Argv[i+1], []byte("an SDF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// minimised renders atoms as Open Babel's minimisation prints them, energy after the title.
func minimised(atoms []chem.Atom, energies ...float64) []byte {
	var b strings.Builder
	for _, e := range energies {
		fmt.Fprintf(&b, "%d\nqmd %g\n", len(atoms), e)
		for _, a := range atoms {
			fmt.Fprintf(&b, "%s %.5f %.5f %.5f\n", a.Element, a.X, a.Y, a.Z)
		}
	}
	return []byte(b.String())
}

func loadXYZ(t *testing.T, file string) chem.Molecule {
	t.Helper()
	data, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	mols, err := chem.Parse("xyz", data)
	if err != nil {
		t.Fatal(err)
	}
	return mols[0]
}

// TestGenerateCommands checks the command lines and the handling of Open Babel's
// answers without running it.
func TestGenerateCommands(t *testing.T) {
	mol := loadXYZ(t, "diethyl_ether.xyz")
	ok := runner.Result{Stderr: []byte("1 molecule converted\n")}
	tests := []struct {
		name    string
		opts    Options
		stage   func(t *testing.T, n int, c runner.Command) (runner.Result, error)
		wantErr string
		runs    int
		check   func(t *testing.T, cs []Conformer)
	}{
		{
			name: "command lines",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				switch n {
				case 1:
					want := []string{"obabel", "-ixyz", "-osdf", "-O", c.Argv[4],
						"--conformer", "--nconf", "20", "--score", "energy",
						"--writeconformers"}
					if !slices.Equal(c.Argv, want) {
						t.Errorf("search argv %q", c.Argv)
					}
					if !strings.HasPrefix(string(c.Stdin), "15\nqmd\nC ") {
						t.Errorf("search stdin starts %q", string(c.Stdin)[:20])
					}
					writeSearch(t, c)
					return ok, nil
				case 2, 3:
					steps := map[int]string{2: "500", 3: "2000"}[n]
					if in := map[int]string{2: "-isdf", 3: "-ixyz"}[n]; c.Argv[1] != in {
						t.Errorf("minimisation %d reads %s, want %s", n, c.Argv[1], in)
					}
					want := []string{"obabel", c.Argv[1], c.Argv[2], "-oxyz", "--minimize",
						"--ff", "MMFF94", "--sd", "--steps", steps, "--append", "Energy"}
					if !slices.Equal(c.Argv, want) {
						t.Errorf("minimisation %d argv %q", n, c.Argv)
					}
					return runner.Result{Stdout: minimised(mol.Atoms, -1.5, 2)}, nil
				}
				return runner.Result{}, errors.New("unexpected run")
			},
			runs: 3,
			check: func(t *testing.T, cs []Conformer) {
				// The two identical geometries are one conformer: the lower energy stays.
				if len(cs) != 1 || cs[0].Energy != -1.5 || cs[0].ForceField != "MMFF94" {
					t.Errorf("got %+v", cs)
				}
			},
		},
		{
			name: "UFF fallback converts kJ/mol",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				if n == 1 {
					writeSearch(t, c)
					return ok, nil
				}
				if slices.Contains(c.Argv, "MMFF94") {
					return runner.Result{Stderr: []byte("Could not setup force field.\n" +
						"0 molecules converted\n")}, nil
				}
				return runner.Result{Stdout: minimised(mol.Atoms, 41.84)}, nil
			},
			runs: 4, // search, MMFF94 refused, UFF rough, UFF final
			check: func(t *testing.T, cs []Conformer) {
				// 41.84 kJ/mol / 4.184 kJ/kcal = 10 kcal/mol.
				if len(cs) != 1 || math.Abs(cs[0].Energy-10) > 1e-12 || cs[0].ForceField != "UFF" {
					t.Errorf("got %+v", cs)
				}
			},
		},
		{
			name: "no force field fits: the input alone",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				if n == 1 {
					writeSearch(t, c)
					return ok, nil
				}
				return runner.Result{Stderr: []byte("Could not setup force field.\n")}, nil
			},
			runs: 3,
			check: func(t *testing.T, cs []Conformer) {
				if len(cs) != 1 || !slices.Equal(cs[0].Atoms, mol.Atoms) || cs[0].Energy != 0 {
					t.Errorf("got %+v", cs)
				}
			},
		},
		{
			name: "search fails",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				return runner.Result{}, &runner.CommandError{Program: "obabel", ExitCode: 1}
			},
			wantErr: "Open Babel conformer search: obabel: exit status 1",
			runs:    1,
		},
		{
			name: "search writes nothing",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				return runner.Result{Stderr: []byte("==============================\n" +
					"*** Open Babel Error  in ReadMolecule\n  Problems reading an XYZ file\n" +
					"0 molecules converted\n")}, nil
			},
			wantErr: "wrote no conformers: *** Open Babel Error  in ReadMolecule; " +
				"Problems reading an XYZ file",
			runs: 1,
		},
		{
			name: "atoms changed",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				if n == 1 {
					writeSearch(t, c)
					return ok, nil
				}
				swapped := slices.Clone(mol.Atoms)
				swapped[0].Element, swapped[2].Element = "O", "C"
				return runner.Result{Stdout: minimised(swapped, 1)}, nil
			},
			wantErr: "Open Babel's minimised conformer 1: atom 1 is O, in the input C",
			runs:    2,
		},
		{
			name: "hydrogen added",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				if n == 1 {
					writeSearch(t, c)
					return ok, nil
				}
				more := append(slices.Clone(mol.Atoms), chem.Atom{Element: "H", X: 9})
				return runner.Result{Stdout: minimised(more, 1)}, nil
			},
			wantErr: "expected the atom count 15, got \"16\"",
			runs:    2,
		},
		{
			name: "no energy",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				if n == 1 {
					writeSearch(t, c)
					return ok, nil
				}
				out := strings.Replace(string(minimised(mol.Atoms, 1)), "qmd 1", "qmd", 1)
				return runner.Result{Stdout: []byte(out)}, nil
			},
			wantErr: "cannot read an energy from the title \"qmd\"",
			runs:    2,
		},
		{
			// A conformer whose bonds changed (here a C–O bond stretched to 3 Å) is not
			// a conformer of the molecule and is dropped; the other one stays.
			name: "broken bond dropped",
			stage: func(t *testing.T, n int, c runner.Command) (runner.Result, error) {
				if n == 1 {
					writeSearch(t, c)
					return ok, nil
				}
				broken := slices.Clone(mol.Atoms)
				for i := 3; i < len(broken); i++ {
					if i == 3 || i == 4 || i >= 10 { // the CH2CH3 on the far side
						broken[i].X += 3
					}
				}
				out := append(minimised(broken, -5), minimised(mol.Atoms, 0)...)
				return runner.Result{Stdout: out}, nil
			},
			runs: 3,
			check: func(t *testing.T, cs []Conformer) {
				if len(cs) != 1 || cs[0].Energy != 0 {
					t.Errorf("got %+v", cs)
				}
			},
		},
		{
			name:    "unknown force field",
			opts:    Options{ForceField: "AMBER"},
			wantErr: "unknown force field \"AMBER\"",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{t: t, stage: func(n int, c runner.Command) (runner.Result, error) {
				return tc.stage(t, n, c)
			}}
			cs, err := Generate(context.Background(), s, mol, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(s.calls) != tc.runs {
				t.Errorf("%d Open Babel runs, want %d", len(s.calls), tc.runs)
			}
			if tc.check != nil {
				tc.check(t, cs)
			}
		})
	}
}

func TestGenerateBadInput(t *testing.T) {
	tests := []struct {
		name  string
		atoms []chem.Atom
		want  string
	}{
		{"no atoms", nil, "no atoms"},
		{"unknown element", []chem.Atom{{Element: "Xx"}}, "atom 1 has unknown element \"Xx\""},
		{"NaN", []chem.Atom{{Element: "C"}, {Element: "C", Y: math.NaN()}},
			"atom 2 has a non-finite coordinate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{t: t}
			_, err := Generate(context.Background(), s, chem.Molecule{Atoms: tc.atoms},
				Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if len(s.calls) != 0 {
				t.Errorf("Open Babel ran")
			}
		})
	}
}

// TestGenerateCancelled checks that the context reaches Open Babel.
func TestGenerateCancelled(t *testing.T) {
	obabel := needObabel(t)
	mol := loadXYZ(t, "diethyl_ether.xyz")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Generate(ctx, runner.Local{}, mol, Options{Obabel: obabel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
