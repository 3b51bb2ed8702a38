// Package command implements the qmd binary's subcommands. main only hands over to Run,
// so tests call Run with buffers.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"qmd/daemon"
	"qmd/daemon/config"
	"qmd/daemon/shifts"
	"qmd/scheduler/runner"
	"qmd/scheduler/runner/sshrunner"
	"qmd/templates"
)

// UsageError is a mistake on the command line; it exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitCode maps Run's error to the process exit status.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

const usage = `qmd: the qmd daemon and its admin commands

usage:
  qmd serve --config FILE     run the daemon
  qmd check --config FILE     validate the config and the environment
  qmd parse --scheduler S --command C [FILE]  show how qmd reads a scheduler's output
  qmd validate --set FILE     compare computed shifts with a validation set
  qmd fit-scaling --train REPORT [--test REPORT] --out FILE
                              fit linear-scaling factors from validation reports
  qmd version                 print the version
`

// Run runs one subcommand.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &UsageError{Msg: "no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "check":
		return check(ctx, args[1:], stdout)
	case "parse":
		return parse(args[1:], os.Stdin, stdout, stderr)
	case "validate":
		return validateCmd(ctx, args[1:], stdout, stderr)
	case "fit-scaling":
		return fitScalingCmd(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "qmd %s\n", daemon.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &UsageError{Msg: fmt.Sprintf("unknown command %q", args[0])}
}

func configFlag(name string, args []string) (string, error) {
	fs := flag.NewFlagSet("qmd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return "", &UsageError{Msg: fmt.Sprintf("qmd %s: %v", name, err)}
	}
	if fs.NArg() > 0 {
		return "", &UsageError{Msg: fmt.Sprintf("qmd %s: unexpected argument %q", name, fs.Arg(0))}
	}
	if *path == "" {
		return "", &UsageError{Msg: fmt.Sprintf("qmd %s: --config FILE is required", name)}
	}
	return *path, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	path, err := configFlag("serve", args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return daemon.Run(ctx, cfg, NewLogger(cfg, stderr),
		daemon.Options{ConfigPath: path, Reload: hup})
}

// NewLogger builds the daemon's logger from the config: JSON for journald or text.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// check validates the config and the environment and lists every problem.
func check(ctx context.Context, args []string, stdout io.Writer) error {
	path, err := configFlag("check", args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}

	var problems []string
	okf := func(format string, a ...any) { fmt.Fprintf(stdout, "ok    "+format+"\n", a...) }
	bad := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		problems = append(problems, msg)
		fmt.Fprintf(stdout, "FAIL  %s\n", msg)
	}

	okf("config %s", path)
	if _, err := templates.New(cfg.TemplatesDir); err != nil {
		bad("%v", err)
	}
	if cfg.ScalingFile != "" {
		if refs, err := shifts.ReadScaling(cfg.ScalingFile); err != nil {
			bad("scaling_file: %v", err)
		} else {
			okf("scaling_file %s: factors for %d preset/solvent pairs", cfg.ScalingFile,
				len(refs))
		}
	}
	if out, err := exec.CommandContext(ctx, cfg.Obabel, "-V").CombinedOutput(); err != nil {
		bad("obabel (%s) cannot run: %v; install Open Babel (apt-get install openbabel)", cfg.Obabel, err)
	} else {
		okf("obabel: %s", strings.TrimSpace(string(out)))
	}
	for _, name := range cfg.ClusterNames() {
		cl := cfg.Clusters[name]
		if p, err := exec.LookPath(cl.NWChem[0]); err != nil {
			bad("clusters.%s.nwchem: %s not found: %v; install NWChem (apt-get install nwchem)", name, cl.NWChem[0], err)
		} else if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			bad("clusters.%s.nwchem: %s is not executable", name, p)
		} else {
			okf("clusters.%s: NWChem at %s", name, p)
		}
		if cl.Transport == "ssh" {
			checkSSH(ctx, name, cl, okf, bad)
			continue
		}
		if cl.Scheduler == "slurm" {
			for _, argv := range [][]string{{"sbatch", "--version"}, {"scontrol", "ping"}} {
				cctx, cancel := context.WithTimeout(ctx, cl.QueryTimeout.Duration)
				out, err := exec.CommandContext(cctx, argv[0], argv[1:]...).CombinedOutput()
				cancel()
				if err != nil {
					bad("clusters.%s: %s failed: %v: %s", name, strings.Join(argv, " "), err,
						firstLine(string(out)))
				} else {
					okf("clusters.%s: %s: %s", name, strings.Join(argv, " "),
						firstLine(string(out)))
				}
			}
		}
		if cl.MPIRanks > 1 {
			if out, err := exec.CommandContext(ctx, cl.MPIRun[0], "--version").CombinedOutput(); err != nil {
				bad("clusters.%s.mpirun: %s --version failed: %v", name, cl.MPIRun[0], err)
			} else {
				okf("clusters.%s: %s", name, firstLine(string(out)))
			}
		}
	}
	if err := writable(cfg.StateDir); err != nil {
		bad("state_dir %s: %v", cfg.StateDir, err)
	} else {
		okf("state_dir %s is writable", cfg.StateDir)
	}
	if err := writable(filepath.Dir(cfg.Socket)); err != nil {
		bad("socket %s: its directory is not usable: %v", cfg.Socket, err)
	} else {
		okf("socket directory %s is usable", filepath.Dir(cfg.Socket))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) found", len(problems))
	}
	return nil
}

// writable creates dir if needed and proves a file can be written in it.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".qmd-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// checkSSH opens the cluster's SSH connection, which verifies the host key, and asks the
// scheduler there for its version (sbatch, or qstat for PBS and Torque).
func checkSSH(ctx context.Context, name string, cl *config.Cluster,
	okf, bad func(string, ...any)) {
	r, err := sshrunner.New(sshrunner.Config{
		Host: cl.Host, Port: cl.Port, User: cl.User, IdentityFile: cl.IdentityFile,
		UseAgent: cl.UseAgent, KnownHosts: cl.KnownHosts, MaxSessions: cl.MaxSessions,
		ConnectTimeout: cl.ConnectTimeout.Duration, CommandTimeout: cl.QueryTimeout.Duration,
		KeepaliveInterval: cl.KeepaliveInterval.Duration,
	})
	if err != nil {
		bad("clusters.%s: %v", name, err)
		return
	}
	defer r.Close()
	argv := []string{"sbatch", "--version"}
	if cl.Scheduler == "pbs" || cl.Scheduler == "torque" {
		argv = []string{"qstat", "--version"}
	}
	res, err := r.Run(ctx, runner.Command{Argv: argv})
	if err != nil {
		bad("clusters.%s: %s@%s:%d: %s: %v", name, cl.User, cl.Host, cl.Port,
			strings.Join(argv, " "), err)
		return
	}
	okf("clusters.%s: %s@%s:%d (host key verified): %s", name, cl.User, cl.Host, cl.Port,
		firstLine(string(res.Stdout)))
}
