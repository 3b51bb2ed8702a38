package validate

import (
	"fmt"
	"os"

	"qmd/ctl/plot"
)

var seriesOf = map[string]string{
	ClassNormal: "sites", ClassExchangeable: "exchangeable H (OH, NH)",
	ClassCarbonCl: "C bearing Cl",
}

// writePlots draws calculated against experimental shifts, one plot per nucleus, as PNG
// and SVG, with qmd's own shifts (the numbers a chemist gets).
func (r *Report) writePlots(base string) ([]string, error) {
	var written []string
	for _, nuc := range []string{NucleusH, NucleusC} {
		var pts []plot.Point
		for _, m := range r.Molecules {
			for _, g := range m.Groups {
				calc, ok := g.Calculated[MethodQMD]
				if !ok || g.Nucleus != nuc {
					continue
				}
				for i := range calc {
					pts = append(pts, plot.Point{Experimental: g.Experimental[i],
						Calculated: calc[i], Label: m.Name + " " + g.Label,
						Series: seriesOf[g.Class]})
				}
			}
		}
		if len(pts) == 0 {
			continue
		}
		note := ""
		if s, ok := r.Stat(MethodQMD, nuc, ClassNormal); ok {
			note = fmt.Sprintf("MAE %.3f ppm, RMSE %.3f ppm, n = %d", s.MAE, s.RMSE, s.N)
			if len(pts) > s.N {
				note += " (exchangeable H and C–Cl apart)"
			}
		}
		title := fmt.Sprintf("%s, %s in %s: %s", r.Set, r.Preset, r.Solvent, nuc)
		for _, format := range []string{"png", "svg"} {
			path := fmt.Sprintf("%s.%s.%s", base, nuc, format)
			f, err := os.Create(path)
			if err != nil {
				return written, fmt.Errorf("write plot: %w", err)
			}
			err = plot.Scatter(f, format, title, note, pts)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return written, fmt.Errorf("plot %s: %w", path, err)
			}
			written = append(written, path)
		}
	}
	return written, nil
}
