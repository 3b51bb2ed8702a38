package chem

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
)

// bondTolerance is added to the sum of covalent radii when deciding whether two atoms are
// bonded. 0.45 Å is the value Open Babel and Jmol use: loose enough for stretched bonds in
// unoptimised input, tight enough that geminal H...H (about 1.8 Å) stays unbonded.
const bondTolerance = 0.45

// minBondLength is the distance below which two atoms are not bonded but overlapping;
// Validate reports such pairs, and not bonding them keeps a pile of atoms at one point
// from producing a quadratic number of bonds.
const minBondLength = 0.4

// PerceiveBonds connects atoms whose distance d satisfies minBondLength < d <
// r1+r2+bondTolerance, with Cordero covalent radii. It is used where the input carries no
// bond table (XYZ, Open Babel's XYZ output for SMILES). Atoms are swept in order of x so
// that only pairs within the largest possible bond length along x are measured. Unknown
// elements and non-finite coordinates never bond. Pairs come back sorted, with i<j.
func PerceiveBonds(atoms []Atom) [][2]int {
	order := make([]int, 0, len(atoms))
	radius := make([]float64, len(atoms))
	maxR := 0.0
	for i, a := range atoms {
		radius[i] = covalentRadius(a.Element)
		if radius[i] == 0 || !finite(a) {
			continue
		}
		order = append(order, i)
		maxR = max(maxR, radius[i])
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(atoms[a].X, atoms[b].X) })
	reach := 2*maxR + bondTolerance
	var bonds [][2]int
	for k, i := range order {
		a := atoms[i]
		for _, j := range order[k+1:] {
			b := atoms[j]
			if b.X-a.X > reach {
				break
			}
			d := distance(a, b)
			if d > minBondLength && d < radius[i]+radius[j]+bondTolerance {
				bonds = append(bonds, normalisePair(i, j))
			}
		}
	}
	slices.SortFunc(bonds, func(p, q [2]int) int {
		return cmp.Or(cmp.Compare(p[0], q[0]), cmp.Compare(p[1], q[1]))
	})
	return bonds
}

// finite reports whether all three coordinates are finite numbers.
func finite(a Atom) bool {
	for _, v := range []float64{a.X, a.Y, a.Z} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// distance is the Euclidean distance in Å.
func distance(a, b Atom) float64 {
	return math.Sqrt((a.X-b.X)*(a.X-b.X) + (a.Y-b.Y)*(a.Y-b.Y) + (a.Z-b.Z)*(a.Z-b.Z))
}

// adjacency builds neighbour lists, ignoring pairs that are out of range, reflexive or
// repeated, so that a hand-made bond list cannot make the graph code misbehave.
func adjacency(n int, bonds [][2]int) [][]int {
	adj := make([][]int, n)
	seen := make(map[[2]int]bool, len(bonds))
	for _, b := range bonds {
		i, j := b[0], b[1]
		if i < 0 || j < 0 || i >= n || j >= n || i == j {
			continue
		}
		p := normalisePair(i, j)
		if seen[p] {
			continue
		}
		seen[p] = true
		adj[i] = append(adj[i], j)
		adj[j] = append(adj[j], i)
	}
	return adj
}

// EquivalenceGroups partitions the atoms into groups that the molecular graph cannot tell
// apart, so that computed shieldings can be averaged the way fast rotation and exchange
// average them in the spectrum (the three protons of a methyl group, the six carbons of
// benzene). It uses colour refinement (the Morgan / Weisfeiler-Lehman procedure): every
// atom starts coloured by element and number of bonds, and each round recolours atoms by
// their own colour plus the sorted colours of their neighbours, until the number of
// colours stops growing. Coordinates are deliberately ignored, since a single conformer
// breaks symmetries that are averaged in solution.
//
// The result holds a 1-based group id per atom, numbered in order of each group's first
// atom. Two limits follow from using the graph only: diastereotopic atoms (the CH2
// protons next to a stereocentre) are put in one group although they can differ in the
// spectrum, and rare highly regular graphs can merge atoms that are not truly symmetric.
func EquivalenceGroups(atoms []Atom, bonds [][2]int) []int {
	n := len(atoms)
	adj := adjacency(n, bonds)
	keys := make([]string, n)
	for i, a := range atoms {
		keys[i] = a.Element + "/" + strconv.Itoa(len(adj[i]))
	}
	colour, count := renumber(keys)
	var b strings.Builder
	nbr := make([]int, 0, 8)
	for round := 0; round < n; round++ {
		for i := range atoms {
			nbr = nbr[:0]
			for _, j := range adj[i] {
				nbr = append(nbr, colour[j])
			}
			slices.Sort(nbr)
			b.Reset()
			b.WriteString(strconv.Itoa(colour[i]))
			for _, c := range nbr {
				b.WriteByte(',')
				b.WriteString(strconv.Itoa(c))
			}
			keys[i] = b.String()
		}
		next, nextCount := renumber(keys)
		colour = next
		if nextCount == count {
			break
		}
		count = nextCount
	}
	for i := range colour {
		colour[i]++
	}
	return colour
}

// renumber maps each distinct key to 0, 1, ... in order of first appearance.
func renumber(keys []string) ([]int, int) {
	ids := make(map[string]int, len(keys))
	out := make([]int, len(keys))
	for i, k := range keys {
		id, ok := ids[k]
		if !ok {
			id = len(ids)
			ids[k] = id
		}
		out[i] = id
	}
	return out, len(ids)
}

// BondedHeavy returns, for every hydrogen, the 0-based index of the non-hydrogen atom it
// is bonded to, and -1 for every other atom and for hydrogens bonded to no heavy atom
// (H2, a stray proton). A hydrogen with several heavy neighbours (a bridging hydride, or
// an over-generous perceived bond) is assigned to the nearest one, which is the atom
// whose NMR environment it belongs to.
func BondedHeavy(atoms []Atom, bonds [][2]int) []int {
	adj := adjacency(len(atoms), bonds)
	out := make([]int, len(atoms))
	for i, a := range atoms {
		out[i] = -1
		if a.Element != "H" {
			continue
		}
		best := math.Inf(1)
		for _, j := range adj[i] {
			if atoms[j].Element == "H" {
				continue
			}
			if d := distance(a, atoms[j]); d < best || out[i] == -1 {
				best, out[i] = d, j
			}
		}
	}
	return out
}
