package daemon_test

// Integration tests against the real single-node Slurm that `make testenv` starts (see
// docs/testenv.md). They skip on a machine without Slurm unless CI is set.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needSlurm skips, or fails under CI, unless the test Slurm answers.
func needSlurm(t *testing.T) {
	t.Helper()
	needTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "--noheader", "--format=%T").CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Slurm does not answer but CI is set (%v: %s): run make testenv", err, out)
		}
		t.Skipf("Slurm does not answer (%v); run make testenv", err)
	}
}

// slurmEnv is an env whose default cluster is the test Slurm; nwchem, when given, replaces
// the NWChem command, so a test can make the "calculation" exit, hang or die.
func slurmEnv(t *testing.T, nwchem []string, extra string) *env {
	t.Helper()
	needSlurm(t)
	conf := `default_cluster = "slurm"

[clusters.slurm]
scheduler = "slurm"
poll_interval = "1s"
poll_interval_max = "4s"
query_timeout = "3s"
submit_timeout = "20s"
` + extra
	if !strings.Contains(extra, "partition") {
		conf += "partition = \"debug\"\n"
	}
	if !strings.Contains(extra, "time_limit") {
		conf += "time_limit = \"30m\"\n"
	}
	conf += nwchemKey(nwchem)
	e := newEnv(t, conf)
	cancelLeftovers(t, e)
	return e
}

// cancelLeftovers cancels the Slurm jobs of an env's qmd jobs when a test ends, so one
// failed test cannot leave jobs that hold the node and fail the tests after it.
func cancelLeftovers(t *testing.T, e *env) {
	t.Cleanup(func() {
		ents, _ := os.ReadDir(filepath.Join(e.dir, "state", "jobs"))
		for _, d := range ents {
			if strings.HasPrefix(d.Name(), ".") {
				continue
			}
			for _, name := range []string{"qmd-" + d.Name(), "qmd" + d.Name()} {
				exec.Command("scancel", "--name="+name).Run()
			}
		}
	})
}

// sacctJobs returns the Slurm jobs named name, from accounting.
func sacctJobs(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("sacct", "--noheader", "--parsable2", "--allocations",
		"--starttime=now-1day", "--name="+name, "--format=JobID,State").Output()
	if err != nil {
		t.Fatalf("sacct --name=%s: %v", name, err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			ids = append(ids, l)
		}
	}
	return ids
}

// waitSacct polls accounting for the jobs named name until ok accepts them: slurmdbd may
// record a job a few seconds after the controller has answered for it.
func waitSacct(t *testing.T, name string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := sacctJobs(t, name)
		if ok(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Second)
	}
}

func oneJobIn(state string) func([]string) bool {
	return func(got []string) bool {
		return len(got) == 1 && (state == "" || strings.Contains(got[0], state))
	}
}

func schedulerID(t *testing.T, e *env, id string) string {
	t.Helper()
	out, _, code := e.ctl("show", id, "--json")
	if code != 0 {
		t.Fatalf("show %s: exit %d", id, code)
	}
	var j struct {
		SchedulerID     string `json:"scheduler_id"`
		SchedulerReason string `json:"scheduler_reason"`
		ExitCode        *int   `json:"exit_code"`
	}
	json.Unmarshal([]byte(out), &j)
	return j.SchedulerID
}

func TestSlurmWaterEndToEnd(t *testing.T) {
	e := slurmEnv(t, nil, "")
	e.start()
	id := e.submit(writeFile(t, e.dir, "water.xyz", waterXYZ), "--solvent", "gas")
	j := e.waitState(id, 5*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
	if j.State != "completed" {
		t.Fatalf("water through Slurm ended %s: %v\n%s", j.State, j.Error, e.logs())
	}
	out, _, code := e.ctl("result", id, "--json")
	if code != 0 || !strings.Contains(out, `"element": "O"`) && !strings.Contains(out, `"element":"O"`) {
		t.Fatalf("result (exit %d):\n%s", code, out)
	}
	if got := waitSacct(t, "qmd-"+id, oneJobIn("COMPLETED")); !oneJobIn("COMPLETED")(got) {
		t.Errorf("Slurm jobs named qmd-%s: %v, want one COMPLETED", id, got)
	}
	e.stop()
}

func TestSlurmExitCodeAndSignal(t *testing.T) {
	t.Run("exit 3", func(t *testing.T) {
		e := slurmEnv(t, []string{"/bin/sh", "-c", "exit 3"}, "")
		e.start()
		id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
		j := e.waitState(id, 2*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
		if j.State != "failed" || j.Error == nil || !strings.Contains(*j.Error, "exit status 3") {
			t.Fatalf("state %s error %v, want failed naming exit status 3", j.State, j.Error)
		}
		e.stop()
	})
	t.Run("killed by a signal", func(t *testing.T) {
		e := slurmEnv(t, []string{"/bin/sh", "-c", "kill -KILL $PPID; sleep 5"}, "")
		e.start()
		id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
		j := e.waitState(id, 2*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
		if j.State != "failed" || j.Error == nil || !strings.Contains(*j.Error, "signal 9") {
			t.Fatalf("state %s error %v, want failed by signal 9", j.State, j.Error)
		}
		e.stop()
	})
}

func TestSlurmCancelRunningAndPending(t *testing.T) {
	e := slurmEnv(t, []string{"/bin/sh", "-c", "sleep 600"}, "")
	e.start()
	// The node has two CPUs: two jobs run, the third waits for resources.
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, e.submit(writeFile(t, e.dir, fmt.Sprintf("w%d.xyz", i), waterXYZ),
			"--solvent", "gas"))
	}
	// Which two Slurm starts is its business (two submissions may reach it in either
	// order): wait until two run and one waits.
	var runningIDs []string
	pendingID := ""
	deadline := time.Now().Add(time.Minute)
	for {
		runningIDs, pendingID = nil, ""
		for _, id := range ids {
			switch e.show(id).State {
			case "running":
				runningIDs = append(runningIDs, id)
			case "pending":
				pendingID = id
			}
		}
		if len(runningIDs) == 2 && pendingID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want two running and one pending, got running %v pending %q\n%s",
				runningIDs, pendingID, e.logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		out, _, _ := e.ctl("show", pendingID, "--json")
		if strings.Contains(out, `"scheduler_reason"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending job shows no scheduler reason:\n%s", out)
		}
		time.Sleep(time.Second)
	}

	for _, id := range append([]string{pendingID}, runningIDs...) {
		if out, errs, code := e.ctl("cancel", id); code != 0 {
			t.Fatalf("cancel %s: exit %d %s %s", id, code, out, errs)
		}
		if j := e.show(id); j.State != "cancelled" {
			t.Errorf("job %s is %s after cancel", id, j.State)
		}
	}
	// Slurm agrees, and accounting records each as cancelled.
	for _, id := range ids {
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := sacctJobs(t, "qmd-"+id)
			if len(got) == 1 && strings.Contains(got[0], "CANCELLED") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sacct for qmd-%s: %v, want one CANCELLED", id, got)
			}
			time.Sleep(time.Second)
		}
	}
	e.stop()
}

func TestSlurmTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 90 s")
	}
	e := slurmEnv(t, []string{"/bin/sh", "-c", "sleep 600"}, `partition = "short"
time_limit = "1m"
`)
	e.start()
	id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
	j := e.waitState(id, 4*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
	if j.State != "timeout" {
		t.Fatalf("state %s (%v), want timeout", j.State, j.Error)
	}
	e.stop()
}

// TestSlurmControllerOutage stops slurmctld for 60 s while a job runs: no job changes
// state while Slurm cannot be asked, and polling recovers afterwards.
func TestSlurmControllerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over a minute")
	}
	e := slurmEnv(t, []string{"/bin/sh", "-c", "sleep 20"}, "")
	e.start()
	id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
	e.waitState(id, time.Minute, "running")
	before := e.show(id)

	ci := ciScript(t)
	if out, err := exec.Command(ci("slurm-down"), "--ctld-only").CombinedOutput(); err != nil {
		t.Fatalf("stop slurmctld: %v\n%s", err, out)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			exec.Command(ci("slurm-up"), "--ctld-only").Run()
		}
	})
	time.Sleep(60 * time.Second)
	during := e.show(id)
	if len(during.History) != len(before.History) || during.State != "running" {
		t.Errorf("job moved while slurmctld was down: %s → %s (%d → %d events)",
			before.State, during.State, len(before.History), len(during.History))
	}
	if !strings.Contains(e.logs(), "scheduler not answering") {
		t.Errorf("the outage was not logged")
	}
	if n := strings.Count(e.logs(), "scheduler not answering"); n > 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
	if out, err := exec.Command(ci("slurm-up"), "--ctld-only").CombinedOutput(); err != nil {
		t.Fatalf("start slurmctld: %v\n%s", err, out)
	}
	restarted = true
	j := e.waitState(id, 3*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
	if j.State != "failed" { // "sleep 20" is no NWChem run: its empty output fails the job
		t.Fatalf("state %s after the outage, want failed (no NWChem output): %v", j.State, j.Error)
	}
	if j.Error == nil || !strings.Contains(*j.Error, "NWChem") {
		t.Errorf("error %v", j.Error)
	}
	if !strings.Contains(e.logs(), "scheduler answering again") {
		t.Errorf("the recovery was not logged")
	}
	e.stop()
}

func ciScript(t *testing.T) func(string) string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	return func(name string) string { return filepath.Join(root, ".ci", name) }
}

// TestSlurmCrashBetweenSbatchAndStore kills qmd after sbatch accepted the job but before
// qmd stored its id: after the restart there is exactly one Slurm job, adopted by its name.
func TestSlurmCrashBetweenSbatchAndStore(t *testing.T) {
	e := slurmEnv(t, []string{"/bin/sh", "-c", "sleep 3"}, "")

	// An sbatch that submits for real, then hangs, as if its answer were lost.
	wrap := filepath.Join(e.dir, "wrap")
	os.MkdirAll(wrap, 0o755)
	real, err := exec.LookPath("sbatch")
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(e.dir, "sbatch-ran")
	script := fmt.Sprintf("#!/bin/sh\n%s \"$@\" > %s.out\necho $$ > %s\nexec sleep 120\n",
		real, marker, marker)
	if err := os.WriteFile(filepath.Join(wrap, "sbatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.procEnv = []string{"PATH=" + wrap + ":" + os.Getenv("PATH")}
	e.start()
	id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the wrapped sbatch never ran\n%s", e.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if j := e.show(id); j.State != "submitting" {
		t.Fatalf("state %s while sbatch hangs, want submitting", j.State)
	}
	e.crash()
	// The hung wrapper is this test's own process: end it by its pid.
	if b, err := os.ReadFile(marker); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}

	e.procEnv = nil
	e.start()
	j := e.waitState(id, 2*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
	got := waitSacct(t, "qmd-"+id, oneJobIn(""))
	if len(got) != 1 {
		t.Fatalf("Slurm jobs named qmd-%s: %v, want exactly one", id, got)
	}
	sid := schedulerID(t, e, id)
	if sid == "" || !strings.HasPrefix(got[0], sid+"|") {
		t.Errorf("qmd adopted Slurm job %q, accounting has %v", sid, got)
	}
	adopted := false
	for _, h := range j.History {
		adopted = adopted || strings.Contains(h.Reason, "adopted Slurm job")
	}
	if !adopted {
		t.Errorf("history does not show the adoption: %+v", j.History)
	}
	e.stop()
}

// TestSlurmRunAsOwner: qmd runs as root with run_as = "owner"; two real users submit
// through the same socket, Slurm shows each job under its owner, each job directory
// belongs to its owner, and the results come back.
func TestSlurmRunAsOwner(t *testing.T) {
	needSlurm(t)
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("owner mode needs root, and CI is set")
		}
		t.Skip("owner mode needs root")
	}
	creds := testUsers(t)
	base, err := os.MkdirTemp("", "qmd-owner-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755)
	t.Cleanup(func() { os.RemoveAll(base) })
	e := slurmEnv(t, nil, fmt.Sprintf("run_as = \"owner\"\nowner_root = %q\n", base))
	e.start()

	ids := map[string]uint32{}
	for _, c := range creds {
		out, errs, code := e.ctlAs(c, waterXYZ, "submit", "-", "--solvent", "gas")
		if code != 0 {
			t.Fatalf("submit as uid %d: exit %d: %s\n%s", c.Uid, code, errs, e.logs())
		}
		ids[strings.TrimSpace(out)] = c.Uid
	}
	for id, uid := range ids {
		j := e.waitState(id, 5*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
		if j.State != "completed" {
			t.Fatalf("job %s of uid %d ended %s: %v\n%s", id, uid, j.State, j.Error, e.logs())
		}
		var out []byte
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
			var err error
			out, err = exec.Command("sacct", "--noheader", "--parsable2", "--allocations",
				"--starttime=now-1day", "--name=qmd-"+id, "--format=JobID,User,State").Output()
			if err != nil {
				t.Fatal(err)
			}
			if len(strings.TrimSpace(string(out))) > 0 || time.Now().After(deadline) {
				break
			}
		}
		name := userName(t, uid)
		if f := strings.Split(strings.TrimSpace(string(out)), "|"); len(f) < 3 || f[1] != name {
			t.Errorf("Slurm shows job qmd-%s as %q, want user %s", id, out, name)
		}
		dir := filepath.Join(base, name, id)
		st, err := os.Stat(filepath.Join(dir, "output", "nwchem.out"))
		if err != nil {
			t.Fatalf("job output: %v", err)
		}
		if owner := st.Sys().(*syscall.Stat_t).Uid; owner != uid {
			t.Errorf("%s belongs to uid %d, want %d", dir, owner, uid)
		}
	}
	e.stop()
}

// testUsers returns the credentials of the two unprivileged test users make testenv
// creates.
func testUsers(t *testing.T) []*syscall.Credential {
	t.Helper()
	var out []*syscall.Credential
	for _, name := range []string{"qmdtest1", "qmdtest2"} {
		u, err := user.Lookup(name)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("user %s missing (%v): run make testenv as root", name, err)
			}
			t.Skipf("needs user %s (make testenv)", name)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		out = append(out, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)})
	}
	return out
}

func userName(t *testing.T, uid uint32) string {
	u, err := user.LookupId(strconv.Itoa(int(uid)))
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}
