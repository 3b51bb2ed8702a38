package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
	"qmd/scheduler/runner"
)

// ErrTransient marks an answer that says nothing about the job: a timeout, an unreachable
// controller, output that does not parse. The caller changes nothing and asks again later.
var ErrTransient = errors.New("slurm did not answer")

// Options configure a Backend.
type Options struct {
	Runner runner.Runner
	Logger *slog.Logger
	// SubmitTimeout and QueryTimeout bound each sbatch and each squeue/sacct/scancel.
	SubmitTimeout, QueryTimeout time.Duration
	// Location is the cluster's time zone, in which sacct prints and reads times.
	Location *time.Location
	// ExitFile is the file the batch script writes its exit status into, relative to the
	// job directory; read when accounting is disabled.
	ExitFile string
}

// Backend implements scheduler.Scheduler with sbatch, squeue, sacct and scancel.
type Backend struct {
	opt Options
	log *slog.Logger

	mu           sync.Mutex
	noAccounting bool // sacct said accounting is disabled; warned once
	warnedNoAcct bool
}

var _ scheduler.Scheduler = (*Backend)(nil)

// New returns a Slurm backend.
func New(opt Options) *Backend {
	if opt.Runner == nil {
		opt.Runner = runner.Local{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.SubmitTimeout <= 0 {
		opt.SubmitTimeout = 60 * time.Second
	}
	if opt.QueryTimeout <= 0 {
		opt.QueryTimeout = 30 * time.Second
	}
	if opt.Location == nil {
		opt.Location = time.Local
	}
	if opt.ExitFile == "" {
		opt.ExitFile = "exit_status"
	}
	return &Backend{opt: opt, log: opt.Logger}
}

// Name implements scheduler.Scheduler.
func (b *Backend) Name() string { return "slurm" }

// meta is what qmd keeps with a Slurm job: the cluster sbatch named, and when the job was
// submitted, which bounds sacct's window so an older job with a recycled id is ignored.
type meta struct {
	Cluster     string    `json:"cluster,omitempty"`
	SubmittedAt time.Time `json:"submitted_at"`
}

func (b *Backend) run(ctx context.Context, argv []string, dir string, timeout time.Duration,
	user *runner.Credential) (runner.Result, error) {
	res, err := b.opt.Runner.Run(ctx, runner.Command{Argv: argv, Dir: dir, Timeout: timeout,
		Env: Env(), User: user})
	var ce *runner.CommandError
	if err != nil && !errors.As(err, &ce) {
		// The command could not run or did not finish: nothing is known.
		return res, fmt.Errorf("%w: %s: %w", ErrTransient, argv[0], err)
	}
	return res, nil
}

// sbatchArgv builds the submission. The job name is always Tag(req.JobID), not req.Tag:
// Recover finds a job whose sbatch answer was lost by that name alone (a Handle carries
// no tag), so any other name, an empty one included, would get the job submitted twice.
func (b *Backend) sbatchArgv(req scheduler.SubmitRequest) []string {
	return SbatchArgs(Tag(req.JobID), []string{"--chdir=" + req.Dir},
		filepath.Join(req.Dir, req.Script))
}

// Submit implements scheduler.Scheduler. A refusal wraps scheduler.ErrRejected; any other
// failure wraps ErrTransient, and the job may exist: reconcile by its tag before retrying.
func (b *Backend) Submit(ctx context.Context, req scheduler.SubmitRequest) (scheduler.Submission, error) {
	now := time.Now()
	res, err := b.run(ctx, b.sbatchArgv(req), req.Dir, b.opt.SubmitTimeout, req.Owner)
	if err != nil {
		return scheduler.Submission{}, fmt.Errorf("submit %s: %w", req.JobID, err)
	}
	rec := ParseSbatch(res.Stdout, res.Stderr, res.ExitCode)
	switch rec.Outcome {
	case OutcomeSubmitted:
		m, _ := json.Marshal(meta{Cluster: rec.Cluster, SubmittedAt: now})
		return scheduler.Submission{SchedulerID: rec.ID, Meta: string(m), State: job.Pending}, nil
	case OutcomeRejected:
		return scheduler.Submission{}, fmt.Errorf("%w: %s", scheduler.ErrRejected, rec.Reason)
	}
	return scheduler.Submission{}, fmt.Errorf("submit %s: %w: %s", req.JobID, ErrTransient, rec.Reason)
}

// Poll implements scheduler.Scheduler: one squeue for the active jobs, then sacct for the
// ones that left the queue, each chunked to MaxIDsPerCall ids. A job leaves the active set
// only on a terminal state from accounting.
func (b *Backend) Poll(ctx context.Context, handles []scheduler.Handle) (map[string]scheduler.Status, error) {
	// Jobs run as their owners are asked about as their owners: one group per user, each
	// polled in chunks, so calls stay O(1) in the number of jobs per user.
	return scheduler.PollByOwner(ctx, handles, b.pollGroup)
}

// pollGroup polls jobs that share one owner (or none).
func (b *Backend) pollGroup(ctx context.Context, handles []scheduler.Handle) (map[string]scheduler.Status, error) {
	var user *runner.Credential
	if len(handles) > 0 {
		user = handles[0].Owner
	}
	byID := map[string]scheduler.Handle{}
	var ids []string
	for _, h := range handles {
		if h.SchedulerID == "" {
			continue
		}
		byID[h.SchedulerID] = h
		ids = append(ids, h.SchedulerID)
	}
	out := map[string]scheduler.Status{}
	if len(ids) == 0 {
		return out, nil
	}

	queued := map[string]Record{}
	for _, chunk := range Chunk(ids, MaxIDsPerCall) {
		// --array lists each array task on its own line: without it squeue folds pending
		// tasks into one "N_[0-2]" line, no asked id matches, and sacct has no line for
		// a task that never started, so a pending task would look forgotten.
		argv := append(SqueueArgs(chunk), "--array")
		res, err := b.run(ctx, argv, "", b.opt.QueryTimeout, user)
		if err != nil {
			return nil, err
		}
		recs := ParseSqueue(res.Stdout, res.Stderr, res.ExitCode)
		for _, r := range recs {
			switch r.Outcome {
			case OutcomeJob:
				queued[r.ID] = r
			case OutcomeUnknownJob:
				// squeue names no id when the only one asked about is gone.
			default:
				return nil, fmt.Errorf("%w: squeue: %s", ErrTransient, r.Reason)
			}
		}
	}

	// Every job is confirmed with accounting, also those squeue still shows as ended:
	// squeue carries no exit code.
	var gone []string
	since := time.Time{}
	unknown := false // a job without a submission time: the window must reach far back
	for _, id := range ids {
		r, ok := queued[id]
		if ok && !r.State.Terminal() {
			out[byID[id].JobID] = liveStatus(r)
			continue
		}
		gone = append(gone, id)
		t := submittedAt(byID[id].Meta)
		unknown = unknown || t.IsZero()
		if !t.IsZero() && (since.IsZero() || t.Before(since)) {
			since = t
		}
	}
	if len(gone) == 0 {
		return out, nil
	}
	// The window starts at the earliest submission, but a job whose meta has no time
	// would fall outside it unseen, poll after poll, and end as lost.
	if fallback := time.Now().Add(-7 * 24 * time.Hour); since.IsZero() ||
		(unknown && fallback.Before(since)) {
		since = fallback
	}
	since = since.Add(-time.Minute).In(b.opt.Location)

	for _, chunk := range Chunk(gone, MaxIDsPerCall) {
		res, err := b.run(ctx, SacctArgs(chunk, since), "", b.opt.QueryTimeout, user)
		if err != nil {
			return nil, err
		}
		recs := ParseSacctIn(res.Stdout, res.Stderr, res.ExitCode, b.opt.Location)
		for _, r := range recs {
			switch r.Outcome {
			case OutcomeJob:
				h, ok := byID[r.ID]
				if !ok {
					continue
				}
				if t := submittedAt(h.Meta); r.Submit != nil && !t.IsZero() &&
					r.Submit.Before(t.Add(-2*time.Minute)) {
					continue // an older job that had the same id
				}
				out[h.JobID] = accountedStatus(r)
			case OutcomeAccountingDisabled:
				b.accountingDisabled()
				for _, id := range chunk {
					if st, ok := b.fromExitFile(byID[id]); ok {
						out[byID[id].JobID] = st
					}
				}
			case OutcomeUnknownJob:
			default:
				return nil, fmt.Errorf("%w: sacct: %s", ErrTransient, r.Reason)
			}
		}
	}
	return out, nil
}

func (b *Backend) accountingDisabled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.noAccounting = true
	if !b.warnedNoAcct {
		b.warnedNoAcct = true
		b.log.Warn("slurm accounting is disabled; job ends are read from the exit-status file")
	}
}

// fromExitFile reads the exit status the batch script wrote, when accounting cannot say.
func (b *Backend) fromExitFile(h scheduler.Handle) (scheduler.Status, bool) {
	data, err := os.ReadFile(filepath.Join(h.Dir, b.opt.ExitFile))
	if err != nil {
		return scheduler.Status{}, false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return scheduler.Status{}, false
	}
	code, err := strconv.Atoi(f[0])
	if err != nil {
		return scheduler.Status{}, false
	}
	return scheduler.Status{State: job.Completing, ExitCode: &code,
		Reason: fmt.Sprintf("batch script recorded exit status %d (no accounting)", code)}, true
}

func submittedAt(m string) time.Time {
	var md meta
	if json.Unmarshal([]byte(m), &md) != nil {
		return time.Time{}
	}
	return md.SubmittedAt
}

// liveStatus is a job squeue still shows. Slurm's COMPLETING means the job's processes
// are still being ended, so it is reported as running until accounting confirms the end.
func liveStatus(r Record) scheduler.Status {
	st := r.State
	if st == job.Completing {
		st = job.Running
	}
	return scheduler.Status{State: st, Reason: r.Reason, SchedulerID: r.ID}
}

// accountedStatus turns an accounting record into a status. A job whose program ran to
// its end (COMPLETED or FAILED with an exit code) goes to completing, so its NWChem output
// decides; endings imposed by Slurm map to their own states.
func accountedStatus(r Record) scheduler.Status {
	st := scheduler.Status{State: r.State, ExitCode: r.ExitCode, Signal: r.Signal,
		StartedAt: r.Start, EndedAt: r.End}
	if !r.Terminal {
		if st.State == job.Completing {
			st.State = job.Running
		}
		st.Reason = r.Reason
		return st
	}
	switch {
	case r.State == job.Completed:
		st.State = job.Completing
		st.Reason = "slurm: COMPLETED"
	case r.State == job.Failed && r.RawState == "FAILED" && r.Signal != nil && *r.Signal != 0:
		st.Reason = fmt.Sprintf("slurm: FAILED: the batch script was killed by signal %d",
			*r.Signal)
	case r.State == job.Failed && r.RawState == "FAILED":
		// The program ran and exited non-zero: its output says why.
		st.State = job.Completing
		st.Reason = fmt.Sprintf("slurm: FAILED, exit code %s", intOr(r.ExitCode))
	case r.State == job.Failed:
		st.Reason = "slurm: " + r.RawState
		if r.RawState == "OUT_OF_MEMORY" {
			st.Reason = "slurm: OUT_OF_MEMORY: the job exceeded its memory limit"
		}
	case r.State == job.Cancelled:
		st.Reason = "slurm: " + r.RawState
	case r.State == job.Timeout:
		st.Reason = "slurm: " + r.RawState + ": the job reached its time limit"
	default:
		st.Reason = "slurm: " + r.RawState
	}
	return st
}

func intOr(p *int) string {
	if p == nil {
		return "unknown"
	}
	return strconv.Itoa(*p)
}

// Cancel implements scheduler.Scheduler. An id Slurm no longer knows, or a job already
// ending, is not an error.
func (b *Backend) Cancel(ctx context.Context, h scheduler.Handle) error {
	if h.SchedulerID == "" {
		return fmt.Errorf("cancel %s: %w", h.JobID, scheduler.ErrNotFound)
	}
	res, err := b.run(ctx, ScancelArgs([]string{h.SchedulerID}), "", b.opt.QueryTimeout,
		h.Owner)
	if err != nil {
		return fmt.Errorf("cancel %s: %w", h.JobID, err)
	}
	for _, r := range ParseScancel(res.Stdout, res.Stderr, res.ExitCode) {
		switch r.Outcome {
		case OutcomeOK, OutcomeUnknownJob:
		default:
			return fmt.Errorf("cancel %s: %w: %s", h.JobID, ErrTransient, r.Reason)
		}
	}
	return nil
}

// Recover implements scheduler.Scheduler. A job with a Slurm id is polled; a job left in
// submitting is looked up by its tag (the job name): found → adopted with its id; not
// found in squeue nor in accounting → left out of the answer, so the caller submits it.
// Any failure to ask is an error, and nothing is submitted.
func (b *Backend) Recover(ctx context.Context, handles []scheduler.Handle) (map[string]scheduler.Status, error) {
	return scheduler.RecoverByTag(ctx, handles, b.Poll, b.lookupTag)
}

// Tag is the Slurm job name that names a qmd job.
func Tag(jobID string) string { return "qmd-" + jobID }

// lookupWindow is how far back a job is looked for by name, and so the earliest time an
// adopted job can have been submitted.
const lookupWindow = 30 * 24 * time.Hour

// lookupTag finds a job by the name Submit gave it. A job squeue lists as live is adopted
// at once; one it lists as ended, or does not list, is read from accounting, which knows
// the exit code. What it returns always carries the Slurm id when one is known.
func (b *Backend) lookupTag(ctx context.Context, h scheduler.Handle) (scheduler.Status, bool, error) {
	tag := Tag(h.JobID)
	// The job cannot have been submitted before the search window opened, and without a
	// better bound that is what its meta records: a later time would make the next poll
	// drop the job's own accounting line as a recycled id's.
	since := time.Now().Add(-lookupWindow)
	res, err := b.run(ctx, SqueueByNameArgs(tag), "", b.opt.QueryTimeout, h.Owner)
	if err != nil {
		return scheduler.Status{}, false, err
	}
	ended := "" // id of a job squeue lists by the name as already ended
	for _, r := range ParseSqueue(res.Stdout, res.Stderr, res.ExitCode) {
		switch r.Outcome {
		case OutcomeJob:
			if r.State.Terminal() {
				// squeue shows how a job ended only until MinJobAge, and never its
				// exit code: ask accounting, as Poll does.
				ended = r.ID
				continue
			}
			st := liveStatus(r)
			st.Reason = "adopted Slurm job " + r.ID + " found by its name " + tag
			return adopted(h, st, since), true, nil
		case OutcomeUnknownJob:
		default:
			return scheduler.Status{}, false, fmt.Errorf("%w: squeue --name: %s", ErrTransient, r.Reason)
		}
	}

	res, err = b.run(ctx, SacctByNameArgs(tag, since.In(b.opt.Location)), "",
		b.opt.QueryTimeout, h.Owner)
	if err != nil {
		return scheduler.Status{}, false, err
	}
	for _, r := range ParseSacctIn(res.Stdout, res.Stderr, res.ExitCode, b.opt.Location) {
		switch r.Outcome {
		case OutcomeJob:
			st := accountedStatus(r)
			st.SchedulerID = r.ID
			submitted := since
			if r.Submit != nil {
				submitted = *r.Submit
			}
			return adopted(h, st, submitted), true, nil
		case OutcomeAccountingDisabled:
			b.accountingDisabled()
			if st, ok := b.fromExitFile(h); ok {
				st.SchedulerID = ended
				return adopted(h, st, since), true, nil
			}
			// squeue did not show it and accounting cannot say: a job that ended
			// meanwhile would be submitted twice, so refuse to guess.
			_, err := os.Stat(filepath.Join(h.Dir, "started"))
			if ended == "" && err == nil {
				return scheduler.Status{State: job.Lost,
					Reason: "no accounting to tell whether the job was submitted"}, true, nil
			}
		case OutcomeUnknownJob:
		default:
			return scheduler.Status{}, false, fmt.Errorf("%w: sacct --name: %s", ErrTransient, r.Reason)
		}
	}
	if ended != "" {
		// Accounting has no line yet (slurmdbd lags the controller), but the job exists:
		// adopt its id, and the next poll reads its end.
		st := scheduler.Status{State: job.Pending, SchedulerID: ended,
			Reason: "adopted Slurm job " + ended + " found by its name " + tag +
				"; it has ended, and the next poll reads how"}
		return adopted(h, st, since), true, nil
	}
	return scheduler.Status{}, false, nil
}

// adopted finishes the status of a job found by name: its meta, and a state the job can
// move to from the one it is stored in. A job in submitting cannot move straight to
// completed, timeout or suspended, and a status the store refuses would leave the job in
// submitting, looked up again every cycle; such a job is adopted as pending with its
// Slurm id, and the next poll reports the real state.
func adopted(h scheduler.Handle, st scheduler.Status, submitted time.Time) scheduler.Status {
	m, _ := json.Marshal(meta{SubmittedAt: submitted})
	st.Meta = string(m)
	from := h.State
	if from == "" {
		from = job.Submitting
	}
	if st.State != from && !job.CanMove(from, st.State) && st.SchedulerID != "" {
		st.Reason = fmt.Sprintf("adopted Slurm job %s found by its name %s; it is %s, "+
			"which the next poll reports", st.SchedulerID, Tag(h.JobID), st.State)
		st.State = job.Pending
		st.ExitCode, st.Signal = nil, nil
	}
	return st
}
