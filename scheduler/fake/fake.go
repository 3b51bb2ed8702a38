// Package fake is a scripted scheduler for daemon tests. Each job follows a Script (pending
// for two polls, running for one, then exit 0), the scheduler as a whole can be told to
// fail given calls (the fourth Poll, every Submit), and every call is recorded so a test
// can assert how often the manager asked for what. Nothing runs: on the step that ends a
// job, the fake copies fixture files into the job directory, so the manager's finish path
// reads real NWChem output.
//
// A function field per method replaces the scripted behaviour when a test needs something
// the scripts cannot say, such as blocking a Submit until a cancel has raced it.
package fake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"qmd/daemon/job"
	"qmd/scheduler"
)

var _ scheduler.Scheduler = (*Scheduler)(nil)

// Files the fake writes into a job directory when a step names a fixture. They are the
// paths the manager reads a finished job's output from.
const (
	OutputFile = "output/nwchem.out"
	StderrFile = "logs/nwchem.err"
)

// Step is one stage of a job's life as its scheduler reports it.
type Step struct {
	// State is what Poll reports: Pending, Running, Suspended, Completing (the program
	// ended; ExitCode says how) or a state the scheduler itself ended the job in
	// (Failed, Cancelled, Timeout).
	State job.State
	// Polls is how many Poll answers report this step before the next one starts. The
	// last step of a script is reported for ever, whatever Polls says.
	Polls    int
	ExitCode *int
	Reason   string
	// Output and Stderr name fixture files copied to OutputFile and StderrFile the first
	// time the step is reported, as a batch script's redirections would have left them.
	Output, Stderr string
	// Gone makes the job vanish: from this step on Poll leaves it out of its answer, as a
	// scheduler that purged its record would.
	Gone bool
}

// Script is the life of one job, step by step.
type Script []Step

// Pending is a step that reports the job waiting for polls answers.
func Pending(polls int) Step { return Step{State: job.Pending, Polls: polls} }

// Running is a step that reports the job running for polls answers.
func Running(polls int) Step { return Step{State: job.Running, Polls: polls} }

// Exit is the step on which the program ends with code, leaving the fixture output (an
// empty name copies nothing) in the job directory.
func Exit(code int, output, stderr string) Step {
	return Step{State: job.Completing, ExitCode: &code, Output: output, Stderr: stderr,
		Reason: "program ended with exit status " + strconv.Itoa(code)}
}

// EndedBy is a step on which the scheduler itself ends the job, for instance as Timeout.
func EndedBy(state job.State, reason string) Step {
	return Step{State: state, Reason: reason}
}

// Vanish is the step from which the scheduler no longer knows the job.
func Vanish() Step { return Step{Gone: true} }

// Cluster scripts the scheduler as a whole. Maps are keyed by the 1-based number of the
// call to that method, counting every call, so "Poll fails on poll 4" is PollErr[4].
type Cluster struct {
	SubmitErr map[int]error
	PollErr   map[int]error
	CancelErr map[int]error
	// RecoverErr, if set, is returned by every Recover call.
	RecoverErr error
}

// Call is one recorded method call.
type Call struct {
	Method string   // "Submit", "Poll", "Cancel", "Recover" or "Forget"
	JobIDs []string // the jobs named, in the order given
	Err    error    // what the call returned
}

// Options configure a fake.
type Options struct {
	// Name is what Name returns; "fake" when empty.
	Name string
	// Default is the script of a job submitted when no queued script is left; empty means
	// pending for ever.
	Default Script
	Cluster Cluster
}

// Scheduler is the fake. Its zero value is not usable; call New.
type Scheduler struct {
	// Overrides: when set, each replaces the scripted method; the call is still counted
	// and recorded. They are read without a lock, so set them before the fake is shared
	// between goroutines (or from the goroutine that calls the fake).
	SubmitFunc  func(context.Context, scheduler.SubmitRequest) (scheduler.Submission, error)
	PollFunc    func(context.Context, []scheduler.Handle) (map[string]scheduler.Status, error)
	CancelFunc  func(context.Context, scheduler.Handle) error
	RecoverFunc func(context.Context, []scheduler.Handle) (map[string]scheduler.Status, error)

	opt Options

	mu      sync.Mutex
	queued  []Script // scripts for the next submissions, in order
	jobs    map[string]*entry
	calls   []Call
	counts  map[string]int
	nextSID int
	copyErr error
}

// entry is what the fake knows of one job.
type entry struct {
	id, dir, sid string
	script       Script
	step         int // index into script
	seen         int // polls answered within the current step
	cancelled    bool
	forgotten    bool
}

// New returns a fake scheduler.
func New(opt Options) *Scheduler {
	if opt.Name == "" {
		opt.Name = "fake"
	}
	return &Scheduler{opt: opt, jobs: map[string]*entry{}, counts: map[string]int{}}
}

// Queue gives the next submissions these scripts, one each, in submission order.
func (f *Scheduler) Queue(scripts ...Script) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, scripts...)
}

// Adopt makes the fake know a job that was submitted before the test began, as a real
// cluster keeps running jobs while qmd restarts. Recover and Poll then report it.
func (f *Scheduler) Adopt(jobID, dir, schedulerID string, s Script) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[jobID] = &entry{id: jobID, dir: dir, sid: schedulerID, script: s}
}

// Name implements scheduler.Scheduler.
func (f *Scheduler) Name() string { return f.opt.Name }

// Submit implements scheduler.Scheduler. It refuses, with ErrRejected, a job whose batch
// script is missing, as a real scheduler would, so a manager that submits before the job
// directory is in place fails its tests.
func (f *Scheduler) Submit(ctx context.Context, req scheduler.SubmitRequest) (
	scheduler.Submission, error) {
	n := f.begin("Submit")
	if f.SubmitFunc != nil {
		sub, err := f.SubmitFunc(ctx, req)
		f.record("Submit", []string{req.JobID}, err)
		return sub, err
	}
	sub, err := f.submit(ctx, n, req)
	f.record("Submit", []string{req.JobID}, err)
	return sub, err
}

func (f *Scheduler) submit(ctx context.Context, n int, req scheduler.SubmitRequest) (
	scheduler.Submission, error) {
	if err := ctx.Err(); err != nil {
		return scheduler.Submission{}, err
	}
	if err := f.opt.Cluster.SubmitErr[n]; err != nil {
		return scheduler.Submission{}, err
	}
	if _, err := os.Stat(filepath.Join(req.Dir, req.Script)); err != nil {
		return scheduler.Submission{}, fmt.Errorf("%w: batch script: %w",
			scheduler.ErrRejected, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.jobs[req.JobID]; dup {
		// A second submission of one job is the duplicate the daemon must never make;
		// refusing it makes the test that provoked it fail loudly.
		return scheduler.Submission{}, fmt.Errorf("%w: job %s submitted twice",
			scheduler.ErrRejected, req.JobID)
	}
	s := f.opt.Default
	if len(f.queued) > 0 {
		s, f.queued = f.queued[0], f.queued[1:]
	}
	f.nextSID++
	e := &entry{id: req.JobID, dir: req.Dir, sid: strconv.Itoa(f.nextSID), script: s}
	f.jobs[req.JobID] = e
	return scheduler.Submission{SchedulerID: e.sid, State: job.Pending}, nil
}

// Poll implements scheduler.Scheduler. Each job it reports moves one poll along its
// script; a failed call moves none.
func (f *Scheduler) Poll(ctx context.Context, hs []scheduler.Handle) (
	map[string]scheduler.Status, error) {
	n := f.begin("Poll")
	ids := handleIDs(hs)
	if f.PollFunc != nil {
		out, err := f.PollFunc(ctx, hs)
		f.record("Poll", ids, err)
		return out, err
	}
	out, err := f.poll(ctx, n, hs)
	f.record("Poll", ids, err)
	return out, err
}

func (f *Scheduler) poll(ctx context.Context, n int, hs []scheduler.Handle) (
	map[string]scheduler.Status, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.opt.Cluster.PollErr[n]; err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]scheduler.Status, len(hs))
	var errs []error
	for _, h := range hs {
		e, ok := f.jobs[h.JobID]
		if !ok {
			continue
		}
		st, ok, err := e.observe()
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			out[h.JobID] = st
		}
	}
	if len(errs) > 0 {
		// A fixture that cannot be copied is a broken test, not a scheduler outage;
		// it is kept for Err as well, since the manager only logs Poll errors.
		f.copyErr = errors.Join(f.copyErr, errors.Join(errs...))
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// observe reports the job's current step and moves it on by one poll.
func (e *entry) observe() (scheduler.Status, bool, error) {
	if e.cancelled {
		return scheduler.Status{State: job.Cancelled, SchedulerID: e.sid,
			Reason: "cancelled in the fake scheduler"}, true, nil
	}
	if len(e.script) == 0 {
		return scheduler.Status{State: job.Pending, SchedulerID: e.sid}, true, nil
	}
	s := e.script[e.step]
	if e.seen == 0 {
		if err := e.copyFixtures(s); err != nil {
			return scheduler.Status{}, false, err
		}
	}
	e.seen++
	if e.step < len(e.script)-1 && e.seen >= s.Polls {
		e.step, e.seen = e.step+1, 0
	}
	if s.Gone {
		return scheduler.Status{}, false, nil
	}
	st := scheduler.Status{State: s.State, SchedulerID: e.sid, Reason: s.Reason}
	if s.ExitCode != nil {
		code := *s.ExitCode
		st.ExitCode = &code
	}
	return st, true, nil
}

// copyFixtures leaves a step's fixture files where the batch script would have.
func (e *entry) copyFixtures(s Step) error {
	for _, c := range []struct{ from, to string }{
		{s.Output, OutputFile}, {s.Stderr, StderrFile},
	} {
		if c.from == "" {
			continue
		}
		data, err := os.ReadFile(c.from)
		if err != nil {
			return fmt.Errorf("fake: job %s: read fixture: %w", e.id, err)
		}
		dst := filepath.Join(e.dir, c.to)
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return fmt.Errorf("fake: job %s: %w", e.id, err)
		}
		if err := os.WriteFile(dst, data, 0o640); err != nil {
			return fmt.Errorf("fake: job %s: %w", e.id, err)
		}
	}
	return nil
}

// Cancel implements scheduler.Scheduler. A known job reports Cancelled from the next poll
// on; an unknown one wraps ErrNotFound, as scancel of a purged id would.
func (f *Scheduler) Cancel(ctx context.Context, h scheduler.Handle) error {
	n := f.begin("Cancel")
	if f.CancelFunc != nil {
		err := f.CancelFunc(ctx, h)
		f.record("Cancel", []string{h.JobID}, err)
		return err
	}
	err := f.cancel(ctx, n, h)
	f.record("Cancel", []string{h.JobID}, err)
	return err
}

func (f *Scheduler) cancel(ctx context.Context, n int, h scheduler.Handle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.opt.Cluster.CancelErr[n]; err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.jobs[h.JobID]
	if !ok {
		return fmt.Errorf("fake: cancel %s: %w", h.JobID, scheduler.ErrNotFound)
	}
	if !e.ended() {
		e.cancelled = true
	}
	return nil
}

// ended reports whether the job's program has already ended as far as its scheduler
// has said; a cancel then changes nothing, as on a real cluster.
func (e *entry) ended() bool {
	if e.step == 0 && e.seen == 0 || len(e.script) == 0 {
		return false
	}
	cur := e.script[e.step]
	if e.seen == 0 {
		cur = e.script[e.step-1] // the step just left is the last one reported
	}
	return cur.State == job.Completing || cur.State.Terminal()
}

// Recover implements scheduler.Scheduler: jobs the fake knows (submitted to it, or given
// with Adopt) are reported as Poll would, without moving along their scripts; others are
// left out. A known job takes the directory named in its handle, so fixtures of an
// adopted job land where the restarted manager looks for them.
func (f *Scheduler) Recover(ctx context.Context, hs []scheduler.Handle) (
	map[string]scheduler.Status, error) {
	f.begin("Recover")
	ids := handleIDs(hs)
	if f.RecoverFunc != nil {
		out, err := f.RecoverFunc(ctx, hs)
		f.record("Recover", ids, err)
		return out, err
	}
	out, err := f.recover(ctx, hs)
	f.record("Recover", ids, err)
	return out, err
}

func (f *Scheduler) recover(ctx context.Context, hs []scheduler.Handle) (
	map[string]scheduler.Status, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.opt.Cluster.RecoverErr; err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]scheduler.Status{}
	for _, h := range hs {
		e, ok := f.jobs[h.JobID]
		if !ok {
			continue
		}
		if h.Dir != "" {
			e.dir = h.Dir
		}
		peek := *e
		if st, ok, err := peek.observe(); err == nil && ok {
			out[h.JobID] = st
		}
	}
	return out, nil
}

// Forget is the optional method the manager calls once it has stored a job's end. The
// fake records it and otherwise keeps the job, so tests can still inspect it.
func (f *Scheduler) Forget(jobID string) {
	f.begin("Forget")
	f.mu.Lock()
	if e, ok := f.jobs[jobID]; ok {
		e.forgotten = true
	}
	f.mu.Unlock()
	f.record("Forget", []string{jobID}, nil)
}

// begin counts a call and returns its 1-based number for the method.
func (f *Scheduler) begin(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[method]++
	return f.counts[method]
}

func (f *Scheduler) record(method string, ids []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Method: method, JobIDs: ids, Err: err})
}

func handleIDs(hs []scheduler.Handle) []string {
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.JobID
	}
	return ids
}

// Calls returns every call so far, in the order they returned.
func (f *Scheduler) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Count returns how many times method was called.
func (f *Scheduler) Count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[method]
}

// CallsFor returns how many calls of method named jobID.
func (f *Scheduler) CallsFor(method, jobID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Method == method && slices.Contains(c.JobIDs, jobID) {
			n++
		}
	}
	return n
}

// Known reports whether the fake holds jobID (submitted or adopted).
func (f *Scheduler) Known(jobID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.jobs[jobID]
	return ok
}

// Forgotten reports whether the manager called Forget for jobID.
func (f *Scheduler) Forgotten(jobID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.jobs[jobID]
	return ok && e.forgotten
}

// Err returns the fixture copy failures seen so far. Tests check it at the end, because
// the manager treats a failed Poll as "could not ask" and only logs it.
func (f *Scheduler) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.copyErr
}
