package local

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
)

// TestRecoverAdoptsLiveJob starts a job with one executor, stops that executor's
// dispatcher as a stopping qmd would, and hands the job to a second executor, which never
// started it: the second must report it running and then report its end.
func TestRecoverAdoptsLiveJob(t *testing.T) {
	tests := []struct {
		name       string
		cancel     bool
		wantState  job.State
		wantCode   any
		wantReason string
	}{
		{name: "ends by itself", wantState: job.Completing, wantCode: 0,
			wantReason: "program ended with exit status 0"},
		{name: "cancelled after adoption", cancel: true, wantState: job.Cancelled,
			wantReason: "cancelled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := startExec(t, Options{Slots: 1})
			dir := newJobDir(t, waitGate+writeExit0)
			h := old.submit(t, "job", dir)
			first := old.waitState(t, h, job.Running)
			old.stop()

			te := startExec(t, Options{Slots: 1, CancelGrace: 2 * time.Second})
			h.SchedulerID, h.Meta, h.State = first.SchedulerID, first.Meta, job.Running
			sts, err := te.Recover(context.Background(), []scheduler.Handle{h})
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			st := sts[h.JobID]
			if st.State != job.Running || st.SchedulerID != first.SchedulerID {
				t.Fatalf("Recover = %+v, want running as pid %s", st, first.SchedulerID)
			}
			if st.StartedAt == nil || !st.StartedAt.Equal(*first.StartedAt) {
				t.Errorf("StartedAt = %v, want the original %v", st.StartedAt, first.StartedAt)
			}
			if st, _ := te.poll(t, h); st.State != job.Running {
				t.Fatalf("Poll after Recover = %s", st.State)
			}

			if tt.cancel {
				if err := te.Cancel(context.Background(), h); err != nil {
					t.Fatalf("Cancel: %v", err)
				}
			} else {
				release(t, dir)
			}
			st = te.waitState(t, h, tt.wantState)
			if got := deref(st.ExitCode); tt.wantCode != nil && got != tt.wantCode {
				t.Errorf("exit code = %v, want %v", got, tt.wantCode)
			}
			if st.Reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", st.Reason, tt.wantReason)
			}
			if te.notified.Load() == 0 {
				t.Error("the end of an adopted job was not notified")
			}
			if exists(filepath.Join(dir, "ran")) {
				t.Error("the job ran twice")
			}
		})
	}
}

// TestRecover walks the restart cases that need no live process. No case may run the
// script again: each one's script marks "ran", and a sentinel queued behind them proves
// that the executor has dispatched everything it was going to.
func TestRecover(t *testing.T) {
	deadPID := exitedPID(t)
	tests := []struct {
		name       string
		files      map[string]string // extra files in the job dir
		noDir      bool
		noScript   bool
		wantKnown  bool
		wantState  job.State
		wantCode   any
		wantEnded  *time.Time
		wantReason string
	}{
		{
			name:       "exit file",
			files:      map[string]string{StartedFile: "", ExitFile: "2 1700000000\n"},
			wantKnown:  true,
			wantState:  job.Completing,
			wantCode:   2,
			wantEnded:  new(time.Unix(1700000000, 0).UTC()),
			wantReason: "program ended with exit status 2",
		},
		{
			name: "exit file and a dead pid",
			files: map[string]string{StartedFile: "", ExitFile: "0 1700000000\n",
				ProcFile: procJSON(deadPID, 1)},
			wantKnown:  true,
			wantState:  job.Completing,
			wantCode:   0,
			wantEnded:  new(time.Unix(1700000000, 0).UTC()),
			wantReason: "program ended with exit status 0",
		},
		{
			name:       "started, dead pid, no exit file",
			files:      map[string]string{StartedFile: "", ProcFile: procJSON(deadPID, 1)},
			wantKnown:  true,
			wantState:  job.Failed,
			wantReason: ReasonInterrupted,
		},
		{
			name:       "started, no proc file",
			files:      map[string]string{StartedFile: ""},
			wantKnown:  true,
			wantState:  job.Failed,
			wantReason: ReasonInterrupted,
		},
		{
			name: "started, pid reused by another process",
			files: map[string]string{StartedFile: "",
				ProcFile: procJSON(os.Getpid(), mustStartTicks(t, os.Getpid())+1)},
			wantKnown:  true,
			wantState:  job.Failed,
			wantReason: ReasonInterrupted,
		},
		{
			name:       "started, corrupt proc file",
			files:      map[string]string{StartedFile: "", ProcFile: "{not json"},
			wantKnown:  true,
			wantState:  job.Failed,
			wantReason: ReasonInterrupted,
		},
		{
			name:       "not started, batch script gone",
			noScript:   true,
			wantKnown:  true,
			wantState:  job.Failed,
			wantReason: "could not start: batch script: ",
		},
		{
			name:  "no job dir",
			noDir: true,
		},
	}

	te := startExec(t, Options{Slots: 1})
	var hs []scheduler.Handle
	for i, tt := range tests {
		h := scheduler.Handle{JobID: "job" + strconv.Itoa(i), State: job.Running}
		if !tt.noDir {
			h.Dir = newJobDir(t, markRan+writeExit0)
			for name, content := range tt.files {
				writeFile(t, filepath.Join(h.Dir, name), content)
			}
			if tt.noScript {
				if err := os.Remove(filepath.Join(h.Dir, "job.sh")); err != nil {
					t.Fatal(err)
				}
			}
		}
		hs = append(hs, h)
	}
	sts, err := te.Recover(context.Background(), hs)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	te.runSentinel(t)

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hs[i]
			st, ok := sts[h.JobID]
			if ok != tt.wantKnown {
				t.Fatalf("in Recover's answer: %v, want %v (%+v)", ok, tt.wantKnown, st)
			}
			if !ok {
				return
			}
			if st.State != tt.wantState || !strings.HasPrefix(st.Reason, tt.wantReason) {
				t.Errorf("Recover = %s %q, want %s %q", st.State, st.Reason, tt.wantState,
					tt.wantReason)
			}
			if got := deref(st.ExitCode); got != tt.wantCode {
				t.Errorf("exit code = %v, want %v", got, tt.wantCode)
			}
			if tt.wantEnded != nil && (st.EndedAt == nil || !st.EndedAt.Equal(*tt.wantEnded)) {
				t.Errorf("EndedAt = %v, want %s", st.EndedAt, tt.wantEnded)
			}
			if polled, _ := te.poll(t, h); polled.State != st.State {
				t.Errorf("Poll after Recover = %s, Recover said %s", polled.State, st.State)
			}
			if exists(filepath.Join(h.Dir, "ran")) {
				t.Error("Recover ran the script again")
			}
		})
	}
}

// TestRecoverRequeues checks that jobs that never started go back to the queue in the
// given order, and run the script named when they were submitted.
func TestRecoverRequeues(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "order.log")
	body := `echo "$QMD_JOB_ID" >> "$QMD_TEST_LOG"` + "\n" + markRan + writeExit0

	// The first qmd accepted the jobs but stopped before dispatching any.
	old := New(Options{})
	var hs []scheduler.Handle
	for i, script := range []string{"job.sh", "other.sh", "job.sh"} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, script), body)
		id := "r" + strconv.Itoa(i)
		sub, err := old.Submit(context.Background(), scheduler.SubmitRequest{
			JobID: id, Dir: dir, Script: script,
		})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, scheduler.Handle{JobID: id, Dir: dir, Meta: sub.Meta, State: sub.State})
	}

	te := startExec(t, Options{Slots: 1, Env: []string{"QMD_TEST_LOG=" + logPath}})
	sts, err := te.Recover(context.Background(), hs)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	for _, h := range hs {
		if st := sts[h.JobID]; st.State != job.Pending {
			t.Errorf("Recover(%s) = %+v, want pending", h.JobID, st)
		}
	}
	for _, h := range hs {
		st := te.waitState(t, h, job.Completing)
		if deref(st.ExitCode) != 0 {
			t.Errorf("job %s: %+v", h.JobID, st)
		}
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := "r0\nr1\nr2\n"; string(b) != want {
		t.Errorf("run order = %q, want %q", b, want)
	}
}

// exitedPID returns the pid of a process that has ended and been reaped.
func exitedPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func procJSON(pid int, ticks uint64) string {
	b, _ := json.Marshal(procRecord{PID: pid, StartTicks: ticks, StartedAt: time.Now().UTC()})
	return string(b)
}
