package chem

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestValidate checks each problem Validate reports, with the exact message the user
// sees, and that several problems are all reported at once.
func TestValidate(t *testing.T) {
	water := Molecule{Atoms: []Atom{{"O", 0, 0, 0}, {"H", 0.96, 0, 0}, {"H", -0.24, 0.93, 0}}}
	// CH3 radical: 9 electrons.
	methyl := Molecule{Atoms: []Atom{{"C", 0, 0, 0}, {"H", 1.08, 0, 0}, {"H", -0.54, 0.94, 0},
		{"H", -0.54, -0.94, 0}}}
	// Hydroperoxyl HO2: 17 electrons, so a singlet is impossible.
	ho2 := Molecule{Atoms: []Atom{{"H", 0, 0.9, 0}, {"O", 0, 0, 0}, {"O", 1.3, 0, 0}}}
	with := func(m Molecule, f func(*Molecule)) Molecule {
		m.Atoms = append([]Atom(nil), m.Atoms...)
		f(&m)
		return m
	}
	big := Molecule{}
	for i := 0; i < MaxAtoms+1; i++ {
		big.Atoms = append(big.Atoms, Atom{"He", float64(i) * 3, 0, 0})
	}
	tests := []struct {
		name         string
		m            Molecule
		charge, mult int
		want         []string // nil: valid
	}{
		{"water", water, 0, 1, nil},
		{"water triplet", water, 0, 3, nil},
		{"methyl doublet", methyl, 0, 2, nil},
		{"methyl cation", methyl, 1, 1, nil},
		{"stated charge matches",
			with(water, func(m *Molecule) { m.Charge = intp(0) }), 0, 1, nil},
		{"heavy elements", Molecule{Atoms: []Atom{{"Xe", 0, 0, 0}, {"F", 1.98, 0, 0},
			{"F", -1.98, 0, 0}}}, 0, 1, nil},
		{"no atoms", Molecule{}, 0, 1, []string{"the molecule has no atoms"}},
		{"HO2 singlet", ho2, 0, 1, []string{"charge 0 and multiplicity 1 need an even number " +
			"of electrons, but the molecule has 17; set --multiplicity 2 or --charge 1"}},
		{"water doublet", water, 0, 2, []string{"charge 0 and multiplicity 2 need an odd " +
			"number of electrons, but the molecule has 10; set --multiplicity 1 or --charge 1"}},
		{"methyl quartet ok", methyl, 0, 4, nil},
		{"H atom quartet", Molecule{Atoms: []Atom{{"H", 0, 0, 0}}}, 0, 4, []string{
			"multiplicity 4 needs 3 unpaired electrons, but the molecule has only 1 electrons"}},
		{"multiplicity 0", water, 0, 0,
			[]string{"multiplicity must be 1 (singlet) or more, got 0"}},
		{"too positive", water, 12, 1, []string{
			"charge 12 would leave -2 electrons; the charge is too positive for this molecule"}},
		{"bare proton", Molecule{Atoms: []Atom{{"H", 0, 0, 0}}}, 1, 1, []string{
			"charge 1 leaves no electrons; there is nothing to compute"}},
		{"unknown element", with(water, func(m *Molecule) { m.Atoms[1].Element = "Xx" }), 0, 1,
			[]string{`atom 2: unknown element "Xx"`}},
		{"non-finite", with(water, func(m *Molecule) { m.Atoms[2].Y = math.Inf(1) }), 0, 1,
			[]string{"atom 3 (H) has a coordinate that is not a finite number: -0.24 +Inf 0"}},
		{"too close", with(water, func(m *Molecule) { m.Atoms[2] = Atom{"H", 0.96, 0.3, 0} }),
			0, 1, []string{"atoms 2 (H) and 3 (H) are 0.300 Å apart; no bond is shorter than " +
				"0.5 Å (duplicated atom, or coordinates not in Å?)"}},
		{"file charge is not consulted",
			with(water, func(m *Molecule) { m.Charge = intp(-2) }), 0, 1, nil},
		{"too many atoms", big, 0, 1,
			[]string{"the molecule has 501 atoms; this tool handles at most 500"}},
		{"several at once", with(water, func(m *Molecule) {
			m.Atoms[0].Element = "Q"
			m.Atoms[2] = m.Atoms[1]
		}), 0, 0, []string{
			`atom 1: unknown element "Q"`,
			"atoms 2 (H) and 3 (H) are 0.000 Å apart",
			"multiplicity must be 1 (singlet) or more, got 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.m, tt.charge, tt.mult)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want %q", tt.want)
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("error is not from errors.Join: %T", err)
			}
			got := joined.Unwrap()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems %q, want %d", len(got), err, len(tt.want))
			}
			for i, w := range tt.want {
				if g := got[i].Error(); g != w && !strings.HasPrefix(g, w) {
					t.Errorf("problem %d = %q\n            want %q", i, g, w)
				}
			}
		})
	}
}

// TestValidateCapsCloseContacts checks that a pile of atoms at one point produces a short
// message, not one line per pair.
func TestValidateCapsCloseContacts(t *testing.T) {
	m := Molecule{Atoms: make([]Atom, 20)}
	for i := range m.Atoms {
		m.Atoms[i].Element = "H"
	}
	err := Validate(m, 0, 1)
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != maxCloseReports+1 {
		t.Fatalf("got %v", err)
	}
	last := joined.Unwrap()[maxCloseReports].Error()
	if last != "and 185 more pairs of atoms closer than 0.5 Å" {
		t.Errorf("summary = %q", last)
	}
}

func TestElectrons(t *testing.T) {
	m := parseOne(t, "mol", fixture(t, "acetate_v2000.mol"))
	if got := Electrons(m, -1); got != 32 {
		t.Errorf("acetate anion electrons = %d, want 32", got)
	}
	m = parseOne(t, "xyz", fixture(t, "tms.xyz"))
	if got := Electrons(m, 0); got != 14+4*6+12 {
		t.Errorf("TMS electrons = %d, want 50", got)
	}
	if got := Electrons(Molecule{Atoms: []Atom{{"Xx", 0, 0, 0}, {"H", 1, 0, 0}}}, 0); got != 1 {
		t.Errorf("unknown elements should count 0, got %d", got)
	}
}

func TestNeeds3D(t *testing.T) {
	flat := []Atom{{"C", 0, 0, 0}, {"C", 1.4, 0, 0}, {"O", 2, 1.2, 0}}
	zero := []Atom{{"C", 0, 0, 0}, {"C", 0, 0, 0}, {"O", 0, 0, 0}}
	tests := []struct {
		name string
		m    Molecule
		want bool
	}{
		{"2D file", parseOne(t, "mol", fixture(t, "ethanol_2d.mol")), true},
		{"3D file", parseOne(t, "mol", fixture(t, "ethanol_v2000.mol")), false},
		{"flat, header says 3D", Molecule{Atoms: flat, Dimension: "3D"}, false},
		{"flat, no header", Molecule{Atoms: flat}, true},
		{"0D, header says 3D", Molecule{Atoms: zero, Dimension: "3D"}, true},
		{"single atom", Molecule{Atoms: zero[:1], Dimension: "2D"}, false},
		{"xyz benzene", parseOne(t, "xyz", fixture(t, "benzene.xyz")), false},
		{"non-flat, header says 2D", Molecule{Atoms: []Atom{{"C", 0, 0, 1}, {"C", 1, 0, 0}},
			Dimension: "2D"}, true},
	}
	for _, tt := range tests {
		if got := Needs3D(tt.m); got != tt.want {
			t.Errorf("%s: Needs3D = %v, want %v", tt.name, got, tt.want)
		}
	}
}
