package manager

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"qmd/ctl/api"
	"qmd/daemon/chem"
	"qmd/daemon/conformer"
	"qmd/daemon/job"
	"qmd/daemon/store"
	"qmd/scheduler/fake"
)

// fixedConformers makes the manager's conformer search return three copies of the
// molecule, displaced a little, at the given force-field energies (kcal/mol).
func fixedConformers(h *harness, energies ...float64) {
	h.m.Conformers = func(_ context.Context, mol chem.Molecule, _ conformer.Options) (
		[]conformer.Conformer, error) {
		var out []conformer.Conformer
		for i, e := range energies {
			atoms := make([]chem.Atom, len(mol.Atoms))
			copy(atoms, mol.Atoms)
			atoms[0].X += 0.01 * float64(i)
			out = append(out, conformer.Conformer{Atoms: atoms, Energy: e})
		}
		return out, nil
	}
}

// runSearch steps the cluster and the parent until the parent has ended.
func runSearch(h *harness, parent string) job.Job {
	h.t.Helper()
	for range 20 {
		h.cycle(clusterA)
		p, _ := h.job(parent)
		if err := h.m.followSearch(context.Background(), p); err != nil {
			h.t.Fatal(err)
		}
		if p, _ = h.job(parent); p.State.Terminal() {
			return p
		}
	}
	h.t.Fatalf("search %s did not end", parent)
	return job.Job{}
}

// Force-field weights at 298.15 K of conformers at 0, 0.5 and 3.0 kcal/mol, by hand:
// RT = 1.987204e-3 · 298.15 = 0.592484 kcal/mol; exp(−0.5/RT) = exp(−0.843905) = 0.430011;
// exp(−3/RT) = exp(−5.063428) = 0.006327; sum 1.436338; so 0.696213, 0.299379, 0.004405.
// The second conformer failing loses 29.9%, printed as 30%.
const weightThird = 0.004405

func TestConformerSearchCompletesWithoutASmallLoss(t *testing.T) {
	h := newHarness(t)
	fixedConformers(h, 0, 0.5, 3.0)
	f := h.fake(clusterA)
	f.Queue(fake.Script{fake.Running(1), fake.Exit(0, waterOut, waterErr)})
	f.Queue(fake.Script{fake.Running(1), fake.Exit(0, waterOut, waterErr)})
	f.Queue(fake.Script{fake.Running(1), fake.Exit(134, "", "")})
	req := water("gas")
	req.Conformers = "search"
	resp, err := h.m.Submit(context.Background(), testUID, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.IDs) != 1 || resp.ID != resp.IDs[0] || len(resp.Conformers) != 3 {
		t.Fatalf("submission answered %+v, want a parent and 3 conformers", resp)
	}
	ids := append(resp.IDs, resp.Conformers...)
	parent := ids[0]
	p, _ := h.job(parent)
	if p.Kind != job.KindSearch || !strings.Contains(p.Meta, `"temperature_k":298.15`) {
		t.Errorf("parent kind %q meta %s", p.Kind, p.Meta)
	}
	for i, id := range ids[1:] {
		k, _ := h.job(id)
		if k.Kind != job.KindConformer || k.ParentID != parent ||
			k.Name != "water-c"+string(rune('1'+i)) {
			t.Errorf("conformer %d: kind %q parent %q name %q", i+1, k.Kind, k.ParentID, k.Name)
		}
	}

	p = runSearch(h, parent)
	_, hist := h.job(parent)
	wantPath(t, hist, job.Queued, job.Submitting, job.Pending, job.Running, job.Completing,
		job.Completed)
	if f.CallsFor("Submit", parent) != 0 {
		t.Error("the parent was handed to the scheduler")
	}
	data, err := h.m.Result(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var res api.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Conformers) != 3 || res.TemperatureK != 298.15 ||
		math.Abs(res.LostWeight-weightThird) > 1e-5 {
		t.Fatalf("result conformers %d, T %v, lost %v", len(res.Conformers),
			res.TemperatureK, res.LostWeight)
	}
	// The two that completed have the same energy (same output), so each weighs 1/2.
	for i, c := range res.Conformers[:2] {
		if c.Weight == nil || *c.Weight != 0.5 || c.EnergyHartree == nil {
			t.Errorf("conformer %d: %+v", i+1, c)
		}
	}
	if c := res.Conformers[2]; c.Weight != nil || c.State != "failed" ||
		math.Abs(c.ForceFieldKcal-3) > 1e-9 {
		t.Errorf("failed conformer: %+v", c)
	}
	checkWaterResult(t, res)
	if !strings.Contains(hist[len(hist)-1].Reason, "1 failed") {
		t.Errorf("completion reason %q does not report the failed conformer",
			hist[len(hist)-1].Reason)
	}
}

func TestConformerSearchFailsWhenTheLossIsLarge(t *testing.T) {
	h := newHarness(t)
	fixedConformers(h, 0, 0.5, 3.0)
	f := h.fake(clusterA)
	f.Queue(fake.Script{fake.Exit(0, waterOut, waterErr)})
	f.Queue(fake.Script{fake.Exit(134, "", "")})
	f.Queue(fake.Script{fake.Exit(0, waterOut, waterErr)})
	req := water("gas")
	req.Conformers = "search"
	resp, err := h.m.Submit(context.Background(), testUID, req)
	if err != nil {
		t.Fatal(err)
	}
	ids := append(resp.IDs, resp.Conformers...)
	p := runSearch(h, ids[0])
	if p.State != job.Failed || !strings.Contains(p.Error, "30%") ||
		!strings.Contains(p.Error, ids[2]) {
		t.Errorf("parent %s, error %q; want failed naming %s and its 30%% weight", p.State,
			p.Error, ids[2])
	}
}

func TestCancelSearchCancelsConformers(t *testing.T) {
	h := newHarness(t)
	fixedConformers(h, 0, 1)
	req := water("gas")
	req.Conformers = "search"
	resp, err := h.m.Submit(context.Background(), testUID, req)
	if err != nil {
		t.Fatal(err)
	}
	ids := append(resp.IDs, resp.Conformers...)
	h.cycle(clusterA) // the first conformer is handed over, the second waits for a slot
	if _, err := h.m.Cancel(context.Background(), ids[0], testUID); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if s := h.state(id); s != job.Cancelled {
			t.Errorf("job %s is %s after cancelling the search", id, s)
		}
	}
	kids, err := h.st.List(context.Background(), store.Filter{Parent: ids[0]})
	if err != nil || len(kids) != 2 {
		t.Fatalf("children: %d, %v", len(kids), err)
	}
}

// TestSingleConformerIsAPlainJob checks that a search finding one conformer submits an
// ordinary job: there is nothing to average.
func TestSingleConformerIsAPlainJob(t *testing.T) {
	h := newHarness(t)
	fixedConformers(h, 0)
	req := water("gas")
	req.Conformers = "search"
	ids := h.submit(req)
	if j, _ := h.job(ids[0]); len(ids) != 1 || j.Kind != job.KindPlain {
		t.Errorf("%d jobs, kind %q", len(ids), j.Kind)
	}
	req.Conformers = "sideways"
	if _, err := h.m.Submit(context.Background(), testUID, req); err == nil ||
		!strings.Contains(err.Error(), "sideways") {
		t.Errorf("bad mode: %v", err)
	}
}
