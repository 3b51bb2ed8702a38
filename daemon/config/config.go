// Package config loads qmd's TOML configuration: defaults first, then a strict decode that
// names every unknown key, then a validation that reports every problem at once.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written as a string such as "90s" or "5m".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (write it like \"90s\" or \"5m\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is the whole file.
type Config struct {
	// StateDir holds the database (qmd.db) and one directory per job (jobs/ID).
	StateDir string `toml:"state_dir"`
	// Socket is the Unix socket qmctl talks to.
	Socket string `toml:"socket"`
	// SocketMode is the socket's permission bits, as an octal string. Everyone who may
	// submit needs write access; who sees what is decided per request from the peer's uid.
	SocketMode string `toml:"socket_mode"`
	// DefaultCluster receives jobs submitted without --cluster.
	DefaultCluster string `toml:"default_cluster"`
	// MetricsListen is the Prometheus endpoint address; empty turns it off.
	MetricsListen string `toml:"metrics_listen"`
	// AdminGroup names a Unix group whose members see and cancel every job.
	AdminGroup string `toml:"admin_group"`
	// TemplatesDir, if set, holds files that shadow the embedded templates by path.
	TemplatesDir string `toml:"templates_dir"`
	// Obabel is the Open Babel command used for SMILES and 2D inputs.
	Obabel string `toml:"obabel"`
	// MaxInputBytes caps the size of a submitted molecule file.
	MaxInputBytes int `toml:"max_input_bytes"`
	// LogFormat is "text" or "json"; LogLevel is debug, info, warn or error.
	LogFormat string `toml:"log_format"`
	LogLevel  string `toml:"log_level"`
	// ShutdownTimeout bounds how long a stop waits for requests in flight.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// ScalingFile holds linear-scaling factors written by qmd fit-scaling; they replace
	// the shipped ones for their preset and solvent. Empty uses the shipped ones.
	ScalingFile string `toml:"scaling_file"`
	// Conformers is how a submission that does not say is treated: "single" (the
	// geometry as given), "auto" (a conformer search when the molecule has rotatable
	// bonds) or "search" (always).
	Conformers string `toml:"conformers"`
	// ConformerMax caps the conformers kept (and so the jobs) of one search.
	ConformerMax int `toml:"conformer_max"`
	// ConformerEnergyWindow (kcal/mol, force field) and ConformerRMSD (Å, heavy atoms)
	// prune the search: higher conformers and near-duplicates are not computed.
	ConformerEnergyWindow float64 `toml:"conformer_energy_window"`
	ConformerRMSD         float64 `toml:"conformer_rmsd"`
	// ConformerMaxLostWeight is the largest estimated Boltzmann weight of failed
	// conformers with which a search still completes from the rest.
	ConformerMaxLostWeight float64 `toml:"conformer_max_lost_weight"`
	// Temperature (K) of the Boltzmann average when a submission gives none.
	Temperature float64 `toml:"temperature"`

	// Clusters is decoded separately, each cluster over its own defaults.
	Clusters map[string]*Cluster `toml:"-"`
	// ClusterTables holds the raw [clusters.NAME] tables during decoding only.
	ClusterTables map[string]toml.Primitive `toml:"clusters"`

	// Dir is the directory of the config file; relative paths resolve against it.
	Dir string `toml:"-"`
}

// Cluster is one place jobs run.
type Cluster struct {
	// Scheduler is "local" (the embedded executor); slurm, pbs and torque come later.
	Scheduler string `toml:"scheduler"`
	// Transport is how commands reach the cluster: "local" (ssh comes later).
	Transport string `toml:"transport"`
	// Slots is how many jobs the local executor runs at once.
	Slots int `toml:"slots"`
	// NWChem is the NWChem command as an argument list.
	NWChem []string `toml:"nwchem"`
	// MPIRanks above 1 runs NWChem under MPI with that many processes.
	MPIRanks int `toml:"mpi_ranks"`
	// MPIRun is the MPI launcher as an argument list; "-np N" and NWChem are appended.
	MPIRun []string `toml:"mpirun"`
	// MemoryMB is NWChem's "memory total" per process.
	MemoryMB int `toml:"memory_mb"`
	// MaxOptSteps caps the geometry optimisation (NWChem driver maxiter).
	MaxOptSteps int `toml:"max_opt_steps"`
	// CancelGrace is how long a cancelled job gets after SIGTERM before SIGKILL.
	CancelGrace Duration `toml:"cancel_grace"`
	// PollInterval is how often the cluster's jobs are looked at.
	PollInterval Duration `toml:"poll_interval"`
	// CommandTimeout bounds each helper command (obabel, version checks).
	CommandTimeout Duration `toml:"command_timeout"`

	// PollIntervalMax is where the poll interval grows to while nothing changes, and the
	// longest back-off while the scheduler does not answer.
	PollIntervalMax Duration `toml:"poll_interval_max"`
	// PollBudget caps scheduler poll calls per minute for this cluster; submissions and
	// cancels are not counted against it.
	PollBudget int `toml:"poll_budget"`
	// LostAfter is how long an active job may be unknown to the scheduler (neither in the
	// queue nor in accounting) before it is recorded as lost.
	LostAfter Duration `toml:"lost_after"`
	// SubmitTimeout and QueryTimeout bound each submission and each status query.
	SubmitTimeout Duration `toml:"submit_timeout"`
	// SubmitConcurrency is how many submissions may wait for the scheduler at once.
	SubmitConcurrency int      `toml:"submit_concurrency"`
	QueryTimeout      Duration `toml:"query_timeout"`

	// Batch settings (slurm). Each value must look like a scheduler name: letters,
	// digits, '_', '-', '.', '+'; empty leaves it to the site's defaults.
	Partition string `toml:"partition"`
	Account   string `toml:"account"`
	QOS       string `toml:"qos"`
	// TimeLimit is each job's wall-time limit.
	TimeLimit Duration `toml:"time_limit"`

	// RunAs is "service" (every command runs as qmd's own user) or "owner" (qmd runs as
	// root and runs sbatch, squeue, sacct and scancel as the job's owner, so jobs are
	// charged to the person who submitted them).
	RunAs string `toml:"run_as"`
	// SSH transport (transport = "ssh"): the cluster's login node, reached over one
	// verified, reused connection.
	Host              string   `toml:"host"`
	Port              int      `toml:"port"`
	User              string   `toml:"user"`
	IdentityFile      string   `toml:"identity_file"`
	UseAgent          bool     `toml:"use_agent"`
	KnownHosts        string   `toml:"known_hosts"`
	MaxSessions       int      `toml:"max_sessions"`
	ConnectTimeout    Duration `toml:"connect_timeout"`
	KeepaliveInterval Duration `toml:"keepalive_interval"`
	// RemoteRoot is where job directories are staged on the cluster (RemoteRoot/ID);
	// SharedFS says the cluster sees state_dir itself, so nothing is copied.
	RemoteRoot string `toml:"remote_root"`
	SharedFS   bool   `toml:"shared_fs"`

	// OwnerRoot is, with run_as = "owner", where each user's job directories live:
	// OwnerRoot/USER/ID, owned by the user. It must be on a filesystem the compute nodes
	// see.
	OwnerRoot string `toml:"owner_root"`
}

// Known values.
var (
	Schedulers = []string{"local", "slurm", "pbs", "torque"}
	Transports = []string{"local", "ssh"}
)

// batchValue is what a partition, account or QOS name may look like; these values are
// written into batch scripts, so anything else is refused.
var batchValue = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,64}$`)

var clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Default returns the configuration used when a key is absent.
func Default() *Config {
	return &Config{
		StateDir:        "/var/lib/qmd",
		Socket:          "/run/qmd/qmd.sock",
		SocketMode:      "0666",
		DefaultCluster:  "local",
		MetricsListen:   "127.0.0.1:9597",
		Obabel:          "obabel",
		MaxInputBytes:   1 << 20,
		LogFormat:       "text",
		LogLevel:        "info",
		ShutdownTimeout: Duration{10 * time.Second},

		Conformers:             "single",
		ConformerMax:           10,
		ConformerEnergyWindow:  3.0,
		ConformerRMSD:          0.25,
		ConformerMaxLostWeight: 0.1,
		Temperature:            298.15,
	}
}

// DefaultCluster returns the defaults of a cluster of the given scheduler.
func DefaultCluster(scheduler string) *Cluster {
	c := &Cluster{
		Scheduler:      scheduler,
		Transport:      "local",
		Slots:          runtime.NumCPU(),
		NWChem:         []string{"nwchem"},
		MPIRanks:       1,
		MPIRun:         []string{"mpirun", "--oversubscribe"},
		MemoryMB:       1000,
		MaxOptSteps:    100,
		CancelGrace:    Duration{10 * time.Second},
		PollInterval:   Duration{2 * time.Second},
		CommandTimeout: Duration{60 * time.Second},

		PollIntervalMax:   Duration{60 * time.Second},
		PollBudget:        60,
		LostAfter:         Duration{10 * time.Minute},
		SubmitTimeout:     Duration{60 * time.Second},
		SubmitConcurrency: 2,
		QueryTimeout:      Duration{30 * time.Second},
		TimeLimit:         Duration{24 * time.Hour},
		RunAs:             "service",

		Port:              22,
		MaxSessions:       8,
		ConnectTimeout:    Duration{15 * time.Second},
		KeepaliveInterval: Duration{15 * time.Second},
	}
	if scheduler != "local" {
		c.PollInterval = Duration{10 * time.Second}
		c.PollIntervalMax = Duration{2 * time.Minute}
		c.Slots = 1
	}
	return c
}

// Load reads path, applies defaults and validates. Every problem is returned at once,
// joined, each naming its key.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve config path: %w", err)
	}
	c, err := Parse(string(raw), filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes TOML text; dir is where relative paths resolve.
func Parse(text, dir string) (*Config, error) {
	c := Default()
	c.Dir = dir

	// Clusters are decoded one by one, each on top of its own defaults; a plain decode
	// into the map would replace the defaults with zero values.
	md, err := toml.Decode(text, c)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	c.Clusters = map[string]*Cluster{}
	var decodeErrs []error
	for name, prim := range c.ClusterTables {
		var probe struct {
			Scheduler string `toml:"scheduler"`
		}
		_ = md.PrimitiveDecode(prim, &probe)
		s := probe.Scheduler
		if s == "" {
			s = "local"
		}
		cl := DefaultCluster(s)
		if err := md.PrimitiveDecode(prim, cl); err != nil {
			decodeErrs = append(decodeErrs, fmt.Errorf("clusters.%s: %w", name, err))
		}
		c.Clusters[name] = cl
	}
	c.ClusterTables = nil

	errs := decodeErrs
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		for _, k := range keys {
			errs = append(errs, fmt.Errorf("%s: unknown key", k))
		}
	}
	if len(c.Clusters) == 0 {
		c.Clusters["local"] = DefaultCluster("local")
	}
	c.resolvePaths()
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func (c *Config) resolvePaths() {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) || c.Dir == "" {
			return p
		}
		return filepath.Join(c.Dir, p)
	}
	c.StateDir = abs(c.StateDir)
	c.Socket = abs(c.Socket)
	c.TemplatesDir = abs(c.TemplatesDir)
	c.ScalingFile = abs(c.ScalingFile)
	for _, cl := range c.Clusters {
		cl.IdentityFile = abs(cl.IdentityFile)
		cl.KnownHosts = abs(cl.KnownHosts)
	}
}

// Validate checks every value and returns all problems joined, each prefixed by its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}

	if c.StateDir == "" {
		bad("state_dir", "required")
	}
	if c.Socket == "" {
		bad("socket", "required")
	} else if len(c.Socket) > 100 {
		bad("socket", "path is %d bytes; Unix sockets allow about 100", len(c.Socket))
	}
	if _, err := c.SocketPerm(); err != nil {
		bad("socket_mode", "%v", err)
	}
	if c.MaxInputBytes < 1024 {
		bad("max_input_bytes", "must be at least 1024, got %d", c.MaxInputBytes)
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		bad("log_format", "must be \"text\" or \"json\", got %q", c.LogFormat)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log_level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.ShutdownTimeout.Duration <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	if c.Obabel == "" {
		bad("obabel", "required")
	}
	if !slices.Contains([]string{"single", "auto", "search"}, c.Conformers) {
		bad("conformers", "must be single, auto or search, got %q", c.Conformers)
	}
	if c.ConformerMax < 1 || c.ConformerMax > 50 {
		bad("conformer_max", "must be between 1 and 50, got %d", c.ConformerMax)
	}
	if !(c.ConformerEnergyWindow > 0 && c.ConformerEnergyWindow <= 20) {
		bad("conformer_energy_window", "must be above 0 and at most 20 kcal/mol, got %v",
			c.ConformerEnergyWindow)
	}
	if !(c.ConformerRMSD >= 0 && c.ConformerRMSD <= 5) {
		bad("conformer_rmsd", "must be between 0 and 5 Å, got %v", c.ConformerRMSD)
	}
	if !(c.ConformerMaxLostWeight >= 0 && c.ConformerMaxLostWeight < 1) {
		bad("conformer_max_lost_weight", "must be at least 0 and below 1, got %v",
			c.ConformerMaxLostWeight)
	}
	if !(c.Temperature > 0 && c.Temperature <= 1000) {
		bad("temperature", "must be above 0 and at most 1000 K, got %v", c.Temperature)
	}
	if _, ok := c.Clusters[c.DefaultCluster]; !ok {
		bad("default_cluster", "%q is not a configured cluster (have %s)",
			c.DefaultCluster, strings.Join(c.ClusterNames(), ", "))
	}

	for _, name := range c.ClusterNames() {
		cl := c.Clusters[name]
		key := "clusters." + name
		if !clusterName.MatchString(name) {
			bad(key, "cluster names use letters, digits, '.', '_' and '-' (at most 64)")
		}
		if !slices.Contains(Schedulers, cl.Scheduler) {
			bad(key+".scheduler", "unknown scheduler %q (known: %s)",
				cl.Scheduler, strings.Join(Schedulers, ", "))
		}
		if !slices.Contains(Transports, cl.Transport) {
			bad(key+".transport", "unknown transport %q (known: %s)",
				cl.Transport, strings.Join(Transports, ", "))
		}
		if cl.Slots < 1 {
			bad(key+".slots", "must be at least 1, got %d", cl.Slots)
		}
		if len(cl.NWChem) == 0 || cl.NWChem[0] == "" {
			bad(key+".nwchem", "required: the NWChem command as a list, e.g. [\"nwchem\"]")
		}
		if cl.MPIRanks < 1 {
			bad(key+".mpi_ranks", "must be at least 1, got %d", cl.MPIRanks)
		}
		if cl.MPIRanks > 1 && (len(cl.MPIRun) == 0 || cl.MPIRun[0] == "") {
			bad(key+".mpirun", "required when mpi_ranks > 1")
		}
		if cl.MemoryMB < 100 {
			bad(key+".memory_mb", "must be at least 100, got %d", cl.MemoryMB)
		}
		if cl.MaxOptSteps < 1 || cl.MaxOptSteps > 10000 {
			bad(key+".max_opt_steps", "must be between 1 and 10000, got %d", cl.MaxOptSteps)
		}
		if cl.CancelGrace.Duration <= 0 {
			bad(key+".cancel_grace", "must be positive")
		}
		if cl.PollInterval.Duration < 100*time.Millisecond {
			bad(key+".poll_interval", "must be at least 100ms, got %s", cl.PollInterval)
		}
		if cl.CommandTimeout.Duration <= 0 {
			bad(key+".command_timeout", "must be positive")
		}
		if cl.PollIntervalMax.Duration < cl.PollInterval.Duration {
			bad(key+".poll_interval_max", "must be at least poll_interval (%s), got %s",
				cl.PollInterval, cl.PollIntervalMax)
		}
		if cl.PollBudget < 1 {
			bad(key+".poll_budget", "must be at least 1 poll per minute, got %d", cl.PollBudget)
		}
		if cl.LostAfter.Duration < time.Minute {
			bad(key+".lost_after", "must be at least 1m, got %s", cl.LostAfter)
		}
		if cl.SubmitConcurrency < 1 || cl.SubmitConcurrency > 16 {
			bad(key+".submit_concurrency", "must be between 1 and 16, got %d",
				cl.SubmitConcurrency)
		}
		if cl.SubmitTimeout.Duration <= 0 {
			bad(key+".submit_timeout", "must be positive")
		}
		if cl.QueryTimeout.Duration <= 0 {
			bad(key+".query_timeout", "must be positive")
		} else if cl.QueryTimeout.Duration >= cl.PollIntervalMax.Duration {
			bad(key+".query_timeout", "must be shorter than poll_interval_max (%s)",
				cl.PollIntervalMax)
		}
		for _, f := range []struct{ name, v string }{
			{"partition", cl.Partition}, {"account", cl.Account}, {"qos", cl.QOS},
		} {
			if f.v != "" && !batchValue.MatchString(f.v) {
				bad(key+"."+f.name, "%q: use letters, digits, '_', '-', '.', '+' (at most 64)", f.v)
			}
		}
		if cl.TimeLimit.Duration < time.Minute {
			bad(key+".time_limit", "must be at least 1m, got %s", cl.TimeLimit)
		}
		if cl.Transport == "ssh" {
			if cl.Scheduler == "local" {
				bad(key+".transport", "\"ssh\" needs a batch scheduler (slurm); the local "+
					"scheduler runs jobs on this machine")
			}
			if cl.Host == "" {
				bad(key+".host", "required with transport = \"ssh\"")
			}
			if cl.Port < 1 || cl.Port > 65535 {
				bad(key+".port", "must be 1-65535, got %d", cl.Port)
			}
			if cl.User == "" {
				bad(key+".user", "required with transport = \"ssh\"")
			}
			if cl.IdentityFile == "" && !cl.UseAgent {
				bad(key+".identity_file", "required unless use_agent = true")
			}
			if cl.KnownHosts == "" {
				bad(key+".known_hosts", "required: host keys are checked strictly")
			}
			if cl.MaxSessions < 1 {
				bad(key+".max_sessions", "must be at least 1, got %d", cl.MaxSessions)
			}
			if cl.ConnectTimeout.Duration <= 0 {
				bad(key+".connect_timeout", "must be positive")
			}
			if cl.KeepaliveInterval.Duration <= 0 {
				bad(key+".keepalive_interval", "must be positive")
			}
			if !cl.SharedFS && (cl.RemoteRoot == "" || !strings.HasPrefix(cl.RemoteRoot, "/")) {
				bad(key+".remote_root", "required unless shared_fs = true: an absolute "+
					"path on the cluster")
			}
			if cl.RunAs == "owner" {
				bad(key+".run_as", "\"owner\" is for a scheduler on this machine; over "+
					"ssh jobs run as the ssh user")
			}
		}
		switch cl.RunAs {
		case "service":
		case "owner":
			if cl.Scheduler == "local" {
				bad(key+".run_as", "\"owner\" needs a batch scheduler; the local scheduler "+
					"runs jobs as qmd's own user")
			}
			if cl.OwnerRoot == "" || !filepath.IsAbs(cl.OwnerRoot) {
				bad(key+".owner_root", "required with run_as = \"owner\": an absolute path")
			}
		default:
			bad(key+".run_as", "must be \"service\" or \"owner\", got %q", cl.RunAs)
		}
	}
	return errors.Join(errs...)
}

// SocketPerm parses SocketMode.
func (c *Config) SocketPerm() (os.FileMode, error) {
	v, err := strconv.ParseUint(c.SocketMode, 8, 32)
	if err != nil || v > 0o777 {
		return 0, fmt.Errorf("must be an octal mode such as \"0666\", got %q", c.SocketMode)
	}
	return os.FileMode(v), nil
}

// ClusterNames returns the configured cluster names, sorted.
func (c *Config) ClusterNames() []string {
	names := make([]string, 0, len(c.Clusters))
	for n := range c.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DBPath is where the job store lives.
func (c *Config) DBPath() string { return filepath.Join(c.StateDir, "qmd.db") }

// JobsDir holds one directory per job.
func (c *Config) JobsDir() string { return filepath.Join(c.StateDir, "jobs") }
