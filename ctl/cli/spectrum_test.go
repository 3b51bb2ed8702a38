package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qmd/ctl/api"
)

func TestAtomList(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{[]int{5}, "5"},
		{[]int{6, 4, 5}, "4-6"},
		{[]int{4, 5, 6, 9}, "4-6,9"},
		{[]int{1, 3, 5}, "1,3,5"},
	} {
		if got := atomList(tc.in); got != tc.want {
			t.Errorf("atomList(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSpectrumLines checks ethanol's lines: one per group, as tall as the group has atoms.
func TestSpectrumLines(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := api.Result{ID: "abc", Shifts: []api.Shift{
		{Atom: 1, Element: "C", Shift: f(18.4), Group: 1},
		{Atom: 2, Element: "C", Shift: f(58.3), Group: 2},
		{Atom: 3, Element: "O", Group: 3},
		{Atom: 4, Element: "H", Shift: f(1.18), Group: 4},
		{Atom: 5, Element: "H", Shift: f(1.18), Group: 4},
		{Atom: 6, Element: "H", Shift: f(1.18), Group: 4},
		{Atom: 7, Element: "H", Shift: f(3.65), Group: 5},
		{Atom: 8, Element: "H", Shift: f(3.65), Group: 5},
		{Atom: 9, Element: "H", Shift: f(0.9), Group: 6},
	}}
	h, c := spectrumLines(r)
	if len(h) != 3 || len(c) != 2 {
		t.Fatalf("%d 1H and %d 13C lines, want 3 and 2", len(h), len(c))
	}
	if h[0].Label != "H4-6" || h[0].Intensity != 3 || h[0].Shift != 1.18 ||
		h[1].Label != "H7-8" || h[1].Intensity != 2 || c[1].Label != "C2" {
		t.Errorf("lines %+v %+v", h, c)
	}
	dir := t.TempDir()
	for _, name := range []string{"e.png", "e.svg"} {
		p := filepath.Join(dir, name)
		format := strings.TrimPrefix(filepath.Ext(name), ".")
		if err := writeSpectrum(p, format, "ethanol", r); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(p); err != nil || st.Size() < 1000 {
			t.Errorf("%s: %v, %v", name, st, err)
		}
	}
	err := writeSpectrum(filepath.Join(dir, "none.png"), "png", "", api.Result{ID: "x"})
	if err == nil {
		t.Error("a result without shifts was drawn")
	}
}
