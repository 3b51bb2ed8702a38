package manager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
	"qmd/daemon/store"
	"qmd/scheduler/fake"
)

// force walks a job through states with the store, as an earlier qmd would have left it.
func (h *harness) force(id string, states ...job.State) {
	h.t.Helper()
	j, _ := h.job(id)
	from := j.State
	for _, to := range states {
		u := store.Update{}
		if to == job.Pending {
			sid := "sid-" + id
			u.SchedulerID = &sid
		}
		if to == job.Completing {
			code := 0
			u.ExitCode = &code
		}
		if _, err := h.st.Transition(context.Background(), id, from, to, "earlier run",
			u); err != nil {
			h.t.Fatal(err)
		}
		from = to
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverAtStart(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	ids := map[string]string{}
	var order []string
	for _, name := range []string{"running", "completed", "submitting", "pending", "queued",
		"completing", "forgotten"} {
		ids[name] = h.submit(water("gas"))[0]
		order = append(order, name)
	}
	req := water("gas")
	req.Cluster = clusterB
	other := h.submit(req)[0]

	h.force(ids["running"], job.Submitting, job.Pending, job.Running)
	h.force(ids["completed"], job.Submitting, job.Pending, job.Completing, job.Completed)
	h.force(ids["submitting"], job.Submitting)
	h.force(ids["pending"], job.Submitting, job.Pending)
	h.force(ids["completing"], job.Submitting, job.Pending, job.Running, job.Completing)
	h.force(ids["forgotten"], job.Submitting, job.Pending, job.Running)
	h.force(other, job.Submitting, job.Pending)
	dir := filepath.Join(h.cfg.JobsDir(), ids["completing"])
	copyFile(t, waterOut, filepath.Join(dir, OutputFile))
	copyFile(t, waterErr, filepath.Join(dir, StderrFile))

	// qmd restarts; the cluster kept the jobs it had.
	h.open()
	a, b := h.fake(clusterA), h.fake(clusterB)
	jobsDir := h.cfg.JobsDir()
	a.Adopt(ids["running"], "", "sid-"+ids["running"],
		fake.Script{fake.Running(1), fake.Exit(0, waterOut, waterErr)})
	a.Adopt(ids["pending"], "", "sid-"+ids["pending"], fake.Script{fake.Pending(9)})
	b.Adopt(other, "", "sid-"+other, fake.Script{fake.Running(9)})
	a.Queue(fake.Script{fake.Pending(9)}) // for the job the cluster never got

	if err := h.m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	var recovered []string
	for _, c := range a.Calls() {
		if c.Method == "Recover" {
			recovered = append(recovered, c.JobIDs...)
		}
	}
	want := []string{ids["running"], ids["submitting"], ids["pending"], ids["forgotten"]}
	if !slices.Equal(recovered, want) {
		t.Errorf("Recover got %v, want the active jobs in creation order %v", recovered, want)
	}
	if a.Count("Recover") != 1 || b.Count("Recover") != 1 {
		t.Errorf("Recover calls: %d and %d, want one per cluster", a.Count("Recover"),
			b.Count("Recover"))
	}
	if rb := b.Calls()[0].JobIDs; !slices.Equal(rb, []string{other}) {
		t.Errorf("hpc recovered %v", rb)
	}
	if s := h.state(other); s != job.Running {
		t.Errorf("hpc job %s after recover, want running", s)
	}
	for _, c := range a.Calls() {
		if c.Method == "Submit" || c.Method == "Poll" {
			t.Errorf("Recover made a %s call", c.Method)
		}
	}

	h.m.LostAfter = time.Nanosecond
	h.cycle(clusterA)
	h.cycle(clusterA)
	wantState := map[string]job.State{
		"running": job.Completed, "completed": job.Completed, "submitting": job.Pending,
		"pending": job.Pending, "queued": job.Pending, "completing": job.Completed,
		"forgotten": job.Lost,
	}
	for _, name := range order {
		id := ids[name]
		if s := h.state(id); s != wantState[name] {
			t.Errorf("%s job is %s, want %s", name, s, wantState[name])
		}
		if n := a.CallsFor("Submit", id); n > 1 {
			t.Errorf("%s job submitted %d times", name, n)
		}
	}
	if n := a.CallsFor("Submit", ids["submitting"]); n != 1 {
		t.Errorf("the job the cluster never got was submitted %d times, want 1", n)
	}
	if n := a.CallsFor("Submit", ids["running"]) + a.CallsFor("Submit", ids["pending"]); n != 0 {
		t.Errorf("re-adopted jobs were submitted again (%d calls)", n)
	}
	if _, err := os.Stat(jobsDir); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverWithoutActiveJobsAsksNothing(t *testing.T) {
	h := newHarness(t)
	h.submit(water("gas"))
	if err := h.m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := h.fake(clusterA).Count("Recover"); n != 0 {
		t.Errorf("Recover called %d times with only a queued job", n)
	}
}

// A cluster that cannot be asked at start does not keep qmd from starting: its jobs stay
// as they are, the cluster is marked unhealthy, and later cycles ask again.
func TestRecoverErrorKeepsJobsAndStarts(t *testing.T) {
	h := newHarness(t)
	id := h.submit(water("gas"))[0]
	h.force(id, job.Submitting, job.Pending)
	h.open()
	down := errors.New("ssh: handshake failed")
	h.fakes[clusterA] = fake.New(fake.Options{Cluster: fake.Cluster{RecoverErr: down}})
	h.m.clusters[clusterA].sched = h.fakes[clusterA]
	if err := h.m.Recover(context.Background()); err != nil {
		t.Errorf("Recover: %v, want nil: an unreachable cluster must not stop the daemon", err)
	}
	if s := h.state(id); s != job.Pending {
		t.Errorf("state %s after a failed recover", s)
	}
	if h.m.Healthy(clusterA) {
		t.Error("cluster still healthy after its scheduler failed to answer")
	}
	if !strings.Contains(h.logs.String(), down.Error()) {
		t.Errorf("the failure was not logged:\n%s", h.logs.String())
	}
}

// Run drives every cluster on its own: a job goes from queued to completed without a
// test stepping the cycles.
func TestRunDrivesJobsToTheEnd(t *testing.T) {
	h := newHarness(t)
	h.fake(clusterA).Queue(fake.Script{fake.Pending(1), fake.Running(1),
		fake.Exit(0, waterOut, waterErr)})
	id := h.submit(water("gas"))[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for h.state(id) != job.Completed && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := h.state(id); s != job.Completed {
		t.Fatalf("state %s after Run, want completed", s)
	}
}
