package daemon_test

// End-to-end tests: the real qmd and qmctl binaries, the real NWChem and Open Babel. They
// skip on a machine without NWChem unless CI is set, where they fail instead.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// needTools skips, or fails under CI, when the programs the tests need are missing.
func needTools(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("integration test; -short given")
	}
	for _, p := range []string{"nwchem", "obabel", "mpirun"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found but CI is set: run make testenv", p)
			}
			t.Skipf("%s not found; run make testenv", p)
		}
	}
}

// binaries builds qmd and qmctl once into a directory every user can read.
func binaries(t *testing.T) (qmd, qmctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "qmd-e2e-bin-")
		if buildErr != nil {
			return
		}
		os.Chmod(binDir, 0o755)
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		for _, p := range []struct{ out, pkg string }{
			{"qmd", "qmd/daemon/cmd/qmd"}, {"qmctl", "qmd/ctl/cmd/qmctl"},
		} {
			out, err := exec.Command(gobin, "build", "-o", filepath.Join(binDir, p.out), p.pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", p.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "qmd"), filepath.Join(binDir, "qmctl")
}

type env struct {
	t       *testing.T
	dir     string
	cfg     string
	socket  string
	qmd     string
	qmctl   string
	proc    *exec.Cmd
	log     *bytes.Buffer
	logMu   sync.Mutex
	waitErr chan error
	// procEnv, when set, is added to qmd's environment at the next start.
	procEnv []string
}

// newEnv writes a config into a fresh world-traversable directory.
func newEnv(t *testing.T, extra string) *env {
	t.Helper()
	needTools(t)
	qmd, qmctl := binaries(t)
	dir, err := os.MkdirTemp("", "qmd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("state kept in %s", dir)
		}
	})
	os.Chmod(dir, 0o755)
	e := &env{t: t, dir: dir, cfg: filepath.Join(dir, "qmd.toml"), socket: filepath.Join(dir, "qmd.sock"),
		qmd: qmd, qmctl: qmctl}
	conf := fmt.Sprintf("state_dir = %q\nsocket = %q\nlog_level = \"debug\"\n",
		filepath.Join(dir, "state"), e.socket)
	if !strings.Contains(extra, "metrics_listen") {
		conf += "metrics_listen = \"\"\n" // tests run one after another on one machine
	}
	conf += extra
	if !strings.Contains(extra, "[clusters.") {
		conf += "\n[clusters.local]\nslots = 2\ncancel_grace = \"3s\"\npoll_interval = \"500ms\"\n"
	}
	if err := os.WriteFile(e.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) start() {
	e.t.Helper()
	e.log = &bytes.Buffer{}
	cmd := exec.Command(e.qmd, "serve", "--config", e.cfg)
	if len(e.procEnv) > 0 {
		cmd.Env = append(os.Environ(), e.procEnv...)
	}
	cmd.Stdout = &lockedWriter{mu: &e.logMu, w: e.log}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.proc = cmd
	e.waitErr = make(chan error, 1)
	go func() { e.waitErr <- cmd.Wait() }()
	e.t.Cleanup(func() { e.stop() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, code := e.ctl("version"); code == 0 {
			return
		}
		select {
		case err := <-e.waitErr:
			e.proc = nil
			e.t.Fatalf("qmd exited at start: %v\n%s", err, e.logs())
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.t.Fatalf("qmd did not answer within 15s\n%s", e.logs())
}

// stop sends SIGTERM and checks qmd exits 0 within 10 s.
func (e *env) stop() {
	e.t.Helper()
	if e.proc == nil {
		return
	}
	p := e.proc
	e.proc = nil
	p.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.waitErr:
		if err != nil {
			e.t.Errorf("qmd exited with %v after SIGTERM\n%s", err, e.logs())
		}
	case <-time.After(10 * time.Second):
		p.Process.Kill()
		e.t.Errorf("qmd did not stop within 10s of SIGTERM\n%s", e.logs())
	}
}

// crash kills qmd with SIGKILL, as a power cut or OOM kill would.
func (e *env) crash() {
	e.t.Helper()
	e.proc.Process.Kill()
	<-e.waitErr
	e.proc = nil
}

func (e *env) logs() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ctl runs qmctl as the test's user.
func (e *env) ctl(args ...string) (string, string, int) {
	return e.ctlAs(nil, "", args...)
}

// ctlAs runs qmctl as another user (cred) with stdin.
func (e *env) ctlAs(cred *syscall.Credential, stdin string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.qmctl, append([]string{"--socket", e.socket}, args...)...)
	cmd.Dir = e.dir
	cmd.Stdin = strings.NewReader(stdin)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run qmctl %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

type jobJSON struct {
	ID      string  `json:"id"`
	State   string  `json:"state"`
	Error   *string `json:"error"`
	History []struct {
		From, To, Reason string
	} `json:"history"`
}

func (e *env) show(id string) jobJSON {
	e.t.Helper()
	out, errs, code := e.ctl("show", id, "--json")
	if code != 0 {
		e.t.Fatalf("show %s: exit %d: %s", id, code, errs)
	}
	var j jobJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		e.t.Fatalf("show %s: %v\n%s", id, err, out)
	}
	return j
}

func (e *env) list() []jobJSON {
	e.t.Helper()
	out, errs, code := e.ctl("list", "--json")
	if code != 0 {
		e.t.Fatalf("list: exit %d: %s", code, errs)
	}
	var js []jobJSON
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		e.t.Fatalf("list: %v\n%s", err, out)
	}
	return js
}

func (e *env) submit(args ...string) string {
	e.t.Helper()
	out, errs, code := e.ctl(append([]string{"submit"}, args...)...)
	if code != 0 {
		e.t.Fatalf("submit %v: exit %d: %s\n%s", args, code, errs, e.logs())
	}
	return strings.TrimSpace(out)
}

// waitState polls until the job reaches one of states.
func (e *env) waitState(id string, timeout time.Duration, states ...string) jobJSON {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var j jobJSON
	for time.Now().Before(deadline) {
		j = e.show(id)
		for _, s := range states {
			if j.State == s {
				return j
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	e.t.Fatalf("job %s is %s after %s, want %v\n%s", id, j.State, timeout, states, e.logs())
	return j
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const waterXYZ = `3
water
O    0.000000    0.000000    0.117300
H    0.000000    0.757200   -0.469200
H    0.000000   -0.757200   -0.469200
`

func TestWaterEndToEnd(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	path := writeFile(t, e.dir, "water.xyz", waterXYZ)
	id := e.submit(path, "--solvent", "gas")

	if _, errs, code := e.ctl("wait", id, "--timeout", "5m"); code != 0 {
		t.Fatalf("wait: exit %d: %s\n%s", code, errs, e.logs())
	}
	out, errs, code := e.ctl("result", id, "--json")
	if code != 0 {
		t.Fatalf("result: exit %d: %s", code, errs)
	}
	var res struct {
		ID        string  `json:"id"`
		Energy    float64 `json:"energy_hartree"`
		Reference struct {
			Method string `json:"method"`
		} `json:"reference"`
		Shifts []struct {
			Atom      int      `json:"atom"`
			Element   string   `json:"element"`
			Shielding float64  `json:"shielding"`
			Shift     *float64 `json:"shift"`
			BondedTo  *int     `json:"bonded_to"`
			Group     int      `json:"group"`
		} `json:"shifts"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("result JSON: %v\n%s", err, out)
	}
	if res.ID != id || len(res.Shifts) != 3 {
		t.Fatalf("result: id %q, %d shifts; want %s and 3\n%s", res.ID, len(res.Shifts), id, out)
	}
	if res.Energy > -76.3 || res.Energy < -76.5 {
		t.Errorf("energy %.6f, want about -76.41 hartree", res.Energy)
	}
	o, h1, h2 := res.Shifts[0], res.Shifts[1], res.Shifts[2]
	if o.Element != "O" || o.Shift != nil || o.Shielding < 310 || o.Shielding > 325 {
		t.Errorf("oxygen line %+v: want O, shielding near 317.5, no shift", o)
	}
	if h1.Element != "H" || h1.Shift == nil || h1.Shielding < 30 || h1.Shielding > 34 {
		t.Fatalf("hydrogen line %+v: want H, shielding near 32, a shift", h1)
	}
	if h1.Group != h2.Group || *h1.Shift != *h2.Shift {
		t.Errorf("water's hydrogens are equivalent: groups %d/%d shifts %v/%v", h1.Group, h2.Group, *h1.Shift, *h2.Shift)
	}
	if h1.BondedTo == nil || *h1.BondedTo != 1 {
		t.Errorf("H bonded_to = %v, want 1", h1.BondedTo)
	}
	if res.Reference.Method != "tms" {
		t.Errorf("draft gas reference method %q, want tms", res.Reference.Method)
	}

	// The scratch directory is removed on success; the output stays.
	jobDir := filepath.Join(e.dir, "state", "jobs", id)
	if _, err := os.Stat(filepath.Join(jobDir, "scratch")); !os.IsNotExist(err) {
		t.Errorf("scratch kept after success: %v", err)
	}
	for _, f := range []string{"input.xyz", "geometry.xyz", "job.nw", "job.sh", "output/nwchem.out", "exit_status"} {
		if _, err := os.Stat(filepath.Join(jobDir, f)); err != nil {
			t.Errorf("job dir: %v", err)
		}
	}
	j := e.show(id)
	var path2 []string
	for _, h := range j.History {
		path2 = append(path2, h.To)
	}
	if got := strings.Join(path2, ","); !strings.HasPrefix(got, "queued,submitting,pending") ||
		!strings.HasSuffix(got, "completing,completed") {
		t.Errorf("history %s", got)
	}

	// The table form shows each atom.
	table, _, code := e.ctl("result", id)
	if code != 0 || !strings.Contains(table, "317.") {
		t.Errorf("result table (exit %d):\n%s", code, table)
	}
	e.stop()
}

// slowMolecule runs long enough (about 2 minutes) to be cancelled or interrupted.
const slowSMILES = "CCO"

func TestCancelRunningJob(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	id := e.submit("--smiles", slowSMILES)
	e.waitState(id, 60*time.Second, "running")
	time.Sleep(2 * time.Second)

	pid := jobPID(t, e, id)
	out, errs, code := e.ctl("cancel", id)
	if code != 0 {
		t.Fatalf("cancel: exit %d: %s %s", code, out, errs)
	}
	j := e.waitState(id, 10*time.Second, "cancelled")
	if j.State != "cancelled" {
		t.Fatalf("state %s", j.State)
	}
	// The whole process group (sh, NWChem) is gone within the grace period.
	deadline := time.Now().Add(8 * time.Second)
	for groupExists(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still alive after cancel", pid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A second cancel is refused: the job has ended.
	if _, _, code := e.ctl("cancel", id); code != 1 {
		t.Errorf("second cancel exit %d, want 1", code)
	}
	e.stop()
}

func jobPID(t *testing.T, e *env, id string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "state", "jobs", id, "proc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.PID <= 0 {
		t.Fatalf("proc.json %s: %v", b, err)
	}
	return rec.PID
}

// groupExists reports whether a live (not zombie) process is in process group pgid.
func groupExists(pgid int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			_ = pid
			return true
		}
	}
	return false
}

// TestKillDuringRunThenRestart kills qmd with SIGKILL while a job runs and starts it
// again: the job is re-adopted and finishes, exactly once.
func TestKillDuringRunThenRestart(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	path := writeFile(t, e.dir, "water.xyz", waterXYZ)
	id := e.submit("--smiles", "C", "--solvent", "gas") // methane: ~10 s
	e.waitState(id, 60*time.Second, "running")
	e.crash()

	e.start()
	j := e.waitState(id, 5*time.Minute, "completed", "failed")
	if j.State != "completed" {
		t.Fatalf("re-adopted job ended %s: %v\n%s", j.State, j.Error, e.logs())
	}
	if !strings.Contains(e.logs(), "job re-adopted") {
		t.Errorf("the restarted qmd did not re-adopt the running job:\n%s", e.logs())
	}
	// Exactly one job, started once.
	if js := e.list(); len(js) != 1 {
		t.Fatalf("%d jobs after restart, want 1", len(js))
	}
	started := 0
	for _, h := range j.History {
		if h.To == "running" {
			started++
		}
	}
	if started != 1 {
		t.Errorf("job went to running %d times: %+v", started, j.History)
	}
	_ = path
	e.stop()
}

// TestJobEndsWhileDaemonDown: the job finishes while qmd is dead; the restart finishes it
// from the exit status the batch script wrote.
func TestJobEndsWhileDaemonDown(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	path := writeFile(t, e.dir, "water.xyz", waterXYZ)
	id := e.submit(path, "--solvent", "gas")
	e.waitState(id, 60*time.Second, "running")
	pid := jobPID(t, e, id)
	e.crash()
	deadline := time.Now().Add(3 * time.Minute)
	for groupExists(pid) {
		if time.Now().After(deadline) {
			t.Fatal("water did not finish in 3 minutes")
		}
		time.Sleep(300 * time.Millisecond)
	}
	e.start()
	j := e.waitState(id, time.Minute, "completed", "failed")
	if j.State != "completed" {
		t.Fatalf("job ended %s: %v", j.State, j.Error)
	}
	e.stop()
}

// TestInterruptedJobIsNotRerun: the job's process dies without an exit status while qmd
// is down (as after a reboot); the restart marks it failed, never runs it again.
func TestInterruptedJobIsNotRerun(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	id := e.submit("--smiles", slowSMILES)
	e.waitState(id, 60*time.Second, "running")
	pid := jobPID(t, e, id)
	e.crash()
	syscall.Kill(-pid, syscall.SIGKILL)
	for groupExists(pid) {
		time.Sleep(100 * time.Millisecond)
	}
	e.start()
	j := e.waitState(id, 30*time.Second, "failed")
	if j.Error == nil || !strings.Contains(*j.Error, "interrupted: qmd stopped while the job ran") {
		t.Fatalf("error %v, want the interrupted reason", j.Error)
	}
	if js := e.list(); len(js) != 1 {
		t.Fatalf("%d jobs, want 1", len(js))
	}
	e.stop()
}

func TestBadInputCreatesNothing(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	// An earlier job, which every bad submission must leave alone.
	good := e.submit(writeFile(t, e.dir, "water.xyz", waterXYZ), "--dry-run")
	if !strings.Contains(good, "task dft property") {
		t.Fatalf("dry run printed no deck:\n%s", good)
	}
	first := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")

	big := strings.Repeat("C 0 0 0\n", 200000)
	cases := []struct {
		name, file, content string
		args                []string
		want                string
	}{
		{"unknown element", "x.xyz", "2\n\nXx 0 0 0\nH 0 0 1\n", nil, "Xx"},
		{"no atoms", "e.xyz", "0\nempty\n", nil, "atom"},
		{"atoms too close", "c.xyz", "2\n\nH 0 0 0\nH 0 0 0.1\n", nil, "apart"},
		{"unparsable line", "u.xyz", "2\n\nH 0 0 0\nH zero 0 1\n", nil, "line 4"},
		{"too large", "big.xyz", big, nil, "at most 1 MiB"},
		{"charge and multiplicity", "odd.xyz", waterXYZ, []string{"--charge", "1"}, "multiplicity"},
		{"invalid smiles", "", "", []string{"--smiles", "C1CC"}, "SMILES"},
		{"multi-record sdf", "two.sdf", twoRecordSDF, nil, "--split"},
		{"unknown solvent", "w2.xyz", waterXYZ, []string{"--solvent", "water"}, "solvent"},
		{"unknown preset", "w3.xyz", waterXYZ, []string{"--preset", "best"}, "preset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"submit"}
			if c.file != "" {
				args = append(args, writeFile(t, e.dir, c.file, c.content))
			}
			args = append(args, c.args...)
			out, errs, code := e.ctl(args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stdout %q stderr %q", code, out, errs)
			}
			if !strings.Contains(strings.ToLower(errs), strings.ToLower(c.want)) {
				t.Errorf("message %q does not mention %q", errs, c.want)
			}
			if strings.Count(strings.TrimSpace(errs), "\n") > 3 {
				t.Errorf("message is not short: %q", errs)
			}
		})
	}
	js := e.list()
	if len(js) != 1 || js[0].ID != first {
		t.Fatalf("after bad input: %d jobs (%+v), want only %s", len(js), js, first)
	}
	e.waitState(first, 3*time.Minute, "completed")
	e.stop()
}

const twoRecordSDF = `water
  qmd

  3  2  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.1173 O   0  0  0  0  0  0  0  0  0  0  0  0
    0.0000    0.7572   -0.4692 H   0  0  0  0  0  0  0  0  0  0  0  0
    0.0000   -0.7572   -0.4692 H   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  1  0
M  END
$$$$
water2
  qmd

  3  2  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.1173 O   0  0  0  0  0  0  0  0  0  0  0  0
    0.0000    0.7572   -0.4692 H   0  0  0  0  0  0  0  0  0  0  0  0
    0.0000   -0.7572   -0.4692 H   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  1  0
M  END
$$$$
`

// TestTwoUsers: two real Unix users share one socket and cannot see or cancel each
// other's jobs; root sees both.
func TestTwoUsers(t *testing.T) {
	e := newEnv(t, "")
	creds := make([]*syscall.Credential, 2)
	for i, name := range []string{"qmdtest1", "qmdtest2"} {
		u, err := user.Lookup(name)
		if err != nil || os.Geteuid() != 0 {
			if os.Getenv("CI") != "" {
				t.Fatalf("user %s missing or not root (%v): run make testenv as root", name, err)
			}
			t.Skipf("needs root and user %s (make testenv)", name)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		creds[i] = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	e.start()

	submit := func(c *syscall.Credential) string {
		out, errs, code := e.ctlAs(c, waterXYZ, "submit", "-", "--solvent", "gas", "--name", "water")
		if code != 0 {
			t.Fatalf("submit as uid %d: exit %d: %s", c.Uid, code, errs)
		}
		return strings.TrimSpace(out)
	}
	a := submit(creds[0])
	b := submit(creds[1])

	listAs := func(c *syscall.Credential) string {
		out, errs, code := e.ctlAs(c, "", "list", "--json")
		if code != 0 {
			t.Fatalf("list: %d %s", code, errs)
		}
		return out
	}
	if l := listAs(creds[0]); !strings.Contains(l, a) || strings.Contains(l, b) {
		t.Errorf("user 1 list: %s", l)
	}
	if l := listAs(creds[1]); !strings.Contains(l, b) || strings.Contains(l, a) {
		t.Errorf("user 2 list: %s", l)
	}
	for _, cmd := range [][]string{{"show", a}, {"cancel", a}, {"result", a}, {"logs", a}} {
		if out, errs, code := e.ctlAs(creds[1], "", cmd...); code != 1 || !strings.Contains(errs, "not found") && !strings.Contains(errs, "no job") {
			t.Errorf("user 2 %v on user 1's job: exit %d, %q %q", cmd, code, out, errs)
		}
	}
	// Root (an admin) sees both.
	if l, _, _ := e.ctl("list", "--json"); !strings.Contains(l, a) || !strings.Contains(l, b) {
		t.Errorf("root list: %s", l)
	}
	// User 1's job was not touched by user 2's cancel.
	if j := e.waitState(a, 3*time.Minute, "completed", "failed"); j.State != "completed" {
		t.Errorf("user 1's job ended %s: %v", j.State, j.Error)
	}
	e.waitState(b, 3*time.Minute, "completed", "failed")
	e.stop()
}

// nwchemKey is the cluster key that replaces the NWChem command, so a test can make the
// "calculation" exit, hang or die; empty for nil (the real NWChem).
func nwchemKey(nwchem []string) string {
	if nwchem == nil {
		return ""
	}
	q := make([]string, len(nwchem))
	for i, a := range nwchem {
		q[i] = strconv.Quote(a)
	}
	return "nwchem = [" + strings.Join(q, ", ") + "]\n"
}
