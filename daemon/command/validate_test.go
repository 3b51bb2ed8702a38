package command

import (
	"slices"
	"testing"

	"qmd/daemon/validate"
)

func TestSplitNames(t *testing.T) {
	set := &validate.Set{Molecules: []validate.Molecule{{Name: "N,N-dimethylformamide"},
		{Name: "ethanol"}, {Name: "diethyl ether"}}}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"ethanol", []string{"ethanol"}},
		{"ethanol,N,N-dimethylformamide,diethyl ether",
			[]string{"ethanol", "N,N-dimethylformamide", "diethyl ether"}},
		{"N,N-dimethylformamide", []string{"N,N-dimethylformamide"}},
		{"ethanol,nope", []string{"ethanol", "nope"}},
	} {
		if got := splitNames(tc.in, set); !slices.Equal(got, tc.want) {
			t.Errorf("splitNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
