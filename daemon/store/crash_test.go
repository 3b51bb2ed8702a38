package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
)

// crashChildEnv names the database a re-executed test binary should write to until killed.
const crashChildEnv = "QMD_STORE_CRASH_CHILD_DB"

// TestCrashKeepsAcknowledgedWrites runs the writer in a child process, kills it with
// SIGKILL mid-stream, and checks that every write the child reported as committed is in
// the reopened database and that every job's state agrees with its last event. SIGKILL
// does not lose the page cache, so this proves crash consistency of the process and the
// WAL recovery, not survival of a power cut (that is what synchronous=FULL is for).
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAcknowledgedWrites$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	created := map[string]bool{}
	moved := map[string]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(30 * time.Second)
	for len(moved) < 200 && time.Now().Before(deadline) && sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "created":
			created[f[1]] = true
		case len(f) == 2 && f[0] == "moved":
			moved[f[1]] = true
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the error is expected
	if len(moved) == 0 {
		t.Fatalf("child acknowledged nothing before the kill (scan error %v)", sc.Err())
	}

	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	all, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]job.Job{}
	for _, j := range all {
		stored[j.ID] = j
		ev, err := s.History(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if last := ev[len(ev)-1]; last.To != j.State {
			t.Errorf("job %s is %s but its last event moves it to %s",
				j.ID, j.State, last.To)
		}
	}
	for id := range created {
		if _, ok := stored[id]; !ok {
			t.Errorf("acknowledged job %s is missing after the crash", id)
		}
	}
	for id := range moved {
		if j := stored[id]; j.State != job.Submitting {
			t.Errorf("acknowledged move of %s lost: state %q", id, j.State)
		}
	}
	t.Logf("child acknowledged %d creates and %d moves; %d jobs stored",
		len(created), len(moved), len(all))
}

// crashChild writes jobs forever, printing each one only after its commit returned, so
// the parent knows exactly what it was promised.
func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	// The parent kills the child long before this; the bound only keeps a child whose
	// parent died some other way from writing forever.
	stop := time.Now().Add(time.Minute)
	for i := 1; time.Now().Before(stop); i++ {
		j := newJob(i, job.Queued)
		if err := s.Create(ctx, &j, "submit"); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		fmt.Printf("created %s\n", j.ID)
		if _, err := s.Transition(ctx, j.ID, job.Queued, job.Submitting, "hand over",
			Update{}); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		fmt.Printf("moved %s\n", j.ID)
	}
}
