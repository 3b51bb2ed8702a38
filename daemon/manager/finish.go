package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"qmd/ctl/api"
	"qmd/daemon/job"
	"qmd/daemon/nwchem"
	"qmd/daemon/shifts"
	"qmd/daemon/store"
	"qmd/scheduler"
)

// finish reads a completing job's output. Success stores the result and removes the
// scratch directory; any failure keeps the scratch for inspection and records a one-line
// summary plus the relevant excerpt of NWChem's output.
func (m *Manager) finish(ctx context.Context, c *cluster, j job.Job) {
	dir := m.jobDir(j)
	if c.stager != nil && !m.fetch(ctx, c, j) {
		return
	}
	res, version, fail, kind := m.evaluate(dir, j)
	if version != "" {
		sw := "NWChem " + version
		if err := m.st.Update(ctx, j.ID, store.Update{Software: &sw}); err != nil {
			m.log.Warn("record NWChem version", "job", j.ID, "err", err)
		}
	}
	if fail != "" {
		summary := fail
		if _, err := m.st.Transition(ctx, j.ID, job.Completing, job.Failed, firstLine(summary),
			store.Update{Error: &summary}); err != nil {
			m.log.Error("record failed job", "job", j.ID, "err", err)
			return
		}
		m.log.Info("job failed", "job", j.ID, "cluster", c.name, "reason", firstLine(summary))
		m.countOutcome(c, job.Failed, kind)
		if m.metrics != nil {
			m.metrics.ParseFailures.WithLabelValues(kind).Inc()
		}
		m.forget(c, j.ID)
		return
	}

	data, err := json.Marshal(res)
	if err != nil {
		m.log.Error("encode result", "job", j.ID, "err", err)
		return
	}
	if err := m.st.SaveResult(ctx, j.ID, data); err != nil {
		m.log.Error("store result", "job", j.ID, "err", err)
		return
	}
	reason := fmt.Sprintf("NWChem finished: %d shieldings", len(res.Shifts))
	if _, err := m.st.Transition(ctx, j.ID, job.Completing, job.Completed, reason, store.Update{}); err != nil {
		m.log.Error("record completed job", "job", j.ID, "err", err)
		return
	}
	if err := os.RemoveAll(filepath.Join(dir, ScratchDir)); err != nil {
		m.log.Warn("remove scratch", "job", j.ID, "err", err)
	}
	m.log.Info("job completed", "job", j.ID, "cluster", c.name)
	m.countOutcome(c, job.Completed, "ok")
	m.forget(c, j.ID)
}

// fetchAttempts is how many times a job's outputs are copied back before it fails.
const fetchAttempts = 5

// fetch copies a finished job's outputs back from the cluster. It reports false while
// the copy has not succeeded; after fetchAttempts failures the job fails with the reason,
// and the remote directory is kept.
func (m *Manager) fetch(ctx context.Context, c *cluster, j job.Job) bool {
	err := c.stager.Get(ctx, m.schedDir(j), m.jobDir(j),
		[]string{"output/", "logs/", "exit_status", "started"})
	if err == nil {
		delete(c.fetchFailures, j.ID)
		return true
	}
	c.fetchFailures[j.ID]++
	n := c.fetchFailures[j.ID]
	m.log.Warn("copy outputs back", "job", j.ID, "cluster", c.name, "attempt", n, "err", err)
	if n < fetchAttempts {
		return false
	}
	delete(c.fetchFailures, j.ID)
	msg := fmt.Sprintf("could not copy the outputs back from %s:%s after %d attempts: %v; "+
		"the remote directory is kept", c.name, m.schedDir(j), n, err)
	if _, terr := m.st.Transition(ctx, j.ID, job.Completing, job.Failed, firstLine(msg),
		store.Update{Error: &msg}); terr != nil {
		m.log.Error("record failed job", "job", j.ID, "err", terr)
	} else {
		m.countOutcome(c, job.Failed, "staging")
	}
	return false
}

// evaluate parses a job's output and builds its result; a non-empty fail is the failure
// (summary line, blank line, excerpt). version is NWChem's, when the output names it.
func (m *Manager) evaluate(dir string, j job.Job) (res api.Result, version, fail, kind string) {
	var molRec moleculeRecord
	b, err := os.ReadFile(filepath.Join(dir, MoleculeFile))
	if err != nil {
		return api.Result{}, version, "job directory damaged: " + err.Error(), "damaged"
	}
	if err := json.Unmarshal(b, &molRec); err != nil {
		return api.Result{}, version, "job directory damaged: read molecule: " + err.Error(), "damaged"
	}

	stdout, err := os.ReadFile(filepath.Join(dir, OutputFile))
	if err != nil {
		return api.Result{}, version, "NWChem wrote no output: " + err.Error(), "no_output"
	}
	stderr, _ := os.ReadFile(filepath.Join(dir, StderrFile))
	out, err := nwchem.Parse(bytes.NewReader(stdout))
	if err != nil {
		return api.Result{}, version, "cannot read NWChem output: " + err.Error(), "unreadable_output"
	}
	version = out.Version

	code, sig := -1, 0
	if j.ExitCode != nil {
		code = *j.ExitCode
		if code > 128 && code < 160 && !out.Finished {
			sig = code - 128
		}
	}
	if f := nwchem.Check(out, stdout, stderr, code, sig, len(molRec.Atoms), true); f != nil {
		msg := f.Summary
		if f.Excerpt != "" {
			msg += "\n\n" + f.Excerpt
		}
		return api.Result{}, version, msg, string(f.Kind)
	}

	ref, err := shifts.For(j.Preset, j.Solvent)
	if err != nil {
		return api.Result{}, version, "no shift reference: " + err.Error(), "no_reference"
	}
	elements := make([]string, len(out.Shieldings))
	sigma := make([]float64, len(out.Shieldings))
	for i, s := range out.Shieldings {
		elements[i] = s.Element
		sigma[i] = s.Isotropic
	}
	atoms := shifts.Compute(ref, elements, sigma, molRec.Groups, molRec.BondedHeavy)
	res = api.Result{
		ID: j.ID, EnergyHartree: out.Energy, Converged: out.OptConverged, Reference: ref.API(),
		Shifts: make([]api.Shift, len(atoms)),
	}
	for i, a := range atoms {
		res.Shifts[i] = api.Shift{Atom: a.Atom, Element: a.Element, Shielding: a.Shielding,
			Shift: a.Shift, BondedTo: a.BondedTo, Group: a.Group}
	}
	return res, version, "", ""
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Cancel ends a job on behalf of uid. A queued job is cancelled at once; a submitted one
// is cancelled in its scheduler first. A finished job cannot be cancelled.
func (m *Manager) Cancel(ctx context.Context, id string, uid int) (job.Job, error) {
	nj, err := m.cancel(ctx, id, fmt.Sprintf("cancelled by uid %d", uid))
	if err == nil {
		m.log.Info("job cancelled", "job", id, "uid", uid)
	}
	return nj, err
}

// cancel ends a job for the given reason, in its scheduler first when it was handed over.
func (m *Manager) cancel(ctx context.Context, id, reason string) (job.Job, error) {
	for attempt := 0; attempt < 5; attempt++ {
		j, err := m.st.Get(ctx, id)
		if err != nil {
			return job.Job{}, err
		}
		if j.State.Terminal() {
			return j, fmt.Errorf("%w: job %s is already %s", ErrFinished, id, j.State)
		}
		if j.State == job.Completing {
			return j, fmt.Errorf("%w: job %s has ended and its results are being read", ErrFinished, id)
		}
		c, _ := m.cluster(j.Cluster)
		if j.Kind == job.KindSearch {
			// A search runs nowhere itself: stopping it is stopping its conformers.
			if err := m.cancelSearch(ctx, j, reason); err != nil {
				return j, fmt.Errorf("cancel the conformers of %s: %w", id, err)
			}
			c = nil
		}
		if j.State != job.Queued && c != nil {
			// A scheduler that does not know the job has nothing to stop. Any other error
			// means the job may still run there, so the cancel is refused rather than
			// recorded: qmd would stop watching a job that goes on using the cluster.
			err := c.sched.Cancel(ctx, m.handle(j))
			if err != nil && !errors.Is(err, scheduler.ErrNotFound) {
				return j, fmt.Errorf("cancel job %s in %s: %w", id, c.name, err)
			}
			if err != nil {
				m.log.Info("cancel: the scheduler does not know the job", "job", id,
					"err", err)
			}
		}
		// Once the scheduler has accepted the cancel it is recorded even if the caller
		// has gone away meanwhile.
		now := time.Now().UTC()
		nj, err := m.st.Transition(context.WithoutCancel(ctx), id, j.State, job.Cancelled,
			reason, store.Update{EndedAt: &now})
		if err == nil {
			if c != nil {
				m.countOutcome(c, job.Cancelled, "user")
				m.forget(c, id)
			}
			return nj, nil
		}
		if !isConflict(err) {
			return job.Job{}, err
		}
	}
	return job.Job{}, fmt.Errorf("cancel %s: the job kept changing state; try again", id)
}
