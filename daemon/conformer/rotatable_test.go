package conformer

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"qmd/daemon/chem"
	"qmd/scheduler/runner"
)

// graph builds a molecular graph without coordinates, which is all RotatableBonds reads.
// heavy lists the heavy atoms as element plus hydrogen count ("C3" is a methyl carbon,
// "O" an oxygen with no H); bonds joins heavy atoms by 0-based index ("0-1 1-2").
// Hydrogens follow the heavy atoms, each bonded to its parent.
func graph(t *testing.T, heavy, bonds string) ([]chem.Atom, [][2]int) {
	t.Helper()
	var atoms []chem.Atom
	var hs []int
	for _, tok := range strings.Fields(heavy) {
		cut := strings.IndexAny(tok, "0123456789")
		n := 0
		if cut < 0 {
			cut = len(tok)
		} else {
			var err error
			if n, err = strconv.Atoi(tok[cut:]); err != nil {
				t.Fatalf("bad atom %q", tok)
			}
		}
		atoms = append(atoms, chem.Atom{Element: tok[:cut]})
		hs = append(hs, n)
	}
	var out [][2]int
	for _, b := range strings.Fields(bonds) {
		i, j, ok := strings.Cut(b, "-")
		a, err1 := strconv.Atoi(i)
		c, err2 := strconv.Atoi(j)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("bad bond %q", b)
		}
		out = append(out, [2]int{a, c})
	}
	for parent, n := range hs {
		for range n {
			out = append(out, [2]int{parent, len(atoms)})
			atoms = append(atoms, chem.Atom{Element: "H"})
		}
	}
	return atoms, out
}

const (
	benzeneRing = "0-1 1-2 2-3 3-4 4-5 5-0"
	phenyl      = "C C1 C1 C1 C1 C1" // ipso carbon first
)

// rotatableCases are the molecules of the definition and of its edge cases (conjugation,
// linear carbons, amides), as SMILES and as a hand-made graph, with the expected count.
var rotatableCases = []struct {
	name, smiles string
	heavy, bonds string
	want         int
}{
	{"ethane", "CC", "C3 C3", "0-1", 0},
	// C–C ends in a methyl, C–O in a hydroxyl: both terminal.
	{"ethanol", "CCO", "C3 C2 O1", "0-1 1-2", 0},
	// The two C–O bonds; the CH3–CH2 bonds are terminal.
	{"diethyl ether", "CCOCC", "C3 C2 O C2 C3", "0-1 1-2 2-3 3-4", 2},
	// O–CH2 and C(=O)–O; CH3–C(=O) and CH3–CH2 are terminal.
	{"ethyl acetate", "CCOC(C)=O", "C3 C2 O C C3 O", "0-1 1-2 2-3 3-4 3-5", 2},
	{"butane", "CCCC", "C3 C2 C2 C3", "0-1 1-2 2-3", 1},
	{"cyclohexane", "C1CCCCC1", "C2 C2 C2 C2 C2 C2", benzeneRing, 0},
	{"benzene", "c1ccccc1", "C1 C1 C1 C1 C1 C1", benzeneRing, 0},
	{"toluene", "Cc1ccccc1", phenyl + " C3", benzeneRing + " 0-6", 0},
	// The amide C–N is partly double; the N–CH3 bonds are terminal.
	{"DMF", "CN(C)C=O", "O C1 N C3 C3", "0-1 1-2 2-3 2-4", 0},
	{"N-methylacetamide", "CC(=O)NC", "C3 C O N1 C3", "0-1 1-2 1-3 3-4", 0},
	{"N,N-dimethylthioacetamide", "CC(=S)N(C)C", "C3 C S N C3 C3", "0-1 1-2 1-3 3-4 3-5", 0},
	{"methyl acetate", "CC(=O)OC", "C3 C O O C3", "0-1 1-2 1-3 3-4", 1},
	// Both rings need their own Kekulé structure, so the bond between them is single.
	{"biphenyl", "c1ccc(cc1)-c1ccccc1", phenyl + " " + phenyl,
		benzeneRing + " 6-7 7-8 8-9 9-10 10-11 11-6 0-6", 1},
	{"styrene", "C=Cc1ccccc1", phenyl + " C1 C2", benzeneRing + " 0-6 6-7", 1},
	// The vinyl carbons can only pair with each other: C=C is double, the two
	// ring–vinyl bonds single.
	{"trans-stilbene", "C(=C/c1ccccc1)\\c1ccccc1", phenyl + " C1 C1 " + phenyl,
		benzeneRing + " 0-6 6-7 7-8 8-9 9-10 10-11 11-12 12-13 13-8", 2},
	{"1,3-butadiene", "C=CC=C", "C2 C1 C1 C2", "0-1 1-2 2-3", 1},
	{"2-butene", "C/C=C/C", "C3 C1 C1 C3", "0-1 1-2 2-3", 0},
	// A bond to a linear carbon turns nothing.
	{"benzonitrile", "N#Cc1ccccc1", phenyl + " C N", benzeneRing + " 0-6 6-7", 0},
	{"diphenylacetylene", "c1ccccc1C#Cc1ccccc1", phenyl + " C C " + phenyl,
		benzeneRing + " 0-6 6-7 7-8 8-9 9-10 10-11 11-12 12-13 13-8", 0},
	{"nitrobenzene", "[O-][N+](=O)c1ccccc1", phenyl + " N O O", benzeneRing + " 0-6 6-7 6-8", 1},
	// Ring–C(=O), C(=O)–O and O–CH2: the carbonyl carbon must pair with its oxygen.
	{"ethyl benzoate", "CCOC(=O)c1ccccc1", phenyl + " C O O C2 C3",
		benzeneRing + " 0-6 6-7 6-8 8-9 9-10", 3},
	{"acetophenone", "CC(=O)c1ccccc1", phenyl + " C O C3", benzeneRing + " 0-6 6-7 6-8", 1},
	{"2-phenylpyridine", "c1ccc(cc1)-c1ccccn1", phenyl + " C C1 C1 C1 C1 N",
		benzeneRing + " 6-7 7-8 8-9 9-10 10-11 11-6 0-6", 1},
	{"diethyl succinate", "CCOC(=O)CCC(=O)OCC", "C3 C2 O C O C2 C2 C O O C2 C3",
		"0-1 1-2 2-3 3-4 3-5 5-6 6-7 7-8 7-9 9-10 10-11", 7},
}

func TestRotatableBondsGraph(t *testing.T) {
	for _, tc := range rotatableCases {
		t.Run(tc.name, func(t *testing.T) {
			atoms, bonds := graph(t, tc.heavy, tc.bonds)
			if got := RotatableBonds(atoms, bonds); got != tc.want {
				t.Errorf("RotatableBonds = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestRotatableBondsJunk checks that self, repeated and out-of-range bonds are ignored.
func TestRotatableBondsJunk(t *testing.T) {
	atoms, bonds := graph(t, "C3 C2 O C2 C3", "0-1 1-2 2-3 3-4")
	bonds = append(bonds, [2]int{2, 1}, [2]int{1, 2}, [2]int{3, 3}, [2]int{-1, 2},
		[2]int{4, 99})
	if got := RotatableBonds(atoms, bonds); got != 2 {
		t.Errorf("RotatableBonds = %d, want 2", got)
	}
	if got := RotatableBonds(nil, nil); got != 0 {
		t.Errorf("RotatableBonds of nothing = %d", got)
	}
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

// oneThread runs commands with OMP_NUM_THREADS=1, as Generate does for its own runs, so
// that chem.FromSMILES in these tests is not slowed by OpenMP on a loaded machine.
type oneThread struct{ runner.Runner }

func (o oneThread) Run(ctx context.Context, c runner.Command) (runner.Result, error) {
	c.Env = append(c.Env, "OMP_NUM_THREADS=1")
	return o.Runner.Run(ctx, c)
}

// fromSMILES builds a 3D molecule with Open Babel; its bonds are perceived from the
// coordinates, as they are for an uploaded XYZ file.
func fromSMILES(t *testing.T, obabel, smiles string) chem.Molecule {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := chem.FromSMILES(ctx, oneThread{runner.Local{}}, obabel, smiles)
	if err != nil {
		t.Fatalf("FromSMILES(%q): %v", smiles, err)
	}
	return m
}

func TestRotatableBondsFromSMILES(t *testing.T) {
	obabel := needObabel(t)
	for _, tc := range rotatableCases {
		t.Run(tc.name, func(t *testing.T) {
			m := fromSMILES(t, obabel, tc.smiles)
			if got := RotatableBonds(m.Atoms, m.Bonds); got != tc.want {
				t.Errorf("RotatableBonds(%s) = %d, want %d", tc.smiles, got, tc.want)
			}
		})
	}
}

func TestRotatableBondsXYZ(t *testing.T) {
	tests := []struct {
		file string
		want int
	}{
		{"diethyl_ether.xyz", 2},
		{"ethyl_acetate.xyz", 2},
		{"dmf.xyz", 0},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			mols, err := chem.Parse("xyz", data)
			if err != nil {
				t.Fatal(err)
			}
			if got := RotatableBonds(mols[0].Atoms, mols[0].Bonds); got != tc.want {
				t.Errorf("RotatableBonds = %d, want %d", got, tc.want)
			}
		})
	}
}

// bruteMatching is the maximum matching size by trying every edge subset recursively:
// exponential, but simple enough to trust on ten vertices.
func bruteMatching(edges [][2]int, used []bool, from int) int {
	best := 0
	for k := from; k < len(edges); k++ {
		a, b := edges[k][0], edges[k][1]
		if used[a] || used[b] {
			continue
		}
		used[a], used[b] = true, true
		best = max(best, 1+bruteMatching(edges, used, k+1))
		used[a], used[b] = false, false
	}
	return best
}

func TestMaxMatching(t *testing.T) {
	cycle := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(strconv.Itoa(i) + "-" + strconv.Itoa((i+1)%n) + " ")
		}
		return b.String()
	}
	tests := []struct {
		name  string
		n     int
		edges string
		want  int
	}{
		{"empty", 3, "", 0},
		{"triangle", 3, cycle(3), 1},
		{"pentagon", 5, cycle(5), 2},
		{"hexagon", 6, cycle(6), 3},
		// Two triangles joined by one edge: the perfect matching needs the blossom of
		// the first triangle to be entered through the joining edge.
		{"two triangles", 6, "0-1 1-2 2-0 3-4 4-5 5-3 2-3", 3},
		// Petersen graph: 10 vertices, perfect matching of 5, full of odd cycles.
		{"Petersen", 10, cycle(5) + "5-7 7-9 9-6 6-8 8-5 0-5 1-6 2-7 3-8 4-9", 5},
		// Azulene's carbon skeleton, fused 5- and 7-rings: 10 atoms, 5 double bonds.
		{"azulene", 10, "0-1 1-2 2-3 3-4 4-0 4-5 5-6 6-7 7-8 8-9 9-0", 5},
		{"star", 5, "0-1 0-2 0-3 0-4", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adj := make([][]int, tc.n)
			for _, e := range strings.Fields(tc.edges) {
				i, j, _ := strings.Cut(e, "-")
				a, _ := strconv.Atoi(i)
				b, _ := strconv.Atoi(j)
				adj[a] = append(adj[a], b)
				adj[b] = append(adj[b], a)
			}
			if got := maxMatching(adj, nil); got != tc.want {
				t.Errorf("maxMatching = %d, want %d", got, tc.want)
			}
		})
	}

	// Random graphs, checked against brute force, with a vertex removed now and then.
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		n := 2 + rng.IntN(9)
		p := 0.15 + 0.5*rng.Float64()
		adj := make([][]int, n)
		var removed []bool
		if trial%3 == 0 {
			removed = make([]bool, n)
			removed[rng.IntN(n)] = true
		}
		var edges [][2]int
		for i := range n {
			for j := i + 1; j < n; j++ {
				if rng.Float64() >= p {
					continue
				}
				adj[i] = append(adj[i], j)
				adj[j] = append(adj[j], i)
				if removed == nil || !removed[i] && !removed[j] {
					edges = append(edges, [2]int{i, j})
				}
			}
		}
		want := bruteMatching(edges, make([]bool, n), 0)
		if got := maxMatching(adj, removed); got != want {
			t.Fatalf("trial %d: maxMatching = %d, brute force %d; adj %v, removed %v",
				trial, got, want, adj, removed)
		}
	}
}
