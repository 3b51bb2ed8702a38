package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"qmd/ctl/cli"
	"qmd/ctl/client"
	"qmd/daemon/config"
	"qmd/daemon/job"
	"qmd/daemon/manager"
	"qmd/daemon/store"
	"qmd/scheduler"
	"qmd/scheduler/fake"
	"qmd/templates"
)

// benchJobs is how many jobs BenchmarkListJSON10k lists: a busy group's year.
const benchJobs = 10_000

// bench is the fixture the benchmarks share: a store of benchJobs jobs and a daemon
// serving it. Filling the store takes seconds (one fsync'd transaction per job), so it is
// built once per process and removed by TestMain.
var bench struct {
	once   sync.Once
	dir    string
	client *client.Client
	stop   func()
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.stop != nil {
		bench.stop()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// benchClient returns a client of the shared daemon, building it on first use.
func benchClient(b *testing.B) *client.Client {
	b.Helper()
	bench.once.Do(func() { bench.err = buildBench() })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.client
}

func buildBench() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "qmdbench")
	if err != nil {
		return err
	}
	bench.dir = dir
	cfg, err := config.Parse(fmt.Sprintf("state_dir = %q\nsocket = %q\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "qmd.sock")), dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.JobsDir(), 0o750); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return err
	}
	if err := seedJobs(ctx, st, benchJobs); err != nil {
		st.Close()
		return err
	}
	tmpl, err := templates.New("")
	if err != nil {
		st.Close()
		return err
	}
	m, err := manager.New(manager.Options{Config: cfg, Store: st, Templates: tmpl,
		Schedulers: map[string]scheduler.Scheduler{"local": fake.New(fake.Options{})}})
	if err != nil {
		st.Close()
		return err
	}
	h := &Handler{M: m, Version: "bench", Log: slog.New(slog.DiscardHandler)}
	tb := &stopTB{}
	bench.client = serveOn(tb, h, cfg.Socket, nil)
	bench.stop = func() {
		tb.cleanup()
		st.Close()
	}
	return tb.err
}

// stopTB lets serveOn, written for tests, run outside one: it keeps the cleanups for
// TestMain and turns failures into an error.
type stopTB struct {
	testing.TB
	fns []func()
	err error
}

func (s *stopTB) Helper()                   { /* no test to attribute lines to */ }
func (s *stopTB) Cleanup(f func())          { s.fns = append(s.fns, f) }
func (s *stopTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (s *stopTB) Errorf(f string, a ...any) { s.err = fmt.Errorf(f, a...) }

func (s *stopTB) cleanup() {
	for i := len(s.fns) - 1; i >= 0; i-- {
		s.fns[i]()
	}
}

// seedJobs stores n jobs as the listing sees them in a long-running daemon: every field
// set, a spread of states, failures carrying their summary and excerpt. All belong to
// the benchmark's own uid, so it lists all of them whether or not it runs as root.
func seedJobs(ctx context.Context, st *store.Store, n int) error {
	uid := os.Getuid()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	excerpt := "SCF did not converge\n\n" + string(make([]byte, 0)) +
		" convergence    iter        energy       DeltaE   RMS-Dens  Diis-err    time\n" +
		" ---------------- ----- ----------------- --------- --------- --------- ------\n" +
		" d= 0,ls=0.0,diis    30    -76.4070241759 -1.23D-05  4.56D-04  7.89D-05   12.3\n"
	for i := range n {
		st0 := job.States[i%len(job.States)]
		at := base.Add(time.Duration(i) * time.Minute)
		code := i % 3
		j := job.Job{
			ID: fmt.Sprintf("%012x", 0xbe000000+i), Name: fmt.Sprintf("conformer-%05d", i),
			OwnerUID: uid, Cluster: "local", State: st0, SchedulerID: fmt.Sprint(40000 + i),
			SchedMeta: `{"pid":40000,"start_ticks":123456}`, Preset: "draft",
			Solvent: "chcl3", Multiplicity: 1,
			Level:    "B3LYP/6-31G*//B3LYP/6-31G* COSMO(chcl3)",
			Software: "NWChem 7.0.2", TemplateHash: "ecaaab5cc6de1bb9",
			InputFormat: "xyz", CreatedAt: at, UpdatedAt: at.Add(90 * time.Second),
		}
		if st0.Terminal() {
			j.ExitCode = &code
			end := at.Add(time.Hour)
			j.EndedAt = &end
		}
		if st0 == job.Failed {
			j.Error = excerpt
		}
		if err := st.Create(ctx, &j, "benchmark"); err != nil {
			return err
		}
	}
	return nil
}

// listJSON runs `qmctl list --json` itself (the ctl/cli code, in this process) and returns
// how many bytes it printed.
func listJSON(ctx context.Context, c *client.Client, w io.Writer) (int, error) {
	cw := &countWriter{w: w}
	var stderr bytes.Buffer
	code := cli.Run(ctx, []string{"--socket", c.Socket, "list", "--json"},
		func(string) string { return "" }, strings.NewReader(""), cw, &stderr)
	if code != 0 {
		return 0, fmt.Errorf("qmctl list --json: exit %d: %s", code, stderr.String())
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	return c.w.Write(p)
}

// BenchmarkBaselineVersion is the floor: one request over the same socket, through the
// same peer check and JSON path, with a body of a few bytes.
func BenchmarkBaselineVersion(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Version(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListJSON10k is `qmctl list --json` against a daemon holding 10,000 jobs. The
// target is at most 100 ms per listing; ns/op differs from machine to machine, so the
// ratio to a version request measured in the same run is reported alongside.
func BenchmarkListJSON10k(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()

	const probes = 200
	start := time.Now()
	for range probes {
		if _, err := c.Version(ctx); err != nil {
			b.Fatal(err)
		}
	}
	baseline := time.Since(start) / probes

	cpu0 := cpuTime()
	lists := 0
	for b.Loop() {
		n, err := listJSON(ctx, c, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if n < benchJobs*100 {
			b.Fatalf("printed %d bytes for %d jobs", n, benchJobs)
		}
		lists++
	}
	cpu := (cpuTime() - cpu0) / time.Duration(lists)
	per := b.Elapsed() / time.Duration(lists)
	b.ReportMetric(float64(per)/float64(time.Millisecond), "ms/list")
	b.ReportMetric(float64(per)/float64(baseline), "x-version")
	// CPU time of client and daemon together: unlike the wall time it does not grow when
	// other programs share the cores, as NWChem does on a workstation.
	b.ReportMetric(float64(cpu)/float64(time.Millisecond), "cpu-ms/list")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
