package slurm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
	"qmd/scheduler/runner"
)

// fakeReply is one scripted answer of a fake Slurm command.
type fakeReply struct {
	stdout, stderr string
	exit           int
	// err, when set, is returned as the runner's error: the command could not run or did
	// not finish (a context deadline), which is not the same as a non-zero exit.
	err error
}

// fakeRunner is a runner.Runner that answers by program name (argv[0]) and records every
// call. Scripted replies are used in order and the last one repeats, so a file can say
// "sacct has nothing twice, then COMPLETED". A program with an answer func is answered by
// it instead, for replies that depend on the ids asked about; it runs with mu held, so it
// must not call the fakeRunner's methods. A program with neither is "not found", which
// the backend must treat as a failure to ask.
type fakeRunner struct {
	mu      sync.Mutex
	replies map[string][]fakeReply
	answer  map[string]func(runner.Command) fakeReply
	calls   []runner.Command
}

var _ runner.Runner = (*fakeRunner)(nil)

func newFakeRunner() *fakeRunner {
	return &fakeRunner{replies: map[string][]fakeReply{},
		answer: map[string]func(runner.Command) fakeReply{}}
}

// Run implements runner.Runner the way runner.Local reports outcomes: a non-zero exit is
// a *runner.CommandError next to a Result that carries the exit code.
func (f *fakeRunner) Run(_ context.Context, c runner.Command) (runner.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.Argv, c.Env = slices.Clone(c.Argv), slices.Clone(c.Env)
	f.calls = append(f.calls, c)

	prog := c.Argv[0]
	var r fakeReply
	switch q := f.replies[prog]; {
	case f.answer[prog] != nil:
		r = f.answer[prog](c)
	case len(q) > 0:
		r = q[0]
		if len(q) > 1 {
			f.replies[prog] = q[1:]
		}
	default:
		return runner.Result{}, fmt.Errorf("run %s: executable file not found in $PATH", prog)
	}

	res := runner.Result{Stdout: []byte(r.stdout), Stderr: []byte(r.stderr), ExitCode: r.exit}
	if r.err != nil {
		return res, fmt.Errorf("run %s: %w", prog, r.err)
	}
	if r.exit != 0 {
		return res, &runner.CommandError{Program: prog, ExitCode: r.exit, Stderr: r.stderr}
	}
	return res, nil
}

// callsTo returns the recorded calls of one program, in order.
func (f *fakeRunner) callsTo(prog string) []runner.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runner.Command
	for _, c := range f.calls {
		if c.Argv[0] == prog {
			out = append(out, c)
		}
	}
	return out
}

// callCount returns how many commands ran.
func (f *fakeRunner) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fakeErrors are the runner errors a reply file can name with err=.
var fakeErrors = map[string]error{
	"deadline": context.DeadlineExceeded,
	"canceled": context.Canceled,
}

// loadFake reads testdata/backend/NAME. The format keeps captured outputs verbatim:
//
//	# comment lines, before the first reply
//	== PROGRAM [exit=N] [err=deadline|canceled]
//	stdout lines
//	-- stderr
//	stderr lines
//
// Each "==" line starts one reply of PROGRAM; replies of a program are used in order.
func loadFake(t *testing.T, name string) *fakeRunner {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "backend", name))
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeRunner()
	var prog string
	var cur *fakeReply
	toStderr := false
	flush := func() {
		if cur != nil {
			f.replies[prog] = append(f.replies[prog], *cur)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "== "):
			flush()
			fields := strings.Fields(line[3:])
			prog, cur, toStderr = fields[0], &fakeReply{}, false
			for _, opt := range fields[1:] {
				k, v, _ := strings.Cut(opt, "=")
				switch k {
				case "exit":
					if cur.exit, err = strconv.Atoi(v); err != nil {
						t.Fatalf("%s:%d: %v", name, n, err)
					}
				case "err":
					if cur.err = fakeErrors[v]; cur.err == nil {
						t.Fatalf("%s:%d: unknown err=%s", name, n, v)
					}
				default:
					t.Fatalf("%s:%d: unknown option %q", name, n, opt)
				}
			}
		case cur == nil:
			if line != "" && !strings.HasPrefix(line, "#") {
				t.Fatalf("%s:%d: text before the first reply", name, n)
			}
		case line == "-- stderr":
			toStderr = true
		case toStderr:
			cur.stderr += line + "\n"
		default:
			cur.stdout += line + "\n"
		}
	}
	flush()
	if len(f.replies) == 0 {
		t.Fatalf("%s: no replies", name)
	}
	return f
}

// newTestBackend returns a backend on f that reads times as UTC, as the files are written.
func newTestBackend(f runner.Runner, log *slog.Logger) *Backend {
	return New(Options{Runner: f, Logger: log, Location: time.UTC,
		SubmitTimeout: 7 * time.Second, QueryTimeout: 3 * time.Second})
}

// metaAt is a job's stored Slurm meta, submitted at t.
func metaAt(t time.Time) string {
	b, _ := json.Marshal(meta{SubmittedAt: t})
	return string(b)
}

// argValue returns the value of --name=value in argv, and whether it is there.
func argValue(argv []string, name string) (string, bool) {
	for _, a := range argv {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// checkEnv fails unless every command ran with SLURM_TIME_FORMAT=standard, the variable
// the sacct times are read under.
func checkEnv(t *testing.T, f *fakeRunner) {
	t.Helper()
	for _, c := range f.calls {
		if !slices.Contains(c.Env, "SLURM_TIME_FORMAT=standard") {
			t.Errorf("%s ran with Env %q, want SLURM_TIME_FORMAT=standard", c.Argv[0], c.Env)
		}
	}
}

func TestSubmit(t *testing.T) {
	tests := []struct {
		file      string
		id        string // "" when no submission is expected
		cluster   string
		rejected  bool
		transient bool
		cause     error // an error the result must also wrap
	}{
		{file: "submit_id.txt", id: "4242"},
		{file: "submit_id_cluster.txt", id: "4243", cluster: "qmdtest"},
		{file: "submit_site_lines.txt", id: "4244"},
		{file: "submit_invalid_partition.txt", rejected: true},
		{file: "submit_socket_timeout.txt", transient: true},
		{file: "submit_no_id.txt", transient: true},
		{file: "submit_deadline.txt", transient: true, cause: context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			f := loadFake(t, tc.file)
			b := newTestBackend(f, nil)
			dir := t.TempDir()
			before := time.Now()
			sub, err := b.Submit(t.Context(), scheduler.SubmitRequest{
				JobID: "0a1b2c3d4e5f", Dir: dir, Script: "job.sh", Tag: "qmd-0a1b2c3d4e5f",
			})

			calls := f.callsTo("sbatch")
			if len(calls) != 1 {
				t.Fatalf("sbatch ran %d times, want once", len(calls))
			}
			c := calls[0]
			for _, want := range []string{"--parsable", "--job-name=qmd-0a1b2c3d4e5f",
				"--chdir=" + dir} {
				if !slices.Contains(c.Argv, want) {
					t.Errorf("argv %q lacks %s", c.Argv, want)
				}
			}
			if last := c.Argv[len(c.Argv)-1]; last != filepath.Join(dir, "job.sh") {
				t.Errorf("argv ends with %q, want the script path (options after it would "+
					"be the script's own arguments)", last)
			}
			if c.Dir != dir || c.Timeout != 7*time.Second {
				t.Errorf("ran in %q with timeout %s, want %q and 7s", c.Dir, c.Timeout, dir)
			}
			checkEnv(t, f)

			switch {
			case tc.rejected:
				if !errors.Is(err, scheduler.ErrRejected) || errors.Is(err, ErrTransient) {
					t.Fatalf("err = %v, want ErrRejected only", err)
				}
			case tc.transient:
				if !errors.Is(err, ErrTransient) || errors.Is(err, scheduler.ErrRejected) {
					t.Fatalf("err = %v, want ErrTransient only", err)
				}
				if tc.cause != nil && !errors.Is(err, tc.cause) {
					t.Errorf("err = %v, want it to wrap %v", err, tc.cause)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if sub.SchedulerID != tc.id || sub.State != job.Pending {
					t.Errorf("submission %+v, want id %s pending", sub, tc.id)
				}
				var m meta
				if err := json.Unmarshal([]byte(sub.Meta), &m); err != nil {
					t.Fatalf("meta %q: %v", sub.Meta, err)
				}
				if m.Cluster != tc.cluster || m.SubmittedAt.Before(before.Add(-time.Second)) ||
					m.SubmittedAt.After(time.Now()) {
					t.Errorf("meta %+v, want cluster %q and a submission time of now",
						m, tc.cluster)
				}
			}
		})
	}
}

// TestSubmitNamesJobByID: the job name is the one Recover looks for, whatever Tag says,
// since a job whose name Recover cannot find would be submitted a second time.
func TestSubmitNamesJobByID(t *testing.T) {
	for _, tag := range []string{"", "something-else"} {
		f := loadFake(t, "submit_id.txt")
		b := newTestBackend(f, nil)
		_, err := b.Submit(t.Context(), scheduler.SubmitRequest{
			JobID: "0a1b2c3d4e5f", Dir: t.TempDir(), Script: "job.sh", Tag: tag,
		})
		if err != nil {
			t.Fatal(err)
		}
		name, _ := argValue(f.callsTo("sbatch")[0].Argv, "--job-name")
		if name != Tag("0a1b2c3d4e5f") {
			t.Errorf("Tag %q: --job-name=%s, want %s", tag, name, Tag("0a1b2c3d4e5f"))
		}
	}
}

// pollFiles is the handles of poll_states.txt: jNNN has Slurm id NNN. All were submitted
// at 09:00 except j106, the earliest of those that left the queue, and j101, earlier
// still but in the queue, so it must not widen sacct's window.
func pollFiles(t *testing.T) []scheduler.Handle {
	t.Helper()
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	var hs []scheduler.Handle
	for id := 101; id <= 114; id++ {
		sub := at
		switch id {
		case 101:
			sub = at.Add(-3 * time.Hour)
		case 106:
			sub = at.Add(-30 * time.Minute)
		}
		hs = append(hs, scheduler.Handle{JobID: fmt.Sprintf("j%d", id), Dir: t.TempDir(),
			SchedulerID: strconv.Itoa(id), Meta: metaAt(sub), State: job.Running})
	}
	return hs
}

func TestPollStates(t *testing.T) {
	f := loadFake(t, "poll_states.txt")
	b := newTestBackend(f, nil)
	got, err := b.Poll(t.Context(), pollFiles(t))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		job    string
		absent bool
		state  job.State
		exit   int // checked when >= 0
		reason string
	}{
		{job: "j101", state: job.Pending, exit: -1, reason: "Priority"},
		{job: "j102", state: job.Running, exit: -1},
		{job: "j103", state: job.Suspended, exit: -1},
		{job: "j104", state: job.Running, exit: -1},
		{job: "j105", state: job.Completing, exit: 0},
		{job: "j106", state: job.Completing, exit: 3},
		{job: "j107", state: job.Failed, exit: -1, reason: "signal 9"},
		{job: "j108", state: job.Timeout, exit: -1},
		{job: "j109", state: job.Cancelled, exit: -1},
		{job: "j110", state: job.Failed, exit: -1, reason: "OUT_OF_MEMORY"},
		{job: "j111", state: job.Failed, exit: -1, reason: "NODE_FAIL"},
		{job: "j112", state: job.Pending, exit: -1},
		{job: "j113", absent: true},
		{job: "j114", absent: true},
	}
	for _, tc := range tests {
		t.Run(tc.job, func(t *testing.T) {
			st, ok := got[tc.job]
			if tc.absent {
				if ok {
					t.Fatalf("reported %+v, want no status", st)
				}
				return
			}
			if !ok {
				t.Fatalf("no status, want %s", tc.state)
			}
			if st.State != tc.state {
				t.Errorf("state %s, want %s (reason %q)", st.State, tc.state, st.Reason)
			}
			if tc.exit >= 0 && (st.ExitCode == nil || *st.ExitCode != tc.exit) {
				t.Errorf("exit code %v, want %d", st.ExitCode, tc.exit)
			}
			if !strings.Contains(st.Reason, tc.reason) {
				t.Errorf("reason %q, want it to say %q", st.Reason, tc.reason)
			}
		})
	}
	if len(got) != 12 {
		t.Errorf("%d statuses, want 12: %v", len(got), got)
	}

	squeue, sacct := f.callsTo("squeue"), f.callsTo("sacct")
	if len(squeue) != 1 || len(sacct) != 1 {
		t.Fatalf("%d squeue and %d sacct calls, want one each", len(squeue), len(sacct))
	}
	wantIDs := "105,106,107,108,109,110,111,112,113,114"
	if ids, _ := argValue(sacct[0].Argv, "--jobs"); ids != wantIDs {
		t.Errorf("sacct --jobs=%s, want %s: only the jobs that left the queue", ids, wantIDs)
	}
	start, _ := argValue(sacct[0].Argv, "--starttime")
	since, err := time.ParseInLocation(TimeLayout, start, time.UTC)
	earliest := time.Date(2026, 12, 4, 8, 30, 0, 0, time.UTC)
	if err != nil || since.After(earliest) || since.Before(earliest.Add(-10*time.Minute)) {
		t.Errorf("--starttime=%s, want a little before j106's submission %s", start,
			earliest.Format(TimeLayout))
	}
	checkEnv(t, f)
}

// clusterFake answers squeue and sacct for n jobs with ids 1000..1000+n-1, the way a real
// Slurm does: squeue lists the asked ids that are queued, or says "Invalid job id" when
// the one id it was asked about is gone; sacct has a COMPLETED line for each ended id.
func clusterFake(queued bool) *fakeRunner {
	f := newFakeRunner()
	ids := func(c runner.Command) []string {
		v, _ := argValue(c.Argv, "--jobs")
		return strings.Split(v, ",")
	}
	f.answer["squeue"] = func(c runner.Command) fakeReply {
		asked := ids(c)
		if !queued {
			if len(asked) == 1 {
				return fakeReply{exit: 1,
					stderr: "slurm_load_jobs error: Invalid job id specified\n"}
			}
			return fakeReply{}
		}
		var b strings.Builder
		for _, id := range asked {
			fmt.Fprintf(&b, "%s|RUNNING|None\n", id)
		}
		return fakeReply{stdout: b.String()}
	}
	f.answer["sacct"] = func(c runner.Command) fakeReply {
		var b strings.Builder
		for _, id := range ids(c) {
			fmt.Fprintf(&b, "%s|COMPLETED|0:0|2026-12-04T09:00:00|2026-12-04T09:00:01|"+
				"2026-12-04T09:01:00|qmd-x\n", id)
		}
		return fakeReply{stdout: b.String()}
	}
	return f
}

// TestPollCallCount: the calls per poll grow with the number of chunks, not of jobs.
func TestPollCallCount(t *testing.T) {
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for _, n := range []int{1, 100, 101, 250} {
		for _, queued := range []bool{true, false} {
			t.Run(fmt.Sprintf("n=%d/queued=%t", n, queued), func(t *testing.T) {
				hs := make([]scheduler.Handle, n)
				for i := range hs {
					hs[i] = scheduler.Handle{JobID: fmt.Sprintf("j%d", i),
						SchedulerID: strconv.Itoa(1000 + i), Meta: metaAt(at)}
				}
				f := clusterFake(queued)
				got, err := newTestBackend(f, nil).Poll(t.Context(), hs)
				if err != nil {
					t.Fatal(err)
				}

				chunks := (n + MaxIDsPerCall - 1) / MaxIDsPerCall
				limit, want := chunks+1, job.Running
				if !queued {
					limit, want = 2*chunks, job.Completing
				}
				if c := f.callCount(); c > limit {
					t.Errorf("%d calls, want at most %d", c, limit)
				}
				for _, c := range f.calls {
					v, _ := argValue(c.Argv, "--jobs")
					if k := len(strings.Split(v, ",")); k > MaxIDsPerCall {
						t.Errorf("%s asked about %d ids, more than %d", c.Argv[0], k,
							MaxIDsPerCall)
					}
				}
				if len(got) != n {
					t.Fatalf("%d statuses, want %d", len(got), n)
				}
				for id, st := range got {
					if st.State != want {
						t.Fatalf("%s: %s, want %s", id, st.State, want)
					}
				}
			})
		}
	}
}

// TestPollCannotAsk: when squeue or sacct cannot be asked, Poll returns an error and no
// status at all, not even for the jobs an earlier chunk did observe.
func TestPollCannotAsk(t *testing.T) {
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	hs := []scheduler.Handle{
		{JobID: "a", SchedulerID: "501", Meta: metaAt(at)},
		{JobID: "b", SchedulerID: "502", Meta: metaAt(at)},
	}
	for _, file := range []string{"poll_squeue_unreachable.txt", "poll_squeue_timeout.txt",
		"poll_squeue_deadline.txt", "poll_sacct_transient.txt"} {
		t.Run(strings.TrimSuffix(file, ".txt"), func(t *testing.T) {
			got, err := newTestBackend(loadFake(t, file), nil).Poll(t.Context(), hs)
			if !errors.Is(err, ErrTransient) {
				t.Errorf("err = %v, want ErrTransient", err)
			}
			if len(got) != 0 {
				t.Errorf("statuses %v next to an error, want none", got)
			}
		})
	}

	t.Run("second_chunk_fails", func(t *testing.T) {
		var many []scheduler.Handle
		for i := 0; i < 150; i++ {
			many = append(many, scheduler.Handle{JobID: fmt.Sprintf("j%d", i),
				SchedulerID: strconv.Itoa(1000 + i), Meta: metaAt(at)})
		}
		f := clusterFake(true)
		ok := f.answer["squeue"]
		f.answer["squeue"] = func(c runner.Command) fakeReply {
			if len(f.calls) > 1 {
				return fakeReply{exit: 1, stderr: "slurm_load_jobs error: Unable to " +
					"contact slurm controller (connect failure)\n"}
			}
			return ok(c)
		}
		got, err := newTestBackend(f, nil).Poll(t.Context(), many)
		if err == nil || len(got) != 0 {
			t.Errorf("got %d statuses and err %v, want none and an error", len(got), err)
		}
	})
}

// TestPollWithoutAccounting: on a cluster with no accounting the end comes from the exit
// status file the batch script writes, and the warning is logged once, not every poll.
func TestPollWithoutAccounting(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f := loadFake(t, "poll_accounting_disabled.txt")
	b := newTestBackend(f, log)

	ended, running := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ended, "exit_status"), []byte("3 1764838800\n"),
		0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	hs := []scheduler.Handle{
		{JobID: "ended", Dir: ended, SchedulerID: "601", Meta: metaAt(at)},
		{JobID: "vanished", Dir: running, SchedulerID: "602", Meta: metaAt(at)},
	}
	for poll := 1; poll <= 3; poll++ {
		got, err := b.Poll(t.Context(), hs)
		if err != nil {
			t.Fatalf("poll %d: %v", poll, err)
		}
		st, ok := got["ended"]
		if !ok || st.State != job.Completing || st.ExitCode == nil || *st.ExitCode != 3 {
			t.Errorf("poll %d: ended job %+v, want completing with exit 3", poll, st)
		}
		if st, ok := got["vanished"]; ok {
			t.Errorf("poll %d: a job with no exit status file reported %+v", poll, st)
		}
	}
	if n := strings.Count(logs.String(), "accounting is disabled"); n != 1 {
		t.Errorf("warning logged %d times in three polls, want once:\n%s", n, logs.String())
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		file    string
		wantErr error // nil: success
	}{
		{"cancel_ok.txt", nil},
		{"cancel_gone.txt", nil},
		{"cancel_gone_exit1.txt", nil},
		{"cancel_completing.txt", nil},
		{"cancel_unreachable.txt", ErrTransient},
		{"cancel_deadline.txt", ErrTransient},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			f := loadFake(t, tc.file)
			err := newTestBackend(f, nil).Cancel(t.Context(),
				scheduler.Handle{JobID: "c1", SchedulerID: "4242"})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			calls := f.callsTo("scancel")
			if len(calls) != 1 || !slices.Contains(calls[0].Argv, "4242") {
				t.Errorf("scancel calls %v, want one naming 4242", calls)
			}
		})
	}

	t.Run("no_id", func(t *testing.T) {
		f := newFakeRunner()
		err := newTestBackend(f, nil).Cancel(t.Context(), scheduler.Handle{JobID: "c2"})
		if !errors.Is(err, scheduler.ErrNotFound) || f.callCount() != 0 {
			t.Errorf("err = %v after %d calls, want ErrNotFound and no call", err,
				f.callCount())
		}
	})
}

func TestRecover(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		handle   scheduler.Handle
		started  bool // the job directory holds a "started" file
		exitFile string
		wantErr  bool
		found    bool
		id       string // Slurm id the status must carry ("" when found by id already)
		state    job.State
		exit     int // checked when >= 0
	}{
		{name: "with_id", file: "recover_known.txt", found: true, state: job.Running,
			exit: -1, handle: scheduler.Handle{SchedulerID: "4310", State: job.Running,
				Meta: metaAt(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))}},
		{name: "in_squeue", file: "recover_squeue_found.txt", found: true, id: "4300",
			state: job.Pending, exit: -1},
		{name: "in_sacct", file: "recover_sacct_found.txt", found: true, id: "4301",
			state: job.Completing, exit: 0},
		{name: "in_neither", file: "recover_neither.txt"},
		{name: "squeue_transient", file: "recover_squeue_transient.txt", wantErr: true},
		{name: "sacct_transient", file: "recover_sacct_transient.txt", wantErr: true},
		{name: "no_accounting_started", file: "recover_no_accounting.txt", started: true,
			found: true, state: job.Lost, exit: -1},
		{name: "no_accounting_ended", file: "recover_no_accounting.txt", started: true,
			exitFile: "0 1764838800\n", found: true, state: job.Completing, exit: 0},
		{name: "no_accounting_never_started", file: "recover_no_accounting.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := loadFake(t, tc.file)
			h := tc.handle
			h.JobID, h.Dir = "r"+tc.name, t.TempDir()
			if h.State == "" {
				h.State = job.Submitting
			}
			if tc.started {
				if err := os.WriteFile(filepath.Join(h.Dir, "started"), []byte("1\n"),
					0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.exitFile != "" {
				if err := os.WriteFile(filepath.Join(h.Dir, "exit_status"),
					[]byte(tc.exitFile), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			got, err := newTestBackend(f, nil).Recover(t.Context(), []scheduler.Handle{h})
			if n := len(f.callsTo("sbatch")); n != 0 {
				t.Fatalf("Recover ran sbatch %d times; it never submits", n)
			}
			if tc.wantErr {
				if !errors.Is(err, ErrTransient) || len(got) != 0 {
					t.Fatalf("got %v, %v; want ErrTransient and nothing", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, ok := got[h.JobID]
			if ok != tc.found {
				t.Fatalf("found = %t (%+v), want %t", ok, st, tc.found)
			}
			if !ok {
				return
			}
			if h.SchedulerID == "" {
				if name, _ := argValue(f.calls[0].Argv, "--name"); name != Tag(h.JobID) {
					t.Errorf("looked up --name=%s, want %s", name, Tag(h.JobID))
				}
			}
			if st.SchedulerID != tc.id && tc.id != "" {
				t.Errorf("adopted Slurm id %q, want %q", st.SchedulerID, tc.id)
			}
			if tc.state != "" && st.State != tc.state {
				t.Errorf("state %s, want %s (%s)", st.State, tc.state, st.Reason)
			}
			if tc.exit >= 0 && (st.ExitCode == nil || *st.ExitCode != tc.exit) {
				t.Errorf("exit code %v, want %d", st.ExitCode, tc.exit)
			}
			if st.State != h.State && !job.CanMove(h.State, st.State) {
				t.Errorf("%s → %s is not a move the store accepts", h.State, st.State)
			}
			if tc.id != "" && submittedAt(st.Meta).IsZero() {
				t.Errorf("adopted without a submission time in its meta %q", st.Meta)
			}
		})
	}
}

// TestRecoverAdoptsEndedJobs: a job found by name that has already ended is adopted with
// its Slurm id in a state the store can move a submitting job to, and the next poll,
// which asks accounting, reads how it ended.
func TestRecoverAdoptsEndedJobs(t *testing.T) {
	for _, tc := range []struct {
		file string
		id   string
		end  string // the sacct line the next poll reads
		want job.State
	}{
		{"recover_squeue_ended.txt", "4302", "4302|COMPLETED|0:0|2026-12-04T09:00:00|" +
			"2026-12-04T09:00:02|2026-12-04T09:10:00|qmd-x\n", job.Completing},
		{"recover_sacct_timeout.txt", "4303", "4303|TIMEOUT|0:0|2026-12-04T09:00:00|" +
			"2026-12-04T09:00:02|2026-12-04T10:00:30|qmd-x\n", job.Timeout},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			f := loadFake(t, tc.file)
			b := newTestBackend(f, nil)
			h := scheduler.Handle{JobID: "ended", Dir: t.TempDir(), State: job.Submitting}
			got, err := b.Recover(t.Context(), []scheduler.Handle{h})
			if err != nil {
				t.Fatal(err)
			}
			st, ok := got[h.JobID]
			if !ok || st.SchedulerID != tc.id {
				t.Fatalf("status %+v (found %t), want adopted as %s", st, ok, tc.id)
			}
			if !job.CanMove(job.Submitting, st.State) {
				t.Fatalf("adopted as %s, which a submitting job cannot move to", st.State)
			}
			if st.State == job.Completing && st.ExitCode == nil {
				t.Errorf("completing without an exit code: squeue does not know it")
			}

			f.replies["squeue"] = []fakeReply{{}}
			f.replies["sacct"] = []fakeReply{{stdout: tc.end}}
			h.SchedulerID, h.Meta, h.State = st.SchedulerID, st.Meta, st.State
			polled, err := b.Poll(t.Context(), []scheduler.Handle{h})
			if err != nil {
				t.Fatal(err)
			}
			if end := polled[h.JobID]; end.State != tc.want {
				t.Errorf("next poll: %+v, want %s", end, tc.want)
			}
		})
	}
}

// TestRecoverThenPollOldJob: a job adopted by name may have been submitted long before qmd
// came back. Its accounting line must not be dropped as a recycled id's afterwards.
func TestRecoverThenPollOldJob(t *testing.T) {
	f := loadFake(t, "recover_squeue_found.txt")
	b := newTestBackend(f, nil)
	h := scheduler.Handle{JobID: "old", Dir: t.TempDir(), State: job.Submitting}
	got, err := b.Recover(t.Context(), []scheduler.Handle{h})
	if err != nil {
		t.Fatal(err)
	}
	st := got[h.JobID]
	h.SchedulerID, h.Meta, h.State = st.SchedulerID, st.Meta, st.State

	sub := time.Now().UTC().Add(-6 * time.Hour).Format(TimeLayout)
	end := time.Now().UTC().Add(-time.Minute).Format(TimeLayout)
	f.replies["squeue"] = []fakeReply{{}}
	f.replies["sacct"] = []fakeReply{{stdout: "4300|COMPLETED|0:0|" + sub + "|" + sub + "|" +
		end + "|qmd-old\n"}}
	polled, err := b.Poll(t.Context(), []scheduler.Handle{h})
	if err != nil {
		t.Fatal(err)
	}
	if st := polled[h.JobID]; st.State != job.Completing {
		t.Errorf("after adoption, a job submitted 6 h ago reads %+v, want completing", st)
	}
}

// TestRecoverNoAccountingLogsOnce: the accounting warning is shared with Poll.
func TestRecoverNoAccountingLogsOnce(t *testing.T) {
	var logs bytes.Buffer
	b := newTestBackend(loadFake(t, "recover_no_accounting.txt"),
		slog.New(slog.NewTextHandler(&logs, nil)))
	for i := 0; i < 3; i++ {
		h := scheduler.Handle{JobID: fmt.Sprintf("n%d", i), Dir: t.TempDir(),
			State: job.Submitting}
		if _, err := b.Recover(t.Context(), []scheduler.Handle{h}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "accounting is disabled"); n != 1 {
		t.Errorf("warning logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestBackendSL07: after sbatch times out having created the job, qmd finds the job by
// its name and adopts it; it submits again only when neither squeue nor sacct knows the
// name. Either way the cluster ends with exactly one job.
func TestBackendSL07(t *testing.T) {
	sl05 := "sbatch: error: Batch job submission failed: Socket timed out on send/recv " +
		"operation\n"
	c := behaviourCase(t, "SL-07")

	for _, tc := range []struct {
		name    string
		created bool // the timed-out sbatch created the job
	}{{"created", true}, {"not_created", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var jobs []string // the cluster's jobs, by name
			sbatchRuns := 0
			f := newFakeRunner()
			f.answer["sbatch"] = func(cmd runner.Command) fakeReply {
				name, _ := argValue(cmd.Argv, "--job-name")
				sbatchRuns++
				first := sbatchRuns == 1
				if first && !tc.created {
					return fakeReply{exit: 1, stderr: sl05}
				}
				jobs = append(jobs, name)
				if first {
					return fakeReply{exit: 1, stderr: sl05}
				}
				return fakeReply{stdout: "3310344\n"}
			}
			f.answer["squeue"] = func(cmd runner.Command) fakeReply {
				name, _ := argValue(cmd.Argv, "--name")
				if slices.Contains(jobs, name) {
					return fakeReply{stdout: c.Stdout, stderr: c.Stderr, exit: c.ExitCode}
				}
				return fakeReply{}
			}
			f.replies["sacct"] = []fakeReply{{}}
			b := newTestBackend(f, nil)

			// What the manager does with a job in submitting: submit; after a transient
			// error, ask by name; submit again only when the answer is "unknown".
			h := scheduler.Handle{JobID: "7f3a", Dir: t.TempDir(), State: job.Submitting}
			req := scheduler.SubmitRequest{JobID: h.JobID, Dir: h.Dir, Script: "job.sh",
				Tag: Tag(h.JobID)}
			var id string
			for attempt := 0; attempt < 3 && id == ""; attempt++ {
				sub, err := b.Submit(t.Context(), req)
				if err == nil {
					id = sub.SchedulerID
					break
				}
				if !errors.Is(err, ErrTransient) {
					t.Fatalf("submit: %v, want a transient error", err)
				}
				got, err := b.Recover(t.Context(), []scheduler.Handle{h})
				if err != nil {
					t.Fatal(err)
				}
				if st, ok := got[h.JobID]; ok {
					id = st.SchedulerID
				}
			}

			if len(jobs) != 1 {
				t.Fatalf("the cluster holds %d jobs %q, want exactly one", len(jobs), jobs)
			}
			want := "3310344"
			if tc.created {
				want = "3310343" // the case's squeue answer
			}
			if id != want {
				t.Errorf("job adopted as %q, want %s", id, want)
			}
		})
	}
}

// TestBackendSL21: a user's SQUEUE_FORMAT, SACCT_FORMAT and SLURM_TIME_FORMAT never reach
// the commands qmd runs. Fake squeue and sacct scripts on PATH print the user's layout if
// the variables get through, and record the environment they saw; runner.Local runs them.
func TestBackendSL21(t *testing.T) {
	c := behaviourCase(t, "SL-21")
	bin := t.TempDir()
	for _, name := range []string{"squeue", "sacct"} {
		data, err := os.ReadFile(filepath.Join("testdata", "backend", "bin", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "squeue.user-format"), []byte(c.Stdout),
		0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("SQUEUE_FORMAT", "%.18i %.9P %.30j %.8u %.2t %.10M %.6D %R")
	t.Setenv("SACCT_FORMAT", "jobid,jobname%30,partition,state,exitcode")
	t.Setenv("SLURM_TIME_FORMAT", "relative")

	b := New(Options{Runner: runner.Local{}, Location: time.UTC})
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	got, err := b.Poll(t.Context(), []scheduler.Handle{
		{JobID: "a1b2", SchedulerID: "4242", Meta: metaAt(at)},
		{JobID: "b3c4", SchedulerID: "4243", Meta: metaAt(at)},
	})
	if err != nil {
		t.Fatalf("poll: %v (a user's variable reached squeue or sacct)", err)
	}
	if st := got["a1b2"]; st.State != job.Running {
		t.Errorf("4242: %+v, want running", st)
	}
	wantEnd := time.Date(2026, 12, 4, 9, 10, 0, 0, time.UTC)
	st := got["b3c4"]
	if st.State != job.Completing || st.EndedAt == nil || !st.EndedAt.Equal(wantEnd) {
		t.Errorf("4243: %+v, want completing, ended %s (standard times)", st, wantEnd)
	}

	for _, name := range []string{"squeue", "sacct"} {
		env, err := os.ReadFile(filepath.Join(bin, name+".env"))
		if err != nil {
			t.Fatalf("%s did not run: %v", name, err)
		}
		vars := strings.Split(string(env), "\n")
		for _, banned := range []string{"SQUEUE_FORMAT=", "SACCT_FORMAT="} {
			if slices.ContainsFunc(vars, func(v string) bool {
				return strings.HasPrefix(v, banned)
			}) {
				t.Errorf("%s ran with %s...", name, banned)
			}
		}
		for _, want := range []string{"SLURM_TIME_FORMAT=standard", "LC_ALL=C"} {
			if !slices.Contains(vars, want) {
				t.Errorf("%s ran without %s", name, want)
			}
		}
	}
}

// TestBackendSL24: a job gone from squeue is not completed until sacct says how it
// ended; while sacct has no line the job is left out of the answer, and the manager's
// grace period decides. Then COMPLETED and FAILED 2:0 both end in completing with the
// exit code, where the job's own output decides between completed and failed.
func TestBackendSL24(t *testing.T) {
	c := behaviourCase(t, "SL-24")
	for _, tc := range []struct {
		file   string
		silent int // polls with no sacct line
		exit   int
	}{{"sl24_completed.txt", 2, 0}, {"sl24_failed.txt", 1, 2}} {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			f := loadFake(t, tc.file)
			f.replies["squeue"] = []fakeReply{{stdout: c.Stdout, stderr: c.Stderr,
				exit: c.ExitCode}}
			b := newTestBackend(f, nil)
			h := scheduler.Handle{JobID: "sl24", SchedulerID: "15236820", State: job.Running,
				Meta: metaAt(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))}
			for poll := 1; poll <= tc.silent+1; poll++ {
				got, err := b.Poll(t.Context(), []scheduler.Handle{h})
				if err != nil {
					t.Fatalf("poll %d: %v", poll, err)
				}
				st, ok := got[h.JobID]
				if poll <= tc.silent {
					if ok {
						t.Fatalf("poll %d: %+v before sacct knows the job, want none",
							poll, st)
					}
					continue
				}
				if st.State != job.Completing || st.ExitCode == nil || *st.ExitCode != tc.exit {
					t.Errorf("poll %d: %+v, want completing with exit %d", poll, st, tc.exit)
				}
			}
			if n := len(f.callsTo("sacct")); n != tc.silent+1 {
				t.Errorf("sacct asked %d times, want once per poll (%d)", n, tc.silent+1)
			}
		})
	}
}

// TestPollSqueueListsArrayTasks: squeue folds pending array tasks into one "N_[a-b]" line
// unless asked for one line per task, and sacct has no line for a task that never ran.
func TestPollSqueueListsArrayTasks(t *testing.T) {
	f := newFakeRunner()
	f.answer["squeue"] = func(c runner.Command) fakeReply {
		if slices.Contains(c.Argv, "--array") || slices.Contains(c.Argv, "-r") {
			return fakeReply{stdout: "77_1|PENDING|Resources\n77_2|PENDING|Resources\n" +
				"77_0|RUNNING|None\n"}
		}
		return fakeReply{stdout: "77_[1-2]|PENDING|Resources\n77_0|RUNNING|None\n"}
	}
	f.answer["sacct"] = func(runner.Command) fakeReply {
		return fakeReply{stdout: "77_0|RUNNING|0:0|2026-12-04T09:00:00|" +
			"2026-12-04T09:00:01|Unknown|qmdbt-array\n"}
	}
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	var hs []scheduler.Handle
	for i := 0; i < 3; i++ {
		hs = append(hs, scheduler.Handle{JobID: fmt.Sprintf("t%d", i),
			SchedulerID: fmt.Sprintf("77_%d", i), Meta: metaAt(at)})
	}
	got, err := newTestBackend(f, nil).Poll(t.Context(), hs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []job.State{job.Running, job.Pending, job.Pending} {
		if st, ok := got[fmt.Sprintf("t%d", i)]; !ok || st.State != want {
			t.Errorf("task %d: %+v (reported %t), want %s", i, st, ok, want)
		}
	}
}

// TestPollWindowWithoutMeta: a job stored without a submission time widens sacct's window
// instead of being left outside it, unseen by every poll.
func TestPollWindowWithoutMeta(t *testing.T) {
	f := clusterFake(false)
	recent := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC) // clusterFake's submissions
	hs := []scheduler.Handle{
		{JobID: "recent", SchedulerID: "1000", Meta: metaAt(recent)},
		{JobID: "no-meta", SchedulerID: "1001"},
	}
	got, err := newTestBackend(f, nil).Poll(t.Context(), hs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("statuses %v, want both jobs", got)
	}
	want := time.Now().Add(-7 * 24 * time.Hour) // Poll's window for unknown submissions
	if recent.Before(want) {
		want = recent
	}
	start, _ := argValue(f.callsTo("sacct")[0].Argv, "--starttime")
	since, err := time.ParseInLocation(TimeLayout, start, time.UTC)
	if err != nil || since.After(want) {
		t.Errorf("--starttime=%s, want %s or earlier for the job with no submission time",
			start, want.UTC().Format(TimeLayout))
	}
}
