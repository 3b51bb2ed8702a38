package torque

// Tests of the Backend against the Slurm Torque wrappers (slurm-wlm-torque) over the real
// single-node Slurm. They skip without qstat or a Slurm that answers, unless CI is set.
// Other tests share this Slurm: only the jobs submitted here are cancelled, by id.

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
	"qmd/scheduler/runner"
	"qmd/templates"
)

func requireWrappers(t *testing.T) {
	t.Helper()
	_, errQ := exec.LookPath("qstat")
	errS := exec.Command("sinfo", "--noheader").Run()
	if errQ == nil && errS == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("Torque wrappers or Slurm unavailable but CI is set: %v %v", errQ, errS)
	}
	t.Skipf("Torque wrappers or Slurm unavailable: %v %v", errQ, errS)
}

// liveJob renders templates/pbs/job.sh.tmpl with command into a fresh world-readable
// job directory under /tmp and returns its submit request.
func liveJob(t *testing.T, command ...string) scheduler.SubmitRequest {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b[:])
	dir, err := os.MkdirTemp("/tmp", "qmd-torque-it-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The embedded set does not hold pbs/ yet, so the source tree's templates are the
	// override directory.
	_, file, _, _ := runtime.Caller(0)
	set, err := templates.New(filepath.Join(filepath.Dir(file), "..", "..", "templates"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := set.Render("pbs/job.sh.tmpl", templates.Script{JobID: id, Level: "test",
		Deck: "input.nw", Command: command, Tasks: 1, MemoryMB: 100, TimeLimit: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "job.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return scheduler.SubmitRequest{JobID: id, Dir: dir, Script: "job.sh"}
}

func TestLiveWrappers(t *testing.T) {
	requireWrappers(t)
	b := New(Options{Runner: runner.Local{}, SubmitTimeout: 20 * time.Second,
		QueryTimeout: 15 * time.Second})
	ctx := t.Context()
	reqs := []scheduler.SubmitRequest{
		liveJob(t, "/bin/sh", "-c", "exit 0"),
		liveJob(t, "/bin/sh", "-c", "exit 3"),
		liveJob(t, "/bin/sh", "-c", "sleep 300"),
	}
	var hs []scheduler.Handle
	for _, r := range reqs {
		sub, err := b.Submit(ctx, r)
		if err != nil {
			t.Fatalf("submit %s: %v", r.JobID, err)
		}
		h := scheduler.Handle{JobID: r.JobID, Dir: r.Dir, SchedulerID: sub.SchedulerID,
			Meta: sub.Meta, State: sub.State}
		hs = append(hs, h)
		t.Cleanup(func() { _ = b.Cancel(ctx, h) })
	}

	want := map[string]int{hs[0].JobID: 0, hs[1].JobID: 3}
	deadline := time.Now().Add(45 * time.Second)
	cancelled := false
	done := map[string]bool{}
	for time.Now().Before(deadline) && len(done) < 3 {
		sts, err := b.Poll(ctx, hs)
		if err != nil {
			t.Logf("poll: %v (asking again)", err)
		}
		for id, code := range want {
			if st, ok := sts[id]; ok && st.State == job.Completing {
				if st.ExitCode == nil || *st.ExitCode != code {
					t.Fatalf("%s: %+v, want exit %d", id, st, code)
				}
				done[id] = true
			} else if ok && st.State.Terminal() {
				t.Fatalf("%s ended as %+v", id, st)
			}
		}
		st, ok := sts[hs[2].JobID]
		if !cancelled && ok && st.State == job.Running {
			if err := b.Cancel(ctx, hs[2]); err != nil {
				t.Fatalf("cancel: %v", err)
			}
			cancelled = true
		}
		if cancelled && (!ok || st.State != job.Running && st.State != job.Pending) {
			if ok && (st.State == job.Completed ||
				st.State == job.Completing && st.ExitCode != nil && *st.ExitCode == 0) {
				t.Fatalf("cancelled job reads as finished well: %+v", st)
			}
			if !done[hs[2].JobID] {
				t.Logf("cancelled job: present %v, %+v", ok, st)
			}
			done[hs[2].JobID] = true
		}
		time.Sleep(time.Second)
	}
	if len(done) < 3 {
		t.Fatalf("only %d of 3 jobs reached their end in time: %v", len(done), done)
	}
	// A second cancel of an ended job is not an error.
	if err := b.Cancel(ctx, hs[0]); err != nil {
		t.Fatalf("cancel of a finished job: %v", err)
	}
}
