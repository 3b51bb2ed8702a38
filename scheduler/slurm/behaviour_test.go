package slurm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
)

// sinceForTest is a --starttime for argv checks.
var sinceForTest = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// behaviourCase reads a behaviour case of testdata/cases.json by id. Those cases describe
// daemon logic, which the backend tests drive with fake commands; what is tested here is
// the parsers' and argv builders' part of each.
func behaviourCase(t *testing.T, id string) fieldCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		fieldCase
		Argv []string `json:"argv"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.ID == id {
			if c.Kind != "behaviour" {
				t.Fatalf("%s is a %s case", id, c.Kind)
			}
			return c.fieldCase
		}
	}
	t.Fatalf("no case %s", id)
	return fieldCase{}
}

// TestSL07ReconcileByName: after a transient sbatch, the job is looked up by the name qmd
// gave it, and the squeue answer yields the id to adopt.
func TestSL07ReconcileByName(t *testing.T) {
	c := behaviourCase(t, "SL-07")
	want := []string{"squeue", "--noheader", "--states=all", "--name=qmd-7f3a",
		"--format=%i|%T|%r"}
	if got := SqueueByNameArgs("qmd-7f3a"); !slices.Equal(got, want) {
		t.Errorf("SqueueByNameArgs = %q, want %q (the case's argv)", got, want)
	}
	if got := ParseSbatch(nil, []byte("sbatch: error: Batch job submission failed: Socket "+
		"timed out on send/recv operation\n"), 1); got.Outcome != OutcomeTransient {
		t.Fatalf("the sbatch before reconciling is %s, want transient", got.Outcome)
	}
	recs := ParseSqueue([]byte(c.Stdout), []byte(c.Stderr), c.ExitCode)
	if len(recs) != 1 || recs[0].Outcome != OutcomeJob || recs[0].ID != "3310343" ||
		recs[0].State != job.Pending {
		t.Errorf("squeue by name: %+v, want job 3310343 pending to adopt", recs)
	}
	args := SacctByNameArgs("qmd-7f3a", sinceForTest)
	hasStart := slices.ContainsFunc(args, func(a string) bool {
		return strings.HasPrefix(a, "--starttime=")
	})
	if !slices.Contains(args, "--name=qmd-7f3a") || !hasStart {
		t.Errorf("SacctByNameArgs = %q, want --name and --starttime", args)
	}
}

// TestSL21PinnedFormats: every query carries its own format, and output in a user's format
// (what an unpinned command prints) never reads as a job state.
func TestSL21PinnedFormats(t *testing.T) {
	c := behaviourCase(t, "SL-21")
	for _, argv := range [][]string{SqueueArgs([]string{"4242"}),
		SacctArgs([]string{"4242"}, sinceForTest), SqueueByNameArgs("n"),
		SacctByNameArgs("n", sinceForTest)} {
		if !slices.ContainsFunc(argv, func(a string) bool {
			return strings.HasPrefix(a, "--format=")
		}) || !slices.Contains(argv, "--noheader") {
			t.Errorf("%q: no pinned --format/--noheader", argv)
		}
		if argv[0] == "sacct" && !slices.Contains(argv, "--parsable2") {
			t.Errorf("%q: no --parsable2", argv)
		}
	}
	if !slices.Contains(Env(), "SLURM_TIME_FORMAT=standard") {
		t.Errorf("Env() = %q, want SLURM_TIME_FORMAT=standard", Env())
	}
	for _, recs := range [][]Record{
		ParseSqueue([]byte(c.Stdout), nil, 0),
		ParseSacct([]byte(c.Stdout), nil, 0),
	} {
		if len(recs) != 1 || recs[0].Outcome != OutcomeTransient {
			t.Errorf("user-format output read as %+v, want one transient record", recs)
		}
	}
}

// TestSL24GoneFromSqueue: squeue's "Invalid job id" says nothing about how the job ended;
// the end comes from sacct, and an empty sacct answer changes nothing.
func TestSL24GoneFromSqueue(t *testing.T) {
	c := behaviourCase(t, "SL-24")
	recs := ParseSqueue([]byte(c.Stdout), []byte(c.Stderr), c.ExitCode)
	if len(recs) != 1 || recs[0].Outcome != OutcomeUnknownJob || recs[0].State != "" {
		t.Fatalf("squeue: %+v, want unknown_job and no state", recs)
	}
	if recs := ParseSacct(nil, nil, 0); len(recs) != 0 {
		t.Errorf("empty sacct: %+v, want no record", recs)
	}
	for _, tc := range []struct {
		line  string
		state job.State
		exit  int
	}{
		{"15236820|COMPLETED|0:0|2024-03-04T09:00:00|2024-03-04T09:00:05|" +
			"2024-03-04T10:00:00|qmd-x\n", job.Completed, 0},
		{"15236820|FAILED|2:0|2024-03-04T09:00:00|2024-03-04T09:00:05|" +
			"2024-03-04T10:00:00|qmd-x\n", job.Failed, 2},
	} {
		recs := ParseSacct([]byte(tc.line), nil, 0)
		if len(recs) != 1 || recs[0].State != tc.state || !recs[0].Terminal ||
			recs[0].ExitCode == nil || *recs[0].ExitCode != tc.exit {
			t.Errorf("sacct %q: %+v, want %s exit %d", tc.line, recs, tc.state, tc.exit)
		}
	}
}
