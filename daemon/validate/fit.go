package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"

	"qmd/daemon/shifts"
)

// excludedFromFit says which sites a fit leaves out, and why, in every fit's provenance.
const excludedFromFit = "exchangeable protons (OH, NH: they move with concentration and " +
	"water) and carbons bearing chlorine (B3LYP/6-31G* misses them by 14-25 ppm); " +
	"training molecules that are also test molecules"

// site is one compared site: computed shielding against measured shift.
type site struct {
	sigma, exp float64
}

// Fit fits δ = slope·σ + intercept per nucleus by ordinary least squares over the sites of
// the training reports, and measures the factors on the test reports, whose molecules are
// removed from the training data (matched by canonical SMILES, or by name when Open Babel
// gave none) so that the test error is an error on molecules the fit never saw. All
// reports must share preset and solvent. now dates the fit.
func Fit(train, test []*Report, now time.Time) ([]shifts.Fitted, error) {
	if len(train) == 0 {
		return nil, errors.New("fit: no training report")
	}
	preset, solvent := train[0].Preset, train[0].Solvent
	for _, r := range slices.Concat(train, test) {
		if r.Preset != preset || r.Solvent != solvent {
			return nil, fmt.Errorf("fit: report %s is %s/%s, the first training report "+
				"%s/%s; fit one level and solvent at a time", r.Set, r.Preset, r.Solvent,
				preset, solvent)
		}
	}
	testIDs := map[string]bool{}
	for _, r := range test {
		for _, m := range r.Molecules {
			testIDs[identity(m)] = true
		}
	}

	var out []shifts.Fitted
	for _, nuc := range []string{NucleusH, NucleusC} {
		trainSites, trainMols := sitesOf(train, nuc, func(m MoleculeResult) bool {
			return !testIDs[identity(m)]
		})
		if len(trainSites) < 3 {
			return nil, fmt.Errorf("fit: %d %s training sites; at least 3 are needed",
				len(trainSites), nuc)
		}
		x := make([]float64, len(trainSites))
		y := make([]float64, len(trainSites))
		for i, s := range trainSites {
			x[i], y[i] = s.sigma, s.exp
		}
		if _, variance := stat.MeanVariance(x, nil); !(variance > 0) || math.IsInf(variance, 0) {
			return nil, fmt.Errorf("fit: the %d %s training shieldings do not spread "+
				"(variance %v); no line can be fitted", len(x), nuc, variance)
		}
		intercept, slope := stat.LinearRegression(x, y, nil, false)
		if !(slope >= -1.5 && slope <= -0.5) || math.IsNaN(intercept) || math.IsInf(intercept, 0) {
			return nil, fmt.Errorf("fit: %s slope %v, intercept %v: shifts should fall about "+
				"one ppm per ppm of shielding; check the reports", nuc, slope, intercept)
		}
		f := shifts.Fitted{Preset: preset, Solvent: solvent, Nucleus: nuc, Slope: slope,
			Intercept: intercept, N: len(trainSites),
			R2:          stat.RSquared(x, y, nil, intercept, slope),
			TrainingSet: setNames(train), Excluded: excludedFromFit, Molecules: trainMols,
			Level: train[0].Level, Software: train[0].Software,
			Date: now.UTC().Format("2006-01-02")}
		f.MAE, f.RMSE = residuals(trainSites, slope, intercept)
		if len(test) > 0 {
			testSites, testMols := sitesOf(test, nuc, func(MoleculeResult) bool { return true })
			f.TestSet, f.TestMolecules, f.TestN = setNames(test), testMols, len(testSites)
			if len(testSites) > 0 {
				f.TestMAE, f.TestRMSE = residuals(testSites, slope, intercept)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// identity is how molecules of different sets are recognised as the same compound.
func identity(m MoleculeResult) string {
	if m.Canonical != "" {
		return "smiles:" + m.Canonical
	}
	return "name:" + strings.ToLower(m.Name)
}

// sitesOf collects the ordinary sites (no exchangeable H, no C–Cl) of one nucleus from
// the molecules keep accepts, and the names of the molecules that gave any.
func sitesOf(reports []*Report, nucleus string, keep func(MoleculeResult) bool) ([]site,
	[]string) {
	var sites []site
	var names []string
	taken := map[string]bool{}
	for _, r := range reports {
		for _, m := range r.Molecules {
			// A compound in two reports (or twice in one) counts once.
			if !keep(m) || len(m.Groups) == 0 || taken[identity(m)] {
				continue
			}
			taken[identity(m)] = true
			n := len(sites)
			for _, g := range m.Groups {
				if g.Nucleus != nucleus || g.Class != ClassNormal {
					continue
				}
				for i := range g.Sigma {
					sites = append(sites, site{g.Sigma[i], g.Experimental[i]})
				}
			}
			if len(sites) > n && !slices.Contains(names, m.Name) {
				names = append(names, m.Name)
			}
		}
	}
	return sites, names
}

// residuals returns the mean absolute and root-mean-square error of the factors.
func residuals(sites []site, slope, intercept float64) (mae, rmse float64) {
	for _, s := range sites {
		d := slope*s.sigma + intercept - s.exp
		mae += math.Abs(d)
		rmse += d * d
	}
	n := float64(len(sites))
	return mae / n, math.Sqrt(rmse / n)
}

func setNames(rs []*Report) string {
	var names []string
	for _, r := range rs {
		if !slices.Contains(names, r.Set) {
			names = append(names, r.Set)
		}
	}
	return strings.Join(names, ", ")
}

// WriteScaling writes fitted factors as a scaling file (shifts.ScalingFile).
func WriteScaling(path string, fitted []shifts.Fitted) error {
	file := shifts.ScalingFile{Comment: "written by qmd fit-scaling", Factors: fitted}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write scaling file: %w", err)
	}
	return nil
}
