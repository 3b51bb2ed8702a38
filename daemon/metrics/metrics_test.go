package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"qmd/daemon/job"
	"qmd/scheduler/runner"
)

type stubRunner struct{ err error }

func (s stubRunner) Run(ctx context.Context, c runner.Command) (runner.Result, error) {
	return runner.Result{}, s.err
}

func TestMetricsLintAndContent(t *testing.T) {
	m := New("v-test")
	m.Jobs([]string{"hpc"}, func(ctx context.Context) (map[string]map[job.State]int, error) {
		return map[string]map[job.State]int{"hpc": {job.Running: 3}}, nil
	})
	m.SSH("hpc", func() int { return 1 }, func() int { return 2 })
	ok := m.Runner("hpc", stubRunner{})
	bad := m.Runner("hpc", stubRunner{err: errors.New("timeout")})
	ok.Run(context.Background(), runner.Command{Argv: []string{"squeue"}})
	bad.Run(context.Background(), runner.Command{Argv: []string{"sacct"}})
	bad.Run(context.Background(), runner.Command{Argv: []string{"/home/alice/evil"}})
	m.Transitions.WithLabelValues("running", "completing").Inc()
	m.PollSuccess.WithLabelValues("hpc").Set(1)
	m.LastPollOK.WithLabelValues("hpc").SetToCurrentTime()

	problems, err := testutil.GatherAndLint(m.Reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	want := `
# HELP qmd_jobs Jobs in each state, by cluster.
# TYPE qmd_jobs gauge
`
	if err := testutil.GatherAndCompare(m.Reg, strings.NewReader(want+jobsLines()),
		"qmd_jobs"); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(m.CommandErrors.WithLabelValues("hpc", "sacct")); v != 1 {
		t.Errorf("sacct errors = %v", v)
	}
	if v := testutil.ToFloat64(m.CommandErrors.WithLabelValues("hpc", "other")); v != 1 {
		t.Errorf("an unknown program must be counted as other, got %v", v)
	}
	n, err := testutil.GatherAndCount(m.Reg, "qmd_ssh_connections_open", "qmd_ssh_dials_total")
	if err != nil || n != 2 {
		t.Errorf("ssh series: %d, %v", n, err)
	}
}

func jobsLines() string {
	var b strings.Builder
	for _, s := range job.States {
		v := "0"
		if s == job.Running {
			v = "3"
		}
		b.WriteString(`qmd_jobs{cluster="hpc",state="` + string(s) + `"} ` + v + "\n")
	}
	return b.String()
}
