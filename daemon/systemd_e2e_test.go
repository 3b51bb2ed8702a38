package daemon_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifyListener collects what qmd sends to its NOTIFY_SOCKET.
type notifyListener struct {
	mu   sync.Mutex
	msgs []string
}

func (n *notifyListener) has(msg string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

func (n *notifyListener) wait(t *testing.T, msg string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !n.has(msg) {
		if time.Now().After(deadline) {
			t.Fatalf("qmd did not send %s within %s (got %v)", msg, within, n.msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSystemdNotifyReloadAndStop: READY after start, WATCHDOG pings, SIGHUP with an
// invalid file keeps the old config, with a valid one applies it, SIGTERM sends STOPPING
// and exits 0.
func TestSystemdNotifyReloadAndStop(t *testing.T) {
	e := newEnv(t, "")
	sock := filepath.Join(e.dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := &notifyListener{}
	go func() {
		buf := make([]byte, 256)
		for {
			k, err := ln.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	e.procEnv = []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=1000000"}
	e.start()
	pid := e.proc.Process.Pid
	n.wait(t, "READY=1", 5*time.Second)
	n.wait(t, "WATCHDOG=1", 5*time.Second)

	good, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, []byte(string(good)+"poll_intervall = \"1s\"\n"), 0o644)
	syscall.Kill(pid, syscall.SIGHUP)
	waitLog(t, e, "keeping the running one")
	if _, _, code := e.ctl("version"); code != 0 {
		t.Fatal("qmd stopped answering after an invalid reload")
	}

	text := strings.Replace(string(good), `poll_interval = "500ms"`, `poll_interval = "700ms"`, 1)
	os.WriteFile(e.cfg, []byte(text), 0o644)
	syscall.Kill(pid, syscall.SIGHUP)
	waitLog(t, e, "configuration reloaded")

	id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
	e.waitState(id, 3*time.Minute, "completed")

	// A cluster added by a reload takes jobs at once; removed again once it is idle.
	os.WriteFile(e.cfg, []byte(text+"\n[clusters.extra]\nslots = 1\npoll_interval = \"500ms\"\n"),
		0o644)
	syscall.Kill(pid, syscall.SIGHUP)
	waitLog(t, e, "cluster added")
	extra := e.submit(writeFile(t, e.dir, "w2.xyz", waterXYZ), "--solvent", "gas",
		"--cluster", "extra")
	e.waitState(extra, 3*time.Minute, "completed")
	os.WriteFile(e.cfg, []byte(text), 0o644)
	syscall.Kill(pid, syscall.SIGHUP)
	waitLog(t, e, "cluster removed")
	if _, errs, code := e.ctl("submit", writeFile(t, e.dir, "w3.xyz", waterXYZ),
		"--cluster", "extra"); code != 2 || !strings.Contains(errs, "extra") {
		t.Errorf("submit to a removed cluster: exit %d %s", code, errs)
	}
	e.stop()
	n.wait(t, "STOPPING=1", 2*time.Second)
}

func waitLog(t *testing.T, e *env, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", s, e.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
