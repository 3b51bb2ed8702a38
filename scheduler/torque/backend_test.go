package torque

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
	"qmd/scheduler/pbs"
	"qmd/scheduler/runner"
)

// answer is one scripted reply; err, when set, stands for a command that could not run.
type answer struct {
	stdout, stderr string
	exit           int
	err            error
}

// fakeRunner answers each program (argv[0]) with fn and records every call.
type fakeRunner struct {
	mu    sync.Mutex
	fn    map[string]func(runner.Command) answer
	calls []runner.Command
}

func newFake() *fakeRunner { return &fakeRunner{fn: map[string]func(runner.Command) answer{}} }

func (f *fakeRunner) on(prog string, a answer) *fakeRunner {
	f.fn[prog] = func(runner.Command) answer { return a }
	return f
}

func (f *fakeRunner) Run(_ context.Context, c runner.Command) (runner.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	fn := f.fn[c.Argv[0]]
	f.mu.Unlock()
	if fn == nil {
		return runner.Result{}, fmt.Errorf("%s: not scripted", c.Argv[0])
	}
	a := fn(c)
	if a.err != nil {
		return runner.Result{}, a.err
	}
	res := runner.Result{Stdout: []byte(a.stdout), Stderr: []byte(a.stderr), ExitCode: a.exit}
	if a.exit != 0 {
		return res, &runner.CommandError{Program: c.Argv[0], ExitCode: a.exit}
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

func handles(t *testing.T, ids ...string) []scheduler.Handle {
	var hs []scheduler.Handle
	for _, id := range ids {
		hs = append(hs, scheduler.Handle{JobID: "j" + id, SchedulerID: id, Dir: t.TempDir(),
			State: job.Running})
	}
	return hs
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestName(t *testing.T) {
	if n := New(Options{}).Name(); n != "torque" {
		t.Fatalf("Name() = %q", n)
	}
}

func TestSubmit(t *testing.T) {
	req := scheduler.SubmitRequest{JobID: "0123456789ab", Dir: t.TempDir(), Script: "job.sh"}
	for id, want := range map[string]string{"QTQ-W06": "21", "QTQ-W08": "rejected",
		"QTQ-W10": "transient"} {
		f := newFake().on("qsub", fixture(t, id))
		sub, err := New(Options{Runner: f}).Submit(t.Context(), req)
		switch want {
		case "rejected":
			if !errors.Is(err, scheduler.ErrRejected) {
				t.Errorf("%s: %v", id, err)
			}
		case "transient":
			if !errors.Is(err, pbs.ErrTransient) || errors.Is(err, scheduler.ErrRejected) {
				t.Errorf("%s: %v", id, err)
			}
		default:
			if err != nil || sub.SchedulerID != want {
				t.Errorf("%s: %+v %v", id, sub, err)
			}
		}
	}
}

func TestPoll(t *testing.T) {
	// The wrappers print C without exit_status: the exit-status file decides, and a job
	// without one is left out rather than taken as completed.
	f := newFake().on("qstat", fixture(t, "QTQ-W02"))
	hs := handles(t, "21")
	got, err := New(Options{Runner: f}).Poll(t.Context(), hs)
	if err != nil || len(got) != 0 {
		t.Fatalf("no file: %+v %v", got, err)
	}
	writeFile(t, hs[0].Dir, "exit_status", "3 1700000000\n")
	got, err = New(Options{Runner: f}).Poll(t.Context(), hs)
	if st := got["j21"]; err != nil || st.State != job.Completing || *st.ExitCode != 3 {
		t.Fatalf("file: %+v %v", got, err)
	}
	if argv := f.callsTo("qstat")[0].Argv; strings.Join(argv, " ") != "qstat -f 21" {
		t.Fatalf("argv %q", argv)
	}

	// Torque's own C carries exit_status; negative ones are the server's.
	f = newFake().on("qstat", fixture(t, "QTQ-T02"))
	hs = handles(t, "5101.torque01", "5102.torque01", "5106.torque01")
	got, err = New(Options{Runner: f}).Poll(t.Context(), hs)
	if err != nil {
		t.Fatal(err)
	}
	if st := got["j5101.torque01"]; st.State != job.Completing || *st.ExitCode != 0 {
		t.Errorf("5101: %+v", st)
	}
	if st := got["j5102.torque01"]; st.State != job.Completing || *st.ExitCode != 2 {
		t.Errorf("5102: %+v", st)
	}
	if st := got["j5106.torque01"]; st.State != job.Timeout || st.ExitCode != nil {
		t.Errorf("5106: %+v", st)
	}

	// Live states, E still running until the server says C.
	f = newFake().on("qstat", fixture(t, "QTQ-T01"))
	hs = handles(t, "5001.torque01", "5005.torque01", "5006.torque01")
	got, err = New(Options{Runner: f}).Poll(t.Context(), hs)
	if err != nil || got["j5001.torque01"].State != job.Pending ||
		got["j5005.torque01"].State != job.Running || got["j5006.torque01"].State != job.Running {
		t.Fatalf("live: %+v %v", got, err)
	}

	// Unknown (silent 153): the file, else nothing.
	f = newFake().on("qstat", fixture(t, "QTQ-W05"))
	hs = handles(t, "99", "98")
	writeFile(t, hs[0].Dir, "exit_status", "0 1700000000\n")
	got, err = New(Options{Runner: f}).Poll(t.Context(), hs)
	if err != nil || len(got) != 1 || got["j99"].State != job.Completing {
		t.Fatalf("unknown: %+v %v", got, err)
	}

	// Could not ask: an error and no statuses.
	f = newFake().on("qstat", fixture(t, "QTQ-W14"))
	if got, err = New(Options{Runner: f}).Poll(t.Context(), handles(t, "21")); err == nil ||
		got != nil {
		t.Fatalf("down: %+v %v", got, err)
	}
}

func TestPollChunks(t *testing.T) {
	f := newFake()
	f.fn["qstat"] = func(c runner.Command) answer {
		var b strings.Builder
		for _, id := range c.Argv[2:] {
			fmt.Fprintf(&b, "Job Id: %s\n    job_state = R\n\n", id)
		}
		return answer{stdout: b.String()}
	}
	var ids []string
	for i := range 201 {
		ids = append(ids, fmt.Sprintf("%d.t", i+1))
	}
	got, err := New(Options{Runner: f}).Poll(t.Context(), handles(t, ids...))
	if err != nil || len(got) != 201 {
		t.Fatalf("%d statuses, %v", len(got), err)
	}
	if n := len(f.callsTo("qstat")); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
	for _, c := range f.callsTo("qstat") {
		if c.Argv[1] != "-f" || len(c.Argv)-2 > pbs.MaxIDsPerCall || contains(c.Argv, "-x") {
			t.Fatalf("argv %q", c.Argv)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestPollWrongFlavour(t *testing.T) {
	doc := `{"pbs_version":"2022.1","Jobs":{"1.p":{"job_state":"R"}}}`
	f := newFake().on("qstat", answer{stdout: doc})
	_, err := New(Options{Runner: f}).Poll(t.Context(), handles(t, "1.p"))
	if !errors.Is(err, pbs.ErrWrongFlavour) ||
		!strings.Contains(err.Error(), `qstat answers like PBS Pro; set scheduler = "pbs"`) {
		t.Fatalf("err = %v", err)
	}
	// PBS Pro's own text qstat -f looks like Torque's but has F.
	f = newFake().on("qstat", answer{stdout: "Job Id: 1.p\n    job_state = F\n"})
	if _, err = New(Options{Runner: f}).Poll(t.Context(), handles(t, "1.p")); !errors.Is(err,
		pbs.ErrWrongFlavour) {
		t.Fatalf("F: err = %v", err)
	}
}

func TestCancel(t *testing.T) {
	for id, fail := range map[string]bool{"QTQ-W11": false, "QTQ-W12": false,
		"QTQ-W13": false} {
		f := newFake().on("qdel", fixture(t, id))
		if err := New(Options{Runner: f}).Cancel(t.Context(),
			handles(t, "23")[0]); (err != nil) != fail {
			t.Errorf("%s: %v", id, err)
		}
	}
	f := newFake().on("qdel", answer{err: context.DeadlineExceeded})
	if err := New(Options{Runner: f}).Cancel(t.Context(), handles(t, "23")[0]); err == nil {
		t.Error("timeout: no error")
	}
}

func TestRecover(t *testing.T) {
	const jobID = "0123456789ab"
	h := scheduler.Handle{JobID: jobID, Dir: t.TempDir(), State: job.Submitting}
	list := "Job Id:\t40\n\tJob_Name = other\n\tjob_state = R\n\n" +
		"Job Id:\t41\n\tJob_Name = " + pbs.Tag(jobID) + "\n\tjob_state = Q\n\n"
	f := newFake().on("qstat", answer{stdout: list})
	got, err := New(Options{Runner: f}).Recover(t.Context(), []scheduler.Handle{h})
	if err != nil || got[jobID].SchedulerID != "41" || got[jobID].State != job.Pending {
		t.Fatalf("found: %+v %v", got, err)
	}
	if argv := f.callsTo("qstat")[0].Argv; strings.Join(argv, " ") != "qstat -f" {
		t.Fatalf("argv %q", argv)
	}

	f = newFake().on("qstat", answer{})
	got, err = New(Options{Runner: f}).Recover(t.Context(), []scheduler.Handle{h})
	if err != nil || len(got) != 0 {
		t.Fatalf("absent: %+v %v", got, err)
	}
	writeFile(t, h.Dir, "started", "1700000000\n")
	got, err = New(Options{Runner: f}).Recover(t.Context(), []scheduler.Handle{h})
	if err != nil || got[jobID].State != job.Lost {
		t.Fatalf("started: %+v %v", got, err)
	}

	f = newFake().on("qstat", fixture(t, "QTQ-W14"))
	if got, err = New(Options{Runner: f}).Recover(t.Context(),
		[]scheduler.Handle{h}); err == nil || got != nil {
		t.Fatalf("down: %+v %v", got, err)
	}
}
