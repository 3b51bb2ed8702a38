package slurm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
)

func TestParseSbatch(t *testing.T) {
	for _, tc := range []struct {
		name, stdout, stderr string
		exit                 int
		want                 Record
	}{
		{"parsable", "3\n", "", 0, Record{Outcome: OutcomeSubmitted, ID: "3"}},
		{"parsable with cluster", "75168975;hpc1\n", "", 0,
			Record{Outcome: OutcomeSubmitted, ID: "75168975", Cluster: "hpc1"}},
		{"no newline", "42", "", 0, Record{Outcome: OutcomeSubmitted, ID: "42"}},
		{"crlf and spaces", "  42 \r\n", "", 0, Record{Outcome: OutcomeSubmitted, ID: "42"}},
		{"sentence", "Submitted batch job 3969755\n", "", 0,
			Record{Outcome: OutcomeSubmitted, ID: "3969755"}},
		{"sentence with cluster", "Submitted batch job 3969755 on cluster hpc2\n", "", 0,
			Record{Outcome: OutcomeSubmitted, ID: "3969755", Cluster: "hpc2"}},
		{"federation-sized id", "67108865123\n", "", 0,
			Record{Outcome: OutcomeSubmitted, ID: "67108865123"}},
		{"plugin lines first", "Job charged to PROJ-0001\n7;c1\n", "", 0,
			Record{Outcome: OutcomeSubmitted, ID: "7", Cluster: "c1"}},
		{"notice on stderr", "7787232\n",
			"sbatch: no partition specified, using default partition serial\n", 0,
			Record{Outcome: OutcomeSubmitted, ID: "7787232"}},
		{"id with --wait and the job's exit status", "Submitted batch job 5\n", "", 3,
			Record{Outcome: OutcomeSubmitted, ID: "5"}},
	} {
		if got := ParseSbatch([]byte(tc.stdout), []byte(tc.stderr), tc.exit); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}

	for name, stdout := range map[string]string{
		"empty": "", "word": "ok\n", "negative": "-3\n", "id and junk": "42 x\n",
		"empty cluster": "42;\n", "cluster with space": "42;a b\n", "two semicolons": "1;a;b\n",
		"sentence without id":  "Submitted batch job \n",
		"sentence with bad id": "Submitted batch job x12\n",
		"unknown job message":  "sbatch: error: Invalid job id specified\n",
		"already completed":    "error: Job/step already completing or completed\n",
	} {
		if got := ParseSbatch([]byte(stdout), nil, 0); got.Outcome != OutcomeTransient ||
			got.Reason == "" {
			t.Errorf("%s: got %+v, want transient with a reason", name, got)
		}
	}
}

func TestParseSqueue(t *testing.T) {
	// Every state reads as its mapped state, never terminal, with no exit code.
	for _, tc := range wantStates {
		recs := ParseSqueue([]byte("9|"+tc.raw+"|None\n"), nil, 0)
		if len(recs) != 1 || recs[0].Outcome != OutcomeJob || recs[0].State != tc.state ||
			recs[0].Terminal || recs[0].ExitCode != nil || recs[0].Signal != nil ||
			recs[0].Reason != "" {
			t.Errorf("%s: got %+v", tc.raw, recs)
		}
	}

	// Order of first appearance, last line wins, reasons kept verbatim.
	recs := ParseSqueue([]byte("5|PENDING|Priority\n6|RUNNING|None\n"+
		"5|RUNNING|None\n7|PENDING|(null)\n"), nil, 0)
	want := []struct {
		id     string
		state  job.State
		reason string
	}{{"5", job.Running, ""}, {"6", job.Running, ""}, {"7", job.Pending, "(null)"}}
	if len(recs) != len(want) {
		t.Fatalf("got %+v", recs)
	}
	for i, w := range want {
		if recs[i].ID != w.id || recs[i].State != w.state || recs[i].Reason != w.reason {
			t.Errorf("record %d: %+v, want %+v", i, recs[i], w)
		}
	}

	for name, stdout := range map[string]string{
		"two fields":  "5|PENDING\n",
		"header":      "JOBID|STATE|REASON\n5|PENDING|None\n",
		"bad id":      "x5|PENDING|None\n",
		"bad state":   "5|pending|None\n",
		"late junk":   "5|PENDING|None\nwhat\n",
		"binary junk": "\xff\xfe\n",
	} {
		if got := ParseSqueue([]byte(stdout), nil, 0); len(got) != 1 ||
			got[0].Outcome != OutcomeTransient || got[0].ID != "" {
			t.Errorf("%s: got %+v, want one transient record", name, got)
		}
	}

	// A compact code ("PD", from a user's format) is shaped like a state but not one qmd
	// knows: that job is transient, named, and keeps the raw text for the log.
	got := ParseSqueue([]byte("5|PD|Priority\n"), nil, 0)
	if len(got) != 1 || got[0].Outcome != OutcomeTransient || got[0].ID != "5" ||
		got[0].RawState != "PD" {
		t.Errorf("compact state: %+v", got)
	}
}

func TestParseScancel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stderr string
		exit   int
		want   []Outcome
		ids    []string
	}{
		{"quiet", "", 0, []Outcome{OutcomeOK}, []string{""}},
		{"verbose", "scancel: Terminating job 20\n", 0, []Outcome{OutcomeOK}, []string{"20"}},
		{"array task", "scancel: Terminating job 16_3\n", 0, []Outcome{OutcomeOK},
			[]string{"16_3"}},
		{"malformed id named", "scancel: error: Invalid job id 12abc\n", 1,
			[]Outcome{OutcomeTransient}, []string{"12abc"}},
		{"terminating then silent failure", "scancel: Terminating job 27\n", 8,
			[]Outcome{OutcomeOK, OutcomeTransient}, []string{"27", ""}},
		{"two ids, both fine then one unknown",
			"scancel: Terminating job 1\nscancel: Terminating job 2\n" +
				"scancel: error: Kill job error on job id 2: Invalid job id specified\n", 0,
			[]Outcome{OutcomeOK, OutcomeUnknownJob}, []string{"1", "2"}},
		{"already done", "scancel: Terminating job 19\nscancel: error: Kill job error on " +
			"job id 19: Job/step already completing or completed\n", 0,
			[]Outcome{OutcomeOK}, []string{"19"}},
	} {
		recs := ParseScancel(nil, []byte(tc.stderr), tc.exit)
		var got []Outcome
		var ids []string
		for _, r := range recs {
			got = append(got, r.Outcome)
			ids = append(ids, r.ID)
		}
		if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(ids, tc.ids) {
			t.Errorf("%s: got %v %q, want %v %q", tc.name, got, ids, tc.want, tc.ids)
		}
	}
}

func TestParseUnknownCommand(t *testing.T) {
	if _, err := Parse("qstat", nil, nil, 0); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("Parse(qstat) error %v, want ErrUnknownCommand", err)
	}
	for _, c := range Commands {
		if _, err := Parse(c, nil, nil, 0); err != nil {
			t.Errorf("Parse(%s): %v", c, err)
		}
	}
}

func TestArgs(t *testing.T) {
	since := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	ids := []string{"61000", "123456_[9201-10000%500]"}
	for _, tc := range []struct {
		got, want []string
	}{
		{SqueueArgs(ids), []string{"squeue", "--noheader", "--states=all",
			"--jobs=61000,123456_[9201-10000%500]", "--format=%i|%T|%r"}},
		{SacctArgs(ids, since), []string{"sacct", "--noheader", "--parsable2",
			"--allocations", "--duplicates", "--starttime=2024-03-01T00:00:00",
			"--jobs=61000,123456_[9201-10000%500]",
			"--format=JobID,State,ExitCode,Submit,Start,End,JobName"}},
		{SbatchArgs("qmd-7f3a", []string{"--partition=short", "--time=10"}, "job.sh"),
			[]string{"sbatch", "--parsable", "--job-name=qmd-7f3a", "--partition=short",
				"--time=10", "job.sh"}},
		{SbatchArgs("n", nil, "job.sh"), []string{"sbatch", "--parsable", "--job-name=n",
			"job.sh"}},
		{ScancelArgs(ids), []string{"scancel", "--verbose", "61000",
			"123456_[9201-10000%500]"}},
		{SqueueByNameArgs("qmd-7f3a"), []string{"squeue", "--noheader", "--states=all",
			"--name=qmd-7f3a", "--format=%i|%T|%r"}},
		{SacctByNameArgs("qmd-7f3a", since), []string{"sacct", "--noheader", "--parsable2",
			"--allocations", "--duplicates", "--starttime=2024-03-01T00:00:00",
			"--name=qmd-7f3a", "--format=JobID,State,ExitCode,Submit,Start,End,JobName"}},
		{Env(), []string{"SLURM_TIME_FORMAT=standard"}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}

	// --starttime is wall time in the location the caller gives.
	cet := since.In(time.FixedZone("CET", 3600))
	if got := SacctArgs(ids, cet)[5]; got != "--starttime=2024-03-01T01:00:00" {
		t.Errorf("starttime in CET: %s", got)
	}
}

func TestChunk(t *testing.T) {
	ids := make([]string, 250)
	for i := range ids {
		ids[i] = strings.Repeat("1", i%5+1)
	}
	for _, tc := range []struct {
		n, count int
		sizes    []int
	}{
		{100, 250, []int{100, 100, 50}},
		{100, 100, []int{100}},
		{100, 101, []int{100, 1}},
		{100, 1, []int{1}},
		{100, 0, []int{}},
		{0, 250, []int{100, 100, 50}},
		{-5, 30, []int{30}},
		{1, 3, []int{1, 1, 1}},
	} {
		chunks := Chunk(ids[:tc.count], tc.n)
		sizes := []int{}
		var joined []string
		for _, c := range chunks {
			sizes = append(sizes, len(c))
			joined = append(joined, c...)
		}
		if !reflect.DeepEqual(sizes, tc.sizes) || len(joined) != tc.count ||
			tc.count > 0 && !reflect.DeepEqual(joined, ids[:tc.count]) {
			t.Errorf("Chunk(%d ids, %d): sizes %v, want %v", tc.count, tc.n, sizes, tc.sizes)
		}
	}

	// Appending to a chunk must not overwrite the next one.
	chunks := Chunk([]string{"1", "2", "3"}, 2)
	_ = append(chunks[0], "x")
	if chunks[1][0] != "3" {
		t.Errorf("append to a chunk overwrote the next: %q", chunks[1])
	}
}
