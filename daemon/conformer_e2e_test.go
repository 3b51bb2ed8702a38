package daemon_test

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestConformerSearchEndToEnd submits ethyl methyl ether with a conformer search through
// the real Open Babel and NWChem: one parent job, one job per kept conformer, and a
// Boltzmann-averaged result whose weights add up to one. It also draws the result's
// spectrum with qmctl result --plot.
func TestConformerSearchEndToEnd(t *testing.T) {
	e := newEnv(t, "conformer_max = 2\nconformer_rmsd = 0.1\n")
	e.start()
	id := e.submit("--smiles", "CCOC", "--name", "emether", "--conformers", "search")

	var kids []jobJSON
	for _, j := range e.list() {
		if j.ID != id {
			kids = append(kids, j)
		}
	}
	if len(kids) != 2 {
		t.Fatalf("%d conformer jobs besides the parent, want 2 (conformer_max)", len(kids))
	}
	j := e.waitState(id, 15*time.Minute, "completed", "failed")
	if j.State != "completed" {
		t.Fatalf("search ended %s: %v\n%s", j.State, j.Error, e.logs())
	}
	out, errs, code := e.ctl("result", id, "--json")
	if code != 0 {
		t.Fatalf("result: %d %s", code, errs)
	}
	var res struct {
		TemperatureK float64 `json:"temperature_k"`
		Conformers   []struct {
			JobID  string   `json:"job_id"`
			State  string   `json:"state"`
			Weight *float64 `json:"weight"`
			Energy *float64 `json:"energy_hartree"`
		} `json:"conformers"`
		Shifts []struct {
			Element string   `json:"element"`
			Shift   *float64 `json:"shift"`
		} `json:"shifts"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.TemperatureK != 298.15 || len(res.Conformers) != 2 || len(res.Shifts) != 12 {
		t.Fatalf("result: T %v, %d conformers, %d atoms", res.TemperatureK,
			len(res.Conformers), len(res.Shifts))
	}
	sum := 0.0
	for _, c := range res.Conformers {
		if c.State != "completed" || c.Weight == nil || c.Energy == nil {
			t.Fatalf("conformer %+v", c)
		}
		sum += *c.Weight
	}
	if math.Abs(sum-1) > 2e-4 {
		t.Errorf("weights add up to %v", sum)
	}
	for _, s := range res.Shifts {
		if (s.Element == "H" || s.Element == "C") && s.Shift == nil {
			t.Errorf("an %s atom has no shift", s.Element)
		}
	}

	plot := filepath.Join(t.TempDir(), "spectrum.png")
	if _, errs, code := e.ctl("result", id, "--plot", plot); code != 0 {
		t.Fatalf("result --plot: %d %s", code, errs)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Errorf("spectrum PNG: %v %v", err, img)
	}
}
