package shifts

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Fitted is one set of linear-scaling factors fitted by qmd fit-scaling from qmd's own
// shieldings against experiment, with what a reader needs to judge them.
type Fitted struct {
	Preset  string `json:"preset"`
	Solvent string `json:"solvent"`
	Nucleus string `json:"nucleus"` // "1H" or "13C"
	// δ = Slope·σ + Intercept.
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	// Training statistics: number of sites, coefficient of determination, mean absolute
	// and root-mean-square error of the fit itself (ppm).
	N    int     `json:"n"`
	R2   float64 `json:"r2"`
	MAE  float64 `json:"mae"`
	RMSE float64 `json:"rmse"`
	// Error on molecules kept out of the fit; TestN is 0 when none were.
	TestN    int     `json:"test_n"`
	TestMAE  float64 `json:"test_mae,omitempty"`
	TestRMSE float64 `json:"test_rmse,omitempty"`
	// Provenance.
	TrainingSet   string   `json:"training_set"`
	TestSet       string   `json:"test_set,omitempty"`
	Excluded      string   `json:"excluded"`
	Molecules     []string `json:"molecules"`
	TestMolecules []string `json:"test_molecules,omitempty"`
	Level         string   `json:"level"`
	Software      string   `json:"software,omitempty"`
	Date          string   `json:"date"`
}

// ScalingFile is the file qmd fit-scaling writes and the daemon reads (scaling_file).
type ScalingFile struct {
	Comment string   `json:"comment,omitempty"`
	Factors []Fitted `json:"factors"`
}

// shippedScaling holds the factors fitted for this release (docs/shifts.md says how).
//
//go:embed scaling.json
var shippedScaling []byte

func init() {
	f, err := parseScaling(shippedScaling)
	if err != nil {
		panic("shifts: shipped scaling.json: " + err.Error())
	}
	for _, r := range f {
		Register(r)
	}
}

// LoadScaling reads a scaling file and registers its factors, replacing shipped ones for
// the same preset and solvent. It registers nothing when the file has an error.
func LoadScaling(path string) (int, error) {
	refs, err := ReadScaling(path)
	if err != nil {
		return 0, err
	}
	for _, r := range refs {
		Register(r)
	}
	return len(refs), nil
}

// ReadScaling reads and checks a scaling file without registering it (qmd check).
func ReadScaling(path string) ([]Reference, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scaling file: %w", err)
	}
	refs, err := parseScaling(data)
	if err != nil {
		return nil, fmt.Errorf("scaling file %s: %w", path, err)
	}
	return refs, nil
}

// Plausible slopes: δ falls about one ppm per ppm of shielding. A fit far from that (or
// of the wrong sign) comes from broken data, and would turn every shift into nonsense.
const minSlope, maxSlope = -1.5, -0.5

// parseScaling turns a scaling file into references, one per preset and solvent, each
// needing both nuclei: a reference with 1H factors only would leave 13C without shifts.
func parseScaling(data []byte) ([]Reference, error) {
	var f ScalingFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, err
	}
	if len(f.Factors) == 0 && len(data) > 0 && !strings.Contains(string(data), `"factors"`) {
		return nil, errors.New(`no "factors" list: not a scaling file`)
	}
	type pair struct{ h, c *Fitted }
	byKey := map[key]*pair{}
	var order []key
	var errs []error
	for i := range f.Factors {
		ft := &f.Factors[i]
		k := keyOf(ft.Preset, ft.Solvent, MethodLinear)
		if k.preset != PresetDraft && k.preset != PresetProduction {
			errs = append(errs, fmt.Errorf("factors %d: unknown preset %q", i+1, ft.Preset))
			continue
		}
		if k.solvent != SolventGas && k.solvent != SolventCHCl3 && k.solvent != SolventDMSO {
			errs = append(errs, fmt.Errorf("factors %d: unknown solvent %q (want gas, chcl3 "+
				"or dmso)", i+1, ft.Solvent))
			continue
		}
		if !(ft.Slope >= minSlope && ft.Slope <= maxSlope) || math.IsNaN(ft.Intercept) ||
			math.IsInf(ft.Intercept, 0) {
			errs = append(errs, fmt.Errorf("factors %d (%s %s/%s): slope %v, intercept %v: "+
				"want a finite intercept and a slope between %v and %v", i+1, ft.Nucleus,
				ft.Preset, ft.Solvent, ft.Slope, ft.Intercept, minSlope, maxSlope))
			continue
		}
		p := byKey[k]
		if p == nil {
			p = &pair{}
			byKey[k] = p
			order = append(order, k)
		}
		switch ft.Nucleus {
		case "1H", "13C":
			slot := &p.h
			if ft.Nucleus == "13C" {
				slot = &p.c
			}
			if *slot != nil {
				errs = append(errs, fmt.Errorf("factors %d: a second %s entry for %s/%s",
					i+1, ft.Nucleus, k.preset, k.solvent))
				continue
			}
			*slot = ft
		default:
			errs = append(errs, fmt.Errorf("factors %d: nucleus %q (want 1H or 13C)", i+1,
				ft.Nucleus))
		}
	}
	var refs []Reference
	for _, k := range order {
		p := byKey[k]
		if p.h == nil || p.c == nil {
			errs = append(errs, fmt.Errorf("%s/%s: factors for both 1H and 13C are needed",
				k.preset, k.solvent))
			continue
		}
		refs = append(refs, Reference{Preset: k.preset, Solvent: k.solvent,
			Method: MethodLinear, SlopeH: p.h.Slope, InterceptH: p.h.Intercept,
			SlopeC: p.c.Slope, InterceptC: p.c.Intercept, Level: p.h.Level,
			Source: p.h.provenance() + "; " + p.c.provenance()})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return refs, nil
}

// provenance is the one-line account of a fit that every result using it carries.
func (f *Fitted) provenance() string {
	s := fmt.Sprintf("%s: fitted by qmd fit-scaling on %s (%d sites of %d molecules, "+
		"R² %.4f, MAE %.3f ppm", f.Nucleus, f.TrainingSet, f.N, len(f.Molecules), f.R2, f.MAE)
	if f.TestN > 0 {
		s += fmt.Sprintf("; test MAE %.3f ppm on %d sites of %d other molecules", f.TestMAE,
			f.TestN, len(f.TestMolecules))
	}
	return s + ", " + f.Date + ")"
}
