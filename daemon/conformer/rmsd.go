package conformer

import (
	"cmp"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"qmd/daemon/chem"
)

// RMSD returns the root-mean-square distance in Å between the heavy atoms of a and b after
// the rotation and translation that bring them closest (Kabsch). Atoms are compared in
// list order, so a and b must list the same atoms in the same order, as conformers of
// one molecule from Generate do. Only proper rotations are allowed (the sign of the last
// singular vector is flipped when the best orthogonal fit would be a reflection), so a
// chiral arrangement and its mirror image stay apart. Hydrogens are left out because
// methyl and hydroxyl rotations would otherwise keep apart conformers that NMR cannot
// tell apart. With no heavy atoms the result is 0; with lists of different lengths or
// elements, or non-finite coordinates, it is NaN, which no threshold test passes.
func RMSD(a, b []chem.Atom) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	var p, q [][3]float64
	for i := range a {
		if a[i].Element != b[i].Element {
			return math.NaN()
		}
		if a[i].Element == "H" {
			continue
		}
		p = append(p, [3]float64{a[i].X, a[i].Y, a[i].Z})
		q = append(q, [3]float64{b[i].X, b[i].Y, b[i].Z})
	}
	if len(p) == 0 {
		return 0
	}
	return kabsch(p, q)
}

// kabsch superimposes p onto q and returns the RMSD. The distance is measured on the
// rotated coordinates rather than taken from the singular values, because the closed form
// subtracts two nearly equal sums and loses about 1e-7 Å near a perfect fit.
func kabsch(p, q [][3]float64) float64 {
	cp, cq := centre(p), centre(q)
	n := float64(len(p))
	for _, x := range append(cp[:], cq[:]...) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return math.NaN()
		}
	}
	// Covariance H = Σ (p_i − cp)(q_i − cq)ᵀ.
	h := mat.NewDense(3, 3, nil)
	for i := range p {
		for r := 0; r < 3; r++ {
			for c := 0; c < 3; c++ {
				h.Set(r, c, h.At(r, c)+(p[i][r]-cp[r])*(q[i][c]-cq[c]))
			}
		}
	}
	var svd mat.SVD
	if !svd.Factorize(h, mat.SVDFull) {
		return math.NaN()
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	// R = V·diag(1, 1, d)·Uᵀ with d = sign(det(V·Uᵀ)) maps p onto q without reflecting.
	d := 1.0
	if mat.Det(&v)*mat.Det(&u) < 0 {
		d = -1
	}
	var rot mat.Dense
	rot.Mul(&v, mat.NewDense(3, 3, []float64{1, 0, 0, 0, 1, 0, 0, 0, d}))
	rot.Mul(&rot, u.T())
	sum := 0.0
	for i := range p {
		for r := 0; r < 3; r++ {
			x := 0.0
			for c := 0; c < 3; c++ {
				x += rot.At(r, c) * (p[i][c] - cp[c])
			}
			diff := x - (q[i][r] - cq[r])
			sum += diff * diff
		}
	}
	return math.Sqrt(sum / n)
}

// centre returns the centroid of the points.
func centre(p [][3]float64) [3]float64 {
	var c [3]float64
	for _, x := range p {
		for k := range c {
			c[k] += x[k]
		}
	}
	for k := range c {
		c[k] /= float64(len(p))
	}
	return c
}

// Prune keeps the conformers worth a DFT job: those within window kcal/mol of the lowest
// energy, and of any two whose RMSD (see RMSD) is below rmsd Å only the lower-energy one,
// since both would optimise to the same minimum. The lowest-energy conformer is always
// kept; conformers with a non-finite energy are dropped, as they cannot be placed in the
// window. The result is sorted by energy, lowest first (ties keep their input order);
// cs is not modified, and the result shares the Atoms slices of cs.
//
// Conformers that are distinct but symmetry-related (the mirror-image gauche forms, or the
// same torsions read from either end of diethyl ether) are not close in RMSD and are kept
// apart on purpose: each is a separate microstate, and Boltzmann weights from one DFT
// energy per conformer are only right when every such copy is present.
func Prune(cs []Conformer, window, rmsd float64) []Conformer {
	sorted := make([]Conformer, 0, len(cs))
	for _, c := range cs {
		if !math.IsNaN(c.Energy) && !math.IsInf(c.Energy, 0) {
			sorted = append(sorted, c)
		}
	}
	slices.SortStableFunc(sorted, func(a, b Conformer) int {
		return cmp.Compare(a.Energy, b.Energy)
	})
	var kept []Conformer
	for i, c := range sorted {
		if i > 0 && c.Energy-sorted[0].Energy > window {
			break
		}
		duplicate := false
		for _, k := range kept {
			if RMSD(c.Atoms, k.Atoms) < rmsd {
				duplicate = true
				break
			}
		}
		if !duplicate {
			kept = append(kept, c)
		}
	}
	return kept
}
