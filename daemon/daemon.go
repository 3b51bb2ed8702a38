// Package daemon assembles qmd: the job store, the manager with its schedulers and the API
// on the Unix socket, started and stopped as one.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"qmd/daemon/api"
	"qmd/daemon/config"
	"qmd/daemon/job"
	"qmd/daemon/manager"
	"qmd/daemon/metrics"
	"qmd/daemon/sdnotify"
	"qmd/daemon/shifts"
	"qmd/daemon/store"
	"qmd/templates"
)

// Version is stamped at build time with -ldflags "-X qmd/daemon.Version=...".
var Version = "dev"

// Options are what Run needs beyond the configuration.
type Options struct {
	// ConfigPath is re-read on each value from Reload (SIGHUP); an invalid file is
	// logged and the running configuration kept.
	ConfigPath string
	Reload     <-chan os.Signal
}

// Run serves until ctx ends, then stops accepting requests, finishes writes in flight and
// returns. Jobs keep running; the next start re-adopts them.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, opt Options) error {
	if err := os.MkdirAll(cfg.JobsDir(), 0o750); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return fmt.Errorf("open job store: %w", err)
	}
	defer st.Close()

	tmpl, err := templates.New(cfg.TemplatesDir)
	if err != nil {
		return err
	}
	if cfg.ScalingFile != "" {
		// Before any job can finish: a result must not be referenced with the shipped
		// factors while the admin's fitted ones are still loading.
		n, err := shifts.LoadScaling(cfg.ScalingFile)
		if err != nil {
			return fmt.Errorf("scaling_file: %w", err)
		}
		log.Info("loaded linear-scaling factors", "file", cfg.ScalingFile, "references", n)
	}
	mtr := metrics.New(Version)
	mtr.Jobs(cfg.ClusterNames(), st.CountByState)
	st.OnMove = func(from, to job.State) {
		mtr.Transitions.WithLabelValues(string(from), string(to)).Inc()
	}
	m, err := manager.New(manager.Options{
		Config: cfg, Store: st, Templates: tmpl, Logger: log, Software: "NWChem",
		Metrics: mtr,
	})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Recover(ctx); err != nil {
		return err
	}

	ln, err := Listen(cfg.Socket, mustPerm(cfg))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: &api.Handler{
			M: m, AdminGroup: cfg.AdminGroup, Version: Version, Log: log,
			MaxBody: int64(cfg.MaxInputBytes)*2 + 64<<10,
		},
		ConnContext:       api.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	var metricsLn net.Listener
	if cfg.MetricsListen != "" {
		// Listen before reporting ready, so a taken port is an error at start, not a
		// silent gap in the dashboards.
		metricsLn, err = net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics_listen: %w", err)
		}
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if metricsLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := mtr.ServeListener(runCtx, metricsLn); err != nil {
				log.Error("metrics server", "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.Run(runCtx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("qmd ready", "socket", cfg.Socket, "state_dir", cfg.StateDir, "version", Version,
		"clusters", len(cfg.Clusters))
	notify(log, sdnotify.Ready)
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchdog(runCtx, m, log)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-opt.Reload:
				reload(runCtx, opt.ConfigPath, m, log)
			}
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serve API: %w", err)
	}

	log.Info("qmd stopping")
	notify(log, sdnotify.Stopping)
	m.Drain()
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("API shutdown", "err", err)
	}
	stopRun()
	wg.Wait()
	os.Remove(cfg.Socket)
	log.Info("qmd stopped")
	return runErr
}

func mustPerm(cfg *config.Config) os.FileMode {
	p, err := cfg.SocketPerm()
	if err != nil {
		return 0o660
	}
	return p
}

// Listen opens the Unix socket. It dials first: a live daemon on the path is an error,
// while a stale socket file left by a crash is removed.
func Listen(path string, mode os.FileMode) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen %s: another qmd is serving this socket", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}

	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}

	// The mode decides who may connect; what each caller may do is decided per request.
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set socket mode: %w", err)
	}
	return ln, nil
}

// notify tells systemd about a state change; failures are logged, never ignored.
func notify(log *slog.Logger, msg string) {
	if _, err := sdnotify.Send(msg); err != nil {
		log.Warn("systemd notify", "msg", msg, "err", err)
	}
}

// watchdog pings systemd at half the watchdog interval, but only while every cluster's
// loop keeps finishing cycles: a wedged daemon stops pinging and gets restarted.
func watchdog(ctx context.Context, m *manager.Manager, log *slog.Logger) {
	every, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog", "err", err)
		return
	}
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if m.Alive() {
				notify(log, sdnotify.Watchdog)
			} else {
				log.Error("a cluster loop has stopped turning; not feeding the watchdog")
			}
		}
	}
}

// reload re-reads the configuration: valid clusters, intervals and limits apply at once,
// jobs are untouched; an invalid file is logged and the running configuration kept.
func reload(ctx context.Context, path string, m *manager.Manager, log *slog.Logger) {
	if path == "" {
		return
	}
	notify(log, sdnotify.Reloading)
	defer notify(log, sdnotify.Ready)
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("reload: invalid configuration; keeping the running one", "err", err)
		return
	}
	for _, s := range m.Reload(ctx, cfg) {
		log.Warn("reload: not applied", "what", s)
	}
	log.Info("configuration reloaded", "path", path)
}
