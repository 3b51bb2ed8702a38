package shifts

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestReadScalingRejects(t *testing.T) {
	entry := func(preset, solvent, nucleus string, slope float64) string {
		return `{"preset":"` + preset + `","solvent":"` + solvent + `","nucleus":"` + nucleus +
			`","slope":` + strings.TrimSpace(fmtFloat(slope)) + `,"intercept":30,"n":5,` +
			`"r2":0.99,"mae":0.1,"rmse":0.1,"test_n":0,"training_set":"t","excluded":"",` +
			`"molecules":["a"],"level":"l","date":"2026-12-04"}`
	}
	good := entry("draft", "chcl3", "1H", -0.95) + "," + entry("draft", "chcl3", "13C", -0.97)
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, want string }{
		{"empty", "", "empty"},
		{"not a scaling file", `{}`, "not a scaling file"},
		{"unknown key", `{"factors":[],"colour":1}`, "unknown field"},
		{"solvent", `{"factors":[` + entry("draft", "water", "1H", -0.95) + `]}`,
			`unknown solvent "water"`},
		{"positive slope", `{"factors":[` + entry("draft", "chcl3", "1H", 0.95) + "," +
			entry("draft", "chcl3", "13C", -0.97) + `]}`, "slope 0.95"},
		{"duplicate", `{"factors":[` + good + "," + entry("draft", "chcl3", "1H", -0.9) +
			`]}`, "a second 1H entry"},
		{"one nucleus", `{"factors":[` + entry("draft", "chcl3", "1H", -0.95) + `]}`,
			"both 1H and 13C"},
		{"preset", `{"factors":[` + entry("ultra", "chcl3", "1H", -0.95) + `]}`,
			`unknown preset "ultra"`},
	} {
		p := filepath.Join(dir, "s.json")
		os.WriteFile(p, []byte(tc.body), 0o644)
		_, err := ReadScaling(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	p := filepath.Join(dir, "good.json")
	os.WriteFile(p, []byte(`{"factors":[`+good+`]}`), 0o644)
	refs, err := ReadScaling(p)
	if err != nil || len(refs) != 1 || refs[0].SlopeC != -0.97 || refs[0].InterceptH != 30 ||
		!strings.Contains(refs[0].Source, "fitted by qmd fit-scaling on t") {
		t.Errorf("good file: %+v, %v", refs, err)
	}
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
