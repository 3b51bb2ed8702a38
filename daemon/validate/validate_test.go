package validate

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qmd/ctl/api"
	"qmd/daemon/shifts"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func ip(i int) *int { return &i }

// ethanolResult is a draft result for CCO in Open Babel's order: C0 C1 O2, then the
// three H on C0, two on C1, one on O2. Shieldings are made up but plausible.
func ethanolResult() (api.Result, Topology) {
	res := api.Result{Shifts: []api.Shift{
		{Atom: 1, Element: "C", Shielding: 170.0},
		{Atom: 2, Element: "C", Shielding: 132.0},
		{Atom: 3, Element: "O", Shielding: 300.0},
		{Atom: 4, Element: "H", Shielding: 31.0, BondedTo: ip(1)},
		{Atom: 5, Element: "H", Shielding: 31.2, BondedTo: ip(1)},
		{Atom: 6, Element: "H", Shielding: 30.8, BondedTo: ip(1)},
		{Atom: 7, Element: "H", Shielding: 28.3, BondedTo: ip(2)},
		{Atom: 8, Element: "H", Shielding: 28.5, BondedTo: ip(2)},
		{Atom: 9, Element: "H", Shielding: 31.5, BondedTo: ip(3)},
	}}
	topo := Topology{Elements: []string{"C", "C", "O", "H", "H", "H", "H", "H", "H"},
		Bonds: [][2]int{{0, 1}, {1, 2}, {0, 3}, {0, 4}, {0, 5}, {1, 6}, {1, 7}, {2, 8}}}
	return res, topo
}

func TestCompareEthanol(t *testing.T) {
	res, topo := ethanolResult()
	m := Molecule{Name: "ethanol", SMILES: "CCO", Groups: []Group{
		{Label: "CH3", Nucleus: "1H", Atoms: []int{0}, Shift: map[string]ShiftValue{"CDCl3": {1.25}}},
		{Label: "CH2", Nucleus: "1H", Atoms: []int{1}, Shift: map[string]ShiftValue{"CDCl3": {3.72}}},
		{Label: "OH", Nucleus: "1H", Atoms: []int{2}, Shift: map[string]ShiftValue{"CDCl3": {1.32}}},
		{Label: "CH3", Nucleus: "13C", Atoms: []int{0}, Shift: map[string]ShiftValue{"CDCl3": {18.41}}},
		{Label: "CH2", Nucleus: "13C", Atoms: []int{1}, Shift: map[string]ShiftValue{"DMSO-d6": {56.07}}},
	}}
	ref := shifts.Reference{Method: shifts.MethodTMS, TMSH: 32.0, TMSC: 190.0}
	got, err := Compare(m, topo, res, "chcl3", map[string]shifts.Reference{MethodQMD: ref})
	if err != nil {
		t.Fatal(err)
	}
	// The CH2 13C group has no CDCl3 value and is skipped.
	if len(got) != 4 {
		t.Fatalf("got %d groups, want 4", len(got))
	}
	// CH3 H: σ = (31.0+31.2+30.8)/3 = 31.0; δ = 32.0 − 31.0 = 1.0.
	// CH2 H: σ = 28.4; δ = 3.6. OH: σ = 31.5; δ = 0.5. CH3 C: δ = 190 − 170 = 20.
	want := []struct {
		sigma, calc float64
		class       string
	}{{31.0, 1.0, ""}, {28.4, 3.6, ""}, {31.5, 0.5, ClassExchangeable}, {170, 20, ""}}
	for i, w := range want {
		g := got[i]
		if !near(g.Sigma[0], w.sigma, 1e-9) || !near(g.Calculated[MethodQMD][0], w.calc, 1e-9) ||
			g.Class != w.class {
			t.Errorf("group %d (%s %s): σ %v δ %v class %q, want σ %v δ %v class %q", i,
				g.Nucleus, g.Label, g.Sigma, g.Calculated[MethodQMD], g.Class, w.sigma, w.calc,
				w.class)
		}
	}
	// 1H ordinary errors: 1.0−1.25 = −0.25, 3.6−3.72 = −0.12 → MAE 0.185.
	s := Summarise(Errors(got, MethodQMD, NucleusH, ClassNormal))
	if s.N != 2 || !near(s.MAE, 0.185, 1e-9) || !near(s.Max, -0.25, 1e-9) ||
		!near(s.RMSE, math.Sqrt((0.0625+0.0144)/2), 1e-9) {
		t.Errorf("1H stats %+v", s)
	}
	if s := Summarise(Errors(got, MethodQMD, NucleusH, ClassExchangeable)); s.N != 1 ||
		!near(s.MAE, 0.82, 1e-9) {
		t.Errorf("exchangeable stats %+v", s)
	}
}

// TestComparePairSorted checks a group of graph-equivalent sites with distinct lines
// (DMF's N-methyls): the most shielded site pairs with the lowest measured shift.
func TestComparePairSorted(t *testing.T) {
	// CN(C)C=O: C0 N1 C2 C3 O4, H on C0 (5-7), C2 (8-10), C3 (11).
	res := api.Result{Shifts: []api.Shift{
		{Element: "C", Shielding: 155.0}, {Element: "N", Shielding: 100},
		{Element: "C", Shielding: 160.0}, {Element: "C", Shielding: 28.0},
		{Element: "O", Shielding: -200},
		{Element: "H", Shielding: 29.3, BondedTo: ip(1)},
		{Element: "H", Shielding: 29.3, BondedTo: ip(1)},
		{Element: "H", Shielding: 29.3, BondedTo: ip(1)},
		{Element: "H", Shielding: 29.1, BondedTo: ip(3)},
		{Element: "H", Shielding: 29.1, BondedTo: ip(3)},
		{Element: "H", Shielding: 29.1, BondedTo: ip(3)},
		{Element: "H", Shielding: 24.0, BondedTo: ip(4)},
	}}
	topo := Topology{Elements: []string{"C", "N", "C", "C", "O", "H", "H", "H", "H", "H", "H", "H"}}
	m := Molecule{Name: "DMF", Groups: []Group{
		{Label: "CH3", Nucleus: "13C", Atoms: []int{0, 2},
			Shift: map[string]ShiftValue{"CDCl3": {36.5, 31.39}}},
		{Label: "CH3", Nucleus: "1H", Atoms: []int{0, 2},
			Shift: map[string]ShiftValue{"CDCl3": {2.96, 2.88}}},
	}}
	ref := shifts.Reference{Method: shifts.MethodTMS, TMSH: 32.0, TMSC: 190.0}
	got, err := Compare(m, topo, res, "chcl3", map[string]shifts.Reference{MethodQMD: ref})
	if err != nil {
		t.Fatal(err)
	}
	// 13C: σ 160 (C2) then 155 (C0) → δ 30, 35 against 31.39, 36.5.
	if c := got[0].Calculated[MethodQMD]; !near(c[0], 30, 1e-9) || !near(c[1], 35, 1e-9) ||
		got[0].Experimental[0] != 31.39 || got[0].Experimental[1] != 36.5 {
		t.Errorf("13C pair %v against %v", c, got[0].Experimental)
	}
	// 1H: σ 29.3 (on C0) then 29.1 (on C2) → δ 2.7, 2.9 against 2.88, 2.96.
	if c := got[1].Calculated[MethodQMD]; !near(c[0], 2.7, 1e-9) || !near(c[1], 2.9, 1e-9) {
		t.Errorf("1H pair %v", c)
	}
}

func TestCompareRejectsWrongAtoms(t *testing.T) {
	res, topo := ethanolResult()
	for _, tc := range []struct {
		g    Group
		want string
	}{
		{Group{Label: "x", Nucleus: "13C", Atoms: []int{2}}, "is O, not carbon"},
		{Group{Label: "x", Nucleus: "13C", Atoms: []int{5}}, "3 heavy atoms"},
		{Group{Label: "x", Nucleus: "1H", Atoms: []int{7}}, "3 heavy atoms"},
	} {
		tc.g.Shift = map[string]ShiftValue{"CDCl3": {1}}
		m := Molecule{Name: "ethanol", Groups: []Group{tc.g}}
		_, err := Compare(m, topo, res, "chcl3", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("group %+v: error %v, want %q", tc.g, err, tc.want)
		}
	}
	// A carbon bearing chlorine is classed apart.
	cl := api.Result{Shifts: []api.Shift{{Element: "Cl"}, {Element: "C", Shielding: 88},
		{Element: "Cl"}, {Element: "Cl"}, {Element: "H", Shielding: 24.6, BondedTo: ip(2)}}}
	topo2 := Topology{Elements: []string{"Cl", "C", "Cl", "Cl", "H"},
		Bonds: [][2]int{{0, 1}, {1, 2}, {1, 3}, {1, 4}}}
	m := Molecule{Name: "chloroform", Groups: []Group{{Label: "CH", Nucleus: "13C",
		Atoms: []int{1}, Shift: map[string]ShiftValue{"CDCl3": {77.36}}}}}
	got, err := Compare(m, topo2, cl, "chcl3", nil)
	if err != nil || got[0].Class != ClassCarbonCl {
		t.Errorf("chloroform: %+v, %v", got, err)
	}
}

// TestFit checks the least-squares factors on points on a known line plus symmetric
// noise, and that test molecules are kept out of the training data.
func TestFit(t *testing.T) {
	// Training 1H sites: σ = 31, 30, 29, 28 with δ = 1.1, 1.9, 3.1, 3.9, i.e. the line
	// δ = 32 − σ plus residuals +0.1, −0.1, +0.1, −0.1. By hand: mean σ 29.5, mean δ 2.5;
	// Sxx = 1.5² + 0.5² + 0.5² + 1.5² = 5; Sxy = 1.5·(−1.4) + 0.5·(−0.6) + (−0.5)·0.6
	// + (−1.5)·1.4 = −4.8; slope = −4.8/5 = −0.96; intercept = 2.5 + 0.96·29.5 = 30.82.
	mk := func(name string, nuc string, sig, exp []float64) MoleculeResult {
		m := MoleculeResult{Name: name, Canonical: name}
		for i := range sig {
			m.Groups = append(m.Groups, GroupResult{Nucleus: nuc, Sigma: []float64{sig[i]},
				Experimental: []float64{exp[i]}})
		}
		return m
	}
	trainH := mk("a", "1H", []float64{31, 30, 29, 28}, []float64{1.1, 1.9, 3.1, 3.9})
	trainC := mk("b", "13C", []float64{170, 130, 60}, []float64{20, 60, 130})
	// "c" is in both reports; it must not be trained on. Its H would drag the fit far off.
	leakH := mk("c", "1H", []float64{25}, []float64{30})
	leakH.Groups = append(leakH.Groups, GroupResult{Nucleus: "13C", Sigma: []float64{100},
		Experimental: []float64{90}})
	trainH.Groups = append(trainH.Groups, GroupResult{Nucleus: "1H", Class: ClassExchangeable,
		Sigma: []float64{31}, Experimental: []float64{9}})
	train := &Report{Set: "train.json", Preset: "draft", Solvent: "chcl3",
		Molecules: []MoleculeResult{trainH, trainC, leakH}}
	test := &Report{Set: "test.json", Preset: "draft", Solvent: "chcl3",
		Molecules: []MoleculeResult{leakH}}
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	got, err := Fit([]*Report{train}, []*Report{test}, now)
	if err != nil {
		t.Fatal(err)
	}
	h, c := got[0], got[1]
	if h.Nucleus != "1H" || !near(h.Slope, -0.96, 1e-9) || !near(h.Intercept, 30.82, 1e-9) ||
		h.N != 4 || h.Date != "2026-12-04" {
		t.Errorf("1H fit %+v", h)
	}
	// Residuals of the 1H fit: predictions 1.06, 2.02, 2.98, 3.94 give errors −0.04,
	// +0.12, −0.12, +0.04, so MAE 0.08 and SSres = 0.032; SStot = 1.96 + 0.36 + 0.36 + 1.96
	// = 4.64; R² = 1 − 0.032/4.64.
	if !near(h.MAE, 0.08, 1e-9) || !near(h.R2, 1-0.032/4.64, 1e-9) {
		t.Errorf("1H MAE %v R² %v", h.MAE, h.R2)
	}
	// The test molecule's 1H: prediction −0.96·25 + 30.82 = 6.82 against 30 → 23.18.
	if h.TestN != 1 || !near(h.TestMAE, 23.18, 1e-9) {
		t.Errorf("1H test %d %v", h.TestN, h.TestMAE)
	}
	// Three 13C points exactly on δ = −σ + 190.
	if !near(c.Slope, -1, 1e-9) || !near(c.Intercept, 190, 1e-9) || !near(c.R2, 1, 1e-12) {
		t.Errorf("13C fit %+v", c)
	}
	if strings.Join(h.Molecules, ",") != "a" {
		t.Errorf("1H trained on %v", h.Molecules)
	}

	// Mixed levels are refused.
	other := &Report{Set: "x", Preset: "production", Solvent: "chcl3"}
	if _, err := Fit([]*Report{train, other}, nil, now); err == nil {
		t.Error("fit across presets accepted")
	}
}

// TestFitRoundTrip checks that what Fit writes, the daemon reads: a scaling file made from
// a fit registers a linear reference that For then prefers for the draft preset.
func TestFitRoundTrip(t *testing.T) {
	f := []shifts.Fitted{
		{Preset: "draft", Solvent: "dmso", Nucleus: "1H", Slope: -0.95, Intercept: 30.5,
			N: 10, TrainingSet: "t", Molecules: []string{"a"}, Date: "2026-12-04"},
		{Preset: "draft", Solvent: "dmso", Nucleus: "13C", Slope: -0.97, Intercept: 180,
			N: 10, TrainingSet: "t", Molecules: []string{"a"}, Date: "2026-12-04"},
	}
	path := filepath.Join(t.TempDir(), "scaling.json")
	if err := WriteScaling(path, f); err != nil {
		t.Fatal(err)
	}
	if n, err := shifts.LoadScaling(path); err != nil || n != 1 {
		t.Fatalf("load: %d, %v", n, err)
	}
	r, err := shifts.For("draft", "dmso")
	if err != nil || r.Method != shifts.MethodLinear || r.SlopeC != -0.97 ||
		!strings.Contains(r.Source, "fitted by qmd fit-scaling") {
		t.Errorf("For after load: %+v, %v", r, err)
	}
	// Put the shipped state back for other tests.
	shifts.Register(shifts.Reference{Preset: "draft", Solvent: "dmso",
		Method: shifts.MethodLinear})
}

func TestLoadSetErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{`{"molecules":[]}`, "no molecules"},
		{`{"molecules":[{"name":"a","smiles":"C","groups":[{"label":"x","nucleus":"2H",` +
			`"smiles_atom_idx":[0],"shift":{"CDCl3":1}}]}]}`, `nucleus "2H"`},
		{`{"molecules":[{"name":"a","smiles":"C","groups":[{"label":"x","nucleus":"1H",` +
			`"smiles_atom_idx":[0],"shift":{"D2O":1}}]}]}`, `unknown solvent "D2O"`},
		{`{"molecules":[{"name":"a","smiles":"C","groups":[{"label":"x","nucleus":"1H",` +
			`"smiles_atom_idx":[0,1],"shift":{"CDCl3":[1,2,3]}}]}]}`, "3 shifts for 2 sites"},
		{`{"default_subset":["b"],"molecules":[{"name":"a","smiles":"C","groups":[{"label":` +
			`"x","nucleus":"1H","smiles_atom_idx":[0],"shift":{"CDCl3":1}}]}]}`, `names "b"`},
		{`{"molecules":[{"name":"a","smiles":"C","colour":"red"}]}`, `unknown field "colour"`},
	} {
		p := filepath.Join(dir, "s.json")
		os.WriteFile(p, []byte(tc.body), 0o644)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.body, err, tc.want)
		}
	}
}

// TestShippedSets loads every set in etc/validation, so a broken edit fails here.
func TestShippedSets(t *testing.T) {
	paths, _ := filepath.Glob("../../etc/validation/*.json")
	if len(paths) == 0 {
		t.Fatal("no sets in etc/validation")
	}
	for _, p := range paths {
		s, err := Load(p)
		if err != nil {
			t.Error(err)
			continue
		}
		sub, _ := s.Select(false, nil)
		if len(sub) == 0 || len(sub) > 8 {
			t.Errorf("%s: default subset of %d molecules", p, len(sub))
		}
	}
}

func TestLoadSetRejectsMore(t *testing.T) {
	dir := t.TempDir()
	mol := func(name, group string) string {
		return `{"molecules":[{"name":"` + name + `","smiles":"C","groups":[` + group + `]}]}`
	}
	ok := `{"label":"x","nucleus":"1H","smiles_atom_idx":[0],"shift":{"CDCl3":1}}`
	for _, tc := range []struct{ body, want string }{
		{mol("a", `{"label":"x","nucleus":"1H","smiles_atom_idx":[0],"shift":{"CDCl3":null}}`),
			"shift is null"},
		{mol("a", `{"label":"x","nucleus":"1H","smiles_atom_idx":[0,0],`+
			`"shift":{"CDCl3":[1,2]}}`), "atom 0 listed twice"},
		{mol("a", `{"label":"x","nucleus":"1H","smiles_atom_idx":[0],`+
			`"shift":{"CDCl3":1,"chloroform":5}}`), "are the same solvent"},
		{mol(`me\nth|ane`, ok), "control character or '|'"},
		{mol(strings.Repeat("x", 81), ok), "at most 80"},
	} {
		p := filepath.Join(dir, "s.json")
		os.WriteFile(p, []byte(tc.body), 0o644)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestCheckGroupsBeforeSubmitting(t *testing.T) {
	_, topo := ethanolResult()
	m := Molecule{Name: "ethanol", Groups: []Group{
		{Label: "a", Nucleus: "13C", Atoms: []int{2}},
		{Label: "b", Nucleus: "1H", Atoms: []int{7}},
		{Label: "c", Nucleus: "1H", Atoms: []int{1}},
	}}
	err := CheckGroups(m, topo)
	if err == nil || !strings.Contains(err.Error(), "position 2 is O, not carbon") ||
		!strings.Contains(err.Error(), "position 7, but the molecule has 3 heavy atoms") ||
		strings.Contains(err.Error(), "group 1H c") {
		t.Errorf("CheckGroups: %v", err)
	}
	m.Groups = m.Groups[2:]
	if err := CheckGroups(m, topo); err != nil {
		t.Errorf("a good group: %v", err)
	}
}

func TestReadReportAndFitRefuseBadData(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "r.json")
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	for _, tc := range []struct{ body, want string }{
		{`{}`, "not a qmd validate report"},
		{`{"preset":"draft","solvent":"chcl3","molecules":[{"name":"m","groups":[` +
			`{"nucleus":"1H","sigma":[30,29],"experimental":[2]}]}]}`,
			"2 shieldings for 1 measured shifts"},
		{`{"preset":"draft","solvent":"chcl3","molecules":[{"name":"m","groups":[` +
			`{"nucleus":"1H","sigma":[30],"experimental":[2],"calculated":{"qmd":[]}}]}]}`,
			"0 qmd shifts for 1 sites"},
	} {
		_, err := ReadReport(write(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.body, err, tc.want)
		}
	}
	flat := &Report{Preset: "draft", Solvent: "chcl3"}
	for i := range 4 {
		flat.Molecules = append(flat.Molecules, MoleculeResult{Name: string(rune('a' + i)),
			Groups: []GroupResult{
				{Nucleus: "1H", Sigma: []float64{30}, Experimental: []float64{float64(i)}},
				{Nucleus: "13C", Sigma: []float64{150}, Experimental: []float64{float64(i)}},
			}})
	}
	if _, err := Fit([]*Report{flat}, nil, time.Now()); err == nil ||
		!strings.Contains(err.Error(), "do not spread") {
		t.Errorf("fit of identical shieldings: %v", err)
	}
}
