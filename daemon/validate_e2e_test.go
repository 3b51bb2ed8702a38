package daemon_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValidateHarness runs two small molecules through qmd validate with its own qmd and
// the real NWChem, checks the report, then runs again and checks that it resumes from the
// computed results instead of computing them again.
func TestValidateHarness(t *testing.T) {
	needTools(t)
	qmd, _ := binaries(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "report")
	set, err := filepath.Abs("testdata/validate-two.json")
	if err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		cmd := exec.Command(qmd, "validate", "--set", set, "--out", out, "--slots", "2",
			"--timeout", "15m")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("qmd validate: %v\n%s", err, b)
		}
		return string(b)
	}
	first := run()
	for _, f := range []string{"validate-two.draft.chcl3.json", "validate-two.draft.chcl3.md",
		"validate-two.draft.chcl3.1H.png", "validate-two.draft.chcl3.1H.svg",
		"validate-two.draft.chcl3.13C.png", "validate-two.draft.chcl3.13C.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	var rep struct {
		Molecules []struct {
			Name   string
			State  string
			Groups []struct {
				Nucleus      string
				Class        string
				Experimental []float64
				Calculated   map[string][]float64
			}
		}
		Stats []struct {
			Method, Nucleus, Class string
			N                      int
			MAE                    float64
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "validate-two.draft.chcl3.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Molecules) != 2 {
		t.Fatalf("%d molecules in the report", len(rep.Molecules))
	}
	for _, m := range rep.Molecules {
		if m.State != "completed" || len(m.Groups) != 3 {
			t.Errorf("%s: %s with %d groups", m.Name, m.State, len(m.Groups))
		}
		for _, g := range m.Groups {
			c := g.Calculated["qmd"]
			if len(c) != 1 {
				t.Errorf("%s %s: calculated %v", m.Name, g.Nucleus, c)
				continue
			}
			// Loose physical bounds: draft B3LYP misses these by tenths of a ppm (1H)
			// and a few ppm (13C, the nitrile carbon the most); the exchangeable OH by
			// about 1 ppm.
			tol := map[string]float64{"1H": 0.6, "13C": 10}[g.Nucleus]
			if g.Class == "exchangeable" {
				tol = 2
			}
			if d := c[0] - g.Experimental[0]; d > tol || d < -tol {
				t.Errorf("%s %s: calculated %.2f, measured %.2f", m.Name, g.Nucleus, c[0],
					g.Experimental[0])
			}
		}
	}
	found := map[string]int{}
	for _, s := range rep.Stats {
		if s.Method == "qmd" {
			found[s.Nucleus+"/"+s.Class] = s.N
		}
	}
	if found["1H/"] != 2 || found["1H/exchangeable"] != 1 || found["13C/"] != 3 {
		t.Errorf("statistics per nucleus and class: %v", found)
	}
	md, _ := os.ReadFile(filepath.Join(out, "validate-two.draft.chcl3.md"))
	if !strings.Contains(string(md), "## Summary") || !strings.Contains(string(md),
		"exchangeable") || !strings.Contains(string(md), "validate-two.draft.chcl3.1H.png") {
		t.Errorf("markdown report:\n%s", md)
	}
	if strings.Count(first, "submitted") != 2 {
		t.Errorf("first run submitted:\n%s", first)
	}

	start := time.Now()
	second := run()
	if strings.Count(second, "from an earlier run") != 2 || strings.Contains(second, "submitted") {
		t.Errorf("second run did not reuse the results:\n%s", second)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("second run took %v; it should only read results", d)
	}
}
