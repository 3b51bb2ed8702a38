// Package metrics holds qmd's Prometheus metrics, on a registry of its own. Labels are
// clusters, states, commands and outcomes from fixed sets, never a job id, user or path,
// so the number of series stays bounded however many jobs pass through.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"qmd/daemon/job"
	"qmd/scheduler/runner"
)

// Metrics are the instruments the daemon updates.
type Metrics struct {
	Reg *prometheus.Registry

	Transitions     *prometheus.CounterVec
	CommandDuration *prometheus.HistogramVec
	CommandErrors   *prometheus.CounterVec
	PollSuccess     *prometheus.GaugeVec
	LastPollOK      *prometheus.GaugeVec

	Outcomes        *prometheus.CounterVec
	QueueWait       *prometheus.HistogramVec
	RunTime         *prometheus.HistogramVec
	Submissions     *prometheus.CounterVec
	Reconciliations *prometheus.CounterVec
	ParseFailures   *prometheus.CounterVec
}

// jobBuckets span NMR jobs from a minute (a draft run of water) to two days (a production
// run of a large molecule waiting behind a full queue).
var jobBuckets = []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400,
	28800, 57600, 86400, 172800}

// New registers every metric on a fresh registry, with the Go and process collectors.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Reg: reg,
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qmd_job_transitions_total",
			Help: "Job state transitions written to the store, by from and to state.",
		}, []string{"from", "to"}),
		// Scheduler commands take from a few milliseconds (squeue on a quiet
		// controller) to tens of seconds (sbatch on a loaded one, or over SSH).
		CommandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "qmd_scheduler_command_duration_seconds",
			Help:    "Duration of scheduler commands (sbatch, squeue, sacct, scancel ...).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"cluster", "command"}),
		CommandErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qmd_scheduler_command_errors_total",
			Help: "Scheduler commands that failed: could not run, timed out or exited non-zero.",
		}, []string{"cluster", "command"}),
		PollSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qmd_scheduler_healthy",
			Help: "1 when the cluster's scheduler answered the last poll, else 0.",
		}, []string{"cluster"}),
		LastPollOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qmd_poll_last_success_timestamp_seconds",
			Help: "Unix time of the cluster's last successful poll.",
		}, []string{"cluster"}),
	}
	m.Outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qmd_job_outcomes_total",
		Help: "Jobs that reached a final state, by cluster, state and reason.",
	}, []string{"cluster", "state", "reason"})
	m.QueueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "qmd_job_queue_wait_seconds", Buckets: jobBuckets,
		Help: "Time from submission to the scheduler until the job started.",
	}, []string{"cluster"})
	m.RunTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "qmd_job_run_seconds", Buckets: jobBuckets,
		Help: "Time from the job's start until its program ended.",
	}, []string{"cluster"})
	m.Submissions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qmd_submissions_total",
		Help: "Submissions to the scheduler by outcome: accepted, refused, no_answer.",
	}, []string{"cluster", "outcome"})
	m.Reconciliations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qmd_reconciliations_total",
		Help: "Jobs left in submitting that were looked up by their tag: adopted or resubmitted.",
	}, []string{"cluster", "outcome"})
	m.ParseFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qmd_nwchem_failures_total",
		Help: "NWChem runs that did not give shieldings, by failure kind.",
	}, []string{"kind"})
	reg.MustRegister(m.Outcomes, m.QueueWait, m.RunTime, m.Submissions, m.Reconciliations,
		m.ParseFailures)
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qmd_build_info",
		Help: "Always 1; the version label says which qmd is running.",
	}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	reg.MustRegister(m.Transitions, m.CommandDuration, m.CommandErrors, m.PollSuccess,
		m.LastPollOK, build)
	return m
}

// Counter is a source of the number of jobs per cluster and state, read at scrape time.
type Counter func(ctx context.Context) (map[string]map[job.State]int, error)

// Jobs registers qmd_jobs{cluster,state}, read from the store at each scrape, with every
// state of every cluster present (zero included) so dashboards need no absent() tricks.
func (m *Metrics) Jobs(clusters []string, count Counter) {
	m.Reg.MustRegister(&jobsCollector{clusters: clusters, count: count})
}

var jobsDesc = prometheus.NewDesc("qmd_jobs", "Jobs in each state, by cluster.",
	[]string{"cluster", "state"}, nil)

type jobsCollector struct {
	clusters []string
	count    Counter
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	for _, cl := range c.clusters {
		for _, st := range job.States {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue,
				float64(counts[cl][st]), cl, string(st))
		}
	}
}

// SSH registers the connection gauges of a cluster reached over SSH.
func (m *Metrics) SSH(cluster string, open func() int, dials func() int) {
	m.Reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "qmd_ssh_connections_open", Help: "Open SSH connections to the cluster.",
			ConstLabels: prometheus.Labels{"cluster": cluster},
		}, func() float64 { return float64(open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "qmd_ssh_dials_total", Help: "SSH connections established to the cluster.",
			ConstLabels: prometheus.Labels{"cluster": cluster},
		}, func() float64 { return float64(dials()) }),
	)
}

// Runner wraps r so every command's duration and failure is recorded under cluster and
// the program's name.
func (m *Metrics) Runner(cluster string, r runner.Runner) runner.Runner {
	return instrumented{m: m, cluster: cluster, next: r}
}

type instrumented struct {
	m       *Metrics
	cluster string
	next    runner.Runner
}

func (i instrumented) Run(ctx context.Context, c runner.Command) (runner.Result, error) {
	start := time.Now()
	res, err := i.next.Run(ctx, c)
	cmd := "unknown"
	if len(c.Argv) > 0 {
		cmd = commandLabel(c.Argv[0])
	}
	i.m.CommandDuration.WithLabelValues(i.cluster, cmd).Observe(time.Since(start).Seconds())
	if err != nil {
		i.m.CommandErrors.WithLabelValues(i.cluster, cmd).Inc()
	}
	return res, err
}

// commandLabel keeps the label set bounded: known scheduler programs by name, anything
// else as "other".
func commandLabel(argv0 string) string {
	switch argv0 {
	case "sbatch", "squeue", "sacct", "scancel", "scontrol", "qsub", "qstat", "qdel",
		"qselect", "obabel":
		return argv0
	}
	return "other"
}

// ServeListener serves /metrics on ln until ctx ends.
func (m *Metrics) ServeListener(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Reg, promhttp.HandlerOpts{
		Registry: m.Reg, MaxRequestsInFlight: 4,
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
