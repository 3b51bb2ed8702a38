package conformer

import (
	"math"
	"strings"
	"testing"
)

func TestWeights(t *testing.T) {
	tests := []struct {
		name     string
		energies []float64 // hartree
		temp     float64   // K
		want     []float64
	}{
		{
			// Two conformers 1 kcal/mol (1/627.5095 = 0.0015936 Eh) apart at 298.15 K:
			// k_B·T = 3.166811563e-6 Eh/K × 298.15 K = 9.4418487e-4 Eh,
			// ΔE/k_B·T = 0.0015936 / 9.4418487e-4 = 1.6878051, e^−1.6878051 = 0.1849250,
			// w1 = 1/(1 + 0.1849250) = 0.8439353, w2 = 0.1849250/1.1849250 = 0.1560647.
			// In kcal/mol: 0.0019872043 × 298.15 = 0.5924850, e^(−1/0.5924850) = 0.1849247.
			name:     "1 kcal/mol apart at 298.15 K",
			energies: []float64{-232.1234567, -232.1234567 + 0.0015936},
			temp:     298.15,
			want:     []float64{0.8439353, 0.1560647},
		},
		{
			// Order does not matter: the same pair listed high first.
			name:     "higher energy first",
			energies: []float64{0.0015936, 0},
			temp:     298.15,
			want:     []float64{0.1560647, 0.8439353},
		},
		{
			// exp(0) for each, divided by 3.
			name:     "equal energies",
			energies: []float64{-500.5, -500.5, -500.5},
			temp:     298.15,
			want:     []float64{1.0 / 3, 1.0 / 3, 1.0 / 3},
		},
		{
			// k_B·T at 300 K = 9.5004347e-4 Eh; 0.001 Eh → x = 1.0525834,
			// e^−x = 0.3490349; 0.002 Eh → e^−2x = 0.3490349² = 0.1218253;
			// sum = 1 + 0.3490349 + 0.1218253 = 1.4708602;
			// w = 1/1.4708602, 0.3490349/1.4708602, 0.1218253/1.4708602
			//   = 0.6798743, 0.2372998, 0.0828259.
			name:     "three conformers at 300 K",
			energies: []float64{-40.002, -40.001, -40.000},
			temp:     300,
			want:     []float64{0.6798743, 0.2372998, 0.0828259},
		},
		{
			// One hartree is 1059 k_B·T at 298.15 K: e^−1059 underflows to 0, which must
			// give a clean 1 and 0, not NaN.
			name:     "far apart",
			energies: []float64{-1, 0},
			temp:     298.15,
			want:     []float64{1, 0},
		},
		{
			name:     "single conformer",
			energies: []float64{-76.4},
			temp:     298.15,
			want:     []float64{1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Weights(tc.energies, tc.temp)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d weights, want %d", len(got), len(tc.want))
			}
			sum := 0.0
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > 5e-7 {
					t.Errorf("w[%d] = %.7f, want %.7f", i, got[i], tc.want[i])
				}
				sum += got[i]
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Errorf("weights sum to %.15f", sum)
			}
		})
	}
}

func TestWeightsErrors(t *testing.T) {
	tests := []struct {
		name     string
		energies []float64
		temp     float64
		want     string
	}{
		{"empty", nil, 298.15, "no energies"},
		{"zero temperature", []float64{0, 1e-3}, 0, "temperature 0 K"},
		{"negative temperature", []float64{0}, -10, "temperature -10 K"},
		{"NaN temperature", []float64{0}, math.NaN(), "temperature NaN K"},
		{"infinite temperature", []float64{0}, math.Inf(1), "temperature +Inf K"},
		{"NaN energy", []float64{-1, math.NaN()}, 298.15, "energy 2 is NaN"},
		{"infinite energy", []float64{math.Inf(-1)}, 298.15, "energy 1 is -Inf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Weights(tc.energies, tc.temp)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAverage(t *testing.T) {
	tests := []struct {
		name       string
		shieldings [][]float64
		weights    []float64
		want       []float64
	}{
		{
			// 0.75×30 + 0.25×32 = 22.5 + 8 = 30.5; 0.75×150 + 0.25×140 = 112.5 + 35 = 147.5.
			name:       "quarter weights",
			shieldings: [][]float64{{30, 150}, {32, 140}},
			weights:    []float64{0.75, 0.25},
			want:       []float64{30.5, 147.5},
		},
		{
			// The same with weights 3:1 that do not sum to 1: (3×30 + 32)/4 = 122/4 = 30.5,
			// (3×150 + 140)/4 = 590/4 = 147.5.
			name:       "unnormalised weights",
			shieldings: [][]float64{{30, 150}, {32, 140}},
			weights:    []float64{3, 1},
			want:       []float64{30.5, 147.5},
		},
		{
			// The 1 kcal/mol weights of TestWeights: 31×0.8439353 + 29×0.1560647 =
			// 26.1619943 + 4.5258763 = 30.6878706; 150×0.8439353 + 140×0.1560647 =
			// 126.5902950 + 21.8490580 = 148.4393530.
			name:       "Boltzmann weights",
			shieldings: [][]float64{{31, 150}, {29, 140}},
			weights:    []float64{0.8439353, 0.1560647},
			want:       []float64{30.6878706, 148.4393530},
		},
		{
			// A zero weight drops a conformer: the result is the other one's values.
			name:       "zero weight",
			shieldings: [][]float64{{1, 2, 3}, {4, 5, 6}},
			weights:    []float64{0, 1},
			want:       []float64{4, 5, 6},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Average(tc.shieldings, tc.weights)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d values, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > 1e-6 {
					t.Errorf("σ[%d] = %.7f, want %.7f", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestAverageErrors(t *testing.T) {
	tests := []struct {
		name       string
		shieldings [][]float64
		weights    []float64
		want       string
	}{
		{"no conformers", nil, nil, "no conformers"},
		{"weight count", [][]float64{{1}, {2}}, []float64{1}, "1 weights for 2 conformers"},
		{"ragged", [][]float64{{1, 2}, {3}}, []float64{0.5, 0.5}, "conformer 2 has 1 values"},
		{"negative weight", [][]float64{{1}, {2}}, []float64{1.5, -0.5}, "weight 2 is -0.5"},
		{"NaN weight", [][]float64{{1}}, []float64{math.NaN()}, "weight 1 is NaN"},
		{"all zero", [][]float64{{1}, {2}}, []float64{0, 0}, "all weights are zero"},
		{"NaN shielding", [][]float64{{1, math.NaN()}}, []float64{1}, "atom 2 has shielding NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Average(tc.shieldings, tc.weights)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
