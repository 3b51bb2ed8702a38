package conformer

import (
	"errors"
	"fmt"
	"math"
)

// BoltzmannHartreePerKelvin is the Boltzmann constant in hartree per kelvin (CODATA 2018:
// 1.380649e-23 J/K divided by 4.3597447222071e-18 J/Eh).
const BoltzmannHartreePerKelvin = 3.166811563e-6

// Weights returns Boltzmann populations for conformers with the given DFT energies in
// hartree at temperature temperatureK in kelvin: w_i ∝ exp(−(E_i − E_min)/(k_B·T)),
// normalised to sum to 1. The energies are taken relative to the lowest so that the
// exponentials stay in range for total energies of hundreds of hartree. The energies
// should be electronic energies of optimised geometries at one level of theory; no
// zero-point, thermal or entropy terms are added, and symmetry-related copies of one
// conformer are counted by being passed once each (see Prune).
func Weights(energiesHartree []float64, temperatureK float64) ([]float64, error) {
	if len(energiesHartree) == 0 {
		return nil, errors.New("Boltzmann weights: no energies")
	}
	if !(temperatureK > 0) || math.IsInf(temperatureK, 1) {
		return nil, fmt.Errorf("Boltzmann weights: temperature %g K is not a positive "+
			"finite number", temperatureK)
	}
	low := math.Inf(1)
	for i, e := range energiesHartree {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return nil, fmt.Errorf("Boltzmann weights: energy %d is %g, not a finite number",
				i+1, e)
		}
		low = min(low, e)
	}
	kT := BoltzmannHartreePerKelvin * temperatureK
	w := make([]float64, len(energiesHartree))
	sum := 0.0
	for i, e := range energiesHartree {
		w[i] = math.Exp(-(e - low) / kT)
		sum += w[i]
	}
	// sum ≥ 1, because the lowest conformer contributes exp(0).
	for i := range w {
		w[i] /= sum
	}
	return w, nil
}

// Average returns the weighted mean of per-conformer shielding vectors: element k is
// Σ_i w_i·σ_i[k] / Σ_i w_i. Dividing by the sum lets a caller pass weights that do not
// add up to exactly 1. It is an error when the counts differ, the vectors differ in
// length, a weight is negative or not finite, all weights are zero, or a shielding is
// not finite (a value that failed to parse must not vanish into an average).
func Average(shieldings [][]float64, weights []float64) ([]float64, error) {
	if len(shieldings) == 0 {
		return nil, errors.New("averaging shieldings: no conformers")
	}
	if len(weights) != len(shieldings) {
		return nil, fmt.Errorf("averaging shieldings: %d weights for %d conformers",
			len(weights), len(shieldings))
	}
	n := len(shieldings[0])
	total := 0.0
	for i, w := range weights {
		if !(w >= 0) || math.IsInf(w, 1) {
			return nil, fmt.Errorf("averaging shieldings: weight %d is %g; weights must be "+
				"finite and not negative", i+1, w)
		}
		if len(shieldings[i]) != n {
			return nil, fmt.Errorf("averaging shieldings: conformer %d has %d values, "+
				"conformer 1 has %d", i+1, len(shieldings[i]), n)
		}
		total += w
	}
	if total == 0 {
		return nil, errors.New("averaging shieldings: all weights are zero")
	}
	avg := make([]float64, n)
	for i, s := range shieldings {
		for k, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("averaging shieldings: conformer %d, atom %d has "+
					"shielding %g", i+1, k+1, v)
			}
			avg[k] += weights[i] * v
		}
	}
	for k := range avg {
		avg[k] /= total
	}
	return avg, nil
}
