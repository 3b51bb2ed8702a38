package cli

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"qmd/ctl/api"
	"qmd/ctl/plot"
)

// writeSpectrum draws a result's predicted 1H and 13C stick spectra into path: one line
// per equivalence group, as tall as the group has atoms, labelled with its atoms.
func writeSpectrum(path, format, name string, r api.Result) error {
	h, c := spectrumLines(r)
	if len(h) == 0 && len(c) == 0 {
		return fmt.Errorf("result: --plot: job %s has no 1H or 13C shifts to draw", r.ID)
	}
	title := fmt.Sprintf("job %s", r.ID)
	if name != "" {
		title = fmt.Sprintf("%s (job %s)", name, r.ID)
	}
	if r.Reference.Level != "" {
		title += ", " + r.Reference.Level
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("result: --plot: %w", err)
	}
	err = plot.Spectrum(f, format, title, h, c)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("result: --plot %s: %w", path, err)
	}
	return nil
}

// spectrumLines groups a result's atoms by element and equivalence group.
func spectrumLines(r api.Result) (h, c []plot.Line) {
	type key struct {
		elem  string
		group int
	}
	atoms := map[key][]int{}
	shift := map[key]float64{}
	var order []key
	for _, s := range r.Shifts {
		if s.Shift == nil || (s.Element != "H" && s.Element != "C") {
			continue
		}
		k := key{s.Element, s.Group}
		if _, ok := atoms[k]; !ok {
			order = append(order, k)
			shift[k] = *s.Shift
		}
		atoms[k] = append(atoms[k], s.Atom)
	}
	for _, k := range order {
		l := plot.Line{Shift: shift[k], Intensity: float64(len(atoms[k])),
			Label: k.elem + atomList(atoms[k])}
		if k.elem == "H" {
			h = append(h, l)
		} else {
			c = append(c, l)
		}
	}
	return h, c
}

// atomList writes atom numbers compactly: 4-6,9.
func atomList(atoms []int) string {
	a := slices.Clone(atoms)
	slices.Sort(a)
	var parts []string
	for i := 0; i < len(a); {
		j := i
		for j+1 < len(a) && a[j+1] == a[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, strconv.Itoa(a[i])+"-"+strconv.Itoa(a[j]))
		} else {
			parts = append(parts, strconv.Itoa(a[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
