package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qmd/ctl/api"
	"qmd/daemon/job"
	"qmd/daemon/store"
	"qmd/scheduler"
	"qmd/scheduler/fake"
)

func TestCompletedJobHasResult(t *testing.T) {
	h := newHarness(t)
	f := h.fake(clusterA)
	f.Queue(fake.Script{fake.Pending(2), fake.Running(1), fake.Exit(0, waterOut, waterErr)})
	id := h.submit(water("gas"))[0]

	j, hist := h.job(id)
	if j.State != job.Queued || len(hist) != 1 || j.OwnerUID != testUID {
		t.Fatalf("after submit: %s, %d events, owner %d", j.State, len(hist), j.OwnerUID)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.JobsDir(), id, ScriptFile)); err != nil {
		t.Fatalf("job directory: %v", err)
	}

	// dispatch and the first poll share a cycle, so the job is pending through cycles 1
	// and 2, running after 3 and done after 4.
	for i, want := range []job.State{job.Pending, job.Pending, job.Running, job.Completed} {
		h.cycle(clusterA)
		if got := h.state(id); got != want {
			t.Fatalf("after cycle %d: %s, want %s", i+1, got, want)
		}
	}
	j, hist = h.job(id)
	wantPath(t, hist, job.Queued, job.Submitting, job.Pending, job.Running, job.Completing,
		job.Completed)
	if j.SchedulerID != "1" || j.ExitCode == nil || *j.ExitCode != 0 || j.Error != "" {
		t.Errorf("job = sched %q exit %v error %q", j.SchedulerID, j.ExitCode, j.Error)
	}
	if j.Software != "NWChem 7.0.2" || j.SubmittedAt == nil {
		t.Errorf("software %q submitted %v", j.Software, j.SubmittedAt)
	}
	if n := f.CallsFor("Submit", id); n != 1 {
		t.Errorf("Submit called %d times for the job, want 1", n)
	}
	if !f.Forgotten(id) {
		t.Error("the scheduler was not told to forget the finished job")
	}
	if _, err := os.Stat(filepath.Join(h.cfg.JobsDir(), id, ScratchDir)); !os.IsNotExist(err) {
		t.Errorf("scratch left after success: %v", err)
	}

	data, err := h.m.Result(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	var res api.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	checkWaterResult(t, res)
	res.ID = "ID"
	golden, _ := json.MarshalIndent(res, "", "  ")
	checkGolden(t, "water_result.golden.json", append(golden, '\n'))

	// Later cycles leave a finished job alone.
	h.cycle(clusterA)
	if _, hist2 := h.job(id); len(hist2) != len(hist) {
		t.Errorf("a finished job moved again: %v", path(hist2))
	}
}

// checkWaterResult checks the chemistry: three atoms in input order, the two H in one
// group with one shift, both bonded to the O, and no shift for O.
func checkWaterResult(t *testing.T, res api.Result) {
	t.Helper()
	if len(res.Shifts) != 3 {
		t.Fatalf("%d shifts, want 3", len(res.Shifts))
	}
	o, h1, h2 := res.Shifts[0], res.Shifts[1], res.Shifts[2]
	if o.Element != "O" || h1.Element != "H" || h2.Element != "H" {
		t.Errorf("elements %s %s %s", o.Element, h1.Element, h2.Element)
	}
	if o.Atom != 1 || h1.Atom != 2 || h2.Atom != 3 {
		t.Errorf("atoms %d %d %d", o.Atom, h1.Atom, h2.Atom)
	}
	if o.Shift != nil || o.BondedTo != nil {
		t.Errorf("O has shift %v bonded_to %v; want neither", o.Shift, o.BondedTo)
	}
	if h1.Group != h2.Group || h1.Group == o.Group {
		t.Errorf("groups O %d H %d H %d; the H must share one, apart from O", o.Group,
			h1.Group, h2.Group)
	}
	for _, hs := range []api.Shift{h1, h2} {
		if hs.Shift == nil || *hs.Shift != 0.22 { // 32.1905 (TMS) − 31.973
			t.Errorf("H%d shift %v, want 0.22", hs.Atom, hs.Shift)
		}
		if hs.BondedTo == nil || *hs.BondedTo != 1 {
			t.Errorf("H%d bonded_to %v, want 1", hs.Atom, hs.BondedTo)
		}
		if hs.Shielding != 31.973 {
			t.Errorf("H%d shielding %v", hs.Atom, hs.Shielding)
		}
	}
	if res.Reference.Method != "tms" || !res.Converged {
		t.Errorf("reference %+v converged %v", res.Reference, res.Converged)
	}
}

// goldenFailure reads what the nwchem package's golden file says Check reports for a
// fixture, which is what the manager must store as the job's error.
func goldenFailure(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(fixtures + name + ".golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Failure struct{ Summary, Excerpt string }
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g.Failure.Summary + "\n\n" + g.Failure.Excerpt
}

func TestJobsThatEndBadly(t *testing.T) {
	tests := []struct {
		name   string
		script fake.Script
		want   job.State
		path   []job.State
		err    string // the stored error, exactly; "" skips the check
		errHas string // or a part of it
	}{
		{name: "missing basis", want: job.Failed,
			script: fake.Script{fake.Running(1), fake.Exit(255, fixtures+"fail_badbasis.out",
				fixtures+"fail_badbasis.err")},
			path: []job.State{job.Queued, job.Submitting, job.Pending, job.Running,
				job.Completing, job.Failed}},
		{name: "out of memory", want: job.Failed,
			script: fake.Script{fake.Running(1), fake.Exit(52, fixtures+"fail_oom3.out",
				fixtures+"fail_oom3.err")},
			path: []job.State{job.Queued, job.Submitting, job.Pending, job.Running,
				job.Completing, job.Failed}},
		{name: "scf not converged, ends from pending", want: job.Failed,
			script: fake.Script{fake.Exit(255, fixtures+"fail_scf_noconv.out",
				fixtures+"fail_scf_noconv.err")},
			path: []job.State{job.Queued, job.Submitting, job.Pending, job.Completing,
				job.Failed}},
		{name: "exit 0 without output", want: job.Failed,
			script: fake.Script{fake.Running(1), fake.Exit(0, "", "")},
			errHas: "NWChem wrote no output"},
		{name: "timeout", want: job.Timeout,
			script: fake.Script{fake.Running(2), fake.EndedBy(job.Timeout,
				"DUE TO TIME LIMIT")},
			path: []job.State{job.Queued, job.Submitting, job.Pending, job.Running,
				job.Timeout},
			err: "DUE TO TIME LIMIT"},
		{name: "node failure", want: job.Failed,
			script: fake.Script{fake.Running(1), fake.EndedBy(job.Failed, "NODE_FAIL")},
			err:    "NODE_FAIL"},
		{name: "cancelled by an administrator", want: job.Cancelled,
			script: fake.Script{fake.Pending(1), fake.EndedBy(job.Cancelled, "scancel")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake(clusterA).Queue(tc.script)
			id := h.submit(water("gas"))[0]
			for range 5 {
				h.cycle(clusterA)
			}
			j, hist := h.job(id)
			if j.State != tc.want {
				t.Fatalf("state %s, want %s (error %q)", j.State, tc.want, j.Error)
			}
			if tc.path != nil {
				wantPath(t, hist, tc.path...)
			}
			if tc.err != "" && j.Error != tc.err {
				t.Errorf("error %q, want %q", j.Error, tc.err)
			}
			if tc.errHas != "" && !strings.Contains(j.Error, tc.errHas) {
				t.Errorf("error %q lacks %q", j.Error, tc.errHas)
			}
			if j.State == job.Failed && tc.script[len(tc.script)-1].Output != "" {
				name := strings.TrimSuffix(filepath.Base(tc.script[len(tc.script)-1].Output),
					".out")
				if want := goldenFailure(t, name); j.Error != want {
					t.Errorf("error:\n%s\nwant summary, blank line, excerpt:\n%s", j.Error, want)
				}
				first, _, _ := strings.Cut(j.Error, "\n")
				if hist[len(hist)-1].Reason != first {
					t.Errorf("event reason %q, want the summary line %q",
						hist[len(hist)-1].Reason, first)
				}
				// A failure keeps the scratch directory for inspection.
				if _, err := os.Stat(filepath.Join(h.cfg.JobsDir(), id, ScratchDir)); err != nil {
					t.Errorf("scratch removed after a failure: %v", err)
				}
			}
			if _, err := h.m.Result(context.Background(), j); !errors.Is(err, ErrFinished) {
				t.Errorf("Result of a %s job: %v, want ErrFinished", j.State, err)
			}
			if n := h.fake(clusterA).CallsFor("Submit", id); n != 1 {
				t.Errorf("Submit called %d times, want 1", n)
			}
		})
	}
}

func TestPollErrorChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.fakes[clusterA] = fake.New(fake.Options{Cluster: fake.Cluster{
		PollErr: map[int]error{4: errors.New("squeue: slurm_load_jobs error: timed out")},
	}})
	h.m.clusters[clusterA].sched = h.fakes[clusterA]
	f := h.fake(clusterA)
	f.Queue(fake.Script{fake.Running(3), fake.Exit(0, waterOut, waterErr)},
		fake.Script{fake.Pending(3), fake.Vanish()})
	a := h.submit(water("gas"))[0]
	b := h.submit(water("gas"))[0]
	h.m.LostAfter = time.Nanosecond // a missing job would be lost at once, were it counted missing

	for range 3 {
		h.cycle(clusterA)
	}
	_, histA := h.job(a)
	_, histB := h.job(b)
	h.cycle(clusterA) // poll 4 fails
	if f.Count("Poll") != 4 {
		t.Fatalf("%d polls, want 4", f.Count("Poll"))
	}
	for id, before := range map[string][]job.Event{a: histA, b: histB} {
		j, after := h.job(id)
		if len(after) != len(before) {
			t.Errorf("job %s moved on a failed poll: %v → %v", id, path(before), path(after))
		}
		if j.State != job.Running && j.State != job.Pending {
			t.Errorf("job %s is %s after a failed poll", id, j.State)
		}
	}
	if !strings.Contains(h.logs.String(), "timed out") {
		t.Error("the poll failure was not logged")
	}

	// The next good polls carry on where the scripts were: b is seen missing, and once
	// the (tiny) grace period has passed it is lost.
	h.cycle(clusterA)
	time.Sleep(time.Millisecond)
	h.cycle(clusterA)
	if s := h.state(a); s != job.Completed {
		t.Errorf("a = %s after the next poll, want completed", s)
	}
	if s := h.state(b); s != job.Lost {
		t.Errorf("b = %s after the next poll, want lost", s)
	}
}

func TestMissingJobs(t *testing.T) {
	tests := []struct {
		name      string
		script    fake.Script
		lostAfter time.Duration
		sleep     time.Duration // between the first and the last cycle
		want      job.State
	}{
		{"missing past the grace period is lost",
			fake.Script{fake.Running(1), fake.Vanish()}, 20 * time.Millisecond,
			40 * time.Millisecond, job.Lost},
		{"missing within the grace period is kept",
			fake.Script{fake.Running(1), fake.Vanish()}, time.Hour, 0, job.Running},
		{"back before the grace period ends is kept",
			fake.Script{fake.Running(1), {Gone: true, Polls: 2}, fake.Running(1)},
			30 * time.Millisecond, 0, job.Running},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.m.LostAfter = tc.lostAfter
			h.fake(clusterA).Queue(tc.script)
			id := h.submit(water("gas"))[0]
			h.cycle(clusterA) // running
			h.cycle(clusterA) // first seen missing
			h.cycle(clusterA)
			time.Sleep(tc.sleep)
			h.cycle(clusterA)
			j, _ := h.job(id)
			if j.State != tc.want {
				t.Fatalf("state %s, want %s", j.State, tc.want)
			}
			if j.State == job.Lost && !strings.Contains(j.Error, "has known the job") {
				t.Errorf("lost job's error %q", j.Error)
			}
		})
	}
}

func TestSubmitRejected(t *testing.T) {
	h := newHarness(t)
	msg := "sbatch: error: Batch job submission failed: Invalid partition name specified"
	h.fakes[clusterA] = fake.New(fake.Options{Cluster: fake.Cluster{
		SubmitErr: map[int]error{1: fmt.Errorf("%w: %s", scheduler.ErrRejected, msg)},
	}})
	h.m.clusters[clusterA].sched = h.fakes[clusterA]
	a := h.submit(water("gas"))[0]
	b := h.submit(water("gas"))[0]
	h.cycle(clusterA)
	h.cycle(clusterA)

	j, hist := h.job(a)
	wantPath(t, hist, job.Queued, job.Submitting, job.Failed)
	if !strings.Contains(j.Error, msg) {
		t.Errorf("error %q lacks the scheduler's message", j.Error)
	}
	if s := h.state(b); s != job.Pending {
		t.Errorf("the next job is %s; one rejection must not stop the queue", s)
	}
	if n := h.fake(clusterA).Count("Submit"); n != 2 {
		t.Errorf("Submit called %d times, want 2 (no retry of a rejection)", n)
	}
}

// A transient submission error (the cluster did not answer) must neither fail the job nor
// submit it twice: the job waits and is handed over once the scheduler answers.
func TestSubmitTransientError(t *testing.T) {
	h := newHarness(t)
	down := errors.New("ssh: dial hpc-login: connection refused")
	h.fakes[clusterA] = fake.New(fake.Options{Cluster: fake.Cluster{
		SubmitErr: map[int]error{1: down, 2: down},
	}})
	h.m.clusters[clusterA].sched = h.fakes[clusterA]
	f := h.fake(clusterA)
	id := h.submit(water("gas"))[0]

	h.cycle(clusterA)
	h.cycle(clusterA)
	if s := h.state(id); s.Terminal() {
		t.Fatalf("job %s after a transient submission error", s)
	}
	h.cycle(clusterA)
	h.cycle(clusterA)
	j, hist := h.job(id)
	if j.State != job.Pending {
		t.Fatalf("state %s once the scheduler answers, want pending", j.State)
	}
	wantPath(t, hist, job.Queued, job.Submitting, job.Pending)
	if j.SchedulerID == "" {
		t.Error("scheduler id not recorded")
	}
	if n := f.CallsFor("Submit", id); n != 3 {
		t.Errorf("Submit called %d times, want 3 (two failures, one success)", n)
	}
	if !f.Known(id) {
		t.Error("the scheduler never got the job")
	}
}

// A submission whose answer was lost (Submit succeeded in the scheduler but reported an
// error) must not be submitted again: the scheduler is asked first.
func TestSubmitAnswerLostIsNotDuplicated(t *testing.T) {
	h := newHarness(t)
	f := h.fake(clusterA)
	f.SubmitFunc = func(ctx context.Context, req scheduler.SubmitRequest) (
		scheduler.Submission, error) {
		// Hand the job over, then lose the answer, as a timed-out sbatch can. Later calls
		// reach the script, which refuses a second submission of the job.
		f.SubmitFunc = nil
		if _, err := f.Submit(ctx, req); err != nil {
			return scheduler.Submission{}, err
		}
		return scheduler.Submission{}, errors.New("ssh: read: connection reset by peer")
	}
	f.Queue(fake.Script{fake.Running(1), fake.Exit(0, waterOut, waterErr)})
	id := h.submit(water("gas"))[0]
	for range 4 {
		h.cycle(clusterA)
	}
	j, _ := h.job(id)
	if j.State != job.Completed {
		t.Fatalf("state %s (%q), want completed", j.State, j.Error)
	}
	for _, c := range f.Calls() {
		if c.Method == "Submit" && c.Err != nil && errors.Is(c.Err, scheduler.ErrRejected) {
			t.Errorf("the job was submitted again: %v", c.Err)
		}
	}
}

func TestSchedulerIDLearnedLater(t *testing.T) {
	h := newHarness(t)
	f := h.fake(clusterA)
	f.PollFunc = func(_ context.Context, hs []scheduler.Handle) (
		map[string]scheduler.Status, error) {
		out := map[string]scheduler.Status{}
		for _, x := range hs {
			out[x.JobID] = scheduler.Status{State: x.State, SchedulerID: "4242", Meta: `{"n":1}`}
		}
		return out, nil
	}
	id := h.submit(water("gas"))[0]
	h.cycle(clusterA)
	j, hist := h.job(id)
	if j.SchedulerID != "4242" || j.SchedMeta != `{"n":1}` || j.State != job.Pending {
		t.Errorf("job = %s %q %q", j.State, j.SchedulerID, j.SchedMeta)
	}
	if len(hist) != 3 {
		t.Errorf("an id update added events: %v", path(hist))
	}
}

func TestClustersAreSeparate(t *testing.T) {
	h := newHarness(t)
	req := water("gas")
	req.Cluster = clusterB
	b := h.submit(req)[0]
	a := h.submit(water("gas"))[0]
	h.cycle(clusterA)
	if h.state(b) != job.Queued || h.state(a) != job.Pending {
		t.Errorf("after a cycle of %s: a %s, b %s", clusterA, h.state(a), h.state(b))
	}
	if h.fake(clusterA).Known(b) {
		t.Error("a job of hpc went to local")
	}
	h.cycle(clusterB)
	if h.state(b) != job.Pending || !h.fake(clusterB).Known(b) {
		t.Errorf("b = %s after a cycle of hpc", h.state(b))
	}
	j, _ := h.job(b)
	if j.Cluster != clusterB {
		t.Errorf("cluster %q", j.Cluster)
	}
}

var _ = store.ErrJobNotFound
