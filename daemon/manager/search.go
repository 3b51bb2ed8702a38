package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"qmd/ctl/api"
	"qmd/daemon/chem"
	"qmd/daemon/conformer"
	"qmd/daemon/job"
	"qmd/daemon/level"
	"qmd/daemon/shifts"
	"qmd/daemon/store"
)

// ConformersFile holds every conformer of a search in the parent's directory.
const ConformersFile = "conformers.xyz"

// kcalPerHartree converts force-field energies (kcal/mol) to hartree (CODATA 2018).
const kcalPerHartree = 627.509474

// searchMeta is a search parent's Meta: how its conformers are averaged.
type searchMeta struct {
	TemperatureK  float64 `json:"temperature_k"`
	MaxLostWeight float64 `json:"max_lost_weight"`
	Conformers    int     `json:"conformers"`
}

// conformerMeta is a conformer job's Meta.
type conformerMeta struct {
	Index int `json:"index"` // 1-based, lowest force-field energy first
	// ForceFieldKcal is the force-field energy above the search's lowest conformer.
	ForceFieldKcal float64 `json:"force_field_kcal_mol"`
}

// conformerMode decides how one molecule is computed: the request's mode, else the
// config's; "auto" searches only molecules with rotatable bonds.
func (m *Manager) conformerMode(req api.SubmitRequest, mol chem.Molecule) (bool, error) {
	mode := req.Conformers
	if mode == "" {
		mode = m.cfg.Conformers
	}
	switch mode {
	case "single", "":
		return false, nil
	case "search":
		return true, nil
	case "auto":
		bonds := mol.Bonds
		if len(bonds) == 0 {
			bonds = chem.PerceiveBonds(mol.Atoms)
		}
		return conformer.RotatableBonds(mol.Atoms, bonds) > 0, nil
	}
	return false, badInput("conformers %q: want single, search or auto", mode)
}

// prepareSearch runs the conformer search and prepares the parent and one job per kept
// conformer. With one conformer left there is nothing to average and it returns nil, so
// the caller prepares an ordinary job.
func (m *Manager) prepareSearch(ctx context.Context, uid int, req api.SubmitRequest,
	c *cluster, preset level.Preset, solvent level.Solvent, mol chem.Molecule, format,
	raw string) ([]prepared, error) {
	temp := req.TemperatureK
	if temp == 0 {
		temp = m.cfg.Temperature
	}
	if !(temp > 0 && temp <= 1000) {
		return nil, badInput("temperature %v K: want above 0 and at most 1000", temp)
	}
	if len(mol.Bonds) == 0 {
		mol.Bonds = chem.PerceiveBonds(mol.Atoms)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg().CommandTimeout.Duration)
	defer cancel()
	confs, err := m.Conformers(cctx, mol, conformer.Options{
		Obabel: m.cfg.Obabel, MaxConformers: m.cfg.ConformerMax,
		EnergyWindow: m.cfg.ConformerEnergyWindow, RMSDThreshold: m.cfg.ConformerRMSD})
	if err != nil {
		return nil, fmt.Errorf("conformer search: %w", err)
	}
	if len(confs) > m.cfg.ConformerMax {
		confs = confs[:m.cfg.ConformerMax]
	}
	if len(confs) < 2 {
		return nil, nil
	}

	parent, err := m.prepareOne(uid, req, c, preset, solvent, mol, format, raw)
	if err != nil {
		return nil, err
	}
	parent.job.Kind = job.KindSearch
	meta, _ := json.Marshal(searchMeta{TemperatureK: temp,
		MaxLostWeight: m.cfg.ConformerMaxLostWeight, Conformers: len(confs)})
	parent.job.Meta = string(meta)
	// The parent keeps the input, the molecule's graph and the conformers; it has no
	// deck or script, since no scheduler ever runs it.
	parent.files = slices.DeleteFunc(parent.files, func(f api.Rendered) bool {
		return f.Path == DeckFile || f.Path == ScriptFile
	})
	var all strings.Builder
	for i, cf := range confs {
		all.WriteString(chem.FormatXYZ(fmt.Sprintf("conformer %d, %.3f kcal/mol", i+1,
			cf.Energy-confs[0].Energy), cf.Atoms))
	}
	parent.files = append(parent.files, api.Rendered{Path: ConformersFile,
		Content: all.String()})

	out := []prepared{parent}
	for i, cf := range confs {
		cm := mol
		cm.Atoms = cf.Atoms
		child, err := m.prepareOne(uid, req, c, preset, solvent, cm, format, raw)
		if err != nil {
			return nil, fmt.Errorf("conformer %d: %w", i+1, err)
		}
		child.job.Kind = job.KindConformer
		child.job.ParentID = parent.job.ID
		child.job.Name = conformerName(parent.job.Name, i+1)
		cmeta, _ := json.Marshal(conformerMeta{Index: i + 1,
			ForceFieldKcal: cf.Energy - confs[0].Energy})
		child.job.Meta = string(cmeta)
		out = append(out, child)
	}
	return out, nil
}

// conformerName is a conformer job's name: the parent's with "-cN", within 64 characters.
func conformerName(parent string, i int) string {
	suffix := fmt.Sprintf("-c%d", i)
	if len(parent)+len(suffix) > 64 {
		parent = parent[:64-len(suffix)]
	}
	return parent + suffix
}

// searchInterval is how often parents look at their conformers.
const searchInterval = 2 * time.Second

// followSearches moves every unfinished search along with its conformers until ctx ends.
func (m *Manager) followSearches(ctx context.Context) {
	t := time.NewTicker(searchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		parents, err := m.st.List(ctx, store.Filter{Kinds: []job.Kind{job.KindSearch},
			States: []job.State{job.Queued, job.Submitting, job.Pending, job.Running,
				job.Suspended, job.Completing}})
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("list conformer searches", "err", err)
			}
			continue
		}
		for _, p := range parents {
			if err := m.followSearch(ctx, p); err != nil && ctx.Err() == nil {
				m.log.Error("follow conformer search", "job", p.ID, "err", err)
			}
		}
	}
}

// searchPath is the order a parent moves through; it only ever moves forward, so a
// conformer that Slurm requeues does not send the parent back.
var searchPath = []job.State{job.Queued, job.Submitting, job.Pending, job.Running,
	job.Completing}

// followSearch brings one parent up to where its conformers are, and finishes it once
// every conformer has ended.
func (m *Manager) followSearch(ctx context.Context, p job.Job) error {
	kids, err := m.st.List(ctx, store.Filter{Parent: p.ID})
	if err != nil {
		return err
	}
	target := searchTarget(kids)
	cur := slices.Index(searchPath, p.State)
	want := slices.Index(searchPath, target)
	for i := cur + 1; cur >= 0 && i <= want; i++ {
		reason := "conformers " + string(searchPath[i])
		if searchPath[i] == job.Completing {
			reason = "every conformer has ended"
		}
		u := store.Update{}
		now := time.Now().UTC()
		switch searchPath[i] {
		case job.Submitting:
			u.SubmittedAt = &now
		case job.Running:
			u.StartedAt = &now
		}
		np, err := m.st.Transition(ctx, p.ID, p.State, searchPath[i], reason, u)
		if err != nil {
			if isConflict(err) {
				return nil // cancelled meanwhile; the next round sees it
			}
			return err
		}
		p = np
	}
	if p.State == job.Completing {
		return m.finishSearch(ctx, p, kids)
	}
	return nil
}

// searchTarget is the state a parent follows: running once any conformer runs, pending
// once any waits in a scheduler, completing once all have ended.
func searchTarget(kids []job.Job) job.State {
	if len(kids) == 0 {
		return job.Queued
	}
	best := job.Queued
	ended := 0
	for _, k := range kids {
		s := k.State
		switch {
		case s.Terminal():
			ended++
			s = job.Running
		case s == job.Suspended:
			s = job.Pending
		case s == job.Completing:
			s = job.Running
		}
		if slices.Index(searchPath, s) > slices.Index(searchPath, best) {
			best = s
		}
	}
	if ended == len(kids) {
		return job.Completing
	}
	return best
}

// finishSearch Boltzmann-averages the conformers that completed. It fails the parent when
// none did, or when the force-field weight of those that did not is above the limit:
// the average would then miss a real part of the population.
func (m *Manager) finishSearch(ctx context.Context, p job.Job, kids []job.Job) error {
	var meta searchMeta
	if err := json.Unmarshal([]byte(p.Meta), &meta); err != nil {
		return m.failSearch(ctx, p, "conformer search damaged: read settings: "+err.Error())
	}
	kmeta := make([]conformerMeta, len(kids))
	for i, k := range kids {
		if err := json.Unmarshal([]byte(k.Meta), &kmeta[i]); err != nil {
			return m.failSearch(ctx, p, "conformer "+k.ID+" damaged: "+err.Error())
		}
	}
	// Conformer order (lowest force-field energy first), not listing order.
	order := make([]int, len(kids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return kmeta[a].Index - kmeta[b].Index })
	sortedKids := make([]job.Job, len(kids))
	sortedMeta := make([]conformerMeta, len(kids))
	for i, j := range order {
		sortedKids[i], sortedMeta[i] = kids[j], kmeta[j]
	}
	kids, kmeta = sortedKids, sortedMeta
	ff := make([]float64, len(kids))
	for i := range kids {
		ff[i] = kmeta[i].ForceFieldKcal / kcalPerHartree
	}
	ffW, err := conformer.Weights(ff, meta.TemperatureK)
	if err != nil {
		return m.failSearch(ctx, p, "conformer weights: "+err.Error())
	}

	var results []api.Result
	var lost float64
	var failed []string
	confs := make([]api.Conformer, len(kids))
	for i, k := range kids {
		confs[i] = api.Conformer{JobID: k.ID, State: string(k.State),
			ForceFieldKcal: kmeta[i].ForceFieldKcal}
		if k.State != job.Completed {
			lost += ffW[i]
			failed = append(failed, fmt.Sprintf("%s (%s)", k.ID, k.State))
			continue
		}
		data, err := m.st.Result(ctx, k.ID)
		if err != nil {
			return err
		}
		var r api.Result
		if err := json.Unmarshal(data, &r); err != nil {
			return m.failSearch(ctx, p, "conformer "+k.ID+" result unreadable: "+err.Error())
		}
		e := r.EnergyHartree
		confs[i].EnergyHartree = &e
		results = append(results, r)
	}
	if len(results) == 0 {
		return m.failSearch(ctx, p, "every conformer failed: "+strings.Join(failed, ", "))
	}
	if lost > meta.MaxLostWeight {
		return m.failSearch(ctx, p, fmt.Sprintf("conformers that failed carry an estimated "+
			"%.0f%% of the population (limit %.0f%%): %s", 100*lost, 100*meta.MaxLostWeight,
			strings.Join(failed, ", ")))
	}

	res, err := m.average(p, results, meta.TemperatureK)
	if err != nil {
		return m.failSearch(ctx, p, err.Error())
	}
	res.LostWeight = lost
	w := 0
	for i := range confs {
		if confs[i].EnergyHartree != nil {
			wt := res.Conformers[w].Weight
			confs[i].Weight = wt
			w++
		}
	}
	res.Conformers = confs
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := m.st.SaveResult(ctx, p.ID, data); err != nil {
		return err
	}
	reason := fmt.Sprintf("Boltzmann average of %d conformers at %.2f K", len(results),
		meta.TemperatureK)
	if len(failed) > 0 {
		reason += fmt.Sprintf("; %d failed (estimated weight %.1f%%): %s", len(failed),
			100*lost, strings.Join(failed, ", "))
	}
	now := time.Now().UTC()
	if _, err := m.st.Transition(ctx, p.ID, job.Completing, job.Completed, reason,
		store.Update{EndedAt: &now}); err != nil && !isConflict(err) {
		return err
	}
	m.log.Info("conformer search completed", "job", p.ID, "conformers", len(results),
		"failed", len(failed))
	return nil
}

// average weights the completed conformers' shieldings by their DFT energies and
// references the means like any result. The weights come back in res.Conformers, one per
// result, in order.
func (m *Manager) average(p job.Job, results []api.Result, temp float64) (api.Result,
	error) {
	energies := make([]float64, len(results))
	sig := make([][]float64, len(results))
	n := len(results[0].Shifts)
	for i, r := range results {
		if len(r.Shifts) != n {
			return api.Result{}, fmt.Errorf("conformers disagree on the number of atoms "+
				"(%d and %d)", n, len(r.Shifts))
		}
		energies[i] = r.EnergyHartree
		sig[i] = make([]float64, n)
		for j, s := range r.Shifts {
			sig[i][j] = s.Shielding
		}
	}
	weights, err := conformer.Weights(energies, temp)
	if err != nil {
		return api.Result{}, fmt.Errorf("Boltzmann weights: %w", err)
	}
	mean, err := conformer.Average(sig, weights)
	if err != nil {
		return api.Result{}, fmt.Errorf("average shieldings: %w", err)
	}
	var rec moleculeRecord
	b, err := os.ReadFile(filepath.Join(m.jobDir(p), MoleculeFile))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		return api.Result{}, fmt.Errorf("conformer search damaged: read molecule: %v", err)
	}
	ref, err := shifts.For(p.Preset, p.Solvent)
	if err != nil {
		return api.Result{}, fmt.Errorf("no shift reference: %w", err)
	}
	elements := make([]string, n)
	for j, s := range results[0].Shifts {
		elements[j] = s.Element
	}
	atoms := shifts.Compute(ref, elements, mean, rec.Groups, rec.BondedHeavy)
	res := api.Result{ID: p.ID, EnergyHartree: slices.Min(energies), Converged: true,
		Reference: ref.API(), Shifts: make([]api.Shift, n), TemperatureK: temp}
	for _, r := range results {
		res.Converged = res.Converged && r.Converged
	}
	for i, a := range atoms {
		res.Shifts[i] = api.Shift(a)
	}
	for _, w := range weights {
		wt := math.Round(w*1e4) / 1e4
		res.Conformers = append(res.Conformers, api.Conformer{Weight: &wt})
	}
	return res, nil
}

// failSearch records why a search cannot give a result.
func (m *Manager) failSearch(ctx context.Context, p job.Job, msg string) error {
	now := time.Now().UTC()
	_, err := m.st.Transition(ctx, p.ID, job.Completing, job.Failed, firstLine(msg),
		store.Update{Error: &msg, EndedAt: &now})
	if err != nil && !isConflict(err) {
		return err
	}
	m.log.Info("conformer search failed", "job", p.ID, "reason", firstLine(msg))
	return nil
}

// cancelSearch cancels a search's unfinished conformers; the caller then cancels the
// parent itself.
func (m *Manager) cancelSearch(ctx context.Context, p job.Job, reason string) error {
	kids, err := m.st.List(ctx, store.Filter{Parent: p.ID})
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range kids {
		if k.State.Terminal() {
			continue
		}
		if _, err := m.cancel(ctx, k.ID, reason); err != nil && !errors.Is(err, ErrFinished) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
