package api

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"qmd/ctl/client"
	"qmd/daemon/config"
	"qmd/daemon/manager"
	"qmd/daemon/store"
	"qmd/scheduler"
	"qmd/scheduler/fake"
	"qmd/templates"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden* from the current code")

const (
	waterXYZ = "3\nwater\nO 0.90348 0.07368 0.01402\n" +
		"H 1.87136 0.03381 -0.00979\nH 0.62463 -0.72308 -0.46177\n"
	fixtures  = "../nwchem/testdata/"
	waterOut  = fixtures + "water_draft_gas_opt_nmr.out"
	maxInput  = 64 << 10
	adminGrp  = "daemon" // uid 1 has it as its primary group on Debian
	adminUID  = 1
	aliceUID  = 1000
	bobUID    = 2000
	clusterID = "local"
)

// env is the daemon's API as qmd serves it: the real handler and manager on a real store,
// a fake scheduler, and one Unix socket per simulated caller. The kernel names the peer
// of the "self" socket; the others fix the peer in ConnContext, standing in for users
// this test cannot become.
type env struct {
	t    *testing.T
	cfg  *config.Config
	st   *store.Store
	m    *manager.Manager
	h    *Handler
	fake *fake.Scheduler
	dir  string
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// shortDir returns a fresh directory with a short path: a socket path must fit in about
// 100 bytes, which t.TempDir's names, built from the test name, can exceed.
func shortDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "qmdapi")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := shortDir(t)
	text := fmt.Sprintf("state_dir = %q\nsocket = %q\nmax_input_bytes = %d\n"+
		"admin_group = %q\n[clusters.%s]\npoll_interval = \"100ms\"\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "qmd.sock"), maxInput, adminGrp,
		clusterID)
	cfg, err := config.Parse(text, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.JobsDir(), 0o750); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	f := fake.New(fake.Options{})
	m, err := manager.New(manager.Options{Config: cfg, Store: st, Templates: tmpl,
		Logger: log, Software: "NWChem",
		Schedulers: map[string]scheduler.Scheduler{clusterID: f}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: cfg, st: st, m: m, fake: f, dir: dir, logs: logs,
		h: &Handler{M: m, AdminGroup: adminGrp, Version: "v-test", Log: log,
			MaxBody: int64(maxInput)*2 + 64<<10}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return e
}

// serve starts an HTTP server for the handler on a new socket and returns a client for
// it. A nil peer leaves the peer to the kernel (SO_PEERCRED, i.e. this process).
func (e *env) serve(peer *Peer) *client.Client {
	e.t.Helper()
	return serveOn(e.t, e.h, filepath.Join(shortDir(e.t), "qmd.sock"), peer)
}

func serveOn(tb testing.TB, h http.Handler, path string, peer *Peer) *client.Client {
	tb.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	cc := ConnContext
	if peer != nil {
		p := *peer
		cc = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, p)
		}
	}
	srv := &http.Server{Handler: h, ConnContext: cc}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return &client.Client{Socket: path}
}

// raw sends a request over the socket without the typed client, for what it cannot send.
func raw(t *testing.T, c *client.Client, method, path string, header http.Header,
	body []byte) (int, []byte) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.Socket)
		},
	}}
	req, err := http.NewRequest(method, "http://qmd"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	hc.CloseIdleConnections()
	return resp.StatusCode, b.Bytes()
}

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}
