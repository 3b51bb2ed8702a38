package validate

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"qmd/ctl/api"
	"qmd/daemon/chem"
	"qmd/daemon/shifts"
)

// Classes of groups that are reported apart from the rest, because their error says
// little about the method: exchangeable protons move with concentration, water and
// temperature, and carbons bearing chlorine need relativistic and basis-set corrections
// that B3LYP/6-31G* lacks (it overshoots them by 14–25 ppm).
const (
	ClassNormal       = ""
	ClassExchangeable = "exchangeable"
	ClassCarbonCl     = "C-Cl"
)

// Method names in a report. MethodQMD is whatever qmd itself applies for the preset and
// solvent (shifts.For), the number a chemist sees.
const (
	MethodQMD    = "qmd"
	MethodTMS    = shifts.MethodTMS
	MethodLinear = shifts.MethodLinear
	// MethodConformers is qmd's reference applied to Boltzmann-averaged shieldings.
	MethodConformers = "conformers"
)

// GroupResult compares one group of a molecule.
type GroupResult struct {
	Label   string `json:"label"`
	Nucleus string `json:"nucleus"`
	Atoms   []int  `json:"smiles_atom_idx"`
	Class   string `json:"class,omitempty"`
	// Sigma is the mean computed shielding per site: one value for an ordinary group, one
	// per site, highest first, for a group of sites with distinct lines.
	Sigma []float64 `json:"sigma"`
	// Experimental shifts, lowest first, so Experimental[i] pairs with Sigma[i].
	Experimental []float64 `json:"experimental"`
	// Calculated shifts per method, in the order of Sigma.
	Calculated map[string][]float64 `json:"calculated"`
}

// Topology is what the comparison needs to know about a molecule besides its result:
// elements in input order and bonds (0-based pairs), from the geometry that was submitted.
type Topology struct {
	Elements []string
	Bonds    [][2]int
}

// TopologyOf extracts the topology of a molecule.
func TopologyOf(m chem.Molecule) Topology {
	t := Topology{Elements: make([]string, len(m.Atoms)), Bonds: m.Bonds}
	for i, a := range m.Atoms {
		t.Elements[i] = a.Element
	}
	return t
}

// Compare matches a finished job's shieldings with a molecule's measured groups in one
// solvent, referencing each site with every reference in refs (keyed by method name).
// Groups without a value in that solvent are skipped. An inconsistency between the set
// and the computed molecule (an index past the heavy atoms, a 1H group on an atom without
// protons, a 13C group on another element) is an error naming the group: it means the set
// or the atom order is wrong, and a silently wrong comparison would be worse.
func Compare(m Molecule, topo Topology, res api.Result, solvent string,
	refs map[string]shifts.Reference) ([]GroupResult, error) {
	n := len(res.Shifts)
	if len(topo.Elements) != n {
		return nil, fmt.Errorf("%s: the result has %d atoms, the submitted molecule %d",
			m.Name, n, len(topo.Elements))
	}
	heavy := 0
	for _, e := range topo.Elements {
		if e != "H" {
			heavy++
		}
	}
	for i := 0; i < heavy; i++ {
		if topo.Elements[i] == "H" {
			return nil, fmt.Errorf("%s: hydrogen at position %d before the last heavy atom; "+
				"set positions need heavy atoms first, in SMILES order", m.Name, i+1)
		}
	}
	neighbours := make([][]int, n)
	for _, b := range topo.Bonds {
		if b[0] < 0 || b[1] < 0 || b[0] >= n || b[1] >= n {
			continue
		}
		neighbours[b[0]] = append(neighbours[b[0]], b[1])
		neighbours[b[1]] = append(neighbours[b[1]], b[0])
	}

	var out []GroupResult
	for _, g := range m.Groups {
		exp, ok := g.ShiftIn(solvent)
		if !ok {
			continue
		}
		where := fmt.Sprintf("%s group %s %s", m.Name, g.Nucleus, g.Label)
		sites := [][]int{g.Atoms}
		if len(exp) > 1 {
			sites = make([][]int, len(g.Atoms))
			for i, a := range g.Atoms {
				sites[i] = []int{a}
			}
		}
		gr := GroupResult{Label: g.Label, Nucleus: g.Nucleus, Atoms: g.Atoms,
			Calculated: map[string][]float64{}}
		if g.Exchangeable {
			gr.Class = ClassExchangeable
		}
		for _, site := range sites {
			var atoms []int
			for _, a := range site {
				if a >= heavy {
					return nil, fmt.Errorf("%s: position %d, but the molecule has %d heavy "+
						"atoms", where, a, heavy)
				}
				switch g.Nucleus {
				case NucleusC:
					if topo.Elements[a] != "C" {
						return nil, fmt.Errorf("%s: position %d is %s, not carbon", where, a,
							topo.Elements[a])
					}
					atoms = append(atoms, a)
					if slices.ContainsFunc(neighbours[a], func(j int) bool {
						return topo.Elements[j] == "Cl"
					}) {
						gr.Class = ClassCarbonCl
					}
				case NucleusH:
					hs := protonsOn(res, a)
					if len(hs) == 0 {
						return nil, fmt.Errorf("%s: position %d (%s) carries no hydrogen", where,
							a, topo.Elements[a])
					}
					atoms = append(atoms, hs...)
					if e := topo.Elements[a]; e == "O" || e == "N" || e == "S" {
						gr.Class = ClassExchangeable
					}
				}
			}
			sum := 0.0
			for _, i := range atoms {
				sum += res.Shifts[i].Shielding
			}
			gr.Sigma = append(gr.Sigma, sum/float64(len(atoms)))
		}
		// Shifts fall as shieldings rise for every reference, so pairing the highest
		// shielding with the lowest measured shift pairs the sites as the spectrum does.
		idx := make([]int, len(gr.Sigma))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case gr.Sigma[a] > gr.Sigma[b]:
				return -1
			case gr.Sigma[a] < gr.Sigma[b]:
				return 1
			}
			return 0
		})
		sorted := make([]float64, len(idx))
		for i, j := range idx {
			sorted[i] = gr.Sigma[j]
		}
		gr.Sigma = sorted
		gr.Experimental = slices.Clone(exp)
		slices.Sort(gr.Experimental)
		if len(gr.Experimental) == 1 && len(gr.Sigma) > 1 {
			return nil, fmt.Errorf("%s: internal: one shift for %d sites", where, len(gr.Sigma))
		}
		element := "H"
		if g.Nucleus == NucleusC {
			element = "C"
		}
		for name, ref := range refs {
			vals := make([]float64, len(gr.Sigma))
			ok := true
			for i, s := range gr.Sigma {
				vals[i], ok = ref.Shift(element, s)
				if !ok {
					break
				}
			}
			if ok {
				gr.Calculated[name] = vals
			}
		}
		out = append(out, gr)
	}
	return out, nil
}

// protonsOn returns the 0-based indices of the hydrogens bonded to heavy atom a
// (0-based), as the result's bonded_to (1-based) says.
func protonsOn(res api.Result, a int) []int {
	var hs []int
	for i, s := range res.Shifts {
		if s.Element == "H" && s.BondedTo != nil && *s.BondedTo == a+1 {
			hs = append(hs, i)
		}
	}
	return hs
}

// Errors returns calculated minus experimental for every site of the groups that have a
// value for method, nucleus and class.
func Errors(groups []GroupResult, method, nucleus, class string) []float64 {
	var out []float64
	for _, g := range groups {
		if g.Nucleus != nucleus || g.Class != class {
			continue
		}
		calc, ok := g.Calculated[method]
		if !ok {
			continue
		}
		for i := range calc {
			out = append(out, calc[i]-g.Experimental[i])
		}
	}
	return out
}

// Stats are error statistics over a list of differences, in ppm.
type Stats struct {
	N    int     `json:"n"`
	MAE  float64 `json:"mae"`
	RMSE float64 `json:"rmse"`
	// Max is the largest absolute error, with its sign.
	Max float64 `json:"max"`
	// MeanSigned is the mean signed error (calculated − experimental): a systematic
	// offset shows here.
	MeanSigned float64 `json:"mean_signed"`
}

// Summarise computes Stats; all zero for no differences.
func Summarise(diffs []float64) Stats {
	s := Stats{N: len(diffs)}
	if s.N == 0 {
		return s
	}
	var abs, sq, sum float64
	for _, d := range diffs {
		abs += math.Abs(d)
		sq += d * d
		sum += d
		if math.Abs(d) > math.Abs(s.Max) {
			s.Max = d
		}
	}
	n := float64(s.N)
	s.MAE, s.RMSE, s.MeanSigned = abs/n, math.Sqrt(sq/n), sum/n
	return s
}

// CheckGroups checks a set molecule's groups against the geometry that will be submitted,
// before anything is computed: heavy atoms first, every position inside them, 13C groups
// on carbons and 1H groups on atoms that carry hydrogens. Every problem is reported.
func CheckGroups(m Molecule, topo Topology) error {
	n := len(topo.Elements)
	heavy := 0
	for heavy < n && topo.Elements[heavy] != "H" {
		heavy++
	}
	for i := heavy; i < n; i++ {
		if topo.Elements[i] != "H" {
			return fmt.Errorf("%s: %s at position %d after a hydrogen; set positions need "+
				"heavy atoms first, in SMILES order", m.Name, topo.Elements[i], i)
		}
	}
	hydrogens := make([]int, n)
	for _, b := range topo.Bonds {
		if b[0] < 0 || b[1] < 0 || b[0] >= n || b[1] >= n {
			continue
		}
		if topo.Elements[b[0]] == "H" {
			hydrogens[b[1]]++
		}
		if topo.Elements[b[1]] == "H" {
			hydrogens[b[0]]++
		}
	}
	var errs []error
	for _, g := range m.Groups {
		where := fmt.Sprintf("%s group %s %s", m.Name, g.Nucleus, g.Label)
		for _, a := range g.Atoms {
			switch {
			case a >= heavy:
				errs = append(errs, fmt.Errorf("%s: position %d, but the molecule has %d "+
					"heavy atoms", where, a, heavy))
			case g.Nucleus == NucleusC && topo.Elements[a] != "C":
				errs = append(errs, fmt.Errorf("%s: position %d is %s, not carbon", where, a,
					topo.Elements[a]))
			case g.Nucleus == NucleusH && hydrogens[a] == 0:
				errs = append(errs, fmt.Errorf("%s: position %d (%s) carries no hydrogen",
					where, a, topo.Elements[a]))
			}
		}
	}
	return errors.Join(errs...)
}
