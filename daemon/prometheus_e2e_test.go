package daemon_test

// TestPrometheusDashboardAndRules checks etc/grafana/qmd.json and etc/prometheus/qmd-rules.yml
// against a real Prometheus scraping a real qmd: promtool accepts and unit-tests the rules,
// every dashboard query parses and returns data, and every alert rule evaluates cleanly.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needPrometheus returns the paths of prometheus and promtool, skipping (or failing under
// CI) when either is missing.
func needPrometheus(t *testing.T) (prom, promtool string) {
	t.Helper()
	var paths []string
	for _, p := range []string{"prometheus", "promtool"} {
		path, err := exec.LookPath(p)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found but CI is set: run make testenv", p)
			}
			t.Skipf("%s not found; run make testenv", p)
		}
		paths = append(paths, path)
	}
	return paths[0], paths[1]
}

// promAPI is the subset of a Prometheus HTTP API answer the test reads.
type promAPI struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func promGet(base, path string, q url.Values) (promAPI, error) {
	var a promAPI
	u := base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("HTTP %d, not JSON: %v: %.300s", resp.StatusCode, err, b)
	}
	if a.Status != "success" {
		return a, fmt.Errorf("HTTP %d: %s: %s", resp.StatusCode, a.ErrorType, a.Error)
	}
	return a, nil
}

// instantQuery evaluates expr now and returns the number of result elements.
func instantQuery(base, expr string) (int, error) {
	a, err := promGet(base, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, err
	}
	var d struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(a.Data, &d); err != nil {
		return 0, err
	}
	if d.ResultType == "scalar" || d.ResultType == "string" {
		return 1, nil
	}
	return len(d.Result), nil
}

// dashboardExprs walks the dashboard JSON and returns every "expr" string, keyed by a
// readable location (panel title and refId).
func dashboardExprs(v any, where string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if title, ok := x["title"].(string); ok {
			where = title
		}
		if e, ok := x["expr"].(string); ok {
			ref, _ := x["refId"].(string)
			key := fmt.Sprintf("%s [%s]", where, ref)
			for n := 2; out[key] != ""; n++ { // titles need not be unique: keep every query
				key = fmt.Sprintf("%s [%s] #%d", where, ref, n)
			}
			out[key] = e
		}
		for k, c := range x {
			if k != "expr" {
				dashboardExprs(c, where, out)
			}
		}
	case []any:
		for _, c := range x {
			dashboardExprs(c, where, out)
		}
	}
}

// grafanaVars replaces Grafana's template and built-in variables by values Prometheus
// accepts, as Grafana would with every cluster selected.
var grafanaVars = strings.NewReplacer(
	"${cluster}", ".*", "[[cluster]]", ".*", "$cluster", ".*",
	"${__rate_interval}", "1m", "$__rate_interval", "1m",
	"$__interval_ms", "15000", "${__interval}", "15s", "$__interval", "15s",
	"${__range_s}", "60", "$__range_s", "60", "${__range}", "1m", "$__range", "1m",
)

func TestPrometheusDashboardAndRules(t *testing.T) {
	prom, promtool := needPrometheus(t)
	etc, err := filepath.Abs(filepath.Join("..", "etc"))
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(etc, "prometheus", "qmd-rules.yml")
	rulesTest := filepath.Join(etc, "prometheus", "qmd-rules.test.yml")
	dashFile := filepath.Join(etc, "grafana", "qmd.json")

	// Offline checks first: they are quick and explain most mistakes best.
	for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", rulesTest}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	alerts := alertNames(t, rules)

	raw, err := os.ReadFile(dashFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashFile, err)
	}
	if sv, _ := dash["schemaVersion"].(float64); sv < 36 {
		t.Errorf("dashboard schemaVersion %v, want a current one (>= 36)", dash["schemaVersion"])
	}
	if !strings.Contains(string(raw), "label_values(qmd_jobs, cluster)") {
		t.Error("dashboard has no cluster variable from label_values(qmd_jobs, cluster)")
	}
	exprs := map[string]string{}
	dashboardExprs(dash, "", exprs)
	if len(exprs) < 10 {
		t.Fatalf("dashboard has only %d queries", len(exprs))
	}
	leftover := regexp.MustCompile(`\$\{?\w+|\[\[\w+\]\]`)
	for where, e := range exprs {
		exprs[where] = grafanaVars.Replace(e)
		if m := leftover.FindString(exprs[where]); m != "" {
			t.Errorf("%s: variable %s is not substituted by this test: %s", where, m, e)
		}
	}

	// qmd, on the local scheduler, with its metrics on a free port.
	qaddr := freePort(t)
	// The job runs through the test Slurm, so the scheduler panels and rules see a real
	// batch cluster's series.
	needSlurm(t)
	e := newEnv(t, fmt.Sprintf(`metrics_listen = %q
default_cluster = "slurm"

[clusters.slurm]
scheduler = "slurm"
partition = "debug"
time_limit = "30m"
poll_interval = "1s"
poll_interval_max = "4s"
query_timeout = "3s"
`, qaddr))
	cancelLeftovers(t, e)
	e.start()

	// Prometheus scraping it every second and evaluating the rules every second.
	pdir := t.TempDir()
	paddr := freePort(t)
	base := "http://" + paddr
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: qmd
    static_configs:
      - targets: [%q]
`, rules, qaddr)
	cfgFile := filepath.Join(pdir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	logFile, err := os.Create(filepath.Join(pdir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	pcmd := exec.Command(prom, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(pdir, "data"),
		"--web.listen-address="+paddr, "--web.enable-lifecycle", "--log.level=info")
	pcmd.Stdout, pcmd.Stderr = logFile, logFile
	pcmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // no terminal signals from go test
	if err := pcmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- pcmd.Wait() }()
	promLog := func() string {
		b, _ := os.ReadFile(logFile.Name())
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}
	t.Cleanup(func() {
		if resp, err := http.Post(base+"/-/quit", "text/plain", nil); err == nil {
			resp.Body.Close()
		}
		select {
		case <-exited:
			return
		case <-time.After(5 * time.Second):
		}
		pcmd.Process.Signal(syscall.SIGTERM) // its own pid only
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			pcmd.Process.Kill()
			<-exited
		}
	})

	// The job runs while Prometheus starts, so the counters and histograms move under
	// its eyes rather than appearing before the first scrape.
	id := e.submit(writeFile(t, e.dir, "water.xyz", waterXYZ), "--solvent", "gas")

	waitFor := func(what string, timeout time.Duration, ok func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		last := ""
		for time.Now().Before(deadline) {
			select {
			case err := <-exited:
				t.Fatalf("prometheus exited: %v\n%s", err, promLog())
			default:
			}
			var done bool
			if done, last = ok(); done {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("%s: not within %s (last: %s)\n%s", what, timeout, last, promLog())
	}
	waitFor("up{job=\"qmd\"} == 1", 30*time.Second, func() (bool, string) {
		n, err := instantQuery(base, `up{job="qmd"} == 1`)
		return err == nil && n == 1, fmt.Sprint(n, err)
	})
	e.waitState(id, 3*time.Minute, "completed")
	// Let a few scrapes see the finished job, so every rate() has two points of it.
	time.Sleep(4 * time.Second)

	// The cluster variable's label_values(qmd_jobs, cluster) must list the local cluster.
	a, err := promGet(base, "/api/v1/label/cluster/values", url.Values{"match[]": {"qmd_jobs"}})
	if err != nil {
		t.Fatalf("cluster label values: %v", err)
	}
	var clusters []string
	json.Unmarshal(a.Data, &clusters)
	if len(clusters) != 1 || clusters[0] != "slurm" {
		t.Errorf("label_values(qmd_jobs, cluster) = %v, want [slurm]", clusters)
	}

	// Every dashboard query: valid PromQL with data. A query that is still empty gets a
	// few more seconds (a scrape may be in flight), then counts as a failure.
	keys := make([]string, 0, len(exprs))
	for k := range exprs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pending := keys
	for deadline := time.Now().Add(10 * time.Second); ; {
		var again []string
		for _, k := range pending {
			n, err := instantQuery(base, exprs[k])
			if err != nil {
				t.Errorf("dashboard query %s: %v\n  %s", k, err, exprs[k])
				continue
			}
			if n == 0 {
				again = append(again, k)
			} else {
				t.Logf("%s: %d series", k, n)
			}
		}
		pending = again
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, k := range pending {
		t.Errorf("dashboard query %s returned no data:\n  %s", k, exprs[k])
	}

	// Every alert rule is loaded, has been evaluated, and is healthy; on this healthy
	// run none fires.
	type rule struct {
		Name      string `json:"name"`
		Type      string `json:"type"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
		State     string `json:"state"`
	}
	var got map[string]rule
	waitFor("every alert rule evaluated", 15*time.Second, func() (bool, string) {
		a, err := promGet(base, "/api/v1/rules", url.Values{"type": {"alert"}})
		if err != nil {
			return false, err.Error()
		}
		var d struct {
			Groups []struct {
				Rules []rule `json:"rules"`
			} `json:"groups"`
		}
		if err := json.Unmarshal(a.Data, &d); err != nil {
			return false, err.Error()
		}
		got = map[string]rule{}
		for _, g := range d.Groups {
			for _, r := range g.Rules {
				got[r.Name] = r
			}
		}
		for _, n := range alerts {
			if r, ok := got[n]; !ok || r.Health == "unknown" || r.Health == "" {
				return false, fmt.Sprintf("%s: %+v", n, got[n])
			}
		}
		return true, ""
	})
	for _, n := range alerts {
		r := got[n]
		if r.Health != "ok" || r.LastError != "" {
			t.Errorf("alert %s: health %q, error %q", n, r.Health, r.LastError)
		}
		if r.State == "firing" {
			t.Errorf("alert %s fires on a healthy local run", n)
		}
	}
	for _, want := range []string{"QmdSchedulerUnreachable", "QmdPollerStalled", "QmdJobsStuckSubmitting",
		"QmdLostJobs", "QmdFailureRateJump", "QmdDown"} {
		if _, ok := got[want]; !ok {
			t.Errorf("alert %s is not loaded", want)
		}
	}
	if t.Failed() {
		t.Logf("prometheus log:\n%s", promLog())
	}
	e.stop()
}

// alertNames reads the alert names of a rules file (lines "- alert: Name").
func alertNames(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*-\s*alert:\s*(\S+)\s*$`).FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("%s: no alert rules", file)
	}
	return names
}
