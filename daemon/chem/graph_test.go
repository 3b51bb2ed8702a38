package chem

import (
	"math"
	"reflect"
	"testing"
)

// TestGroups checks the equivalence groups the NMR averaging relies on, for molecules
// whose symmetry a chemist knows by heart. Bonds come from PerceiveBonds on XYZ fixtures
// and from the bond block for MOL fixtures, so both paths are covered.
func TestGroups(t *testing.T) {
	tests := []struct {
		file, format string
		groups       []int
		heavy        []int
	}{
		// C0 C1 O2, H3-5 on C0, H6-7 on C1, H8 on O2.
		{"ethanol.xyz", "xyz", []int{1, 2, 3, 4, 4, 4, 5, 5, 6},
			[]int{-1, -1, -1, 0, 0, 0, 1, 1, 2}},
		{"ethanol_v2000.mol", "mol", []int{1, 2, 3, 4, 4, 4, 5, 5, 6},
			[]int{-1, -1, -1, 0, 0, 0, 1, 1, 2}},
		// CC(C)=O: both methyl carbons alike, all six protons alike.
		{"acetone.xyz", "xyz", []int{1, 2, 1, 3, 4, 4, 4, 4, 4, 4},
			[]int{-1, -1, -1, -1, 0, 0, 0, 2, 2, 2}},
		{"benzene.xyz", "xyz", []int{1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2},
			[]int{-1, -1, -1, -1, -1, -1, 0, 1, 2, 3, 4, 5}},
		{"water.xyz", "xyz", []int{1, 2, 2}, []int{-1, 0, 0}},
		// C[Si](C)(C)C: four carbons alike, twelve protons alike.
		{"tms.xyz", "xyz", []int{1, 2, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
			[]int{-1, -1, -1, -1, -1, 0, 0, 0, 2, 2, 2, 3, 3, 3, 4, 4, 4}},
		// Acetate: the carboxylate oxygens differ in the bond block (C=O vs C-O-) but are
		// one group, since bond orders are ignored; the methyl protons are one group.
		{"acetate_v2000.mol", "mol", []int{1, 2, 3, 3, 4, 4, 4}, []int{-1, -1, -1, -1, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m := parseOne(t, tt.format, fixture(t, tt.file))
			if got := EquivalenceGroups(m.Atoms, m.Bonds); !reflect.DeepEqual(got, tt.groups) {
				t.Errorf("EquivalenceGroups = %v, want %v", got, tt.groups)
			}
			if got := BondedHeavy(m.Atoms, m.Bonds); !reflect.DeepEqual(got, tt.heavy) {
				t.Errorf("BondedHeavy = %v, want %v", got, tt.heavy)
			}
		})
	}
}

// TestGroupsNeedRefinement covers atoms that start alike (same element and degree) and
// are told apart only by atoms further away, so at least two refinement rounds are needed.
func TestGroupsNeedRefinement(t *testing.T) {
	// Cl-C-C-C-C: the three inner carbons all have two bonds.
	atoms := []Atom{{"Cl", 0, 0, 0}, {"C", 1, 0, 0}, {"C", 2, 0, 0}, {"C", 3, 0, 0},
		{"C", 4, 0, 0}}
	bonds := [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}}
	want := []int{1, 2, 3, 4, 5}
	if got := EquivalenceGroups(atoms, bonds); !reflect.DeepEqual(got, want) {
		t.Errorf("chain: %v, want %v", got, want)
	}
	// Symmetric chain C-C-C-C-C: ends alike, next-to-ends alike, centre alone.
	atoms[0].Element = "C"
	want = []int{1, 2, 3, 2, 1}
	if got := EquivalenceGroups(atoms, bonds); !reflect.DeepEqual(got, want) {
		t.Errorf("pentane skeleton: %v, want %v", got, want)
	}
}

// TestGraphToleratesBadBonds checks that a hand-built bond list with out-of-range,
// reflexive and repeated pairs neither panics nor changes the answer.
func TestGraphToleratesBadBonds(t *testing.T) {
	atoms := []Atom{{"O", 0, 0, 0}, {"H", 0.96, 0, 0}, {"H", -0.24, 0.93, 0}}
	bonds := [][2]int{{0, 1}, {1, 0}, {0, 2}, {2, 2}, {-1, 0}, {0, 7}}
	if got := EquivalenceGroups(atoms, bonds); !reflect.DeepEqual(got, []int{1, 2, 2}) {
		t.Errorf("groups = %v", got)
	}
	if got := BondedHeavy(atoms, bonds); !reflect.DeepEqual(got, []int{-1, 0, 0}) {
		t.Errorf("heavy = %v", got)
	}
	if got := EquivalenceGroups(nil, nil); len(got) != 0 {
		t.Errorf("empty groups = %v", got)
	}
}

func TestBondedHeavyNearest(t *testing.T) {
	// A bridging hydrogen between two borons, nearer the second; and H2, bonded to no
	// heavy atom.
	atoms := []Atom{{"B", 0, 0, 0}, {"B", 1.8, 0, 0}, {"H", 1.0, 0.9, 0},
		{"H", 5, 0, 0}, {"H", 5.74, 0, 0}}
	bonds := PerceiveBonds(atoms)
	want := [][2]int{{0, 1}, {0, 2}, {1, 2}, {3, 4}}
	if !reflect.DeepEqual(bonds, want) {
		t.Fatalf("bonds = %v, want %v", bonds, want)
	}
	if got := BondedHeavy(atoms, bonds); !reflect.DeepEqual(got, []int{-1, -1, 1, -1, -1}) {
		t.Errorf("BondedHeavy = %v", got)
	}
}

func TestPerceiveBonds(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name  string
		atoms []Atom
		want  [][2]int
	}{
		{"none", nil, nil},
		{"H2", []Atom{{"H", 0, 0, 0}, {"H", 0.74, 0, 0}}, [][2]int{{0, 1}}},
		// 0.31+0.31+0.45 = 1.07 Å: geminal protons at 1.78 Å are not bonded.
		{"geminal H", []Atom{{"H", 0, 0, 0}, {"H", 1.78, 0, 0}}, nil},
		{"overlapping", []Atom{{"C", 0, 0, 0}, {"C", 0.3, 0, 0}}, nil},
		// C-Cl 1.78 Å is within 0.76+1.02+0.45 = 2.23 Å; 2.3 Å is not.
		{"C-Cl", []Atom{{"Cl", 1.78, 0, 0}, {"C", 0, 0, 0}}, [][2]int{{0, 1}}},
		{"C...Cl", []Atom{{"Cl", 2.3, 0, 0}, {"C", 0, 0, 0}}, nil},
		// Sorting by x must not hide a bond between atoms far apart in y only.
		{"along y", []Atom{{"C", 0, 0, 0}, {"C", 5, 0, 0}, {"C", 0, 1.5, 0}},
			[][2]int{{0, 2}}},
		{"unknown and NaN never bond", []Atom{{"C", 0, 0, 0}, {"Xx", 1, 0, 0},
			{"C", nan, 0, 0}, {"H", 0, 1.09, 0}}, [][2]int{{0, 3}}},
	}
	for _, tt := range tests {
		if got := PerceiveBonds(tt.atoms); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPerceiveMatchesBondBlock checks perceived bonds against the bond blocks Open Babel
// wrote for the same molecules.
func TestPerceiveMatchesBondBlock(t *testing.T) {
	for _, f := range []string{"ethanol_v2000.mol", "acetate_v2000.mol", "ammonium_v3000.mol"} {
		m := parseOne(t, "mol", fixture(t, f))
		got := PerceiveBonds(m.Atoms)
		want := append([][2]int(nil), m.Bonds...)
		sortPairs(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: perceived %v, bond block %v", f, got, want)
		}
	}
}

func sortPairs(p [][2]int) {
	for i := range p {
		for j := i + 1; j < len(p); j++ {
			if p[j][0] < p[i][0] || p[j][0] == p[i][0] && p[j][1] < p[i][1] {
				p[i], p[j] = p[j], p[i]
			}
		}
	}
}

func TestElementNumber(t *testing.T) {
	tests := []struct {
		in   string
		z    int
		ok   bool
		want string
	}{
		{"H", 1, true, "H"}, {"cl", 17, true, "Cl"}, {"CL", 17, true, "Cl"},
		{"Kr", 36, true, "Kr"}, {"xe", 54, true, "Xe"}, {"Og", 118, true, "Og"},
		{"og", 118, true, "Og"}, {"Uue", 0, false, ""}, {"Xx", 0, false, ""},
		{"D", 0, false, ""}, {"", 0, false, ""}, {"C ", 0, false, ""},
	}
	for _, tt := range tests {
		z, ok := ElementNumber(tt.in)
		if z != tt.z || ok != tt.ok {
			t.Errorf("ElementNumber(%q) = %d, %v; want %d, %v", tt.in, z, ok, tt.z, tt.ok)
		}
		if sym, _ := ElementSymbol(z); ok && sym != tt.want {
			t.Errorf("ElementSymbol(%d) = %q, want %q", z, sym, tt.want)
		}
	}
	if len(symbols) != len(covalentRadii) || MaxElement != 118 {
		t.Fatalf("tables disagree: %d symbols, %d radii", len(symbols), len(covalentRadii))
	}
	for z := 1; z <= MaxElement; z++ {
		sym, _ := ElementSymbol(z)
		if back, ok := ElementNumber(sym); !ok || back != z || covalentRadii[z] <= 0 {
			t.Errorf("element %d (%s) does not round-trip or has no radius", z, sym)
		}
	}
	if _, ok := ElementSymbol(0); ok {
		t.Error("ElementSymbol(0) succeeded")
	}
}
