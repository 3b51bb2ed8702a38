package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestMetricsScrape runs a job and reads the daemon's metrics: job counts by state,
// transitions, scheduler health and build info; promtool finds nothing to fix.
func TestMetricsScrape(t *testing.T) {
	addr := freePort(t)
	e := newEnv(t, fmt.Sprintf("metrics_listen = %q\n", addr))
	e.start()
	id := e.submit(writeFile(t, e.dir, "water.xyz", waterXYZ), "--solvent", "gas")
	e.waitState(id, 3*time.Minute, "completed")
	time.Sleep(time.Second) // the next poll records the cluster's health

	text := scrape(t, addr)
	for _, want := range []string{
		`qmd_jobs{cluster="local",state="completed"} 1`,
		`qmd_jobs{cluster="local",state="running"} 0`,
		`qmd_job_transitions_total{from="completing",to="completed"} 1`,
		`qmd_job_transitions_total{from="queued",to="submitting"} 1`,
		`qmd_build_info{version=`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, bad := range []string{id, e.dir} {
		if strings.Contains(text, bad) {
			t.Errorf("a job id or path leaked into the metrics: %s", bad)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found but CI is set: run make testenv")
		}
		t.Skip("promtool not found; run make testenv")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	e.stop()
}
