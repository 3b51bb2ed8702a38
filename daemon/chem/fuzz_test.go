package chem

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to every reader. Uploads are untrusted, so Parse must
// never panic, must report failures only as *InputError, and must return bonds that the
// graph code can index. The graph functions and Validate run on every result, since the
// daemon calls them on whatever Parse accepts.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, uint8(0))
			f.Add(b, uint8(1))
		}
	}
	f.Add([]byte("2\nt\nH 0 0 0\nH 0.74 0 0\n2\n\n1 0 0 0\nh 1 1 1\n"), uint8(0))
	f.Add([]byte("t\n\n\n  0  0  0     0  0            999 V3000\nM  V30 BEGIN CTAB\n"+
		"M  V30 COUNTS 1 0 0 0 0\nM  V30 BEGIN ATOM\nM  V30 1 C 0 0 0 0 CHG=1 -\n"+
		"M  V30 MASS=13\nM  V30 END ATOM\nM  V30 END CTAB\nM  END\n$$$$\n"), uint8(2))
	formats := []string{"xyz", "mol", "sdf"}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		format := formats[int(which)%len(formats)]
		_, _ = DetectFormat("upload", data)
		_ = SplitSDF(data)
		mols, err := Parse(format, data)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v is %T, not *InputError", err, err)
			}
			return
		}
		for _, m := range mols {
			for _, b := range m.Bonds {
				if b[0] < 0 || b[0] >= b[1] || b[1] >= len(m.Atoms) {
					t.Fatalf("bad bond %v with %d atoms", b, len(m.Atoms))
				}
			}
			if len(m.Atoms) > 2*MaxAtoms {
				continue
			}
			if g := EquivalenceGroups(m.Atoms, m.Bonds); len(g) != len(m.Atoms) {
				t.Fatalf("%d groups for %d atoms", len(g), len(m.Atoms))
			}
			_ = BondedHeavy(m.Atoms, m.Bonds)
			_ = Needs3D(m)
			_ = Validate(m, 0, 1)
		}
	})
}
