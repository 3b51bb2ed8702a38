package slurm

// Tests of the Backend against the real single-node Slurm that `make testenv` starts (see
// docs/testenv.md). They skip on a machine without Slurm unless CI is set. Other tests may
// use the same Slurm at the same time, and one of them stops slurmctld for a while: these
// tests therefore treat "could not ask" as "ask again", cancel only the jobs they
// submitted, by id, and keep their jobs to one CPU and a few seconds.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
	"qmd/scheduler/runner"
)

// liveWait bounds each wait for a job: long enough for a queue that other tests fill and
// for a slurmctld restart, short enough that a stuck test still ends.
const liveWait = 4 * time.Minute

// requireSlurm skips, or fails under CI, unless the test Slurm answers.
func requireSlurm(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "--noheader", "--format=%T").CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("Slurm does not answer but CI is set (%v: %s): run make testenv", err, out)
	}
	t.Skipf("Slurm does not answer (%v); run make testenv", err)
}

// machineZone is the zone sacct prints times in here. TestMain sets time.Local to UTC for
// the parser tests, so the zone is read again from TZ or /etc/localtime.
func machineZone(t *testing.T) *time.Location {
	t.Helper()
	if tz := os.Getenv("TZ"); tz != "" {
		loc, err := time.LoadLocation(strings.TrimPrefix(tz, ":"))
		if err == nil {
			return loc
		}
	}
	data, err := os.ReadFile("/etc/localtime")
	if err != nil {
		return time.UTC
	}
	loc, err := time.LoadLocationFromTZData("machine", data)
	if err != nil {
		t.Fatalf("/etc/localtime: %v", err)
	}
	return loc
}

func newLiveBackend(t *testing.T) *Backend {
	t.Helper()
	return New(Options{Runner: runner.Local{}, Location: machineZone(t),
		SubmitTimeout: 30 * time.Second, QueryTimeout: 25 * time.Second})
}

// testJobID returns a qmd job id for a test job; its Slurm name is Tag of it,
// "qmd-qmdbt-LABEL-RANDOM", so the job is known as this package's.
func testJobID(t *testing.T, label string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "qmdbt-" + label + "-" + hex.EncodeToString(b[:])
}

// cancelAtEnd cancels a job this test submitted, by id, once the test is over; scancel
// of a job that has ended already only prints a message.
func cancelAtEnd(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = exec.CommandContext(ctx, "scancel", id).Run()
	})
}

// liveSubmit submits the script in dir the way qmd's manager does: after a transient
// error it looks the job up by name and adopts it, and submits again only when Slurm
// does not know it. The job is cancelled when the test ends.
func liveSubmit(t *testing.T, b *Backend, jobID, dir string) scheduler.Handle {
	t.Helper()
	h := scheduler.Handle{JobID: jobID, Dir: dir, State: job.Submitting}
	req := scheduler.SubmitRequest{JobID: jobID, Dir: dir, Script: "job.sh", Tag: Tag(jobID)}
	deadline := time.Now().Add(liveWait)
	for {
		sub, err := b.Submit(t.Context(), req)
		if err == nil {
			cancelAtEnd(t, sub.SchedulerID)
			h.SchedulerID, h.Meta, h.State = sub.SchedulerID, sub.Meta, sub.State
			return h
		}
		if !errors.Is(err, ErrTransient) || time.Now().After(deadline) {
			t.Fatalf("submit %s: %v", jobID, err)
		}
		t.Logf("submit %s: %v; looking it up by name", jobID, err)
		time.Sleep(2 * time.Second)
		got, rerr := b.Recover(t.Context(), []scheduler.Handle{h})
		if rerr != nil {
			t.Logf("recover %s: %v; will retry", jobID, rerr)
			continue
		}
		if st, ok := got[jobID]; ok && st.SchedulerID != "" {
			cancelAtEnd(t, st.SchedulerID)
			h.SchedulerID, h.Meta, h.State = st.SchedulerID, st.Meta, st.State
			return h
		}
	}
}

// waitFor polls the handles once a second until done holds for every one of them, and
// returns their last statuses. A poll that could not ask is logged and repeated, as the
// manager does; a job missing from an answer keeps its last status.
func waitFor(t *testing.T, b *Backend, hs []scheduler.Handle,
	done func(scheduler.Status) bool) map[string]scheduler.Status {
	t.Helper()
	last := map[string]scheduler.Status{}
	deadline := time.Now().Add(liveWait)
	for {
		got, err := b.Poll(t.Context(), hs)
		if err != nil {
			t.Logf("poll: %v; will ask again", err)
		}
		for id, st := range got {
			if last[id].State != st.State {
				t.Logf("%s: %s (%s)", id, st.State, st.Reason)
			}
			last[id] = st
		}
		all := true
		for _, h := range hs {
			st, ok := last[h.JobID]
			all = all && ok && done(st)
		}
		if all {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", liveWait, last)
		}
		time.Sleep(time.Second)
	}
}

// writeJob writes job.sh into a new job directory. Like qmd's template, the script
// records that it started and how it ended; its own output goes nowhere, so no file
// appears after the test has removed the directory.
func writeJob(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\n#SBATCH --output=/dev/null\n#SBATCH --time=5\n" +
		"date +%s > started\n" + body
	if err := os.WriteFile(filepath.Join(dir, "job.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ended reports whether a status is the end of a job: completing or a terminal state.
func ended(st scheduler.Status) bool {
	return st.State == job.Completing || st.State.Terminal()
}

// TestLiveSlurm runs jobs through the Backend on the real Slurm, with a user's format
// variables exported (SL-21 against the real tools): they must change nothing.
func TestLiveSlurm(t *testing.T) {
	requireSlurm(t)
	t.Setenv("SQUEUE_FORMAT", "%.18i %.9P %.30j %.8u %.2t %.10M %.6D %R")
	t.Setenv("SACCT_FORMAT", "jobid,jobname%30,partition,state,exitcode")
	t.Setenv("SLURM_TIME_FORMAT", "relative")
	b := newLiveBackend(t)

	for _, tc := range []struct {
		name string
		code int
	}{{"exit0", 0}, {"exit3", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeJob(t, fmt.Sprintf("sleep 1\n"+
				"printf '%%s %%s\\n' %d \"$(date +%%s)\" > exit_status\nexit %d\n",
				tc.code, tc.code))
			h := liveSubmit(t, b, testJobID(t, tc.name), dir)
			st := waitFor(t, b, []scheduler.Handle{h}, ended)[h.JobID]
			if st.State != job.Completing || st.ExitCode == nil || *st.ExitCode != tc.code {
				t.Fatalf("%+v, want completing with exit %d", st, tc.code)
			}
			if st.StartedAt == nil || st.EndedAt == nil || st.EndedAt.Before(*st.StartedAt) {
				t.Errorf("times %v..%v, want a start and a later end", st.StartedAt, st.EndedAt)
			}
			if _, err := os.Stat(filepath.Join(dir, "exit_status")); err != nil {
				t.Errorf("the job did not run in its directory: %v", err)
			}
		})
	}

	t.Run("cancel_running", func(t *testing.T) {
		t.Parallel()
		h := liveSubmit(t, b, testJobID(t, "cancel"), writeJob(t, "sleep 300\n"))
		waitFor(t, b, []scheduler.Handle{h}, func(st scheduler.Status) bool {
			return st.State == job.Running
		})
		if err := b.Cancel(t.Context(), h); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		st := waitFor(t, b, []scheduler.Handle{h}, ended)[h.JobID]
		if st.State != job.Cancelled {
			t.Fatalf("%+v, want cancelled", st)
		}
		if err := b.Cancel(t.Context(), h); err != nil {
			t.Errorf("cancelling a job that has ended: %v, want no error", err)
		}
	})

	t.Run("array", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		// Held at first: squeue folds pending tasks into one "N_[0-2]" line, and every
		// task must still be reported pending.
		cmd := exec.CommandContext(t.Context(), "sbatch", "--parsable", "--array=0-2",
			"--hold", "--job-name=qmdbt-array", "--output=/dev/null", "--time=5",
			"--wrap", "exit 0")
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sbatch --array: %v", err)
		}
		id := strings.TrimSpace(string(out))
		cancelAtEnd(t, id)
		at := time.Now().UTC().Format(time.RFC3339)
		var hs []scheduler.Handle
		for i := 0; i < 3; i++ {
			hs = append(hs, scheduler.Handle{JobID: fmt.Sprintf("task%d", i), Dir: dir,
				SchedulerID: fmt.Sprintf("%s_%d", id, i), State: job.Pending,
				Meta: `{"submitted_at": "` + at + `"}`})
		}
		waitFor(t, b, hs, func(st scheduler.Status) bool { return st.State == job.Pending })

		release := exec.CommandContext(t.Context(), "scontrol", "release", id)
		if out, err := release.CombinedOutput(); err != nil {
			t.Fatalf("scontrol release %s: %v: %s", id, err, out)
		}
		for task, st := range waitFor(t, b, hs, ended) {
			if st.State != job.Completing || st.ExitCode == nil || *st.ExitCode != 0 {
				t.Errorf("%s: %+v, want completing with exit 0", task, st)
			}
		}
	})

	t.Run("recover_by_name", func(t *testing.T) {
		t.Parallel()
		jobID := testJobID(t, "lost")
		dir := t.TempDir()
		// Held, so it takes no CPU: the test needs it queued, not run.
		cmd := exec.CommandContext(t.Context(), "sbatch", "--parsable", "--hold",
			"--job-name="+Tag(jobID), "--output=/dev/null", "--wrap", "exit 0")
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sbatch: %v", err)
		}
		id := strings.TrimSpace(string(out))
		cancelAtEnd(t, id)

		h := scheduler.Handle{JobID: jobID, Dir: dir, State: job.Submitting}
		var st scheduler.Status
		var ok bool
		deadline := time.Now().Add(liveWait)
		for {
			got, err := b.Recover(t.Context(), []scheduler.Handle{h})
			if err == nil {
				st, ok = got[jobID]
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("recover: %v", err)
			}
			t.Logf("recover: %v; will ask again", err)
			time.Sleep(2 * time.Second)
		}
		if !ok || st.SchedulerID != id || st.State != job.Pending {
			t.Fatalf("recovered %+v (found %t), want job %s adopted as pending", st, ok, id)
		}
		if !strings.Contains(st.Meta, "submitted_at") {
			t.Errorf("adopted without meta: %q", st.Meta)
		}
	})

	t.Run("recover_ended_by_name", func(t *testing.T) {
		t.Parallel()
		jobID := testJobID(t, "ended")
		dir := t.TempDir()
		cmd := exec.CommandContext(t.Context(), "sbatch", "--parsable",
			"--job-name="+Tag(jobID), "--output=/dev/null", "--time=5", "--wrap", "exit 4")
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sbatch: %v", err)
		}
		id := strings.TrimSpace(string(out))
		cancelAtEnd(t, id)

		// While it runs, and after it ends, the job is adopted with its id; once
		// accounting has its end, that end comes with the exit code.
		h := scheduler.Handle{JobID: jobID, Dir: dir, State: job.Submitting}
		deadline := time.Now().Add(liveWait)
		for {
			got, err := b.Recover(t.Context(), []scheduler.Handle{h})
			st, found := got[jobID]
			switch {
			case err != nil:
				t.Logf("recover: %v; will ask again", err)
			case !found || st.SchedulerID != id:
				t.Fatalf("recovered %+v (found %t), want job %s", st, found, id)
			case !job.CanMove(job.Submitting, st.State):
				t.Fatalf("adopted as %s, which a submitting job cannot move to", st.State)
			case st.State == job.Completing:
				if st.ExitCode == nil || *st.ExitCode != 4 {
					t.Fatalf("%+v, want exit code 4", st)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s: %+v, %v", liveWait, st, err)
			}
			time.Sleep(time.Second)
		}
	})
}

// TestSubmit200 is the qmd side of a submission-cost comparison on the real Slurm: 200
// Backend.Submit calls of a trivial batch script. Its yardstick is a shell loop of 200
// bare `sbatch --parsable --hold --time=1 --output=/dev/null --job-name=... --wrap 'exit 0'`
// calls; time both as whole processes, paired (a pre-built test binary run with
// -test.run='^TestSubmit200$'). It runs only with QMD_BENCH_SUBMIT=1.
//
// The jobs are held, so that a benchmark of a few thousand submissions never occupies the
// shared node: holding changes nothing in how sbatch hands a job to the controller. Their
// ids are appended to the file $QMD_BENCH_IDS when it is set, for the timing harness to
// cancel outside the timed runs; otherwise the test cancels them itself.
func TestSubmit200(t *testing.T) {
	if os.Getenv("QMD_BENCH_SUBMIT") != "1" {
		t.Skip("set QMD_BENCH_SUBMIT=1 to submit 200 jobs to the test Slurm")
	}
	requireSlurm(t)
	dir := t.TempDir()
	script := "#!/bin/sh\n#SBATCH --time=1\n#SBATCH --hold\n#SBATCH --output=/dev/null\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "job.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b := newLiveBackend(t)

	var ids []string
	idFile := os.Getenv("QMD_BENCH_IDS")
	defer func() {
		if idFile != "" {
			writeIDs(t, idFile, ids)
			return
		}
		for _, chunk := range Chunk(ids, MaxIDsPerCall) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, err := exec.CommandContext(ctx, "scancel", chunk...).CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("scancel: %v: %s", err, out)
			}
		}
	}()
	for i := 0; i < 200; i++ {
		jobID := fmt.Sprintf("qmdbt-bench-%03d", i)
		sub, err := b.Submit(t.Context(), scheduler.SubmitRequest{JobID: jobID, Dir: dir,
			Script: "job.sh", Tag: Tag(jobID)})
		if err != nil {
			t.Fatalf("submission %d: %v", i, err)
		}
		ids = append(ids, sub.SchedulerID)
	}
}

// writeIDs appends ids to path, one a line.
func writeIDs(t *testing.T, path string, ids []string) {
	t.Helper()
	if len(ids) == 0 {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("job ids: %v", err)
		return
	}
	if _, err := fmt.Fprint(f, strings.Join(ids, "\n")+"\n"); err != nil {
		t.Errorf("job ids: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("job ids: %v", err)
	}
}
