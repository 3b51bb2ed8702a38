package manager

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"qmd/ctl/api"
	"qmd/daemon/config"
	"qmd/daemon/job"
	"qmd/daemon/store"
	"qmd/scheduler"
	"qmd/scheduler/fake"
	"qmd/templates"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden* from the current code")

// Fixtures: real NWChem runs kept by the nwchem package, and the molecule they are of.
const (
	fixtures = "../nwchem/testdata/"
	waterOut = fixtures + "water_draft_gas_opt_nmr.out"
	waterErr = fixtures + "water_draft_gas_opt_nmr.err"
	waterXYZ = "3\nwater\nO 0.90348 0.07368 0.01402\n" +
		"H 1.87136 0.03381 -0.00979\nH 0.62463 -0.72308 -0.46177\n"
	testUID    = 1000
	maxInput   = 64 << 10
	clusterA   = "local"
	clusterB   = "hpc"
	multiSDF   = "../chem/testdata/multi.sdf"
	fakeSchedA = "fake-local"
)

// harness is a manager on a real store in a temporary state directory, with one fake
// scheduler per cluster. Tests step it one poll cycle at a time instead of running its
// loops, so "pending for two polls" means two calls of cycle.
type harness struct {
	t     *testing.T
	dir   string
	cfg   *config.Config
	st    *store.Store
	m     *Manager
	fakes map[string]*fake.Scheduler
	logs  *lockedBuffer
	clock *clock
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clock advances a millisecond per reading, so jobs created one after the other always
// sort in creation order.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf(`state_dir = %q
socket = %q
max_input_bytes = %d

[clusters.%s]
slots = 1
poll_interval = "100ms"

[clusters.%s]
poll_interval = "100ms"
`, filepath.Join(dir, "state"), filepath.Join(dir, "qmd.sock"), maxInput, clusterA, clusterB)
	cfg, err := config.Parse(text, dir)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := os.MkdirAll(cfg.JobsDir(), 0o750); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, cfg: cfg, logs: &lockedBuffer{},
		clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	h.open()
	return h
}

// open starts a manager (again) on the harness's state directory, with fresh fakes, as a
// restarted qmd would find it.
func (h *harness) open() {
	h.t.Helper()
	st, err := store.Open(context.Background(), h.cfg.DBPath())
	if err != nil {
		h.t.Fatal(err)
	}
	if h.st != nil {
		h.st.Close()
	}
	st.Now = h.clock.Now
	h.t.Cleanup(func() { st.Close() })
	tmpl, err := templates.New("")
	if err != nil {
		h.t.Fatal(err)
	}
	h.fakes = map[string]*fake.Scheduler{
		clusterA: fake.New(fake.Options{Name: fakeSchedA}),
		clusterB: fake.New(fake.Options{Name: "fake-hpc"}),
	}
	scheds := map[string]scheduler.Scheduler{}
	for n, f := range h.fakes {
		scheds[n] = f
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(Options{Config: h.cfg, Store: st, Templates: tmpl, Logger: log,
		Software: "NWChem", Schedulers: scheds})
	if err != nil {
		h.t.Fatal(err)
	}
	m.Now = h.clock.Now
	h.st, h.m = st, m
	h.t.Cleanup(func() {
		if h.t.Failed() {
			h.t.Logf("manager log:\n%s", h.logs.String())
		}
		for n, f := range h.fakes {
			if err := f.Err(); err != nil {
				h.t.Errorf("fake %s: %v", n, err)
			}
		}
	})
}

// cycle runs one poll cycle of a cluster: dispatch, poll, finish.
func (h *harness) cycle(cluster string) {
	h.t.Helper()
	c := h.m.clusters[cluster]
	if c == nil {
		h.t.Fatalf("no cluster %s", cluster)
	}
	// A cycle comes at least one poll interval after the last: back-offs measured on
	// the manager's clock run out as they would between real cycles.
	h.clock.add(c.cfg().PollIntervalMax.Duration)
	h.m.cycle(context.Background(), c, h.m.log)
}

func (h *harness) fake(cluster string) *fake.Scheduler { return h.fakes[cluster] }

// submit submits req as testUID and returns the new job ids.
func (h *harness) submit(req api.SubmitRequest) []string {
	h.t.Helper()
	resp, err := h.m.Submit(context.Background(), testUID, req)
	if err != nil {
		h.t.Fatalf("Submit: %v", err)
	}
	if len(resp.IDs) == 0 || resp.ID != resp.IDs[0] {
		h.t.Fatalf("Submit answered %+v", resp)
	}
	return resp.IDs
}

func water(solvent string) api.SubmitRequest {
	return api.SubmitRequest{Name: "water", Filename: "water.xyz", Content: waterXYZ,
		Preset: "draft", Solvent: solvent}
}

// job loads a job and checks that its history is a legal path ending where the job is.
func (h *harness) job(id string) (job.Job, []job.Event) {
	h.t.Helper()
	j, hist, err := h.m.Job(context.Background(), id)
	if err != nil {
		h.t.Fatalf("Job %s: %v", id, err)
	}
	checkHistory(h.t, j, hist)
	return j, hist
}

func (h *harness) state(id string) job.State {
	h.t.Helper()
	j, _ := h.job(id)
	return j.State
}

// checkHistory walks a job's events: created from nothing, each move allowed by the
// transition table, each starting where the last ended, and the last where the job is.
func checkHistory(t testing.TB, j job.Job, hist []job.Event) {
	t.Helper()
	if len(hist) == 0 {
		t.Fatalf("job %s has no history", j.ID)
	}
	if hist[0].From != "" {
		t.Errorf("job %s: first event starts from %q", j.ID, hist[0].From)
	}
	for i := 1; i < len(hist); i++ {
		e := hist[i]
		if e.From != hist[i-1].To {
			t.Errorf("job %s: event %d starts at %s, previous ended at %s", j.ID, i,
				e.From, hist[i-1].To)
		}
		if !job.CanMove(e.From, e.To) {
			t.Errorf("job %s: event %d moves %s → %s, which the table forbids", j.ID, i,
				e.From, e.To)
		}
	}
	if last := hist[len(hist)-1].To; last != j.State {
		t.Errorf("job %s is %s but its history ends at %s", j.ID, j.State, last)
	}
}

// path returns the states a history went through.
func path(hist []job.Event) []job.State {
	out := make([]job.State, len(hist))
	for i, e := range hist {
		out[i] = e.To
	}
	return out
}

func wantPath(t *testing.T, hist []job.Event, want ...job.State) {
	t.Helper()
	if got := path(hist); !slices.Equal(got, want) {
		t.Errorf("history %v, want %v", got, want)
	}
}

// jobDirs lists the entries of the jobs directory, hidden ones included.
func (h *harness) jobDirs() []string {
	h.t.Helper()
	des, err := os.ReadDir(h.cfg.JobsDir())
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func (h *harness) count() int {
	h.t.Helper()
	jobs, err := h.st.List(context.Background(), store.Filter{})
	if err != nil {
		h.t.Fatal(err)
	}
	return len(jobs)
}

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}
