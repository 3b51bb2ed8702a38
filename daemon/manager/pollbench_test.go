package manager

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"qmd/ctl/api"
	"qmd/daemon/config"
	"qmd/daemon/job"
	"qmd/daemon/store"
	"qmd/scheduler"
	"qmd/scheduler/runner"
	"qmd/scheduler/slurm"
	"qmd/templates"
)

// The poll benchmarks run the real Slurm backend and the real store against a runner that
// answers squeue and sacct from a table, so they measure qmd's own work: build the
// commands, parse the answers, diff against the store and write the changes.

const benchActive = 10000

// cannedSlurm answers squeue and sacct like a Slurm where every job runs except those in
// ended, which have left the queue and completed. cost, when set, is spent on every call,
// standing in for the time a real command takes.
type cannedSlurm struct {
	mu    sync.Mutex
	ended map[string]bool
	calls int
	cost  time.Duration
}

func (c *cannedSlurm) Run(ctx context.Context, cmd runner.Command) (runner.Result, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	if c.cost > 0 {
		spin(c.cost)
	}
	var ids []string
	for _, a := range cmd.Argv {
		if v, ok := strings.CutPrefix(a, "--jobs="); ok {
			ids = strings.Split(v, ",")
		}
	}
	var out bytes.Buffer
	c.mu.Lock()
	defer c.mu.Unlock()
	switch cmd.Argv[0] {
	case "squeue":
		for _, id := range ids {
			if !c.ended[id] {
				out.WriteString(id + "|RUNNING|None\n")
			}
		}
	case "sacct":
		for _, id := range ids {
			if c.ended[id] {
				fmt.Fprintf(&out, "%s|COMPLETED|0:0|2026-01-02T03:00:00|2026-01-02T03:00:01|"+
					"2026-01-02T03:10:00|qmd-%s\n", id, id)
			}
		}
	}
	return runner.Result{Stdout: out.Bytes()}, nil
}

// spin burns d of wall time without sleeping, so the cost is paid even where the
// scheduler's timer granularity would round a sleep up.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

type pollBench struct {
	m     *Manager
	c     *cluster
	st    *store.Store
	slurm *cannedSlurm
	ids   []string // scheduler ids, in job order
}

var (
	pollBenchOnce sync.Once
	pollBenchDir  string
	pollBenchErr  error
)

// newPollBench opens a manager on a copy of a store holding benchActive running Slurm
// jobs. The store is built once per process (it takes seconds) and copied per benchmark,
// since each benchmark moves jobs out of the running state.
func newPollBench(b *testing.B) *pollBench {
	b.Helper()
	pollBenchOnce.Do(func() {
		pollBenchDir, pollBenchErr = os.MkdirTemp("", "qmd-pollbench-")
		if pollBenchErr == nil {
			pollBenchErr = fillPollStore(filepath.Join(pollBenchDir, "qmd.db"))
		}
	})
	if pollBenchErr != nil {
		b.Fatal(pollBenchErr)
	}
	dir := b.TempDir()
	for _, f := range []string{"qmd.db", "qmd.db-wal", "qmd.db-shm"} {
		data, err := os.ReadFile(filepath.Join(pollBenchDir, f))
		if err == nil {
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	text := fmt.Sprintf("state_dir = %q\nsocket = %q\ndefault_cluster = \"hpc\"\n"+
		"[clusters.hpc]\nscheduler = \"slurm\"\n", dir, filepath.Join(dir, "s"))
	cfg, err := config.Parse(text, dir)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "qmd.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	tmpl, _ := templates.New("")
	canned := &cannedSlurm{ended: map[string]bool{}}
	be := slurm.New(slurm.Options{Runner: canned, Location: time.UTC})
	m, err := New(Options{Config: cfg, Store: st, Templates: tmpl,
		Schedulers: map[string]scheduler.Scheduler{"hpc": be}})
	if err != nil {
		b.Fatal(err)
	}
	pb := &pollBench{m: m, c: m.clusters["hpc"], st: st, slurm: canned}
	for i := range benchActive {
		pb.ids = append(pb.ids, strconv.Itoa(1000+i))
	}
	return pb
}

func fillPollStore(path string) error {
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	meta := `{"submitted_at":"2026-01-02T02:59:00Z"}`
	for i := range benchActive {
		id := fmt.Sprintf("%012x", 0xabc000000000+i)
		j := job.Job{ID: id, Name: "bench", OwnerUID: 1000, Cluster: "hpc",
			State: job.Running, SchedulerID: strconv.Itoa(1000 + i), SchedMeta: meta,
			Preset: "draft", Solvent: "chcl3"}
		if err := st.Create(ctx, &j, "benchmark"); err != nil {
			return err
		}
	}
	return nil
}

// execCost is what starting a trivial program costs here: a lower bound on what one real
// squeue or sacct costs, used to compare batched polling with one-job-at-a-time polling
// on equal terms.
func execCost(b *testing.B) time.Duration {
	b.Helper()
	best := time.Hour
	for range 20 {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// BenchmarkPollCycle10kWithExecCost and BenchmarkPollOneByOne10kWithExecCost charge each
// scheduler command the cost of starting a program; their ns/op ratio is the ≥ 20× the
// batched poll has to keep over polling one job at a time.
func BenchmarkPollCycle10kWithExecCost(b *testing.B) {
	cost := execCost(b)
	b.ReportMetric(float64(cost.Microseconds()), "µs/command")
	benchPollCycle(b, cost)
}

func BenchmarkPollOneByOne10kWithExecCost(b *testing.B) {
	cost := execCost(b)
	b.ReportMetric(float64(cost.Microseconds()), "µs/command")
	benchPollOneByOne(b, cost)
}

// BenchmarkPollCycle10k is one poll of 10,000 active Slurm jobs of which 1 % left the
// queue and completed: squeue and sacct in chunks, parse, diff, one transaction. Each
// iteration ends a fresh 1 %.
func BenchmarkPollCycle10k(b *testing.B) { benchPollCycle(b, 0) }

func benchPollCycle(b *testing.B, cost time.Duration) {
	pb := newPollBench(b)
	pb.slurm.cost = cost
	ctx := context.Background()
	next := 0
	for b.Loop() {
		b.StopTimer()
		for range benchActive / 100 {
			pb.slurm.ended[pb.ids[next%benchActive]] = true
			next++
		}
		pb.slurm.calls = 0
		b.StartTimer()
		n, err := pb.m.poll(ctx, pb.c)
		if err != nil {
			b.Fatal(err)
		}
		if n != benchActive/100 {
			b.Fatalf("%d jobs changed, want %d", n, benchActive/100)
		}
	}
	b.ReportMetric(float64(pb.slurm.calls), "calls/cycle")
}

// BenchmarkPollOneByOne10k is the baseline: the same observation made one job at a time,
// one squeue (and one sacct for a job that left the queue) and one transaction per job,
// as tools that loop over their jobs do. Compare ns/op with BenchmarkPollCycle10k.
func BenchmarkPollOneByOne10k(b *testing.B) { benchPollOneByOne(b, 0) }

func benchPollOneByOne(b *testing.B, cost time.Duration) {
	pb := newPollBench(b)
	pb.slurm.cost = cost
	ctx := context.Background()
	next := 0
	for b.Loop() {
		b.StopTimer()
		for range benchActive / 100 {
			pb.slurm.ended[pb.ids[next%benchActive]] = true
			next++
		}
		jobs, err := pb.st.List(ctx, store.Filter{Cluster: "hpc",
			States: []job.State{job.Running}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		changed := 0
		for _, j := range jobs {
			sts, err := pb.c.sched.Poll(ctx, []scheduler.Handle{pb.m.handle(j)})
			if err != nil {
				b.Fatal(err)
			}
			if st, ok := sts[j.ID]; ok && pb.m.apply(ctx, pb.c, j, st) {
				changed++
			}
		}
		if changed != benchActive/100 {
			b.Fatalf("%d jobs changed, want %d", changed, benchActive/100)
		}
	}
}

// sbatchCanned answers sbatch with a fresh id at once, so BenchmarkDispatch200 measures
// what qmd itself spends per submission.
type sbatchCanned struct {
	mu   sync.Mutex
	next int
}

func (s *sbatchCanned) Run(ctx context.Context, cmd runner.Command) (runner.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cmd.Argv[0] != "sbatch" {
		return runner.Result{}, nil
	}
	s.next++
	return runner.Result{Stdout: []byte(strconv.Itoa(s.next) + "\n")}, nil
}

// BenchmarkDispatch200 is qmd's own cost of handing 200 queued jobs to Slurm: claim,
// sbatch (answered at once), record. Compare it with the cost of one real sbatch.
func BenchmarkDispatch200(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		text := fmt.Sprintf("state_dir = %q\nsocket = %q\ndefault_cluster = \"hpc\"\n"+
			"[clusters.hpc]\nscheduler = \"slurm\"\n", dir, filepath.Join(dir, "s"))
		cfg, err := config.Parse(text, dir)
		if err != nil {
			b.Fatal(err)
		}
		os.MkdirAll(cfg.JobsDir(), 0o750)
		st, err := store.Open(ctx, cfg.DBPath())
		if err != nil {
			b.Fatal(err)
		}
		tmpl, _ := templates.New("")
		be := slurm.New(slurm.Options{Runner: &sbatchCanned{}, Location: time.UTC})
		m, err := New(Options{Config: cfg, Store: st, Templates: tmpl,
			Schedulers: map[string]scheduler.Scheduler{"hpc": be}})
		if err != nil {
			b.Fatal(err)
		}
		xyz := "3\nwater\nO 0 0 0.1173\nH 0 0.7572 -0.4692\nH 0 -0.7572 -0.4692\n"
		for range 200 {
			if _, err := m.Submit(ctx, 1000, api.SubmitRequest{Content: xyz,
				Filename: "w.xyz", Solvent: "gas"}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := m.dispatch(ctx, m.clusters["hpc"]); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		n, _ := st.List(ctx, store.Filter{States: []job.State{job.Pending}})
		if len(n) != 200 {
			b.Fatalf("%d pending, want 200", len(n))
		}
		st.Close()
		b.StartTimer()
	}
}
