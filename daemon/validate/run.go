package validate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"qmd/ctl/api"
	"qmd/ctl/client"
	"qmd/daemon"
	"qmd/daemon/chem"
	"qmd/daemon/config"
	"qmd/daemon/shifts"
	"qmd/scheduler/runner"
)

// Options for Run.
type Options struct {
	Set     *Set
	SetName string // the set file's base name, for the report and the resume keys
	Preset  string
	Solvent string
	// All runs every molecule instead of the set's default subset; Names picks molecules.
	All   bool
	Names []string
	// Socket is a running qmd to submit to (any of its clusters, see Cluster). When empty,
	// Run starts its own qmd on WorkDir with the local executor.
	Socket  string
	Cluster string
	// WorkDir keeps what lets a later run resume: the embedded daemon's state and the
	// record of which job computed which molecule.
	WorkDir  string
	Slots    int // local executor slots of the embedded daemon
	MPIRanks int // ranks per job of the embedded daemon
	Obabel   string
	// Conformers is ModeSingle, ModeSearch, or ModeBoth: each molecule both ways, the
	// conformer average reported as method MethodConformers next to the single geometry.
	Conformers string
	// Timeout bounds the wait for the jobs; zero waits as long as they run.
	Timeout time.Duration
	// RetryFailed submits again molecules whose earlier job failed or was cancelled.
	RetryFailed bool
	Log         *slog.Logger
	Progress    io.Writer
}

// Conformer treatments a run can ask for.
const (
	ModeSingle = "single"
	ModeSearch = "search"
	ModeBoth   = "both"
)

// entry records the job that computes one molecule, so that a later run reuses it.
type entry struct {
	JobID string `json:"job_id"`
	XYZ   string `json:"xyz"`
}

// Run computes the selected molecules (reusing results a previous run with the same
// WorkDir left) and returns the report. A molecule whose job fails is reported as such;
// the run fails only when nothing could be compared.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	mols, err := o.Set.Select(o.All, o.Names)
	if err != nil {
		return nil, err
	}
	// Absolute, because the embedded qmd's config resolves relative paths against its
	// own directory, which is the work dir itself.
	if o.WorkDir, err = filepath.Abs(o.WorkDir); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	unlock, err := lockDir(o.WorkDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c := &client.Client{Socket: o.Socket}
	if o.Socket == "" {
		stop, sock, err := startDaemon(ctx, o)
		if err != nil {
			return nil, err
		}
		defer stop()
		c.Socket = sock
	}

	ledgerPath := filepath.Join(o.WorkDir, "jobs.json")
	ledger, err := readLedger(ledgerPath)
	if err != nil {
		return nil, err
	}
	// Every molecule's geometry and groups are checked before anything is submitted, so
	// a mistake in the set costs seconds, not the calculations before it.
	geoms := make([]string, len(mols))
	charges := make([]*int, len(mols))
	var problems []error
	for i, m := range mols {
		mol, err := Geometry(ctx, o.Obabel, m)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", m.Name, err))
			continue
		}
		if err := CheckGroups(m, TopologyOf(mol)); err != nil {
			problems = append(problems, err)
			continue
		}
		geoms[i], charges[i] = chem.FormatXYZ(m.SMILES, mol.Atoms), mol.Charge
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("the set does not fit its molecules; nothing was submitted:\n%w",
			err)
	}

	modes := []string{o.Conformers}
	if o.Conformers == ModeBoth {
		modes = []string{ModeSingle, ModeSearch}
	}
	type task struct {
		mol         int
		mode, label string
		key, id     string
	}
	var tasks []task
	for i, m := range mols {
		for _, mode := range modes {
			t := task{mol: i, mode: mode, label: m.Name, key: o.key(m, mode)}
			if len(modes) > 1 {
				t.label += " (" + mode + ")"
			}
			if e, ok := ledger[t.key]; ok && o.reusable(ctx, c, e.JobID) {
				t.id = e.JobID
				fmt.Fprintf(o.Progress, "%-36s job %s (from an earlier run)\n", t.label, t.id)
				tasks = append(tasks, t)
				continue
			}
			e, err := o.submit(ctx, c, m, geoms[t.mol], charges[t.mol], mode)
			if err != nil {
				return nil, fmt.Errorf("submit %s: %w", t.label, err)
			}
			ledger[t.key] = e
			if err := writeLedger(ledgerPath, ledger); err != nil {
				return nil, err
			}
			t.id = e.JobID
			fmt.Fprintf(o.Progress, "%-36s job %s submitted\n", t.label, t.id)
			tasks = append(tasks, t)
		}
	}
	labels := make([]string, len(tasks))
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		labels[i], ids[i] = t.label, t.id
	}

	jobs, waitErr := o.wait(ctx, c, labels, ids)
	if jobs == nil {
		return nil, waitErr
	}
	// After a timeout or an interrupt the results so far still make a report.
	ctx = context.WithoutCancel(ctx)

	rep := newReport(o)
	var mr *MoleculeResult
	for i, t := range tasks {
		m, j := mols[t.mol], jobs[i]
		errText := ""
		if j.Error != nil {
			errText = firstLine(*j.Error)
		}
		if !ended(j.State) {
			errText = "not finished when the report was written"
		}
		if t.mode == modes[0] {
			rep.Molecules = append(rep.Molecules, MoleculeResult{Name: m.Name,
				SMILES: m.SMILES, JobID: t.id, State: j.State, Error: errText,
				Canonical: canonical(ctx, o.Obabel, m.SMILES)})
			mr = &rep.Molecules[len(rep.Molecules)-1]
			if j.State == "completed" {
				if err := rep.addResult(ctx, c, m, ledger[t.key], mr); err != nil {
					mr.Error = err.Error()
				}
			}
		} else {
			mr.Search = &SearchResult{JobID: t.id, State: j.State, Error: errText}
			if j.State == "completed" && len(mr.Groups) > 0 {
				if err := rep.addSearch(ctx, c, m, ledger[t.key], mr); err != nil {
					mr.Search.Error = err.Error()
				}
			}
		}
		if rep.Software == "" && j.Software != "" {
			rep.Software = j.Software
		}
		if rep.Level == "" && j.Level != "" {
			rep.Level = j.Level
		}
	}
	rep.summarise()
	if waitErr != nil {
		rep.Partial = true
		return rep, waitErr
	}
	if rep.compared() == 0 {
		return rep, errors.New("no molecule could be compared: every job failed (see the report)")
	}
	return rep, nil
}

// key identifies a computation in the ledger by what determines its result: the
// molecule (its SMILES and given geometry, not its name, so two sets holding the same
// compound share one calculation), level, solvent, conformer treatment and cluster.
func (o Options) key(m Molecule, mode string) string {
	h := sha256.Sum256([]byte(m.SMILES + "\x00" + strings.TrimSpace(m.XYZ)))
	return strings.Join([]string{hex.EncodeToString(h[:8]), o.Preset, o.Solvent, mode,
		o.Cluster}, "|")
}

// reusable reports whether an earlier job can stand for this run: it exists and has not
// failed (or failures are not to be retried).
func (o Options) reusable(ctx context.Context, c *client.Client, id string) bool {
	j, err := c.Get(ctx, id)
	if err != nil {
		return false
	}
	if j.State == "failed" || j.State == "cancelled" || j.State == "lost" ||
		j.State == "timeout" {
		return !o.RetryFailed
	}
	return true
}

// submit builds the molecule's geometry and submits it as XYZ, so the atom order the
// comparison relies on is the one submitted, whatever converted it.
func (o Options) submit(ctx context.Context, c *client.Client, m Molecule, xyz string,
	charge *int, mode string) (entry, error) {
	req := api.SubmitRequest{Name: JobName(m.Name), Format: "xyz", Content: xyz,
		Preset: o.Preset, Solvent: o.Solvent, Cluster: o.Cluster, Charge: charge,
		Conformers: mode}
	resp, err := c.Submit(ctx, req)
	if err != nil {
		return entry{}, err
	}
	return entry{JobID: resp.ID, XYZ: xyz}, nil
}

// Geometry returns the molecule's starting geometry: the set's XYZ when it has one, else
// Open Babel's from the SMILES (heavy atoms in SMILES order, then hydrogens).
func Geometry(ctx context.Context, obabel string, m Molecule) (chem.Molecule, error) {
	if strings.TrimSpace(m.XYZ) != "" {
		mols, err := chem.Parse("xyz", []byte(m.XYZ))
		if err != nil {
			return chem.Molecule{}, fmt.Errorf("xyz of %s: %w", m.Name, err)
		}
		if len(mols) != 1 {
			return chem.Molecule{}, fmt.Errorf("xyz of %s holds %d molecules", m.Name, len(mols))
		}
		zero := 0
		mols[0].Charge = &zero
		return mols[0], nil
	}
	return chem.FromSMILES(ctx, runner.Local{}, obabel, m.SMILES)
}

// JobName turns a molecule name into a job name qmd accepts.
func JobName(name string) string {
	var b strings.Builder
	b.WriteString("val-")
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			strings.ContainsRune("-_.+", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// wait polls the jobs until each has ended.
func (o Options) wait(ctx context.Context, c *client.Client, labels []string,
	ids []string) ([]api.Job, error) {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	jobs := make([]api.Job, len(ids))
	last := make([]string, len(ids))
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		open := 0
		for i, id := range ids {
			if ended(jobs[i].State) {
				continue
			}
			j, err := c.Get(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("ask qmd about job %s (%s): %w", id, labels[i], err)
			}
			jobs[i] = j
			if j.State != last[i] {
				fmt.Fprintf(o.Progress, "%-36s %s\n", labels[i], j.State)
				last[i] = j.State
			}
			if !ended(j.State) {
				open++
			}
		}
		if open == 0 {
			return jobs, nil
		}
		select {
		case <-ctx.Done():
			// What has finished is still worth a report; the rest resumes next time.
			return jobs, fmt.Errorf("waiting for %d jobs: %w (they keep running; run "+
				"again with the same work dir to resume)", open, ctx.Err())
		case <-tick.C:
		}
	}
}

func ended(state string) bool {
	switch state {
	case "completed", "failed", "cancelled", "timeout", "lost":
		return true
	}
	return false
}

// startDaemon runs a qmd with the local executor on o.WorkDir in this process and
// returns how to stop it and its socket.
func startDaemon(ctx context.Context, o Options) (func(), string, error) {
	state := filepath.Join(o.WorkDir, "state")
	// A socket path must fit in 108 bytes; the work dir may be deep.
	sockDir, err := os.MkdirTemp("", "qmd-validate-")
	if err != nil {
		return nil, "", fmt.Errorf("socket dir: %w", err)
	}
	sock := filepath.Join(sockDir, "qmd.sock")
	slots, ranks := max(o.Slots, 1), max(o.MPIRanks, 1)
	conf := fmt.Sprintf("state_dir = %q\nsocket = %q\nmetrics_listen = \"\"\n"+
		"socket_mode = \"0600\"\n\n[clusters.local]\nslots = %d\nmpi_ranks = %d\n"+
		"poll_interval = \"1s\"\n", state, sock, slots, ranks)
	if o.Obabel != "" {
		conf = fmt.Sprintf("obabel = %q\n", o.Obabel) + conf
	}
	path := filepath.Join(o.WorkDir, "qmd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, "", fmt.Errorf("write qmd config: %w", err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, "", err
	}
	logf, err := os.OpenFile(filepath.Join(o.WorkDir, "qmd.log"),
		os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("open qmd log: %w", err)
	}
	log := slog.New(slog.NewTextHandler(logf, nil))
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- daemon.Run(dctx, cfg, log, daemon.Options{ConfigPath: path}) }()
	stop := func() {
		cancel()
		<-done
		logf.Close()
		os.RemoveAll(sockDir)
	}
	c := &client.Client{Socket: sock}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.Version(ctx); err == nil {
			return stop, sock, nil
		}
		select {
		case err := <-done:
			done <- err
			stop()
			return nil, "", fmt.Errorf("qmd did not start (log in %s): %v", o.WorkDir, err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", fmt.Errorf("qmd did not answer on %s within 30 s", sock)
		}
	}
}

func readLedger(path string) (map[string]entry, error) {
	out := map[string]entry{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// writeLedger replaces the file atomically, so an interrupted run never leaves a
// half-written record of its jobs.
func writeLedger(path string, l map[string]entry) error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

// canonical returns Open Babel's canonical SMILES, used to keep test molecules out of a
// fit whatever SMILES each set wrote them with; "" when Open Babel fails.
func canonical(ctx context.Context, obabel, smiles string) string {
	if obabel == "" {
		obabel = "obabel"
	}
	if chem.CheckSMILES(smiles) != nil {
		return ""
	}
	res, err := runner.Local{}.Run(ctx, runner.Command{
		Argv: []string{obabel, "-:" + smiles, "-ocan"}, Timeout: 30 * time.Second})
	if err != nil {
		return ""
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// references returns every reference the report compares, keyed by method name.
func references(preset, solvent string) map[string]shifts.Reference {
	refs := map[string]shifts.Reference{}
	qmd, err := shifts.For(preset, solvent)
	if err == nil {
		refs[MethodQMD] = qmd
	}
	// The method qmd applies is listed once, as qmd's.
	if r, ok := shifts.TMS(preset, solvent); ok && (err != nil || qmd.Method != MethodTMS) {
		refs[MethodTMS] = r
	}
	if r, ok := shifts.Linear(preset, solvent); ok && (err != nil || qmd.Method != MethodLinear) {
		refs[MethodLinear] = r
	}
	return refs
}

// lockDir takes an exclusive lock on dir, so two runs never start two daemons on one
// state directory.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock work dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("work dir %s is in use by another qmd validate (%v)", dir, err)
	}
	return func() { f.Close() }, nil
}
