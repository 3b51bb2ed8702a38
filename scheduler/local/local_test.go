package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
)

// TestFIFOOneSlot runs three jobs through one slot: they must start in submission order
// and never overlap. Each script logs its start and end to one shared file.
func TestFIFOOneSlot(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "order.log")
	te := startExec(t, Options{Slots: 1, Env: []string{"QMD_TEST_LOG=" + logPath}})
	body := `echo "start $QMD_JOB_ID" >> "$QMD_TEST_LOG"` + "\n" +
		"sleep 0.2\n" +
		`echo "end $QMD_JOB_ID" >> "$QMD_TEST_LOG"` + "\n" +
		writeExit0

	var hs []scheduler.Handle
	for _, id := range []string{"a", "b", "c"} {
		hs = append(hs, te.submit(t, id, newJobDir(t, body)))
	}
	for _, h := range hs[1:] {
		if st, _ := te.poll(t, h); st.State != job.Pending {
			t.Errorf("job %s: %s while the first job holds the only slot", h.JobID, st.State)
		}
	}
	for _, h := range hs {
		st := te.waitState(t, h, job.Completing)
		if deref(st.ExitCode) != 0 {
			t.Errorf("job %s: exit code %v, want 0", h.JobID, deref(st.ExitCode))
		}
	}

	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []string{"start a", "end a", "start b", "end b", "start c", "end c"}
	if !slices.Equal(got, want) {
		t.Errorf("job log = %q, want %q", got, want)
	}
	if te.notified.Load() < 6 {
		t.Errorf("Notify called %d times for 3 starts and 3 ends", te.notified.Load())
	}
}

// TestSlots holds jobs open with gates to check how many run at once, and that SetSlots
// takes effect on the queue without touching running jobs.
func TestSlots(t *testing.T) {
	te := startExec(t, Options{Slots: 2})
	body := waitGate + writeExit0
	dirs := map[string]string{}
	var hs []scheduler.Handle
	for _, id := range []string{"a", "b", "c", "d"} {
		dirs[id] = newJobDir(t, body)
		hs = append(hs, te.submit(t, id, dirs[id]))
	}
	a, b, c, d := hs[0], hs[1], hs[2], hs[3]

	sa := te.waitState(t, a, job.Running)
	te.waitState(t, b, job.Running)
	if st, _ := te.poll(t, c); st.State != job.Pending {
		t.Fatalf("third job is %s with two slots busy", st.State)
	}
	pid, err := strconv.Atoi(sa.SchedulerID)
	if err != nil || !alive(pid, mustStartTicks(t, pid)) {
		t.Errorf("running status SchedulerID = %q, want the live script's pid", sa.SchedulerID)
	}
	if sa.StartedAt == nil || sa.Meta == "" {
		t.Errorf("running status lacks StartedAt or Meta: %+v", sa)
	}

	release(t, dirs["a"])
	te.waitState(t, a, job.Completing)
	te.waitState(t, c, job.Running)
	if st, _ := te.poll(t, d); st.State != job.Pending {
		t.Fatalf("fourth job is %s with two slots busy", st.State)
	}

	te.SetSlots(3)
	te.waitState(t, d, job.Running)
	for _, id := range []string{"b", "c", "d"} {
		release(t, dirs[id])
	}
	for _, h := range hs {
		te.waitState(t, h, job.Completing)
	}
}

func mustStartTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	pi, err := readProc(pid)
	if err != nil {
		t.Fatalf("read /proc for pid %d: %v", pid, err)
	}
	return pi.StartTicks
}

// TestExitStatus checks how the end of a script becomes a status: the exit file wins over
// what Wait saw, and without it the exit code or signal is reported.
func TestExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantState  job.State
		wantCode   any // nil: no exit code
		wantSignal any
		wantEnded  *time.Time
		wantReason string
	}{
		{
			name:       "exit file",
			body:       "echo hi\nsleep 0.1\nprintf '3 1700000000\\n' > exit_status\nexit 0\n",
			wantState:  job.Completing,
			wantCode:   3,
			wantEnded:  new(time.Unix(1700000000, 0).UTC()),
			wantReason: "program ended with exit status 3",
		},
		{
			name:       "exit file without a time",
			body:       "echo 7 > exit_status\n",
			wantState:  job.Completing,
			wantCode:   7,
			wantReason: "program ended with exit status 7",
		},
		{
			name:       "no exit file",
			body:       "exit 4\n",
			wantState:  job.Completing,
			wantCode:   4,
			wantReason: "batch script ended with exit status 4 without recording it",
		},
		{
			name:       "unreadable exit file",
			body:       "echo garbage > exit_status\nexit 5\n",
			wantState:  job.Completing,
			wantCode:   5,
			wantReason: "without recording it",
		},
		{
			name:       "killed by a signal",
			body:       "kill -KILL $$\n",
			wantState:  job.Completing,
			wantCode:   137,
			wantSignal: 9,
			wantReason: "killed by signal 9",
		},
	}
	te := startExec(t, Options{Slots: 2})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			h := te.submit(t, strings.ReplaceAll(tt.name, " ", "-"), newJobDir(t, tt.body))
			st := te.waitState(t, h, tt.wantState)

			if got := deref(st.ExitCode); got != tt.wantCode {
				t.Errorf("exit code = %v, want %v", got, tt.wantCode)
			}
			if got := deref(st.Signal); got != tt.wantSignal {
				t.Errorf("signal = %v, want %v", got, tt.wantSignal)
			}
			if !strings.Contains(st.Reason, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", st.Reason, tt.wantReason)
			}
			switch {
			case st.EndedAt == nil:
				t.Error("EndedAt not set")
			case tt.wantEnded != nil && !st.EndedAt.Equal(*tt.wantEnded):
				t.Errorf("EndedAt = %s, want %s from the exit file", st.EndedAt, tt.wantEnded)
			case tt.wantEnded == nil && st.EndedAt.Before(before):
				t.Errorf("EndedAt = %s, before the job ran", st.EndedAt)
			}
		})
	}
}

// TestCancelQueued cancels a job waiting for a slot: it must never start, so its
// started marker is never created.
func TestCancelQueued(t *testing.T) {
	te := startExec(t, Options{Slots: 1})
	first := newJobDir(t, waitGate+writeExit0)
	queued := newJobDir(t, markRan+writeExit0)
	ha := te.submit(t, "first", first)
	hb := te.submit(t, "queued", queued)
	te.waitState(t, ha, job.Running)

	if err := te.Cancel(context.Background(), hb); err != nil {
		t.Fatalf("Cancel(queued job): %v", err)
	}
	te.waitState(t, hb, job.Cancelled)

	release(t, first)
	te.waitState(t, ha, job.Completing)
	te.runSentinel(t)
	if st, _ := te.poll(t, hb); st.State != job.Cancelled {
		t.Errorf("cancelled job later reported %s", st.State)
	}
	for _, f := range []string{StartedFile, ProcFile, "ran"} {
		if exists(filepath.Join(queued, f)) {
			t.Errorf("cancelled queued job has %s", f)
		}
	}
}

// TestCancelRunning cancels a running script and its background child: SIGTERM to the
// process group must end both.
func TestCancelRunning(t *testing.T) {
	te := startExec(t, Options{Slots: 1, CancelGrace: 3 * time.Second})
	dir := newJobDir(t, "sleep 30 &\necho $! > child.pid\nwait\n"+writeExit0)
	h := te.submit(t, "job", dir)
	st := te.waitState(t, h, job.Running)
	waitFile(t, filepath.Join(dir, "child.pid"))
	pgid, err := strconv.Atoi(st.SchedulerID)
	if err != nil {
		t.Fatalf("SchedulerID %q: %v", st.SchedulerID, err)
	}

	start := time.Now()
	if err := te.Cancel(context.Background(), h); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	st = te.waitState(t, h, job.Cancelled)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %s: SIGTERM was not enough, the grace kill did it", d)
	}
	if st.Reason != "cancelled" {
		t.Errorf("reason = %q", st.Reason)
	}
	waitGroupGone(t, pgid)
	if exists(filepath.Join(dir, ExitFile)) {
		t.Error("script went on after SIGTERM and wrote its exit file")
	}
}

// TestCancelGraceKill cancels a job that ignores SIGTERM: after CancelGrace the whole
// group gets SIGKILL.
func TestCancelGraceKill(t *testing.T) {
	const grace = 300 * time.Millisecond
	te := startExec(t, Options{Slots: 1, CancelGrace: grace})
	dir := newJobDir(t, "trap '' TERM\necho ready > ready\nsleep 30\n"+writeExit0)
	h := te.submit(t, "stubborn", dir)
	st := te.waitState(t, h, job.Running)
	waitFile(t, filepath.Join(dir, "ready"))
	pgid, _ := strconv.Atoi(st.SchedulerID)

	start := time.Now()
	if err := te.Cancel(context.Background(), h); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	st = te.waitState(t, h, job.Cancelled)
	if d := time.Since(start); d < grace {
		t.Errorf("job ended %s after SIGTERM, before the %s grace", d, grace)
	}
	if deref(st.Signal) != 9 {
		t.Errorf("signal = %v, want 9 (SIGKILL)", deref(st.Signal))
	}
	waitGroupGone(t, pgid)
}

func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still alive after %s", pgid, waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartedMarkerRefuses checks the never-twice rule: a job directory that already holds
// the started marker is failed, and its script does not run.
func TestStartedMarkerRefuses(t *testing.T) {
	te := startExec(t, Options{Slots: 1})
	dir := newJobDir(t, markRan+writeExit0)
	writeFile(t, filepath.Join(dir, StartedFile), "")
	h := te.submit(t, "again", dir)

	te.runSentinel(t)
	st := te.waitState(t, h, job.Failed)
	if !strings.Contains(st.Reason, "could not start") {
		t.Errorf("reason = %q, want a start refusal", st.Reason)
	}
	if exists(filepath.Join(dir, "ran")) || exists(filepath.Join(dir, ProcFile)) {
		t.Error("the script ran a second time")
	}
}

func TestSubmitPollCancelUnknown(t *testing.T) {
	te := startExec(t, Options{})
	ctx := context.Background()

	_, err := te.Submit(ctx, scheduler.SubmitRequest{
		JobID: "x", Dir: t.TempDir(), Script: "job.sh",
	})
	if !errors.Is(err, scheduler.ErrRejected) {
		t.Errorf("Submit without a script: %v, want ErrRejected", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := te.Submit(cctx, scheduler.SubmitRequest{JobID: "y", Dir: newJobDir(t, ""),
		Script: "job.sh"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Submit with a cancelled ctx: %v", err)
	}

	err = te.Cancel(ctx, scheduler.Handle{JobID: "nobody", Dir: t.TempDir()})
	if !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("Cancel of an unknown job: %v, want ErrNotFound", err)
	}

	ended := t.TempDir()
	writeFile(t, filepath.Join(ended, ExitFile), "6 1700000000\n")
	sts, err := te.Poll(ctx, []scheduler.Handle{
		{JobID: "ended", Dir: ended},
		{JobID: "unknown", Dir: t.TempDir()},
		{JobID: "nodir"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := sts["ended"]; st.State != job.Completing || deref(st.ExitCode) != 6 {
		t.Errorf("unknown job with an exit file: %+v, want completing with code 6", st)
	}
	for _, id := range []string{"unknown", "nodir"} {
		if st, ok := sts[id]; ok {
			t.Errorf("job %s without evidence reported as %+v; want it left out", id, st)
		}
	}
}

// TestForget checks that an ended job leaves memory once stored, and is then answered
// from its directory.
func TestForget(t *testing.T) {
	te := startExec(t, Options{})
	h := te.submit(t, "j", newJobDir(t, "exit 3\n"))
	te.waitState(t, h, job.Completing)

	te.Forget(h.JobID)
	if st, ok := te.poll(t, h); ok {
		t.Errorf("forgotten job without exit file still reported: %+v", st)
	}
}
