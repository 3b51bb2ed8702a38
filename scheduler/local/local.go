// Package local is the embedded executor: it runs jobs on this machine, at most Slots at
// once, first in first out. A job's batch script runs in its own process group and records
// its exit status in the job directory, so a restarted qmd can finish or re-adopt it.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
	"qmd/scheduler/runner"
)

// Files the executor and the batch script keep in a job directory.
const (
	StartedFile = "started"     // created before the script starts; a job never starts twice
	ProcFile    = "proc.json"   // pid and start time of the running script
	ExitFile    = "exit_status" // "code unix-time", written by the script as it ends
	WrapperLog  = "logs/wrapper.log"
)

// ReasonInterrupted is the failure reason of a job whose process vanished while qmd was
// down without recording how it ended. It is never re-run silently.
const ReasonInterrupted = "interrupted: qmd stopped while the job ran"

// Options configure an Executor.
type Options struct {
	Slots       int
	CancelGrace time.Duration
	Logger      *slog.Logger
	// Notify, if set, is called when a job starts or ends, so the caller can poll sooner.
	Notify func()
	// Env is added to the environment of every job.
	Env []string
}

// Executor implements scheduler.Scheduler on this machine.
type Executor struct {
	opt  Options
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	queue   []entry
	running map[string]*proc
	done    map[string]scheduler.Status
}

type entry struct {
	jobID, dir, script string
}

type proc struct {
	jobID      string
	dir        string
	script     string
	pid        int
	startTicks uint64
	startedAt  time.Time
	cancelled  bool
	adopted    bool // not our child: qmd restarted while it ran
}

// procRecord is ProcFile's content, and the Meta of a running job.
type procRecord struct {
	PID        int       `json:"pid"`
	StartTicks uint64    `json:"start_ticks"`
	StartedAt  time.Time `json:"started_at"`
	Script     string    `json:"script,omitempty"`
}

// queuedMeta is the Meta of a job not yet started. It names the batch script, because the
// caller stores Meta with the job, and after a restart Recover re-queues the job from the
// handle alone.
type queuedMeta struct {
	Script string `json:"script"`
}

var _ scheduler.Scheduler = (*Executor)(nil)

// New returns an executor; call Run to start dispatching.
func New(opt Options) *Executor {
	if opt.Slots < 1 {
		opt.Slots = 1
	}
	if opt.CancelGrace <= 0 {
		opt.CancelGrace = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{
		opt:     opt,
		log:     opt.Logger,
		wake:    make(chan struct{}, 1),
		running: map[string]*proc{},
		done:    map[string]scheduler.Status{},
	}
}

// Name implements scheduler.Scheduler.
func (e *Executor) Name() string { return "local" }

// SetSlots changes how many jobs run at once; running jobs are not touched.
func (e *Executor) SetSlots(n int) {
	e.mu.Lock()
	e.opt.Slots = max(n, 1)
	e.mu.Unlock()
	e.poke()
}

// Run dispatches queued jobs until ctx ends. Jobs keep running after it returns: a stop of
// qmd never stops a calculation.
func (e *Executor) Run(ctx context.Context) error {
	for {
		e.dispatch()
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		}
	}
}

func (e *Executor) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Executor) notify() {
	if e.opt.Notify != nil {
		e.opt.Notify()
	}
}

// Submit implements scheduler.Scheduler: the job joins the queue's tail.
func (e *Executor) Submit(
	ctx context.Context, req scheduler.SubmitRequest,
) (scheduler.Submission, error) {
	if err := ctx.Err(); err != nil {
		return scheduler.Submission{}, err
	}
	if _, err := os.Stat(filepath.Join(req.Dir, req.Script)); err != nil {
		return scheduler.Submission{},
			fmt.Errorf("%w: batch script: %w", scheduler.ErrRejected, err)
	}
	meta, err := json.Marshal(queuedMeta{Script: req.Script})
	if err != nil {
		return scheduler.Submission{}, fmt.Errorf("encode job meta: %w", err)
	}
	e.mu.Lock()
	e.queue = append(e.queue, entry{jobID: req.JobID, dir: req.Dir, script: req.Script})
	e.mu.Unlock()
	e.poke()
	return scheduler.Submission{State: job.Pending, Meta: string(meta)}, nil
}

// dispatch starts queued jobs while slots are free.
func (e *Executor) dispatch() {
	for {
		e.mu.Lock()
		if len(e.running) >= e.opt.Slots || len(e.queue) == 0 {
			e.mu.Unlock()
			return
		}
		en := e.queue[0]
		e.queue = e.queue[1:]
		p, err := e.start(en)
		if err != nil {
			e.log.Error("start job", "job", en.jobID, "err", err)
			e.done[en.jobID] = scheduler.Status{
				State: job.Failed, Reason: "could not start: " + err.Error(),
			}
		} else {
			e.running[en.jobID] = p
		}
		e.mu.Unlock()
		e.notify()
	}
}

// start launches one job's batch script. The started marker is created exclusively first,
// so that no path, including a crash and restart, runs a job's script twice.
func (e *Executor) start(en entry) (*proc, error) {
	marker, err := os.OpenFile(filepath.Join(en.dir, StartedFile),
		os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("claim job dir: %w", err)
	}
	marker.Close()

	if err := os.MkdirAll(filepath.Join(en.dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("create logs dir: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(en.dir, WrapperLog),
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open wrapper log: %w", err)
	}
	defer logf.Close()

	// Not CommandContext: the calculation must outlive this qmd process, and a cancel is
	// an explicit signal to the job's process group.
	cmd := exec.Command("/bin/sh", en.script)
	cmd.Dir = en.dir
	cmd.Env = append(runner.Environ(os.Environ()), "QMD_JOB_ID="+en.jobID)
	cmd.Env = append(cmd.Env, e.opt.Env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start batch script: %w", err)
	}

	p := &proc{
		jobID: en.jobID, dir: en.dir, script: en.script, pid: cmd.Process.Pid,
		startedAt: time.Now().UTC(),
	}
	if pi, err := readProc(p.pid); err == nil {
		p.startTicks = pi.StartTicks
	}
	rec, _ := json.Marshal(p.record())
	if err := writeFileAtomic(filepath.Join(en.dir, ProcFile), rec); err != nil {
		e.log.Error("record job process", "job", en.jobID, "err", err)
	}
	e.log.Info("job started", "job", en.jobID, "pid", p.pid)

	go func() {
		code, sig := waitStatus(cmd.Wait())
		e.finish(p, code, sig)
	}()
	return p, nil
}

// waitStatus turns Wait's error into an exit code and a signal number.
func waitStatus(err error) (code, sig int) {
	if err == nil {
		return 0, 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, int(ws.Signal())
		}
		return ee.ExitCode(), 0
	}
	return -1, 0
}

// finish records how a job ended. The exit file the script wrote is preferred over what
// Wait saw, because it is also what a restarted qmd would read.
func (e *Executor) finish(p *proc, code, sig int) {
	st := endStatus(p.dir, code, sig)
	e.mu.Lock()
	if p.cancelled {
		st.State = job.Cancelled
		st.Reason = "cancelled"
	}
	delete(e.running, p.jobID)
	e.done[p.jobID] = st
	e.mu.Unlock()
	e.log.Info("job ended", "job", p.jobID, "state", st.State, "reason", st.Reason)
	e.poke()
	e.notify()
}

// endStatus builds the status of an ended job from its exit file, or from code and sig
// (negative code: unknown) when the script could not write one.
func endStatus(dir string, code, sig int) scheduler.Status {
	st := scheduler.Status{State: job.Completing}
	if c, at, err := readExitFile(dir); err == nil {
		st.ExitCode = &c
		st.EndedAt = &at
		st.Reason = fmt.Sprintf("program ended with exit status %d", c)
		return st
	}
	now := time.Now().UTC()
	st.EndedAt = &now
	switch {
	case sig > 0:
		c := 128 + sig
		st.ExitCode = &c
		st.Signal = &sig
		st.Reason = fmt.Sprintf("killed by signal %d", sig)
	case code >= 0:
		st.ExitCode = &code
		st.Reason = fmt.Sprintf(
			"batch script ended with exit status %d without recording it", code)
	default:
		st.State = job.Failed
		st.Reason = "the job's process ended without recording its exit status"
	}
	return st
}

// readExitFile reads ExitFile: "code unix-time".
func readExitFile(dir string) (int, time.Time, error) {
	b, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if err != nil {
		return 0, time.Time{}, err
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, time.Time{}, fmt.Errorf("empty %s", ExitFile)
	}
	code, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("parse %s: %w", ExitFile, err)
	}
	at := time.Now().UTC()
	if len(f) > 1 {
		if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			at = time.Unix(sec, 0).UTC()
		}
	}
	return code, at, nil
}

// Poll implements scheduler.Scheduler. It answers from memory; a job it does not know is
// looked up on disk (its exit file), else left out of the map.
func (e *Executor) Poll(
	ctx context.Context, jobs []scheduler.Handle,
) (map[string]scheduler.Status, error) {
	out := make(map[string]scheduler.Status, len(jobs))
	e.mu.Lock()
	defer e.mu.Unlock()
	queued := make(map[string]bool, len(e.queue))
	for _, en := range e.queue {
		queued[en.jobID] = true
	}
	for _, h := range jobs {
		if p, ok := e.running[h.JobID]; ok {
			out[h.JobID] = runningStatus(p)
			continue
		}
		if queued[h.JobID] {
			out[h.JobID] = scheduler.Status{State: job.Pending}
			continue
		}
		if st, ok := e.done[h.JobID]; ok {
			out[h.JobID] = st
			continue
		}
		if h.Dir != "" {
			if _, err := os.Stat(filepath.Join(h.Dir, ExitFile)); err == nil {
				out[h.JobID] = endStatus(h.Dir, -1, 0)
			}
		}
	}
	return out, nil
}

// Forget drops what the executor remembers of an ended job, once the caller has stored it.
func (e *Executor) Forget(jobID string) {
	e.mu.Lock()
	delete(e.done, jobID)
	e.mu.Unlock()
}

func (p *proc) record() procRecord {
	return procRecord{
		PID: p.pid, StartTicks: p.startTicks, StartedAt: p.startedAt, Script: p.script,
	}
}

func runningStatus(p *proc) scheduler.Status {
	meta, _ := json.Marshal(p.record())
	at := p.startedAt
	return scheduler.Status{
		State:       job.Running,
		SchedulerID: strconv.Itoa(p.pid),
		Meta:        string(meta),
		StartedAt:   &at,
	}
}

// Cancel implements scheduler.Scheduler: a queued job leaves the queue; a running one gets
// SIGTERM on its process group and SIGKILL after the grace period.
func (e *Executor) Cancel(ctx context.Context, h scheduler.Handle) error {
	e.mu.Lock()
	for i, en := range e.queue {
		if en.jobID == h.JobID {
			e.queue = append(e.queue[:i], e.queue[i+1:]...)
			e.done[h.JobID] = scheduler.Status{
				State: job.Cancelled, Reason: "cancelled before it started",
			}
			e.mu.Unlock()
			return nil
		}
	}
	p, ok := e.running[h.JobID]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("cancel %s: %w", h.JobID, scheduler.ErrNotFound)
	}
	p.cancelled = true
	pid, ticks := p.pid, p.startTicks
	e.mu.Unlock()

	if !alive(pid, ticks) {
		return nil
	}
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cancel %s: signal process group %d: %w", h.JobID, pid, err)
	}
	e.log.Info("job signalled", "job", h.JobID, "pid", pid, "signal", "TERM")
	go func() {
		deadline := time.Now().Add(e.opt.CancelGrace)
		for time.Now().Before(deadline) {
			if !groupAlive(pid) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		if groupAlive(pid) {
			e.log.Warn("job ignored SIGTERM; killing", "job", h.JobID, "pid", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
	return nil
}

// groupAlive reports whether any process of the group led by pgid still exists. A zombie
// leader alone does not count, since it is dead and only waiting to be reaped.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, de := range entries {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		pi, err := readProc(pid)
		if err != nil {
			continue
		}
		if pi.PGID == pgid && pi.State != 'Z' && pi.State != 'X' {
			return true
		}
	}
	return false
}

// Recover implements scheduler.Scheduler. For each job left active by an earlier qmd:
// alive → adopted and watched; ended → its exit file decides; never started → queued again
// in the given order; started but unverifiable → failed as interrupted, never re-run.
func (e *Executor) Recover(
	ctx context.Context, jobs []scheduler.Handle,
) (map[string]scheduler.Status, error) {
	out := map[string]scheduler.Status{}
	for _, h := range jobs {
		if h.Dir == "" {
			continue
		}
		st, p, requeue := e.recoverOne(h)
		switch {
		case p != nil:
			e.mu.Lock()
			e.running[h.JobID] = p
			e.mu.Unlock()
			out[h.JobID] = runningStatus(p)
			go e.watch(p)
			e.log.Info("job re-adopted", "job", h.JobID, "pid", p.pid)
		case requeue:
			e.mu.Lock()
			e.queue = append(e.queue, entry{jobID: h.JobID, dir: h.Dir, script: scriptOf(h)})
			e.mu.Unlock()
			out[h.JobID] = scheduler.Status{State: job.Pending}
		default:
			e.mu.Lock()
			e.done[h.JobID] = st
			e.mu.Unlock()
			out[h.JobID] = st
		}
	}
	e.poke()
	return out, nil
}

// scriptOf returns the batch script name stored in a handle's meta (queuedMeta, or a
// procRecord), else "job.sh" for jobs submitted before Meta carried it.
func scriptOf(h scheduler.Handle) string {
	var m queuedMeta
	if json.Unmarshal([]byte(h.Meta), &m) == nil && m.Script != "" {
		return m.Script
	}
	return "job.sh"
}

func (e *Executor) recoverOne(h scheduler.Handle) (scheduler.Status, *proc, bool) {
	b, err := os.ReadFile(filepath.Join(h.Dir, ProcFile))
	if err == nil {
		var rec procRecord
		if json.Unmarshal(b, &rec) == nil && alive(rec.PID, rec.StartTicks) {
			return scheduler.Status{}, &proc{
				jobID: h.JobID, dir: h.Dir, script: rec.Script, pid: rec.PID,
				startTicks: rec.StartTicks, startedAt: rec.StartedAt, adopted: true,
			}, false
		}
	}
	if _, err := os.Stat(filepath.Join(h.Dir, ExitFile)); err == nil {
		return endStatus(h.Dir, -1, 0), nil, false
	}
	now := time.Now().UTC()
	if _, err := os.Stat(filepath.Join(h.Dir, StartedFile)); errors.Is(err, os.ErrNotExist) {
		// Submit checked the script; check again, since dispatching a job whose script
		// is gone would claim its directory for a run that cannot happen.
		if _, err := os.Stat(filepath.Join(h.Dir, scriptOf(h))); err != nil {
			return scheduler.Status{State: job.Failed, EndedAt: &now,
				Reason: "could not start: batch script: " + err.Error()}, nil, false
		}
		return scheduler.Status{}, nil, true
	}
	st := scheduler.Status{State: job.Failed, Reason: ReasonInterrupted, EndedAt: &now}
	return st, nil, false
}

// watch follows an adopted process, which is not our child and cannot be waited for,
// through /proc until it dies.
func (e *Executor) watch(p *proc) {
	for alive(p.pid, p.startTicks) {
		time.Sleep(500 * time.Millisecond)
	}
	st := endStatus(p.dir, -1, 0)
	if st.State == job.Failed {
		st.Reason = "the job's process ended without recording its exit status"
	}
	e.mu.Lock()
	if p.cancelled {
		st.State = job.Cancelled
		st.Reason = "cancelled"
	}
	delete(e.running, p.jobID)
	e.done[p.jobID] = st
	e.mu.Unlock()
	e.poke()
	e.notify()
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
