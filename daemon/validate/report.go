package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"qmd/ctl/api"
	"qmd/ctl/client"
	"qmd/daemon/chem"
	"qmd/daemon/shifts"
)

// Report is what a validation run found. Its JSON form is the input of Fit.
type Report struct {
	Set        string `json:"set"`
	SetSource  string `json:"set_source"`
	Preset     string `json:"preset"`
	Solvent    string `json:"solvent"`
	Conformers string `json:"conformers,omitempty"`
	Level      string `json:"level,omitempty"`
	Software   string `json:"software,omitempty"`
	Date       string `json:"date"`
	// Partial is set when the run stopped waiting (timeout, interrupt) before every job
	// had ended; the molecules still running are listed without groups.
	Partial bool `json:"partial,omitempty"`
	// References are the references compared, by method (MethodQMD is the one qmd uses).
	References map[string]api.Reference `json:"references"`
	Molecules  []MoleculeResult         `json:"molecules"`
	Stats      []StatRow                `json:"stats"`
}

// MoleculeResult is one molecule of a report.
type MoleculeResult struct {
	Name      string `json:"name"`
	SMILES    string `json:"smiles"`
	Canonical string `json:"canonical_smiles,omitempty"`
	JobID     string `json:"job_id"`
	State     string `json:"state"`
	Error     string `json:"error,omitempty"`
	// EnergyHartree is the final DFT energy (for a conformer search, of the lowest).
	EnergyHartree float64       `json:"energy_hartree,omitempty"`
	Groups        []GroupResult `json:"groups,omitempty"`
	// Search is the conformer-averaged job when a run computed both (ModeBoth); its
	// shifts are the groups' MethodConformers values.
	Search *SearchResult `json:"conformer_search,omitempty"`
}

// SearchResult is the conformer search of a molecule.
type SearchResult struct {
	JobID      string `json:"job_id"`
	State      string `json:"state"`
	Error      string `json:"error,omitempty"`
	Conformers int    `json:"conformers,omitempty"`
}

// StatRow is the error statistics of one method over one nucleus and class.
type StatRow struct {
	Method  string `json:"method"`
	Nucleus string `json:"nucleus"`
	Class   string `json:"class,omitempty"`
	Stats
}

func newReport(o Options) *Report {
	return &Report{Set: o.SetName, SetSource: o.Set.Source, Preset: o.Preset,
		Solvent: o.Solvent, Conformers: o.Conformers,
		Date: time.Now().UTC().Format(time.RFC3339), References: map[string]api.Reference{}}
}

// addResult fetches a completed job's result and compares it.
func (r *Report) addResult(ctx context.Context, c *client.Client, m Molecule, e entry,
	mr *MoleculeResult) error {
	res, topo, err := fetch(ctx, c, mr.JobID, e)
	if err != nil {
		return err
	}
	refs := references(r.Preset, r.Solvent)
	for name, ref := range refs {
		if _, ok := r.References[name]; !ok {
			r.References[name] = ref.API()
		}
	}
	groups, err := Compare(m, topo, res, r.Solvent, refs)
	if err != nil {
		return err
	}
	mr.EnergyHartree = res.EnergyHartree
	mr.Groups = groups
	return nil
}

// fetch returns a finished job's result and the topology of the geometry submitted for it.
func fetch(ctx context.Context, c *client.Client, id string, e entry) (api.Result, Topology,
	error) {
	res, err := c.Result(ctx, id)
	if err != nil {
		return api.Result{}, Topology{}, fmt.Errorf("fetch result: %w", err)
	}
	mols, err := chem.Parse("xyz", []byte(e.XYZ))
	if err != nil || len(mols) != 1 {
		return api.Result{}, Topology{}, fmt.Errorf("read the submitted geometry back: %v", err)
	}
	return res, TopologyOf(mols[0]), nil
}

// addSearch adds a conformer search's shifts to the groups already compared for the
// single geometry, as MethodConformers.
func (r *Report) addSearch(ctx context.Context, c *client.Client, m Molecule, e entry,
	mr *MoleculeResult) error {
	res, topo, err := fetch(ctx, c, mr.Search.JobID, e)
	if err != nil {
		return err
	}
	qmd, ok := references(r.Preset, r.Solvent)[MethodQMD]
	if !ok {
		return fmt.Errorf("no reference for %s/%s", r.Preset, r.Solvent)
	}
	groups, err := Compare(m, topo, res, r.Solvent,
		map[string]shifts.Reference{MethodConformers: qmd})
	if err != nil {
		return err
	}
	if len(groups) != len(mr.Groups) {
		return fmt.Errorf("conformer search compared %d groups, the single geometry %d",
			len(groups), len(mr.Groups))
	}
	for i, g := range groups {
		if v, ok := g.Calculated[MethodConformers]; ok {
			mr.Groups[i].Calculated[MethodConformers] = v
		}
	}
	mr.Search.Conformers = len(res.Conformers)
	r.References[MethodConformers] = qmd.API()
	return nil
}

// Classes in the order a report lists them.
var classes = []string{ClassNormal, ClassExchangeable, ClassCarbonCl}

// summarise computes the statistics of every method, nucleus and class present.
func (r *Report) summarise() {
	var all []GroupResult
	for _, m := range r.Molecules {
		all = append(all, m.Groups...)
	}
	r.Stats = r.Stats[:0]
	for _, method := range r.methods() {
		for _, nuc := range []string{NucleusH, NucleusC} {
			for _, cl := range classes {
				d := Errors(all, method, nuc, cl)
				if len(d) == 0 {
					continue
				}
				r.Stats = append(r.Stats, StatRow{Method: method, Nucleus: nuc, Class: cl,
					Stats: Summarise(d)})
			}
		}
	}
}

// methods lists the compared methods, qmd's first.
func (r *Report) methods() []string {
	var out []string
	for _, m := range []string{MethodQMD, MethodConformers, MethodTMS, MethodLinear} {
		if _, ok := r.References[m]; ok {
			out = append(out, m)
		}
	}
	return out
}

func (r *Report) compared() int {
	n := 0
	for _, m := range r.Molecules {
		if len(m.Groups) > 0 {
			n++
		}
	}
	return n
}

// Stat returns the statistics of one method, nucleus and class.
func (r *Report) Stat(method, nucleus, class string) (Stats, bool) {
	for _, s := range r.Stats {
		if s.Method == method && s.Nucleus == nucleus && s.Class == class {
			return s.Stats, true
		}
	}
	return Stats{}, false
}

// ReadReport reads a report written by WriteFiles.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("report %s: %w", path, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("report %s: %w", path, err)
	}
	return &r, nil
}

// check refuses a report that qmd validate could not have written, since a hand-edited
// or truncated report would otherwise feed a fit with misaligned numbers.
func (r *Report) check() error {
	if r.Preset == "" || r.Solvent == "" || r.Molecules == nil {
		return errors.New("not a qmd validate report (no preset, solvent or molecules)")
	}
	finite := func(xs []float64) bool {
		return !slices.ContainsFunc(xs, func(x float64) bool {
			return math.IsNaN(x) || math.IsInf(x, 0)
		})
	}
	for _, m := range r.Molecules {
		for _, g := range m.Groups {
			where := fmt.Sprintf("molecule %s group %s %s", m.Name, g.Nucleus, g.Label)
			if len(g.Sigma) == 0 || len(g.Sigma) != len(g.Experimental) {
				return fmt.Errorf("%s: %d shieldings for %d measured shifts", where,
					len(g.Sigma), len(g.Experimental))
			}
			if !finite(g.Sigma) || !finite(g.Experimental) {
				return fmt.Errorf("%s: a value is not a finite number", where)
			}
			for method, v := range g.Calculated {
				if len(v) != len(g.Sigma) {
					return fmt.Errorf("%s: %d %s shifts for %d sites", where, len(v), method,
						len(g.Sigma))
				}
			}
		}
	}
	return nil
}

// Base is the file name stem of the report's files, e.g. "gottlieb-cdcl3-dmso.draft.chcl3".
func (r *Report) Base() string {
	b := strings.TrimSuffix(r.Set, filepath.Ext(r.Set)) + "." + r.Preset + "." + r.Solvent
	if r.Conformers != "" && r.Conformers != "single" {
		b += "." + r.Conformers
	}
	return b
}

// WriteFiles writes BASE.json, BASE.md and the scatter plots into dir and returns the
// paths written.
func (r *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create report dir: %w", err)
	}
	base := filepath.Join(dir, r.Base())
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".json", append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	written := []string{base + ".json"}
	plots, err := r.writePlots(base)
	if err != nil {
		return written, err
	}
	written = append(written, plots...)
	var names []string
	for _, p := range plots {
		names = append(names, filepath.Base(p))
	}
	f, err := os.Create(base + ".md")
	if err != nil {
		return written, fmt.Errorf("write report: %w", err)
	}
	r.Markdown(f, names)
	if err := f.Close(); err != nil {
		return written, fmt.Errorf("write report: %w", err)
	}
	return append(written, base+".md"), nil
}

var methodTitle = map[string]string{
	MethodQMD: "qmd", MethodConformers: "qmd, conformer average", MethodTMS: "TMS",
	MethodLinear: "scaled",
}

var classTitle = map[string]string{
	ClassNormal: "", ClassExchangeable: " exchangeable (OH, NH)",
	ClassCarbonCl: " bearing Cl",
}

// Markdown writes the report for people; plots are the image files to link.
func (r *Report) Markdown(w io.Writer, plots []string) {
	fmt.Fprintf(w, "# Validation: %s, preset %s, solvent %s\n\n", r.Set, r.Preset, r.Solvent)
	if r.Partial {
		fmt.Fprintf(w, "**Partial report**: written before every job had ended; run "+
			"qmd validate again with the same work directory to complete it.\n\n")
	}
	fmt.Fprintf(w, "- Date: %s\n- Level: %s\n- Software: %s\n", r.Date, orDash(r.Level),
		orDash(r.Software))
	if r.Conformers != "" {
		fmt.Fprintf(w, "- Conformers: %s\n", r.Conformers)
	}
	fmt.Fprintf(w, "- Experimental data: %s\n", r.SetSource)
	for _, m := range r.methods() {
		ref := r.References[m]
		fmt.Fprintf(w, "- Reference %q: %s, %s\n", methodTitle[m], ref.Method,
			oneLine(ref.Source))
	}
	fmt.Fprintf(w, "\nErrors are calculated − experimental, in ppm, one value per site "+
		"(a group of equivalent atoms, or each site of a group whose sites show apart).\n\n")

	fmt.Fprintln(w, "## Summary")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| shifts | nucleus | n | MAE | RMSE | largest error | mean signed |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, s := range r.Stats {
		fmt.Fprintf(w, "| %s | %s%s | %d | %.3f | %.3f | %+.2f | %+.3f |\n",
			methodTitle[s.Method], s.Nucleus, classTitle[s.Class], s.N, s.MAE, s.RMSE,
			s.Max, s.MeanSigned)
	}
	fmt.Fprintln(w)
	for _, p := range plots {
		if strings.HasSuffix(p, ".png") {
			fmt.Fprintf(w, "![%s](%s)\n", strings.TrimSuffix(p, ".png"), p)
		}
	}
	if len(plots) > 0 {
		fmt.Fprintln(w)
	}

	var searches []MoleculeResult
	for _, m := range r.Molecules {
		if m.Search != nil {
			searches = append(searches, m)
		}
	}
	if len(searches) > 0 {
		fmt.Fprintln(w, "## Conformer searches")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| molecule | job | state | conformers | MAE 1H single → averaged | "+
			"MAE 13C single → averaged |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, m := range searches {
			fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s |\n", m.Name, m.Search.JobID,
				m.Search.State, m.Search.Conformers, maePair(m.Groups, NucleusH),
				maePair(m.Groups, NucleusC))
		}
		fmt.Fprintln(w)
	}

	methods := r.methods()
	fmt.Fprintln(w, "## Per molecule")
	fmt.Fprintln(w)
	head := "| molecule | group | nucleus | σ | δ exp |"
	rule := "|---|---|---|---|---|"
	for _, m := range methods {
		head += " δ " + methodTitle[m] + " |"
		rule += "---|"
	}
	fmt.Fprintln(w, head+" error (qmd) |")
	fmt.Fprintln(w, rule+"---|")
	for _, mol := range r.Molecules {
		if len(mol.Groups) == 0 {
			continue
		}
		for _, g := range mol.Groups {
			for i := range g.Sigma {
				label := g.Label
				if g.Class != "" {
					label += " (" + g.Class + ")"
				}
				line := fmt.Sprintf("| %s | %s | %s | %.3f | %.2f |", mol.Name, label,
					g.Nucleus, g.Sigma[i], g.Experimental[i])
				for _, m := range methods {
					line += " " + fmtAt(g.Calculated[m], i) + " |"
				}
				errQMD := "–"
				if v, ok := g.Calculated[MethodQMD]; ok {
					errQMD = fmt.Sprintf("%+.2f", v[i]-g.Experimental[i])
				}
				fmt.Fprintln(w, line+" "+errQMD+" |")
			}
		}
	}
	var failed []MoleculeResult
	for _, m := range r.Molecules {
		if len(m.Groups) == 0 {
			failed = append(failed, m)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "## Not compared")
		fmt.Fprintln(w)
		for _, m := range failed {
			fmt.Fprintf(w, "- %s (job %s, %s): %s\n", m.Name, m.JobID, m.State, orDash(m.Error))
		}
	}
}

func fmtAt(v []float64, i int) string {
	if i >= len(v) || math.IsNaN(v[i]) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v[i])
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "–"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// sortedMolecules returns molecule names in report order (for tests and fit output).
func (r *Report) moleculeNames() []string {
	var out []string
	for _, m := range r.Molecules {
		if len(m.Groups) > 0 {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out
}

// maePair is one molecule's MAE for a nucleus with the single geometry and with the
// conformer average, e.g. "0.12 → 0.08".
func maePair(groups []GroupResult, nucleus string) string {
	single := Summarise(Errors(groups, MethodQMD, nucleus, ClassNormal))
	avg := Summarise(Errors(groups, MethodConformers, nucleus, ClassNormal))
	if single.N == 0 || avg.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f → %.3f", single.MAE, avg.MAE)
}
