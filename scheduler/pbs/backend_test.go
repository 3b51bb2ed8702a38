package pbs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"qmd/daemon/job"
	"qmd/scheduler"
	"qmd/scheduler/runner"
)

// answer is one scripted reply; err, when set, stands for a command that could not run.
type answer struct {
	stdout, stderr string
	exit           int
	err            error
}

// fakeRunner answers each program (argv[0]) with its scripted replies in turn, the last
// one repeating, and records every call, so tests can count and inspect them.
type fakeRunner struct {
	mu      sync.Mutex
	answers map[string][]answer
	fn      map[string]func(runner.Command) answer
	calls   []runner.Command
}

func newFake() *fakeRunner {
	return &fakeRunner{answers: map[string][]answer{}, fn: map[string]func(runner.Command) answer{}}
}

func (f *fakeRunner) on(prog string, a ...answer) *fakeRunner {
	f.answers[prog] = append(f.answers[prog], a...)
	return f
}

func (f *fakeRunner) Run(_ context.Context, c runner.Command) (runner.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	prog := c.Argv[0]
	var a answer
	switch q := f.answers[prog]; {
	case f.fn[prog] != nil:
		a = f.fn[prog](c)
	case len(q) == 0:
		return runner.Result{}, fmt.Errorf("%s: not scripted", prog)
	case len(q) == 1:
		a = q[0]
	default:
		a, f.answers[prog] = q[0], q[1:]
	}
	if a.err != nil {
		return runner.Result{}, a.err
	}
	res := runner.Result{Stdout: []byte(a.stdout), Stderr: []byte(a.stderr), ExitCode: a.exit}
	if a.exit != 0 {
		return res, &runner.CommandError{Program: prog, ExitCode: a.exit}
	}
	return res, nil
}

func (f *fakeRunner) callsTo(prog string) []runner.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runner.Command
	for _, c := range f.calls {
		if c.Argv[0] == prog {
			out = append(out, c)
		}
	}
	return out
}

// fixture returns the captured answer of one case of testdata/qmd-cases.json.
func fixture(t *testing.T, id string) answer {
	t.Helper()
	data, err := os.ReadFile("testdata/qmd-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		ID     string `json:"id"`
		Stdout string `json:"stdout"`
		Stderr string `json:"stderr"`
		Exit   int    `json:"exit_code"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.ID == id {
			return answer{stdout: c.Stdout, stderr: c.Stderr, exit: c.Exit}
		}
	}
	t.Fatalf("no case %s", id)
	return answer{}
}

func newTest(f runner.Runner) *Backend { return New(Options{Runner: f}) }

func TestSubmit(t *testing.T) {
	dir := t.TempDir()
	req := scheduler.SubmitRequest{JobID: "0123456789ab", Dir: dir, Script: "job.sh",
		Tag: "ignored"}
	cases := []struct {
		name    string
		a       answer
		id      string
		reject  bool
		transit bool
	}{
		{"ok", fixture(t, "QPB-S01"), "1234.pbs01", false, false},
		{"notice", fixture(t, "QPB-S02"), "1235.pbs01", false, false},
		{"unknown queue", fixture(t, "QPB-S03"), "", true, false},
		{"limit", fixture(t, "QPB-S04"), "", true, false},
		{"no server", fixture(t, "QPB-S07"), "", false, true},
		{"no id", fixture(t, "QPB-S09"), "", false, true},
		{"timeout", answer{err: context.DeadlineExceeded}, "", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake().on("qsub", c.a)
			sub, err := newTest(f).Submit(t.Context(), req)
			switch {
			case c.reject && !errors.Is(err, scheduler.ErrRejected):
				t.Fatalf("err = %v, want rejected", err)
			case c.transit && (!errors.Is(err, ErrTransient) ||
				errors.Is(err, scheduler.ErrRejected)):
				t.Fatalf("err = %v, want transient", err)
			case c.id != "" && (err != nil || sub.SchedulerID != c.id ||
				sub.State != job.Pending || sub.Meta == ""):
				t.Fatalf("got %+v, %v; want id %s", sub, err, c.id)
			}
			argv := f.callsTo("qsub")[0].Argv
			got := strings.Join(argv, " ")
			want := "qsub -N qmd0123456789ab -v QMD_JOB_DIR=" + dir +
				",QMD_JOB_ID=0123456789ab " + filepath.Join(dir, "job.sh")
			if got != want || f.callsTo("qsub")[0].Dir != dir {
				t.Fatalf("argv %q, want %q", got, want)
			}
		})
	}
}

// handles makes one handle per scheduler id, job ids "j<id>", each with its own dir.
func handles(t *testing.T, ids ...string) []scheduler.Handle {
	var hs []scheduler.Handle
	for _, id := range ids {
		hs = append(hs, scheduler.Handle{JobID: "j" + id, SchedulerID: id, Dir: t.TempDir(),
			State: job.Running})
	}
	return hs
}

func writeExit(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "exit_status"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPollLiveStates(t *testing.T) {
	f := newFake().on("qstat", fixture(t, "QPB-Q01"))
	hs := handles(t, "3001.pbs01", "3002.pbs01", "3005.pbs01", "3006[].pbs01")
	got, err := newTest(f).Poll(t.Context(), hs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]job.State{"j3001.pbs01": job.Pending, "j3002.pbs01": job.Pending,
		"j3005.pbs01": job.Running, "j3006[].pbs01": job.Running}
	for id, st := range want {
		if got[id].State != st || got[id].ExitCode != nil {
			t.Errorf("%s: %+v, want %s", id, got[id], st)
		}
	}
	argv := f.callsTo("qstat")[0].Argv
	if strings.Join(argv[:5], " ") != "qstat -f -F json -x" {
		t.Fatalf("argv %q", argv)
	}
}

func TestPollEndings(t *testing.T) {
	f := newFake().on("qstat", fixture(t, "QPB-Q02"))
	hs := handles(t, "3101.pbs01", "3102.pbs01", "3103.pbs01", "3104.pbs01", "3105.pbs01",
		"3106.pbs01")
	got, err := newTest(f).Poll(t.Context(), hs)
	if err != nil {
		t.Fatal(err)
	}
	// The script's own exit codes go to completing, for NWChem's output to decide.
	for id, code := range map[string]int{"j3101.pbs01": 0, "j3102.pbs01": 2,
		"j3103.pbs01": 137, "j3104.pbs01": 255} {
		st := got[id]
		if st.State != job.Completing || st.ExitCode == nil || *st.ExitCode != code {
			t.Errorf("%s: %+v, want completing %d", id, st, code)
		}
	}
	for id, st := range map[string]scheduler.Status{"j3105.pbs01": got["j3105.pbs01"],
		"j3106.pbs01": got["j3106.pbs01"]} {
		if st.State != job.Failed || st.ExitCode != nil || st.Reason == "" {
			t.Errorf("%s: %+v, want failed with a reason", id, st)
		}
	}
}

// pbsJob is a minimal PBS Pro JSON job record.
func pbsJob(id, state, extra string) string {
	return fmt.Sprintf(`"%s":{"Job_Name":"x","job_state":"%s"%s}`, id, state, extra)
}

func pbsDoc(jobs ...string) string {
	return `{"pbs_version":"2022.1","Jobs":{` + strings.Join(jobs, ",") + `}}`
}

func TestPollExitKinds(t *testing.T) {
	doc := pbsDoc(
		pbsJob("1.s", "F", `,"Exit_status":-29`),
		pbsJob("2.s", "F", `,"Exit_status":-27`),
		pbsJob("3.s", "F", `,"Exit_status":271`),
		pbsJob("4.s", "F", `,"Exit_status":-99`),
		pbsJob("5.s", "F", ``),
		pbsJob("6.s", "F", ``),
		pbsJob("7.s", "E", ``),
		pbsJob("8.s", "S", ``),
	)
	f := newFake().on("qstat", answer{stdout: doc})
	hs := handles(t, "1.s", "2.s", "3.s", "4.s", "5.s", "6.s", "7.s", "8.s")
	writeExit(t, hs[4].Dir, "4 1700000000\n")
	got, err := newTest(f).Poll(t.Context(), hs)
	if err != nil {
		t.Fatal(err)
	}
	check := func(id string, st job.State, code, sig int, reason string) {
		t.Helper()
		g, ok := got[id]
		if !ok {
			t.Errorf("%s missing", id)
			return
		}
		if g.State != st || (code < 0) != (g.ExitCode == nil) ||
			g.ExitCode != nil && *g.ExitCode != code || (sig < 0) != (g.Signal == nil) ||
			!strings.Contains(g.Reason, reason) {
			t.Errorf("%s: %+v (reason %q), want %s %d %d %q", id, g, g.Reason, st, code, sig,
				reason)
		}
	}
	check("j1.s", job.Timeout, -1, -1, "walltime")
	check("j2.s", job.Failed, -1, -1, "mem")
	check("j3.s", job.Failed, -1, 15, "killed by signal 15")
	check("j4.s", job.Failed, -1, -1, "-99")
	check("j5.s", job.Completing, 4, -1, "exit status 4")
	check("j7.s", job.Running, -1, -1, "")
	check("j8.s", job.Suspended, -1, -1, "")
	if g, ok := got["j6.s"]; ok {
		t.Errorf("finished without status or file: %+v, want left out", g)
	}
	if got["j5.s"].EndedAt == nil || got["j5.s"].EndedAt.Unix() != 1700000000 {
		t.Errorf("end time from the exit file: %+v", got["j5.s"].EndedAt)
	}
}

func TestPollVanished(t *testing.T) {
	// 4001 runs; 4002 is unknown (exit 153) and its script left an exit status.
	f := newFake().on("qstat", fixture(t, "QPB-Q04"))
	hs := handles(t, "4001.pbs01", "4002.pbs01")
	writeExit(t, hs[1].Dir, "3 1700000000")
	got, err := newTest(f).Poll(t.Context(), hs)
	if err != nil {
		t.Fatal(err)
	}
	if got["j4001.pbs01"].State != job.Running {
		t.Errorf("4001: %+v", got["j4001.pbs01"])
	}
	if st := got["j4002.pbs01"]; st.State != job.Completing || *st.ExitCode != 3 {
		t.Errorf("4002: %+v", st)
	}

	// Unknown, without a file: left out, for the daemon's grace period.
	f = newFake().on("qstat", fixture(t, "QPB-Q06"))
	got, err = newTest(f).Poll(t.Context(), handles(t, "4003.pbs01"))
	if err != nil || len(got) != 0 {
		t.Fatalf("got %+v, %v; want nothing", got, err)
	}
}

func TestPollCannotAsk(t *testing.T) {
	for _, a := range []answer{fixture(t, "QPB-Q11"), fixture(t, "QPB-Q12"),
		{err: context.DeadlineExceeded}, fixture(t, "QPB-Q05")} {
		f := newFake().on("qstat", fixture(t, "QPB-Q01"), a)
		hs := handles(t, make101()...)
		got, err := newTest(f).Poll(t.Context(), hs)
		if a.exit == 153 {
			continue // an answer, checked in TestPollVanished
		}
		if err == nil || got != nil {
			t.Fatalf("answer %+v: got %d statuses, err %v; want an error and none", a,
				len(got), err)
		}
	}
}

func make101() []string {
	var ids []string
	for i := range 101 {
		ids = append(ids, fmt.Sprintf("%d.pbs01", 9000+i))
	}
	return ids
}

func TestPollChunks(t *testing.T) {
	for _, n := range []int{1, 100, 101, 250} {
		f := newFake()
		f.fn["qstat"] = func(c runner.Command) answer {
			var jobs []string
			for _, id := range c.Argv[5:] {
				jobs = append(jobs, pbsJob(id, "R", ""))
			}
			return answer{stdout: pbsDoc(jobs...)}
		}
		var ids []string
		for i := range n {
			ids = append(ids, fmt.Sprintf("%d.s", i+1))
		}
		hs := handles(t, ids...)
		hs[0].Owner = &runner.Credential{UID: 1000, Name: "alice"}
		got, err := newTest(f).Poll(t.Context(), hs)
		if err != nil || len(got) != n {
			t.Fatalf("n=%d: %d statuses, %v", n, len(got), err)
		}
		calls := f.callsTo("qstat")
		max := (n-1+99)/100 + 1 // alice's one job is asked about as alice
		if n == 1 {
			max = 1
		}
		if len(calls) > max {
			t.Errorf("n=%d: %d calls, want at most %d", n, len(calls), max)
		}
		for _, c := range calls {
			if len(c.Argv)-5 > MaxIDsPerCall {
				t.Errorf("n=%d: %d ids in one call", n, len(c.Argv)-5)
			}
			if (c.User != nil) != (c.Argv[5] == "1.s") {
				t.Errorf("call %q runs as %+v", c.Argv[5:6], c.User)
			}
		}
	}
}

func TestPollWrongFlavour(t *testing.T) {
	torqueText := "Job Id: 1.t\n    job_state = R\n"
	f := newFake().on("qstat", answer{stdout: torqueText})
	_, err := newTest(f).Poll(t.Context(), handles(t, "1.t"))
	if !errors.Is(err, ErrWrongFlavour) ||
		!strings.Contains(err.Error(), `qstat answers like Torque; set scheduler = "torque"`) {
		t.Fatalf("err = %v", err)
	}
	f = newFake().on("qstat", answer{stdout: pbsDoc(pbsJob("1.t", "C", ""))})
	if _, err = newTest(f).Poll(t.Context(), handles(t, "1.t")); !errors.Is(err,
		ErrWrongFlavour) {
		t.Fatalf("C state: err = %v", err)
	}
}

func TestCancel(t *testing.T) {
	h := handles(t, "7.pbs01")[0]
	cases := []struct {
		a    answer
		fail bool
	}{
		{fixture(t, "QPB-D01"), false},
		{fixture(t, "QPB-D02"), false},
		{fixture(t, "QPB-D04"), true},
		{fixture(t, "QPB-D05"), true},
		{answer{err: context.DeadlineExceeded}, true},
	}
	for i, c := range cases {
		f := newFake().on("qdel", c.a)
		h := h
		if c.a.stderr != "" && strings.Contains(c.a.stderr, "99.pbs01") {
			h.SchedulerID = "99.pbs01"
		}
		err := newTest(f).Cancel(t.Context(), h)
		if (err != nil) != c.fail {
			t.Errorf("case %d: err = %v, want failure %v", i, err, c.fail)
		}
		if argv := f.callsTo("qdel")[0].Argv; argv[len(argv)-1] != h.SchedulerID {
			t.Errorf("case %d: argv %q", i, argv)
		}
	}
	if err := newTest(newFake()).Cancel(t.Context(), scheduler.Handle{JobID: "x"}); !errors.Is(
		err, scheduler.ErrNotFound) {
		t.Errorf("no id: %v", err)
	}
}

func TestRecover(t *testing.T) {
	const jobID = "0123456789ab"
	tag := Tag(jobID)
	lost := func(t *testing.T) scheduler.Handle {
		return scheduler.Handle{JobID: jobID, Dir: t.TempDir(), State: job.Submitting}
	}

	t.Run("found", func(t *testing.T) {
		f := newFake().on("qselect", answer{stdout: "55.s\n"}).
			on("qstat", answer{stdout: pbsDoc(pbsJob("55.s", "Q",
				`,"Variable_List":{"QMD_JOB_ID":"`+jobID+`"}`))})
		got, err := newTest(f).Recover(t.Context(), []scheduler.Handle{lost(t)})
		if err != nil || got[jobID].SchedulerID != "55.s" || got[jobID].State != job.Pending {
			t.Fatalf("got %+v, %v", got, err)
		}
		if argv := f.callsTo("qselect")[0].Argv; strings.Join(argv, " ") !=
			"qselect -x -N "+tag {
			t.Fatalf("qselect argv %q", argv)
		}
	})
	t.Run("found finished", func(t *testing.T) {
		f := newFake().on("qselect", answer{stdout: "55.s\n"}).
			on("qstat", answer{stdout: pbsDoc(`"55.s":{"Job_Name":"` + tag +
				`","job_state":"F","Exit_status":0}`)})
		got, err := newTest(f).Recover(t.Context(), []scheduler.Handle{lost(t)})
		st := got[jobID]
		if err != nil || st.SchedulerID != "55.s" || st.State != job.Completing ||
			*st.ExitCode != 0 {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		f := newFake().on("qselect", answer{})
		got, err := newTest(f).Recover(t.Context(), []scheduler.Handle{lost(t)})
		if err != nil || len(got) != 0 {
			t.Fatalf("got %+v, %v; want nothing, so the caller submits", got, err)
		}
	})
	t.Run("not found but started", func(t *testing.T) {
		f := newFake().on("qselect", answer{})
		h := lost(t)
		if err := os.WriteFile(filepath.Join(h.Dir, "started"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := newTest(f).Recover(t.Context(), []scheduler.Handle{h})
		if err != nil || got[jobID].State != job.Lost {
			t.Fatalf("got %+v, %v; want lost", got, err)
		}
	})
	t.Run("cannot ask", func(t *testing.T) {
		for _, a := range []answer{{err: errors.New("no qselect")},
			{exit: 1, stderr: "qselect: cannot connect"}} {
			f := newFake().on("qselect", a)
			known := handles(t, "3001.pbs01")
			got, err := newTest(f).Recover(t.Context(), append(known, lost(t)))
			if err == nil || got != nil {
				t.Fatalf("got %+v, %v; want an error", got, err)
			}
		}
	})
	t.Run("polls known", func(t *testing.T) {
		f := newFake().on("qstat", fixture(t, "QPB-Q01"))
		got, err := newTest(f).Recover(t.Context(), handles(t, "3005.pbs01"))
		if err != nil || got["j3005.pbs01"].State != job.Running {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
}
