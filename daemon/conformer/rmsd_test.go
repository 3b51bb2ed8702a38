package conformer

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"qmd/daemon/chem"
)

// chiral is a CHFClBr-like centre: three halogens on the axes at different distances, so
// no rotation maps it onto its mirror image. The hydrogen does not count in RMSD.
var chiral = []chem.Atom{
	{Element: "C"},
	{Element: "F", X: 1.4},
	{Element: "Cl", Y: 1.8},
	{Element: "Br", Z: 1.9},
	{Element: "H", X: -0.6, Y: -0.6, Z: -0.6},
}

// moved rotates atoms by angle (radians) about the unit vector axis, then translates.
func moved(atoms []chem.Atom, axis [3]float64, angle float64, shift [3]float64) []chem.Atom {
	n := math.Sqrt(axis[0]*axis[0] + axis[1]*axis[1] + axis[2]*axis[2])
	x, y, z := axis[0]/n, axis[1]/n, axis[2]/n
	c, s := math.Cos(angle), math.Sin(angle)
	r := [3][3]float64{ // Rodrigues' rotation matrix
		{c + x*x*(1-c), x*y*(1-c) - z*s, x*z*(1-c) + y*s},
		{y*x*(1-c) + z*s, c + y*y*(1-c), y*z*(1-c) - x*s},
		{z*x*(1-c) - y*s, z*y*(1-c) + x*s, c + z*z*(1-c)},
	}
	out := make([]chem.Atom, len(atoms))
	for i, a := range atoms {
		p := [3]float64{a.X, a.Y, a.Z}
		var q [3]float64
		for k := range q {
			q[k] = r[k][0]*p[0] + r[k][1]*p[1] + r[k][2]*p[2] + shift[k]
		}
		out[i] = chem.Atom{Element: a.Element, X: q[0], Y: q[1], Z: q[2]}
	}
	return out
}

func mirrored(atoms []chem.Atom) []chem.Atom {
	out := make([]chem.Atom, len(atoms))
	for i, a := range atoms {
		out[i] = chem.Atom{Element: a.Element, X: a.X, Y: a.Y, Z: -a.Z}
	}
	return out
}

// hornRMSD is an independent check on RMSD: Horn's quaternion method finds the best
// proper rotation as the top eigenvector of a 4×4 matrix, with no SVD and no reflection
// to correct, and min Σ|R·p − q|² = Σ|p|² + Σ|q|² − 2·λmax.
func hornRMSD(t *testing.T, a, b []chem.Atom) float64 {
	t.Helper()
	var p, q [][3]float64
	for i := range a {
		if a[i].Element != "H" {
			p = append(p, [3]float64{a[i].X, a[i].Y, a[i].Z})
			q = append(q, [3]float64{b[i].X, b[i].Y, b[i].Z})
		}
	}
	cp, cq := centre(p), centre(q)
	var s [3][3]float64
	sum := 0.0
	for i := range p {
		for r := 0; r < 3; r++ {
			for c := 0; c < 3; c++ {
				s[r][c] += (p[i][r] - cp[r]) * (q[i][c] - cq[c])
			}
			sum += (p[i][r]-cp[r])*(p[i][r]-cp[r]) + (q[i][r]-cq[r])*(q[i][r]-cq[r])
		}
	}
	n := mat.NewSymDense(4, []float64{
		s[0][0] + s[1][1] + s[2][2], s[1][2] - s[2][1], s[2][0] - s[0][2], s[0][1] - s[1][0],
		s[1][2] - s[2][1], s[0][0] - s[1][1] - s[2][2], s[0][1] + s[1][0], s[2][0] + s[0][2],
		s[2][0] - s[0][2], s[0][1] + s[1][0], -s[0][0] + s[1][1] - s[2][2], s[1][2] + s[2][1],
		s[0][1] - s[1][0], s[2][0] + s[0][2], s[1][2] + s[2][1], -s[0][0] - s[1][1] + s[2][2],
	})
	var eig mat.EigenSym
	if !eig.Factorize(n, false) {
		t.Fatal("eigen decomposition failed")
	}
	top := math.Inf(-1)
	for _, v := range eig.Values(nil) {
		top = max(top, v)
	}
	return math.Sqrt(max(sum-2*top, 0) / float64(len(p)))
}

func TestRMSD(t *testing.T) {
	line := func(l float64) []chem.Atom {
		return []chem.Atom{{Element: "C", X: -l}, {Element: "O"}, {Element: "C", X: l}}
	}
	square := func(h float64) []chem.Atom {
		return []chem.Atom{{Element: "C", X: h, Y: h}, {Element: "C", X: -h, Y: h},
			{Element: "C", X: -h, Y: -h}, {Element: "C", X: h, Y: -h}}
	}
	tests := []struct {
		name string
		a, b []chem.Atom
		want float64
		tol  float64
	}{
		{
			name: "rotated and translated copy",
			a:    chiral,
			b:    moved(chiral, [3]float64{1, -2, 0.5}, 2.1, [3]float64{10, -3, 7.5}),
			want: 0, tol: 1e-9,
		},
		{
			// Symmetric stretch of C–O–C from 1.0 to 1.1 Å: the centroid stays and no
			// rotation helps, so the RMSD is √((0.1² + 0 + 0.1²)/3) = √(0.02/3) = 0.0816497.
			name: "symmetric stretch",
			a:    line(1.0),
			b:    moved(line(1.1), [3]float64{0, 0, 1}, 0.7, [3]float64{1, 2, 3}),
			want: 0.0816497, tol: 1e-7,
		},
		{
			// A square of side 2 against one of side 2.2: each corner moves 0.1·√2 outwards,
			// so the RMSD is 0.1·√2 = 0.1414214.
			name: "scaled square",
			a:    square(1.0),
			b:    square(1.1),
			want: 0.1414214, tol: 1e-7,
		},
		{
			// Moving only the hydrogen changes nothing.
			name: "hydrogen ignored",
			a:    chiral,
			b: append(append([]chem.Atom{}, chiral[:4]...),
				chem.Atom{Element: "H", X: 3, Y: 3, Z: 3}),
			want: 0, tol: 1e-12,
		},
		{
			// The square is planar, so its mirror image is the square turned over.
			name: "mirror image of a planar set",
			a:    square(1.0),
			b:    mirrored(square(1.0)),
			want: 0, tol: 1e-9,
		},
		{
			name: "no heavy atoms",
			a:    []chem.Atom{{Element: "H"}, {Element: "H", X: 0.74}},
			b:    []chem.Atom{{Element: "H"}, {Element: "H", Y: 0.9}},
			want: 0, tol: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RMSD(tc.a, tc.b)
			if math.Abs(got-tc.want) > tc.tol {
				t.Errorf("RMSD = %.10f, want %.10f ± %g", got, tc.want, tc.tol)
			}
			if back := RMSD(tc.b, tc.a); math.Abs(back-got) > 1e-9 {
				t.Errorf("RMSD(b, a) = %.10f, RMSD(a, b) = %.10f", back, got)
			}
		})
	}
}

// TestRMSDMirror checks the reflection correction: a chiral centre and its mirror image
// are different molecules (or conformers) and must not superimpose. Without the
// correction, Kabsch would return the reflection and an RMSD of 0.
func TestRMSDMirror(t *testing.T) {
	mirror := moved(mirrored(chiral), [3]float64{0.3, 1, -1}, 0.9, [3]float64{-2, 0, 4})
	got := RMSD(chiral, mirror)
	if got < 0.3 {
		t.Fatalf("RMSD of the mirror image = %.6f; the reflection correction is missing", got)
	}
	if want := hornRMSD(t, chiral, mirror); math.Abs(got-want) > 1e-9 {
		t.Errorf("RMSD = %.10f, Horn's quaternion method gives %.10f", got, want)
	}
	// Mirroring twice is the identity.
	if back := RMSD(chiral, mirrored(mirror)); back > 1e-9 {
		t.Errorf("RMSD after mirroring back = %g, want 0", back)
	}
	// The other cases of TestRMSD agree with Horn's method too.
	b := moved(chiral, [3]float64{1, 1, 1}, 0.4, [3]float64{})
	b[1].X += 0.2
	if got, want := RMSD(chiral, b), hornRMSD(t, chiral, b); math.Abs(got-want) > 1e-9 {
		t.Errorf("displaced F: RMSD = %.10f, Horn = %.10f", got, want)
	}
}

func TestRMSDMismatch(t *testing.T) {
	tests := []struct {
		name string
		a, b []chem.Atom
	}{
		{"lengths", chiral, chiral[:4]},
		{"elements", chiral, append([]chem.Atom{{Element: "N"}}, chiral[1:]...)},
		{"NaN coordinate", chiral,
			append([]chem.Atom{{Element: "C", X: math.NaN()}}, chiral[1:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RMSD(tc.a, tc.b); !math.IsNaN(got) {
				t.Errorf("RMSD = %g, want NaN", got)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	// Conformers are C–O–C lines with half-length l; two of them are
	// |l1 − l2|·√(2/3) = |l1 − l2|·0.8165 Å apart (see the symmetric stretch above).
	conf := func(l, e float64) Conformer {
		return Conformer{Energy: e, Atoms: []chem.Atom{
			{Element: "C", X: -l}, {Element: "O"}, {Element: "C", X: l}}}
	}
	type kept struct{ l, e float64 }
	tests := []struct {
		name   string
		in     []Conformer
		window float64
		rmsd   float64
		want   []kept
	}{
		{
			// 0, 1 and 3 are within 3 kcal/mol of the lowest (3 exactly on the edge);
			// 3.5 is not. All are 0.8165 Å or more apart.
			name:   "energy window",
			in:     []Conformer{conf(1, 3.5), conf(2, 1), conf(3, 0), conf(4, 3)},
			window: 3, rmsd: 0.25,
			want: []kept{{3, 0}, {2, 1}, {4, 3}},
		},
		{
			// 0.1 Å apart in l is 0.0816 Å RMSD < 0.25: the lower-energy one stays,
			// though it is listed second.
			name:   "duplicate keeps the lower energy",
			in:     []Conformer{conf(1.0, 0.4), conf(1.1, 0.2)},
			window: 3, rmsd: 0.25,
			want: []kept{{1.1, 0.2}},
		},
		{
			// A (l=1.0) and B (1.2) are 0.1633 Å apart, B and C (1.4) too, A and C 0.3266.
			// B goes as a copy of A; C is compared with the kept A only and stays.
			name:   "chain of near neighbours",
			in:     []Conformer{conf(1.0, 0), conf(1.2, 0.1), conf(1.4, 0.2)},
			window: 3, rmsd: 0.25,
			want: []kept{{1.0, 0}, {1.4, 0.2}},
		},
		{
			// With a threshold of 0.5 the same A and C (0.3266 Å) merge too.
			name:   "looser threshold",
			in:     []Conformer{conf(1.0, 0), conf(1.2, 0.1), conf(1.4, 0.2)},
			window: 3, rmsd: 0.5,
			want: []kept{{1.0, 0}},
		},
		{
			// 0.3 Å in l is 0.2449 Å, just under 0.25; 0.31 is 0.2531, just over.
			name:   "threshold edge",
			in:     []Conformer{conf(1.0, 0), conf(1.3, 1), conf(2.0, 0.5), conf(2.31, 2)},
			window: 3, rmsd: 0.25,
			want: []kept{{1.0, 0}, {2.0, 0.5}, {2.31, 2}},
		},
		{
			// A NaN energy cannot be placed in the window; equal energies keep input order.
			name:   "NaN dropped, ties stable",
			in:     []Conformer{conf(1, math.NaN()), conf(2, 0.5), conf(3, 0.5)},
			window: 3, rmsd: 0.25,
			want: []kept{{2, 0.5}, {3, 0.5}},
		},
		{
			// A negative window still keeps the lowest conformer.
			name:   "negative window",
			in:     []Conformer{conf(1, 2), conf(2, 1)},
			window: -1, rmsd: 0.25,
			want: []kept{{2, 1}},
		},
		{
			name: "empty", window: 3, rmsd: 0.25,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Prune(tc.in, tc.window, tc.rmsd)
			if len(got) != len(tc.want) {
				t.Fatalf("kept %d conformers, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				l := got[i].Atoms[2].X
				if l != w.l || got[i].Energy != w.e {
					t.Errorf("conformer %d: l=%g E=%g, want l=%g E=%g", i, l,
						got[i].Energy, w.l, w.e)
				}
			}
		})
	}
}
