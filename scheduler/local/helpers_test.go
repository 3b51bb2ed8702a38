package local

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
)

// waitTimeout bounds every wait for a job to change state. The scripts sleep for tenths of
// a second, so hitting it means the executor lost track of a job.
const waitTimeout = 5 * time.Second

// Script lines the tests' batch scripts are made of. Gated jobs run until the test creates
// the file "release" in their directory, so a test decides when a job ends without sleeping.
const (
	writeExit0 = `printf '0 %s\n' "$(date +%s)" > exit_status` + "\n"
	markRan    = "echo ran >> ran\n"
	waitGate   = "while [ ! -e release ]; do sleep 0.02; done\n"
)

// newJobDir makes a job directory holding job.sh with the given body.
func newJobDir(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "job.sh"), "set -u\n"+body)
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// testExec is an executor whose dispatcher runs until stop or the end of the test. At the
// end it kills, by process group, any job of its own still alive, so a failing test leaves
// no sleeping scripts behind.
type testExec struct {
	*Executor
	notified atomic.Int32
	stopRun  context.CancelFunc
	runDone  chan struct{}
}

func startExec(t *testing.T, opt Options) *testExec {
	t.Helper()
	te := &testExec{runDone: make(chan struct{})}
	opt.Notify = func() { te.notified.Add(1) }
	te.Executor = New(opt)

	ctx, cancel := context.WithCancel(context.Background())
	te.stopRun = cancel
	go func() {
		defer close(te.runDone)
		_ = te.Run(ctx)
	}()
	t.Cleanup(func() {
		te.stop()
		te.mu.Lock()
		defer te.mu.Unlock()
		for _, p := range te.running {
			if alive(p.pid, p.startTicks) {
				_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			}
		}
	})
	return te
}

// stop ends the dispatcher, as a stopping qmd does; running jobs go on.
func (te *testExec) stop() {
	te.stopRun()
	<-te.runDone
}

func (te *testExec) submit(t *testing.T, id, dir string) scheduler.Handle {
	t.Helper()
	sub, err := te.Submit(context.Background(), scheduler.SubmitRequest{
		JobID: id, Dir: dir, Script: "job.sh", Tag: "qmd-" + id,
	})
	if err != nil {
		t.Fatalf("Submit(%s): %v", id, err)
	}
	if sub.State != job.Pending {
		t.Errorf("Submit(%s) state = %s, want %s", id, sub.State, job.Pending)
	}
	return scheduler.Handle{JobID: id, Dir: dir, Meta: sub.Meta, State: sub.State}
}

// poll returns the executor's view of one job; ok is false if the job is unknown.
func (te *testExec) poll(t *testing.T, h scheduler.Handle) (scheduler.Status, bool) {
	t.Helper()
	sts, err := te.Poll(context.Background(), []scheduler.Handle{h})
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	st, ok := sts[h.JobID]
	return st, ok
}

// waitState polls until the job reaches want, failing the test at waitTimeout.
func (te *testExec) waitState(t *testing.T, h scheduler.Handle, want job.State) scheduler.Status {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		st, ok := te.poll(t, h)
		if ok && st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: state %q (known %v) after %s, want %s (reason %q)",
				h.JobID, st.State, ok, waitTimeout, want, st.Reason)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFile waits for a file a script creates, failing the test at waitTimeout.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !exists(path) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not created within %s", path, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// release lets a gated job finish.
func release(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "release"), "")
}

// runSentinel submits a job behind everything queued and waits for it to finish. With one
// slot and FIFO order, every job queued before it has then been started (or refused).
func (te *testExec) runSentinel(t *testing.T) {
	t.Helper()
	h := te.submit(t, "sentinel", newJobDir(t, writeExit0))
	te.waitState(t, h, job.Completing)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
