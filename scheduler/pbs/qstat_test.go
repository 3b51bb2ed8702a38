package pbs

import (
	"strings"
	"testing"
	"time"
)

// outcomes lists each record as "outcome id" for compact comparisons.
func outcomes(recs []Record) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, strings.TrimSpace(string(r.Outcome)+" "+r.ID))
	}
	return strings.Join(parts, ", ")
}

// TestMergeQstatErrors pins how stderr and the exit code add to what stdout said.
func TestMergeQstatErrors(t *testing.T) {
	running := Record{Outcome: OutcomeJob, ID: "1.pbs01"}
	for _, tc := range []struct {
		name   string
		recs   []Record
		stderr string
		exit   int
		want   string
	}{
		{"quiet success", []Record{running}, "", 0, "job 1.pbs01"},
		{"a warning with exit 0 is ignored", []Record{running}, "qstat: Warning: x\n", 0,
			"job 1.pbs01"},
		{"a warning alone is read", nil, "qstat: Warning: x\n", 0, "transient"},
		{"stdout wins over a message for the same id", []Record{running},
			"qstat: Unknown Job Id 1.pbs01\n", 153, "job 1.pbs01"},
		{"last message for an id wins", nil,
			"qstat: Unknown Job Id 2.pbs01\nqstat: 2.pbs01 Job has finished, use -x\n", 35,
			"finished 2.pbs01"},
		{"named message explains the exit", []Record{running},
			"qstat: Unknown Job Id 2.pbs01\n", 153, "job 1.pbs01, unknown_job 2.pbs01"},
		{"silent 153 after a partial answer", []Record{running}, "", 153,
			"job 1.pbs01, unknown_job"},
		{"silent 35", nil, "", 35, "finished"},
		{"silent failure", nil, "", 1, "transient"},
		{"unknown message naming a job", nil, "qstat: odd thing about 3.pbs01\n", 1,
			"transient 3.pbs01"},
		{"a connection failure after a partial answer", []Record{running},
			"qstat: cannot connect to server pbs01 (errno=15010)\n", 255,
			"job 1.pbs01, transient"},
	} {
		if got := outcomes(MergeQstatErrors(tc.recs, []byte(tc.stderr), tc.exit)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestQstatDuplicateKeys: a job printed twice keeps its first place and its last record.
func TestQstatDuplicateKeys(t *testing.T) {
	out := `{"Jobs":{
 "1.pbs01":{"job_state":"R"},
 "2.pbs01":{"job_state":"Q"},
 "1.pbs01":{"job_state":"F","Exit_status":0}
}}`
	recs := ParseQstat([]byte(out), nil, 0)
	if len(recs) != 2 || recs[0].ID != "1.pbs01" || recs[0].RawState != "F" ||
		recs[1].ID != "2.pbs01" {
		t.Errorf("duplicates: %+v", recs)
	}
}

// TestQstatOddDocuments: shapes that are JSON but not what qstat prints lose nothing they
// should not, and never panic.
func TestQstatOddDocuments(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{`{}`, ""},
		{`{"Jobs":{}}`, ""},
		{`{"Jobs":[]}`, "transient"},
		{`{"Jobs":{"not an id":{"job_state":"R"},"1.s":{"job_state":"R"}}}`,
			"transient, job 1.s"},
		{`{"Jobs":{"1.s":"R"}}`, "transient 1.s"},
		{`{"Jobs":{"1.s":{"job_state":7}}}`, "transient 1.s"},
		{`{"Jobs":{"1.s":{"job_state":"F","Exit_status":1e400}}}`, "transient 1.s"},
		{`{"Jobs":{"1.s":{"job_state":"R"}}} trailing`, "job 1.s"},
		{`{"Jobs":{"1.s":{"job_state":"R"}},`, "job 1.s, transient"},
		{`{"a":1 "Jobs":{}}`, "transient"},
		{`{`, "transient"},
	} {
		if got := outcomes(ParseQstat([]byte(tc.out), nil, 0)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.out, got, tc.want)
		}
	}
}

// TestQstatTimes: times print in the server's zone, as strings or epoch seconds.
func TestQstatTimes(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	out := `{"Jobs":{"1.s":{"job_state":"F","Exit_status":0,
 "ctime":"Mon Mar  4 10:00:00 2024","stime":1709546405,"obittime":"not a time"}}}`
	recs := ParseQstatIn([]byte(out), nil, 0, loc)
	if len(recs) != 1 {
		t.Fatalf("%+v", recs)
	}
	r := recs[0]
	if r.Submit == nil || !r.Submit.Equal(time.Date(2024, 3, 4, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("submit %v", r.Submit)
	}
	if r.Start == nil || r.Start.Unix() != 1709546405 {
		t.Errorf("start %v", r.Start)
	}
	if r.End != nil {
		t.Errorf("end %v from an unreadable time", r.End)
	}
}

func TestListVariable(t *testing.T) {
	const list = `PBS_O_HOME=/home/alice,COMMENT=a\,b,QMD_JOB_ID=7f3a00c0ffee,EMPTY=,X`
	for name, want := range map[string]string{
		"QMD_JOB_ID": "7f3a00c0ffee",
		"COMMENT":    "a,b",
		"PBS_O_HOME": "/home/alice",
		"EMPTY":      "",
		"X":          "",
		"MISSING":    "",
	} {
		if got := ListVariable(list, name); got != want {
			t.Errorf("ListVariable(%s) = %q, want %q", name, got, want)
		}
	}
	// Variable_List as a string inside PBS JSON (older servers).
	out := `{"Jobs":{"1.s":{"job_state":"R","Variable_List":"A=1,QMD_JOB_ID=abc"}}}`
	if r := ParseQstat([]byte(out), nil, 0); len(r) != 1 || r[0].QMDJobID != "abc" {
		t.Errorf("string Variable_List: %+v", r)
	}
}
