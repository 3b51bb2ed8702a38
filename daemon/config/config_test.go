package config

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestDefaultsWithoutClusters(t *testing.T) {
	c, err := Parse(`state_dir = "/srv/qmd"`, "/etc/qmd")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Clusters) != 1 || c.Clusters["local"] == nil {
		t.Fatalf("clusters %v, want only local", c.Clusters)
	}
	l := c.Clusters["local"]
	if l.Slots != runtime.NumCPU() || l.Scheduler != "local" || l.Transport != "local" {
		t.Errorf("local cluster %+v", l)
	}
	if c.Socket != "/run/qmd/qmd.sock" || c.MetricsListen != "127.0.0.1:9597" || c.DefaultCluster != "local" {
		t.Errorf("defaults %+v", c)
	}
	if c.ShutdownTimeout.Duration != 10*time.Second {
		t.Errorf("shutdown_timeout %v", c.ShutdownTimeout)
	}
}

func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.toml")
	if len(files) == 0 {
		t.Fatal("no good files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFullFileValues(t *testing.T) {
	c, err := Load("testdata/full.good.toml")
	if err != nil {
		t.Fatal(err)
	}
	big := c.Clusters["big"]
	if big.Slots != 4 || big.MPIRanks != 2 || big.MemoryMB != 2000 || big.CancelGrace.Duration != 30*time.Second {
		t.Errorf("big %+v", big)
	}
	// A cluster that sets only slots keeps every other default.
	small := c.Clusters["small"]
	if small.Slots != 1 || small.MemoryMB != 1000 || small.Scheduler != "local" || len(small.NWChem) != 1 {
		t.Errorf("small %+v", small)
	}
	if p, _ := c.SocketPerm(); p != 0o660 {
		t.Errorf("socket mode %o", p)
	}
}

func TestRelativePathsResolveAgainstConfigDir(t *testing.T) {
	c, err := Load("testdata/minimal.good.toml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata/state")
	if c.StateDir != abs {
		t.Errorf("state_dir %s, want %s", c.StateDir, abs)
	}
}

// TestBadFiles compares every problem reported, at once, with a golden list.
func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.toml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.ReplaceAll(err.Error(), "config "+f+": ", "")
			golden := strings.TrimSuffix(f, ".toml") + ".errors"
			if *update {
				os.WriteFile(golden, []byte(got+"\n"), 0o644)
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run with -update)", rerr)
			}
			if got+"\n" != string(want) {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestExampleConfigIsValidAndComplete(t *testing.T) {
	c, err := Load("../../etc/qmd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/var/lib/qmd" {
		t.Errorf("state_dir %s", c.StateDir)
	}
	// Every key of the structs appears in the example, so it stays the reference.
	raw, _ := os.ReadFile("../../etc/qmd.toml")
	for _, key := range []string{"state_dir", "socket", "socket_mode", "default_cluster",
		"metrics_listen", "admin_group", "templates_dir", "obabel", "max_input_bytes",
		"log_format", "log_level", "shutdown_timeout", "scheduler", "transport", "slots",
		"nwchem", "mpi_ranks", "mpirun", "memory_mb", "max_opt_steps", "cancel_grace",
		"poll_interval", "command_timeout", "poll_interval_max", "poll_budget", "lost_after",
		"submit_timeout", "query_timeout", "time_limit", "partition", "account", "qos", "run_as", "owner_root", "host", "port",
		"user", "identity_file", "use_agent", "known_hosts", "max_sessions", "connect_timeout",
		"keepalive_interval", "remote_root", "shared_fs", "submit_concurrency"} {
		if !strings.Contains(string(raw), key+" =") {
			t.Errorf("etc/qmd.toml does not show %s", key)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse("state_dir = \n", "")
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err %v, want a parse error naming the line", err)
	}
}
