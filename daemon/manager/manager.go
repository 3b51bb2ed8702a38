// Package manager runs the life of every job: it stores submissions, hands them to their
// cluster's scheduler, polls the schedulers, and turns finished NWChem runs into results.
// State changes go through the store's compare-and-set, so two paths racing on one job
// (a cancel and a poll, say) can never both win.
package manager

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/user"
	pathpkg "path"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"qmd/daemon/chem"
	"qmd/daemon/config"
	"qmd/daemon/conformer"
	"qmd/daemon/job"
	"qmd/daemon/metrics"
	"qmd/daemon/store"
	"qmd/scheduler"
	"qmd/scheduler/local"
	"qmd/scheduler/pbs"
	"qmd/scheduler/runner"
	"qmd/scheduler/runner/sshrunner"
	"qmd/scheduler/slurm"
	"qmd/scheduler/stage"
	"qmd/scheduler/torque"
	"qmd/templates"
)

// Manager owns the jobs of every configured cluster.
type Manager struct {
	cfg      *config.Config
	st       *store.Store
	tmpl     *templates.Set
	run      runner.Runner
	log      *slog.Logger
	software string
	clusters map[string]*cluster
	draining atomic.Bool

	metrics *metrics.Metrics

	// cmu guards clusters, which a reload changes; runCtx and wg belong to Run.
	cmu    sync.RWMutex
	runCtx context.Context
	wg     sync.WaitGroup
	opts   Options

	ownersMu sync.Mutex
	owners   map[int]ownerInfo

	// Now is the manager's clock for back-offs; tests replace it.
	Now func() time.Time

	// LostAfter, when set, overrides each cluster's lost_after: how long an active job
	// may be missing from its scheduler's answers before it is declared lost.
	LostAfter time.Duration

	// Conformers runs a conformer search (conformer.Generate with Open Babel); tests
	// replace it with fixed conformers.
	Conformers func(context.Context, chem.Molecule, conformer.Options) (
		[]conformer.Conformer, error)
}

type cluster struct {
	name string
	// cfgp holds the cluster's settings; Reload swaps them while the loops read them.
	cfgp  atomic.Pointer[config.Cluster]
	sched scheduler.Scheduler
	kick  chan struct{}

	// ssh is the cluster's SSH runner (transport = "ssh"), closed with the manager;
	// stager copies job directories over it unless the cluster shares state_dir.
	ssh    *sshrunner.Runner
	stager Stager
	// fetchFailures counts failed copies of a job's outputs, owned by the loop.
	fetchFailures map[string]int

	mu      sync.Mutex
	missing map[string]time.Time

	// retry holds the back-off of jobs whose submission got no answer.
	retry map[string]retryState

	// stop ends the cluster's loops (a reload that removes the cluster).
	stop context.CancelFunc

	// lastCycle is when the cluster's loop last finished a cycle (unix nanoseconds); the
	// systemd watchdog is fed only while every loop keeps turning.
	lastCycle atomic.Int64

	// Poller state, owned by the cluster's loop goroutine.
	unhealthy bool        // the last poll could not ask the scheduler
	polls     []time.Time // poll calls within the last minute, for the budget
}

type retryState struct {
	attempts int
	next     time.Time
}

// backoff records one more unanswered submission of a job and returns how long to wait
// before looking it up and trying again: poll_interval doubled per attempt, at most
// poll_interval_max.
func (m *Manager) backoff(c *cluster, id string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.retry[id]
	r.attempts++
	wait := c.cfg().PollInterval.Duration << min(r.attempts-1, 16)
	wait = min(wait, c.cfg().PollIntervalMax.Duration)
	r.next = m.Now().Add(wait)
	c.retry[id] = r
	return wait
}

// countSubmission records a submission's outcome in the metrics.
func (m *Manager) countSubmission(c *cluster, err error) {
	if m.metrics == nil {
		return
	}
	outcome := "accepted"
	switch {
	case errors.Is(err, scheduler.ErrRejected):
		outcome = "refused"
	case err != nil:
		outcome = "no_answer"
	}
	m.metrics.Submissions.WithLabelValues(c.name, outcome).Inc()
}

// countOutcome records a job reaching a final state; reason comes from a fixed set (a
// failure kind, "ok", "scheduler", "user" ...), never free text.
func (m *Manager) countOutcome(c *cluster, to job.State, reason string) {
	if m.metrics != nil && to.Terminal() {
		m.metrics.Outcomes.WithLabelValues(c.name, string(to), reason).Inc()
	}
}

// Alive reports whether every cluster's loop finished a cycle within its longest poll
// interval plus slack: a wedged loop (a hung command without deadline, a deadlock) stops
// the watchdog pings, and systemd restarts qmd.
func (m *Manager) Alive() bool {
	now := time.Now().UnixNano()
	for _, c := range m.clusterList() {
		last := c.lastCycle.Load()
		limit := 3*c.cfg().PollIntervalMax.Duration + time.Minute
		if last != 0 && time.Duration(now-last) > limit {
			return false
		}
	}
	return true
}

// cfg is the cluster's current settings.
func (c *cluster) cfg() *config.Cluster { return c.cfgp.Load() }

// Reload applies a new configuration to the running daemon without touching jobs: each
// kept cluster takes its new intervals, limits and slots; a new cluster starts; a removed
// cluster stops, unless it still has unfinished jobs, which would be orphaned, so it is
// kept. A changed scheduler, transport, host or run_as takes a restart. The returned
// list names every change that was not applied.
func (m *Manager) Reload(ctx context.Context, cfg *config.Config) []string {
	var skipped []string
	m.cmu.Lock()
	defer m.cmu.Unlock()

	for _, name := range cfg.ClusterNames() {
		nc := cfg.Clusters[name]
		c, ok := m.clusters[name]
		if !ok {
			c, err := m.newCluster(name, nc, m.opts)
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("new cluster %s: %v", name, err))
				continue
			}
			m.clusters[name] = c
			if m.runCtx != nil {
				m.startCluster(c)
			}
			m.log.Info("cluster added", "cluster", name, "scheduler", nc.Scheduler)
			continue
		}
		old := c.cfg()
		if nc.Scheduler != old.Scheduler || nc.Transport != old.Transport ||
			nc.Host != old.Host || nc.RunAs != old.RunAs {
			skipped = append(skipped, "cluster "+name+": scheduler, transport, host or "+
				"run_as changed (takes a restart)")
			continue
		}
		c.cfgp.Store(nc)
		if e, ok := c.sched.(interface{ SetSlots(int) }); ok {
			e.SetSlots(nc.Slots)
		}
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}

	for name, c := range m.clusters {
		if _, ok := cfg.Clusters[name]; ok {
			continue
		}
		jobs, err := m.st.List(ctx, store.Filter{Cluster: name,
			States: []job.State{job.Queued, job.Submitting, job.Pending, job.Running,
				job.Suspended, job.Completing}})
		if err != nil || len(jobs) > 0 || name == m.cfg.DefaultCluster {
			skipped = append(skipped, fmt.Sprintf("removed cluster %s: kept while it has "+
				"%d unfinished job(s) or is the default cluster", name, len(jobs)))
			continue
		}
		if c.stop != nil {
			c.stop()
		}
		if c.ssh != nil {
			c.ssh.Close()
		}
		delete(m.clusters, name)
		m.log.Info("cluster removed", "cluster", name)
	}
	return skipped
}

// Healthy reports whether the cluster's scheduler answered its last poll.
func (m *Manager) Healthy(cluster string) bool {
	c, ok := m.cluster(cluster)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.unhealthy
}

// Stager copies job directories to a cluster and outputs back (stage.Stager over SFTP).
type Stager interface {
	Put(ctx context.Context, localDir, remoteDir string) error
	Get(ctx context.Context, remoteDir, localDir string, names []string) error
}

// Options for New.
type Options struct {
	Config    *config.Config
	Store     *store.Store
	Templates *templates.Set
	Runner    runner.Runner
	Logger    *slog.Logger
	// Software is the program and version recorded with each job, e.g. "NWChem 7.0.2".
	Software string
	// Schedulers overrides the scheduler of named clusters (tests use a fake).
	Schedulers map[string]scheduler.Scheduler
	// Metrics, if set, is told about scheduler commands, health and SSH connections.
	Metrics *metrics.Metrics
}

// New builds the manager and one scheduler per cluster.
func New(o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Runner == nil {
		o.Runner = runner.Local{}
	}
	m := &Manager{
		cfg: o.Config, st: o.Store, tmpl: o.Templates, run: o.Runner, log: o.Logger,
		software: o.Software, clusters: map[string]*cluster{}, Now: time.Now,
		metrics: o.Metrics,
	}
	m.Conformers = func(ctx context.Context, mol chem.Molecule, co conformer.Options) (
		[]conformer.Conformer, error) {
		return conformer.Generate(ctx, m.run, mol, co)
	}
	m.opts = o
	for _, name := range o.Config.ClusterNames() {
		c, err := m.newCluster(name, o.Config.Clusters[name], o)
		if err != nil {
			return nil, err
		}
		m.clusters[name] = c
	}
	return m, nil
}

func (m *Manager) defaultCluster() *cluster {
	c, _ := m.cluster(m.cfg.DefaultCluster)
	return c
}

// cluster returns the named cluster; the set changes on reload, hence the lock.
func (m *Manager) cluster(name string) (*cluster, bool) {
	m.cmu.RLock()
	defer m.cmu.RUnlock()
	c, ok := m.clusters[name]
	return c, ok
}

// clusterList is a snapshot of the clusters.
func (m *Manager) clusterList() []*cluster {
	m.cmu.RLock()
	defer m.cmu.RUnlock()
	out := make([]*cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		out = append(out, c)
	}
	return out
}

// newCluster builds a cluster and its scheduler (and SSH connection) from its settings.
func (m *Manager) newCluster(name string, cc *config.Cluster, o Options) (*cluster, error) {
	c := &cluster{name: name, kick: make(chan struct{}, 1), missing: map[string]time.Time{},
		fetchFailures: map[string]int{},
		retry:         map[string]retryState{}}
	c.cfgp.Store(cc)
	if s, ok := o.Schedulers[name]; ok {
		c.sched = s
	} else {
		switch cc.Scheduler {
		case "local":
			c.sched = local.New(local.Options{
				Slots:       cc.Slots,
				CancelGrace: cc.CancelGrace.Duration,
				Logger:      o.Logger.With("cluster", name),
				Notify:      func() { m.kick(name) },
			})
		case "slurm", "pbs", "torque":
			run, err := m.clusterRunner(c, o)
			if err != nil {
				return nil, err
			}
			log := o.Logger.With("cluster", name)
			switch cc.Scheduler {
			case "slurm":
				c.sched = slurm.New(slurm.Options{
					Runner: run, Logger: log, ExitFile: local.ExitFile,
					SubmitTimeout: cc.SubmitTimeout.Duration,
					QueryTimeout:  cc.QueryTimeout.Duration,
				})
			case "pbs":
				c.sched = pbs.New(pbs.Options{
					Runner: run, Logger: log, ExitFile: local.ExitFile,
					SubmitTimeout: cc.SubmitTimeout.Duration,
					QueryTimeout:  cc.QueryTimeout.Duration,
				})
			case "torque":
				c.sched = torque.New(torque.Options{
					Runner: run, Logger: log, ExitFile: local.ExitFile,
					SubmitTimeout: cc.SubmitTimeout.Duration,
					QueryTimeout:  cc.QueryTimeout.Duration,
				})
			}
		default:
			return nil, fmt.Errorf("cluster %s: scheduler %q is not available", name,
				cc.Scheduler)
		}
	}
	return c, nil
}

// nwchemCommand is the NWChem command line of a cluster, under MPI when asked for.
func (c *cluster) nwchemCommand() []string {
	if c.cfg().MPIRanks <= 1 {
		return slices.Clone(c.cfg().NWChem)
	}
	cmd := slices.Clone(c.cfg().MPIRun)
	if os.Geteuid() == 0 && !slices.Contains(cmd, "--allow-run-as-root") {
		// Open MPI refuses to start as root without it; qmd runs as root in containers.
		cmd = append(cmd, "--allow-run-as-root")
	}
	cmd = append(cmd, "-np", strconv.Itoa(c.cfg().MPIRanks))
	return append(cmd, c.cfg().NWChem...)
}

func (m *Manager) kick(name string) {
	if c, ok := m.cluster(name); ok {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// Drain makes new submissions fail with ErrDraining; used as the daemon stops.
func (m *Manager) Drain() { m.draining.Store(true) }

// Recover re-adopts the jobs an earlier qmd left active. It runs once, before Run.
func (m *Manager) Recover(ctx context.Context) error {
	for _, c := range m.clusterList() {
		jobs, err := m.st.List(ctx, store.Filter{Cluster: c.name, Active: true,
			Kinds: job.Schedulable})
		if err != nil {
			return fmt.Errorf("recover %s: list jobs: %w", c.name, err)
		}
		slices.Reverse(jobs) // oldest first, so re-queued jobs keep their order
		var handles []scheduler.Handle
		for _, j := range jobs {
			if j.State != job.Completing {
				handles = append(handles, m.handle(j))
			}
		}
		if len(handles) == 0 {
			continue
		}
		sts, err := c.sched.Recover(ctx, handles)
		if err != nil {
			// A cluster that cannot be asked now must not keep qmd from starting: its
			// jobs stay as they are, and the poller and the settling of submissions
			// ask again each cycle.
			m.log.Warn("recover jobs: the scheduler did not answer; will ask again",
				"cluster", c.name, "jobs", len(handles), "err", err)
			m.setHealth(c, false, err)
			continue
		}
		m.log.Info("jobs recovered", "cluster", c.name, "jobs", len(handles))
		for _, j := range jobs {
			if st, ok := sts[j.ID]; ok {
				m.apply(ctx, c, j, st)
			}
		}
	}
	return nil
}

func (m *Manager) handle(j job.Job) scheduler.Handle {
	return scheduler.Handle{
		JobID: j.ID, Dir: m.schedDir(j), SchedulerID: j.SchedulerID, Meta: j.SchedMeta,
		State: j.State, Owner: m.ownerCred(j),
	}
}

// jobDir is where a job's files live: state_dir/jobs/ID, or, on a cluster that runs jobs
// as their owners, owner_root/USER/ID.
func (m *Manager) jobDir(j job.Job) string {
	if c, ok := m.cluster(j.Cluster); ok && c.cfg().RunAs == "owner" {
		if u, err := m.owner(j.OwnerUID); err == nil {
			return filepath.Join(c.cfg().OwnerRoot, u.Name, j.ID)
		}
		// An owner that no longer resolves gets a path that cannot exist, so nothing
		// is read from or written to another user's directory by mistake.
		return filepath.Join(c.cfg().OwnerRoot, ".unknown-uid-"+strconv.Itoa(j.OwnerUID), j.ID)
	}
	return filepath.Join(m.cfg.JobsDir(), j.ID)
}

// clusterRunner is the command runner of a batch cluster: local exec, or one SSH
// connection (which also stages job directories unless the cluster shares state_dir),
// with metrics around either.
func (m *Manager) clusterRunner(c *cluster, o Options) (runner.Runner, error) {
	cc := c.cfg()
	run := o.Runner
	if cc.Transport == "ssh" {
		r, err := sshrunner.New(sshrunner.Config{
			Host: cc.Host, Port: cc.Port, User: cc.User,
			IdentityFile: cc.IdentityFile, UseAgent: cc.UseAgent,
			KnownHosts: cc.KnownHosts, MaxSessions: cc.MaxSessions,
			ConnectTimeout:    cc.ConnectTimeout.Duration,
			CommandTimeout:    cc.QueryTimeout.Duration,
			KeepaliveInterval: cc.KeepaliveInterval.Duration,
			Logger:            o.Logger.With("cluster", c.name),
		})
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.name, err)
		}
		c.ssh, run = r, r
		if !cc.SharedFS {
			c.stager = &stage.Stager{C: r}
		}
		if o.Metrics != nil {
			o.Metrics.SSH(c.name, r.OpenConnections, r.Dials)
		}
	}
	if o.Metrics != nil {
		run = o.Metrics.Runner(c.name, run)
	}
	return run, nil
}

// schedDir is the job directory as the scheduler sees it: the staged copy under
// remote_root on a cluster reached over SSH without a shared filesystem, else jobDir.
func (m *Manager) schedDir(j job.Job) string {
	if c, ok := m.cluster(j.Cluster); ok && c.stager != nil {
		return pathpkg.Join(c.cfg().RemoteRoot, j.ID)
	}
	return m.jobDir(j)
}

// Close releases the clusters' SSH connections.
func (m *Manager) Close() {
	for _, c := range m.clusterList() {
		if c.ssh != nil {
			c.ssh.Close()
		}
	}
}

// ownerCred is the credential a job's scheduler commands run with: its owner's on a
// run_as = "owner" cluster, nil (qmd's own) otherwise.
func (m *Manager) ownerCred(j job.Job) *runner.Credential {
	c, ok := m.cluster(j.Cluster)
	if !ok || c.cfg().RunAs != "owner" {
		return nil
	}
	u, err := m.owner(j.OwnerUID)
	if err != nil {
		m.log.Error("look up job owner", "job", j.ID, "uid", j.OwnerUID, "err", err)
		// A credential that cannot act: the command fails instead of running as root.
		return &runner.Credential{UID: 65534, GID: 65534, Name: "nobody", Home: "/"}
	}
	cred := u.cred
	return &cred
}

type ownerInfo struct {
	Name string
	cred runner.Credential
}

// owner looks a uid up once and caches it; the user database does not change under a
// running job.
func (m *Manager) owner(uid int) (ownerInfo, error) {
	m.ownersMu.Lock()
	defer m.ownersMu.Unlock()
	if o, ok := m.owners[uid]; ok {
		return o, nil
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return ownerInfo{}, fmt.Errorf("look up uid %d: %w", uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return ownerInfo{}, fmt.Errorf("uid %d: primary group %q: %w", uid, u.Gid, err)
	}
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if v, err := strconv.ParseUint(g, 10, 32); err == nil {
				groups = append(groups, uint32(v))
			}
		}
	}
	o := ownerInfo{Name: u.Username, cred: runner.Credential{UID: uint32(uid),
		GID: uint32(gid), Groups: groups, Home: u.HomeDir, Name: u.Username}}
	if m.owners == nil {
		m.owners = map[int]ownerInfo{}
	}
	m.owners[uid] = o
	return o, nil
}

// Run drives every cluster until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	m.cmu.Lock()
	m.runCtx = ctx
	for _, c := range m.clusters {
		m.startCluster(c)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.followSearches(ctx)
	}()
	m.cmu.Unlock()
	<-ctx.Done()
	m.wg.Wait()
	return nil
}

// startCluster starts a cluster's loops under their own context, so a reload can stop
// one cluster's loops alone. The caller holds m.cmu.
func (m *Manager) startCluster(c *cluster) {
	ctx, cancel := context.WithCancel(m.runCtx)
	c.stop = cancel
	if r, ok := c.sched.(interface{ Run(context.Context) error }); ok {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := r.Run(ctx); err != nil {
				m.log.Error("scheduler stopped", "cluster", c.name, "err", err)
			}
		}()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.loop(ctx, c)
	}()
}

func (m *Manager) loop(ctx context.Context, c *cluster) {
	log := m.log.With("cluster", c.name)
	t := time.NewTimer(jitter(c.name, c.cfg().PollInterval.Duration))
	defer t.Stop()
	interval := c.cfg().PollInterval.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		changed, healthy := m.cycle(ctx, c, log)
		c.lastCycle.Store(time.Now().UnixNano())
		interval = nextInterval(interval, changed, healthy, c.cfg())
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(jitter("", interval))
	}
}

// nextInterval adapts the poll interval: back to the minimum when something changed, half
// as long again while nothing does, doubled while the scheduler does not answer; always
// between poll_interval and poll_interval_max.
func nextInterval(cur time.Duration, changed, healthy bool, cfg *config.Cluster) time.Duration {
	lo, hi := cfg.PollInterval.Duration, cfg.PollIntervalMax.Duration
	switch {
	case !healthy:
		cur *= 2
	case changed:
		cur = lo
	default:
		cur += cur / 2
	}
	return min(max(cur, lo), hi)
}

// jitter spreads polls by ±10 % so that clusters, and daemons on many login nodes, do not
// ask their controllers in lockstep. A non-empty seed gives a stable offset per cluster for
// the first poll.
func jitter(seed string, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	var f float64
	if seed != "" {
		h := fnv.New32a()
		h.Write([]byte(seed))
		f = float64(h.Sum32()%1000)/1000*0.2 - 0.1
	} else {
		f = rand.Float64()*0.2 - 0.1
	}
	return d + time.Duration(float64(d)*f)
}

// cycle is one pass over a cluster: submit queued jobs, poll active ones, finish ended
// ones. It reports whether any job changed and whether the scheduler answered. A panic in
// a parser must not stop the loop, so it is caught and logged.
func (m *Manager) cycle(ctx context.Context, c *cluster, log *slog.Logger) (changed, healthy bool) {
	healthy = true
	defer func() {
		if r := recover(); r != nil {
			log.Error("poll cycle panicked", "panic", fmt.Sprint(r))
		}
	}()
	if err := m.dispatch(ctx, c); err != nil && ctx.Err() == nil {
		log.Error("dispatch", "err", err)
	}
	if !m.takeBudget(c) {
		log.Debug("poll skipped: budget for this minute spent")
	} else {
		n, err := m.poll(ctx, c)
		changed = n > 0
		if err != nil && ctx.Err() == nil {
			healthy = false
		}
		if ctx.Err() == nil {
			m.setHealth(c, err == nil, err)
		}
	}
	if err := m.finishAll(ctx, c); err != nil && ctx.Err() == nil {
		log.Error("finish", "err", err)
	}
	return changed, healthy
}

// takeBudget counts one poll call against the cluster's per-minute budget, or reports
// that the budget is spent. Submissions and cancels are not counted.
func (m *Manager) takeBudget(c *cluster) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.polls[:0]
	for _, t := range c.polls {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	c.polls = keep
	if len(c.polls) >= c.cfg().PollBudget {
		return false
	}
	c.polls = append(c.polls, now)
	return true
}

// setHealth records whether the scheduler answered, logging only when that changes.
func (m *Manager) setHealth(c *cluster, ok bool, err error) {
	if m.metrics != nil {
		v := 0.0
		if ok {
			v = 1
			m.metrics.LastPollOK.WithLabelValues(c.name).SetToCurrentTime()
		}
		m.metrics.PollSuccess.WithLabelValues(c.name).Set(v)
	}
	c.mu.Lock()
	was := !c.unhealthy
	c.unhealthy = !ok
	c.mu.Unlock()
	switch {
	case was && !ok:
		m.log.Warn("scheduler not answering; no job changes state until it does",
			"cluster", c.name, "err", err)
	case !was && ok:
		m.log.Info("scheduler answering again", "cluster", c.name)
	}
}

// dispatch hands queued jobs to the scheduler, oldest first. Jobs an earlier attempt left
// in submitting are settled first, since they were queued before any job still queued.
func (m *Manager) dispatch(ctx context.Context, c *cluster) error {
	if err := m.settle(ctx, c); err != nil {
		return err
	}
	jobs, err := m.st.List(ctx, store.Filter{Cluster: c.name, States: []job.State{job.Queued},
		Kinds: job.Schedulable})
	if err != nil {
		return fmt.Errorf("list queued jobs: %w", err)
	}
	slices.Reverse(jobs)
	for len(jobs) > 0 && ctx.Err() == nil {
		// A batch is claimed in one transaction and its answers recorded in another, so a
		// burst of submissions costs two commits per batch, not two per job. While the
		// scheduler does not answer, batches are one job long: a claimed job whose
		// submission gets no answer has to be looked up by its tag before a retry.
		n := dispatchBatch
		if !m.Healthy(c.name) {
			n = 1
		}
		batch := jobs[:min(n, len(jobs))]
		jobs = jobs[len(batch):]
		if !m.dispatchBatch(ctx, c, batch) {
			return nil
		}
	}
	return nil
}

// dispatchBatch is how many queued jobs are claimed together.
const dispatchBatch = 100

// dispatchBatch claims, submits and records a batch of queued jobs. It reports false when
// the scheduler stopped answering, and the rest wait in the queue for a later cycle.
func (m *Manager) dispatchBatch(ctx context.Context, c *cluster, batch []job.Job) bool {
	claims := make([]store.Change, len(batch))
	for i, j := range batch {
		claims[i] = store.Change{ID: j.ID, From: job.Queued, To: job.Submitting,
			Reason: "handing to " + c.sched.Name()}
	}
	errs, err := m.st.Apply(ctx, claims)
	if err != nil {
		m.log.Error("claim queued jobs", "cluster", c.name, "err", err)
		return false
	}
	// Up to submit_concurrency submissions are in flight at once: sbatch spends most of
	// its time waiting for the controller, which serves several at a time. Once one gets
	// no answer, no new one starts.
	type outcome struct {
		ch  store.Change
		sub scheduler.Submission
		ok  bool
	}
	outs := make([]*outcome, len(batch))
	conc := max(c.cfg().SubmitConcurrency, 1)
	if c.cfg().Scheduler == "local" {
		conc = 1 // the local queue is first in, first out: hand jobs over in order
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var stopped atomic.Bool
	for i, j := range batch {
		if errs[i] != nil {
			m.log.Warn("claim queued job", "job", j.ID, "err", errs[i])
			continue
		}
		j.State = job.Submitting
		sem <- struct{}{}
		if stopped.Load() {
			// Claimed but not tried: settle submits it once the scheduler answers.
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ch, sub, ok := m.submitOne(ctx, c, j)
			if !ok {
				stopped.Store(true)
			}
			outs[i] = &outcome{ch, sub, ok}
		}()
	}
	wg.Wait()
	var results []store.Change
	var subs []scheduler.Submission
	for _, o := range outs {
		if o != nil && o.ok {
			results = append(results, o.ch)
			subs = append(subs, o.sub)
		}
	}
	answered := !stopped.Load()
	m.recordSubmissions(ctx, c, results, subs)
	return answered
}

// settle deals with jobs left in submitting: a transient Submit error, an answer that was
// lost, or a crash between the scheduler's answer and the store write. Whether the
// scheduler got such a job is unknown, so it is asked first, in one Poll for all of them;
// only a job it does not know is submitted again. Submitting twice would run the job twice.
// If the scheduler cannot be asked, nothing is submitted and the next cycle tries again.
func (m *Manager) settle(ctx context.Context, c *cluster) error {
	jobs, err := m.st.List(ctx, store.Filter{Cluster: c.name,
		States: []job.State{job.Submitting}, Kinds: job.Schedulable})
	if err != nil {
		return fmt.Errorf("list jobs being submitted: %w", err)
	}
	if len(jobs) == 0 {
		return nil
	}
	slices.Reverse(jobs)
	now := m.Now()
	c.mu.Lock()
	due := jobs[:0]
	for _, j := range jobs {
		if r, ok := c.retry[j.ID]; !ok || !now.Before(r.next) {
			due = append(due, j)
		}
	}
	c.mu.Unlock()
	jobs = due
	if len(jobs) == 0 {
		return nil
	}
	handles := make([]scheduler.Handle, len(jobs))
	for i, j := range jobs {
		handles[i] = m.handle(j)
	}
	// Recover, not Poll: a job whose submission answer was lost has no scheduler id yet,
	// and only a lookup by its tag can tell "submitted after all" from "never arrived".
	sts, err := c.sched.Recover(ctx, handles)
	if err != nil {
		return fmt.Errorf("ask %s about jobs being submitted: %w", c.name, err)
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			return nil
		}
		if st, ok := sts[j.ID]; ok {
			m.apply(ctx, c, j, st)
			c.mu.Lock()
			delete(c.retry, j.ID)
			c.mu.Unlock()
			if m.metrics != nil {
				m.metrics.Reconciliations.WithLabelValues(c.name, "adopted").Inc()
			}
			continue
		}
		if m.metrics != nil {
			m.metrics.Reconciliations.WithLabelValues(c.name, "resubmitted").Inc()
		}
		if !m.submit(ctx, c, j) {
			return nil
		}
	}
	return nil
}

// submitOne hands one claimed job to the scheduler and returns the change that records
// the answer. ok is false when the scheduler did not answer: the job stays in submitting
// with a back-off, and is looked up by its tag before it is tried again.
func (m *Manager) submitOne(ctx context.Context, c *cluster, j job.Job) (store.Change,
	scheduler.Submission, bool) {
	var err error
	if c.stager != nil {
		// Staging again after a lost answer is harmless: files are rewritten whole.
		err = c.stager.Put(ctx, m.jobDir(j), m.schedDir(j))
		if err != nil {
			err = fmt.Errorf("copy the job directory to %s: %w", c.name, err)
		}
	}
	var sub scheduler.Submission
	if err == nil {
		sub, err = c.sched.Submit(ctx, scheduler.SubmitRequest{
			JobID: j.ID, Dir: m.schedDir(j), Script: ScriptFile, Tag: "qmd-" + j.ID,
			Owner: m.ownerCred(j),
		})
	}
	m.countSubmission(c, err)
	if err != nil && !errors.Is(err, scheduler.ErrRejected) {
		wait := m.backoff(c, j.ID)
		m.log.Warn("submit; will look the job up by its tag and retry", "job", j.ID,
			"cluster", c.name, "retry_in", wait.String(), "err", err)
		return store.Change{}, sub, false
	}
	c.mu.Lock()
	delete(c.retry, j.ID)
	c.mu.Unlock()
	if err != nil {
		msg := "submission refused: " + err.Error()
		m.log.Info("submission refused", "job", j.ID, "cluster", c.name, "err", err)
		return store.Change{ID: j.ID, From: job.Submitting, To: job.Failed, Reason: msg,
			Update: store.Update{Error: &msg}}, sub, true
	}
	now := time.Now().UTC()
	to := sub.State
	if to == "" {
		to = job.Pending
	}
	u := store.Update{SubmittedAt: &now}
	if sub.SchedulerID != "" {
		u.SchedulerID = &sub.SchedulerID
	}
	if sub.Meta != "" {
		u.SchedMeta = &sub.Meta
	}
	return store.Change{ID: j.ID, From: job.Submitting, To: to,
		Reason: "accepted by " + c.sched.Name(), Update: u}, sub, true
}

// submit hands one job in submitting to the scheduler and records the answer; settle
// uses it for jobs whose earlier submission got no answer. It reports false when the
// scheduler did not answer this time either.
func (m *Manager) submit(ctx context.Context, c *cluster, j job.Job) bool {
	ch, sub, ok := m.submitOne(ctx, c, j)
	if !ok {
		return false
	}
	m.recordSubmissions(ctx, c, []store.Change{ch}, []scheduler.Submission{sub})
	return true
}

// recordSubmissions stores the scheduler's answers in one transaction. The scheduler has
// the jobs now, so the answers are recorded even if ctx ends (the daemon stopping). A job
// that moved while the scheduler took it (a cancel raced the submission) is cancelled in
// the scheduler too, since qmd has already ended it.
func (m *Manager) recordSubmissions(ctx context.Context, c *cluster, changes []store.Change,
	subs []scheduler.Submission) {
	if len(changes) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	errs, err := m.st.Apply(ctx, changes)
	if err != nil {
		// Still in submitting: settle finds the jobs in the scheduler by their tags.
		m.log.Error("record submissions", "cluster", c.name, "jobs", len(changes), "err", err)
		return
	}
	for i, ch := range changes {
		if errs[i] == nil {
			continue
		}
		m.log.Error("record submission", "job", ch.ID, "err", errs[i])
		if !errors.Is(errs[i], store.ErrConflict) || ch.To == job.Failed {
			continue
		}
		cur, gerr := m.st.Get(ctx, ch.ID)
		if gerr != nil || !cur.State.Terminal() {
			continue
		}
		h := m.handle(cur)
		h.SchedulerID, h.Meta, h.State = subs[i].SchedulerID, subs[i].Meta, ch.To
		cctx, cancel := context.WithTimeout(ctx, c.cfg().CommandTimeout.Duration)
		if cerr := c.sched.Cancel(cctx, h); cerr != nil {
			m.log.Error("cancel a job submitted after it ended", "job", ch.ID, "err", cerr)
		} else {
			m.log.Info("cancelled a job submitted after it ended", "job", ch.ID,
				"state", cur.State)
		}
		cancel()
	}
}

// poll asks the scheduler about every active job of the cluster in one call.
func (m *Manager) poll(ctx context.Context, c *cluster) (int, error) {
	jobs, err := m.st.List(ctx, store.Filter{Cluster: c.name,
		States: []job.State{job.Pending, job.Running, job.Suspended}, Kinds: job.Schedulable})
	if err != nil {
		return 0, fmt.Errorf("list active jobs: %w", err)
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	handles := make([]scheduler.Handle, len(jobs))
	for i, j := range jobs {
		handles[i] = m.handle(j)
	}
	sts, err := c.sched.Poll(ctx, handles)
	if err != nil {
		// Could not ask: no job changes state because of it.
		return 0, fmt.Errorf("poll %s: %w", c.name, err)
	}
	now := time.Now()
	var changes []store.Change
	for _, j := range jobs {
		st, ok := sts[j.ID]
		if !ok {
			if ch, lost := m.missingJob(c, j, now); lost {
				changes = append(changes, ch)
			}
			continue
		}
		c.mu.Lock()
		delete(c.missing, j.ID)
		c.mu.Unlock()
		if ch, ok := m.observe(c, j, st); ok {
			changes = append(changes, ch)
		}
	}
	// One transaction for the whole cycle: a cycle where many jobs changed costs one
	// commit, not one per job.
	return m.applyChanges(ctx, c, changes), nil
}

// missingJob handles a job its scheduler no longer reports: after LostAfter it is lost,
// never completed or failed by guess.
func (m *Manager) missingJob(c *cluster, j job.Job, now time.Time) (store.Change, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	since, seen := c.missing[j.ID]
	if !seen {
		c.missing[j.ID] = now
		since = now
	}
	lostAfter := c.cfg().LostAfter.Duration
	if m.LostAfter > 0 {
		lostAfter = m.LostAfter
	}
	if now.Sub(since) < lostAfter {
		return store.Change{}, false
	}
	delete(c.missing, j.ID)
	reason := fmt.Sprintf("neither the queue nor accounting has known the job for %s",
		lostAfter)
	return store.Change{ID: j.ID, From: j.State, To: job.Lost, Reason: reason,
		Update: store.Update{Error: &reason}}, true
}

// apply records one observation of a job.
func (m *Manager) apply(ctx context.Context, c *cluster, j job.Job, st scheduler.Status) bool {
	ch, ok := m.observe(c, j, st)
	if !ok {
		return false
	}
	return m.applyChanges(ctx, c, []store.Change{ch}) > 0
}

// observe turns one observation of a job into the change to store: a state move with its
// reason, or a fields-only update (the scheduler id learnt, the pending reason changed).
// ok is false when nothing changes.
func (m *Manager) observe(c *cluster, j job.Job, st scheduler.Status) (store.Change, bool) {
	u := store.Update{StartedAt: st.StartedAt, EndedAt: st.EndedAt, ExitCode: st.ExitCode}
	if st.SchedulerID != "" && st.SchedulerID != j.SchedulerID {
		u.SchedulerID = &st.SchedulerID
	}
	if st.Meta != "" && st.Meta != j.SchedMeta {
		u.SchedMeta = &st.Meta
	}
	// The scheduler's reason is kept while the job waits (why pending) and cleared
	// once it runs or ends.
	waitReason := ""
	if st.State == job.Pending || st.State == job.Suspended {
		waitReason = st.Reason
	}
	if waitReason != j.SchedReason {
		u.SchedReason = &waitReason
	}
	if st.State == j.State || st.State == "" {
		if u.SchedulerID == nil && u.SchedMeta == nil && u.SchedReason == nil {
			return store.Change{}, false
		}
		return store.Change{ID: j.ID, From: j.State, To: j.State, Update: store.Update{
			SchedulerID: u.SchedulerID, SchedMeta: u.SchedMeta, SchedReason: u.SchedReason,
		}}, true
	}
	if st.State == job.Running && j.StartedAt == nil && u.StartedAt == nil {
		// Schedulers that do not say when a job started (squeue) get the time qmd saw it.
		now := time.Now().UTC()
		u.StartedAt = &now
	}
	if m.metrics != nil {
		now := time.Now()
		if st.State == job.Running && j.State == job.Pending && j.SubmittedAt != nil {
			m.metrics.QueueWait.WithLabelValues(c.name).Observe(now.Sub(*j.SubmittedAt).Seconds())
		}
		if j.State == job.Running && st.State != job.Suspended && st.State != job.Pending &&
			j.StartedAt != nil {
			m.metrics.RunTime.WithLabelValues(c.name).Observe(now.Sub(*j.StartedAt).Seconds())
		}
	}
	if j.StartedAt != nil {
		u.StartedAt = nil
	}
	reason := st.Reason
	if reason == "" {
		reason = "reported by " + c.sched.Name()
	}
	if st.State == job.Failed || st.State == job.Timeout || st.State == job.Lost {
		msg := reason
		u.Error = &msg
	}
	return store.Change{ID: j.ID, From: j.State, To: st.State, Reason: reason, Update: u}, true
}

// applyChanges stores changes in one transaction and returns how many moved a job. A
// change that lost a race (the job moved meanwhile, e.g. a cancel) is skipped quietly;
// the next poll sees the job as it now is.
func (m *Manager) applyChanges(ctx context.Context, c *cluster, changes []store.Change) int {
	errs, err := m.st.Apply(ctx, changes)
	if err != nil {
		m.log.Error("record job states", "cluster", c.name, "jobs", len(changes), "err", err)
		return 0
	}
	moved := 0
	for i, ch := range changes {
		if errs[i] != nil {
			if !errors.Is(errs[i], store.ErrConflict) {
				m.log.Error("record job state", "job", ch.ID, "from", ch.From, "to", ch.To,
					"err", errs[i])
			}
			continue
		}
		if ch.From == ch.To {
			continue
		}
		moved++
		m.log.Info("job state", "job", ch.ID, "cluster", c.name, "from", ch.From, "to", ch.To)
		if ch.To.Terminal() {
			reason := "scheduler"
			switch {
			case ch.To == job.Lost:
				reason = "lost"
			case ch.From == job.Submitting && ch.To == job.Failed:
				reason = "refused"
			}
			m.countOutcome(c, ch.To, reason)
			m.forget(c, ch.ID)
		}
	}
	return moved
}

// forget tells the scheduler, when it keeps ended jobs in memory, that the job's end is
// stored, and drops the job's missing-since mark.
func (m *Manager) forget(c *cluster, id string) {
	c.mu.Lock()
	delete(c.missing, id)
	c.mu.Unlock()
	if f, ok := c.sched.(interface{ Forget(string) }); ok {
		f.Forget(id)
	}
}

// finishAll turns every completing job of the cluster into a result or a failure.
func (m *Manager) finishAll(ctx context.Context, c *cluster) error {
	jobs, err := m.st.List(ctx, store.Filter{Cluster: c.name, States: []job.State{job.Completing},
		Kinds: job.Schedulable})
	if err != nil {
		return fmt.Errorf("list completing jobs: %w", err)
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			return nil
		}
		m.finish(ctx, c, j)
	}
	return nil
}
