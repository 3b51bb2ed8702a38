package daemon_test

// The Torque backend end to end through the slurm-wlm-torque wrappers (qsub, qstat, qdel
// over the test Slurm). docs/limitations.md says where they differ from a real Torque.

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func torqueEnv(t *testing.T, nwchem []string) *env {
	t.Helper()
	needSlurm(t)
	if _, err := exec.LookPath("qsub"); err != nil {
		t.Fatalf("qsub (slurm-wlm-torque) not found: run make testenv")
	}
	conf := `default_cluster = "tq"

[clusters.tq]
scheduler = "torque"
partition = "debug"
time_limit = "30m"
poll_interval = "1s"
poll_interval_max = "4s"
query_timeout = "3s"
submit_timeout = "20s"
`
	conf += nwchemKey(nwchem)
	e := newEnv(t, conf)
	cancelLeftovers(t, e)
	return e
}

func TestTorqueWrappers(t *testing.T) {
	t.Run("water", func(t *testing.T) {
		e := torqueEnv(t, nil)
		e.start()
		id := e.submit(writeFile(t, e.dir, "water.xyz", waterXYZ), "--solvent", "gas")
		j := e.waitState(id, 5*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
		if j.State != "completed" {
			t.Fatalf("water through the Torque wrappers ended %s: %v\n%s", j.State, j.Error,
				e.logs())
		}
		if out, _, code := e.ctl("result", id); code != 0 || !strings.Contains(out, "317.") {
			t.Errorf("result (exit %d):\n%s", code, out)
		}
		e.stop()
	})
	t.Run("failure", func(t *testing.T) {
		e := torqueEnv(t, []string{"/bin/sh", "-c", "exit 3"})
		e.start()
		id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
		j := e.waitState(id, 2*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
		if j.State != "failed" || j.Error == nil || !strings.Contains(*j.Error, "exit status 3") {
			t.Fatalf("state %s error %v, want failed with exit status 3", j.State, j.Error)
		}
		e.stop()
	})
	t.Run("cancel", func(t *testing.T) {
		e := torqueEnv(t, []string{"/bin/sh", "-c", "sleep 300"})
		e.start()
		id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
		e.waitState(id, time.Minute, "running")
		if out, errs, code := e.ctl("cancel", id); code != 0 {
			t.Fatalf("cancel: exit %d %s %s", code, out, errs)
		}
		if j := e.show(id); j.State != "cancelled" {
			t.Fatalf("state %s after cancel", j.State)
		}
		sid := schedulerID(t, e, id)
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, _ := exec.Command("squeue", "--noheader", "--jobs="+sid,
				"--format=%T").CombinedOutput()
			st := strings.TrimSpace(string(out))
			if st == "" || strings.Contains(st, "Invalid job id") || st == "CANCELLED" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Slurm job %s still %q after the cancel", sid, st)
			}
			time.Sleep(time.Second)
		}
		e.stop()
	})
}
