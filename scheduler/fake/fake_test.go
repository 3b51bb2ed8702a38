package fake

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qmd/daemon/job"
	"qmd/scheduler"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current code")

// jobDir makes a job directory holding a batch script, as the manager leaves one.
func jobDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := os.WriteFile(filepath.Join(dir, "job.sh"), []byte("#!/bin/sh\n"), 0o750)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func submit(t *testing.T, f *Scheduler, id, dir string) scheduler.Submission {
	t.Helper()
	sub, err := f.Submit(context.Background(),
		scheduler.SubmitRequest{JobID: id, Dir: dir, Script: "job.sh", Tag: "qmd-" + id})
	if err != nil {
		t.Fatalf("Submit %s: %v", id, err)
	}
	return sub
}

// observed renders one Poll answer for job id: its state, ":code" when an exit code is
// set, or "-" when the job is missing.
func observed(sts map[string]scheduler.Status, id string) string {
	st, ok := sts[id]
	if !ok {
		return "-"
	}
	if st.ExitCode != nil {
		return fmt.Sprintf("%s:%d", st.State, *st.ExitCode)
	}
	return string(st.State)
}

func TestScripts(t *testing.T) {
	tests := []struct {
		name   string
		script Script
		want   []string // one entry per poll
	}{
		{"default pending for ever", nil, []string{"pending", "pending", "pending"}},
		{"pending, running, exit 0",
			Script{Pending(2), Running(1), Exit(0, "", "")},
			[]string{"pending", "pending", "running", "completing:0", "completing:0"}},
		{"exit code kept", Script{Running(1), Exit(3, "", "")},
			[]string{"running", "completing:3", "completing:3"}},
		{"timeout", Script{Running(2), EndedBy(job.Timeout, "DUE TO TIME LIMIT")},
			[]string{"running", "running", "timeout", "timeout"}},
		{"vanishes", Script{Pending(1), Running(1), Vanish()},
			[]string{"pending", "running", "-", "-"}},
		{"zero polls still reports once", Script{Pending(0), Running(1)},
			[]string{"pending", "running", "running"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New(Options{Default: tc.script})
			submit(t, f, "a", jobDir(t))
			var got []string
			for range tc.want {
				sts, err := f.Poll(context.Background(), []scheduler.Handle{{JobID: "a"}})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, observed(sts, "a"))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("polls = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueuedScriptsGoInSubmissionOrder(t *testing.T) {
	f := New(Options{Default: Script{Running(1)}})
	f.Queue(Script{EndedBy(job.Failed, "node failure")}, Script{Exit(0, "", "")})
	dir := jobDir(t)
	for _, id := range []string{"a", "b", "c"} {
		submit(t, f, id, dir)
	}
	sts, err := f.Poll(context.Background(),
		[]scheduler.Handle{{JobID: "a"}, {JobID: "b"}, {JobID: "c"}, {JobID: "unknown"}})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{observed(sts, "a"), observed(sts, "b"), observed(sts, "c"),
		observed(sts, "unknown")}
	want := "failed completing:0 running -"
	if strings.Join(got, " ") != want {
		t.Errorf("states = %v, want %s", got, want)
	}
	if sts["a"].Reason != "node failure" {
		t.Errorf("reason = %q", sts["a"].Reason)
	}
}

func TestClusterErrorsByCallNumber(t *testing.T) {
	down := errors.New("ssh: connection refused")
	f := New(Options{Default: Script{Pending(1), Running(1)}, Cluster: Cluster{
		SubmitErr: map[int]error{1: down, 2: fmt.Errorf("%w: bad partition",
			scheduler.ErrRejected)},
		PollErr:   map[int]error{2: down},
		CancelErr: map[int]error{1: down},
	}})
	ctx := context.Background()
	dir := jobDir(t)
	req := scheduler.SubmitRequest{JobID: "a", Dir: dir, Script: "job.sh"}
	if _, err := f.Submit(ctx, req); !errors.Is(err, down) {
		t.Errorf("Submit 1: %v, want the transient error", err)
	}
	if _, err := f.Submit(ctx, req); !errors.Is(err, scheduler.ErrRejected) {
		t.Errorf("Submit 2: %v, want ErrRejected", err)
	}
	submit(t, f, "a", dir)

	h := []scheduler.Handle{{JobID: "a"}}
	var got []string
	for i := 1; i <= 3; i++ {
		sts, err := f.Poll(ctx, h)
		if i == 2 {
			if !errors.Is(err, down) || sts != nil {
				t.Fatalf("Poll 2 = %v, %v; want only the error", sts, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Poll %d: %v", i, err)
		}
		got = append(got, observed(sts, "a"))
	}
	// The failed poll must not have moved the job along its script.
	if want := "pending running"; strings.Join(got, " ") != want {
		t.Errorf("polls = %v, want %s", got, want)
	}
	if err := f.Cancel(ctx, h[0]); !errors.Is(err, down) {
		t.Errorf("Cancel 1: %v", err)
	}
	if err := f.Cancel(ctx, h[0]); err != nil {
		t.Errorf("Cancel 2: %v", err)
	}
	if f.Count("Submit") != 3 || f.Count("Poll") != 3 || f.Count("Cancel") != 2 {
		t.Errorf("counts: submit %d poll %d cancel %d", f.Count("Submit"),
			f.Count("Poll"), f.Count("Cancel"))
	}
}

func TestSubmitRefusals(t *testing.T) {
	f := New(Options{})
	ctx := context.Background()
	_, err := f.Submit(ctx, scheduler.SubmitRequest{JobID: "a", Dir: t.TempDir(),
		Script: "job.sh"})
	if !errors.Is(err, scheduler.ErrRejected) {
		t.Errorf("missing script: %v, want ErrRejected", err)
	}
	dir := jobDir(t)
	submit(t, f, "b", dir)
	_, err = f.Submit(ctx, scheduler.SubmitRequest{JobID: "b", Dir: dir, Script: "job.sh"})
	if !errors.Is(err, scheduler.ErrRejected) || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second submission: %v, want a rejection naming the duplicate", err)
	}
	if f.CallsFor("Submit", "b") != 2 {
		t.Errorf("CallsFor(Submit, b) = %d", f.CallsFor("Submit", "b"))
	}
}

func TestCancel(t *testing.T) {
	ctx := context.Background()
	f := New(Options{Default: Script{Running(1), Exit(0, "", "")}})
	dir := jobDir(t)
	submit(t, f, "run", dir)
	submit(t, f, "done", dir)
	h := func(id string) []scheduler.Handle { return []scheduler.Handle{{JobID: id}} }

	if err := f.Cancel(ctx, h("run")[0]); err != nil {
		t.Fatal(err)
	}
	sts, _ := f.Poll(ctx, h("run"))
	if observed(sts, "run") != "cancelled" {
		t.Errorf("after cancel: %s", observed(sts, "run"))
	}

	f.Poll(ctx, h("done"))
	f.Poll(ctx, h("done")) // now ended
	if err := f.Cancel(ctx, h("done")[0]); err != nil {
		t.Fatal(err)
	}
	sts, _ = f.Poll(ctx, h("done"))
	if observed(sts, "done") != "completing:0" {
		t.Errorf("cancel after the end changed the job: %s", observed(sts, "done"))
	}

	if err := f.Cancel(ctx, h("nobody")[0]); !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("cancel of an unknown job: %v, want ErrNotFound", err)
	}
}

func TestFixturesCopiedOnTheEndingStep(t *testing.T) {
	src := t.TempDir()
	out, errf := filepath.Join(src, "x.out"), filepath.Join(src, "x.err")
	os.WriteFile(out, []byte("NWChem output\n"), 0o644)
	os.WriteFile(errf, []byte("ARMCI\n"), 0o644)

	f := New(Options{Default: Script{Running(1), Exit(0, out, errf)}})
	dir := jobDir(t)
	submit(t, f, "a", dir)
	ctx := context.Background()
	f.Poll(ctx, []scheduler.Handle{{JobID: "a"}})
	if _, err := os.Stat(filepath.Join(dir, OutputFile)); err == nil {
		t.Fatal("output copied before the job ended")
	}
	f.Poll(ctx, []scheduler.Handle{{JobID: "a"}})
	want := map[string]string{OutputFile: "NWChem output\n", StderrFile: "ARMCI\n"}
	for name, want := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}

	bad := New(Options{Default: Script{Exit(0, filepath.Join(src, "missing.out"), "")}})
	submit(t, bad, "b", dir)
	if _, err := bad.Poll(ctx, []scheduler.Handle{{JobID: "b"}}); err == nil {
		t.Error("Poll with a missing fixture succeeded")
	}
	if bad.Err() == nil {
		t.Error("Err() does not keep the fixture failure")
	}
}

func TestRecoverReportsKnownJobsWithoutAdvancing(t *testing.T) {
	f := New(Options{})
	f.Adopt("a", t.TempDir(), "77", Script{Running(1), Exit(0, "", "")})
	ctx := context.Background()
	hs := []scheduler.Handle{{JobID: "a"}, {JobID: "gone"}}
	for range 2 {
		sts, err := f.Recover(ctx, hs)
		if err != nil {
			t.Fatal(err)
		}
		if observed(sts, "a") != "running" || observed(sts, "gone") != "-" {
			t.Fatalf("Recover = %v", sts)
		}
		if sts["a"].SchedulerID != "77" {
			t.Errorf("scheduler id = %q", sts["a"].SchedulerID)
		}
	}
	sts, _ := f.Poll(ctx, hs[:1])
	if observed(sts, "a") != "running" {
		t.Errorf("first poll after recover = %s, want running", observed(sts, "a"))
	}

	f = New(Options{Cluster: Cluster{RecoverErr: errors.New("down")}})
	if _, err := f.Recover(ctx, hs); err == nil {
		t.Error("RecoverErr ignored")
	}
}

func TestOverridesAreRecorded(t *testing.T) {
	f := New(Options{Name: "hpc"})
	boom := errors.New("boom")
	f.SubmitFunc = func(context.Context, scheduler.SubmitRequest) (scheduler.Submission, error) {
		return scheduler.Submission{}, boom
	}
	f.PollFunc = func(context.Context, []scheduler.Handle) (map[string]scheduler.Status, error) {
		return map[string]scheduler.Status{"x": {State: job.Running}}, nil
	}
	ctx := context.Background()
	if _, err := f.Submit(ctx, scheduler.SubmitRequest{JobID: "x"}); !errors.Is(err, boom) {
		t.Errorf("Submit: %v", err)
	}
	sts, _ := f.Poll(ctx, []scheduler.Handle{{JobID: "x"}})
	if sts["x"].State != job.Running {
		t.Errorf("Poll: %v", sts)
	}
	f.Forget("x")
	if f.Name() != "hpc" {
		t.Errorf("Name = %q", f.Name())
	}
	checkGolden(t, "overrides.golden", callLog(f.Calls()))
}

// callLog renders calls one per line for a golden file.
func callLog(calls []Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "%s %s", c.Method, strings.Join(c.JobIDs, ","))
		if c.Err != nil {
			fmt.Fprintf(&b, " err=%q", c.Err)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestCallLogGolden(t *testing.T) {
	f := New(Options{Default: Script{Pending(1), Exit(0, "", "")},
		Cluster: Cluster{PollErr: map[int]error{2: errors.New("squeue timed out")}}})
	ctx := context.Background()
	dir := jobDir(t)
	submit(t, f, "a", dir)
	submit(t, f, "b", dir)
	hs := []scheduler.Handle{{JobID: "a"}, {JobID: "b"}}
	for range 3 {
		f.Poll(ctx, hs)
	}
	f.Cancel(ctx, hs[0])
	f.Forget("a")
	checkGolden(t, "calls.golden", callLog(f.Calls()))
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}
