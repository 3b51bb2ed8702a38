package slurm

import (
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
)

// row builds one pinned-format sacct line with fixed times.
func row(id, state, exit, name string) string {
	return id + "|" + state + "|" + exit +
		"|2024-03-04T07:00:00|2024-03-04T07:00:10|2024-03-04T07:30:02|" + name + "\n"
}

func sacct(t *testing.T, stdout string) []Record {
	t.Helper()
	return ParseSacctIn([]byte(stdout), nil, 0, time.UTC)
}

func intp(n int) *int { return &n }

func eqInt(a, b *int) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func show(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestSacctExitCodes covers ExitCode forms on a terminal and a non-terminal state: Slurm's
// 0:0 for a job that has not ended is a placeholder, not an exit status.
func TestSacctExitCodes(t *testing.T) {
	for _, tc := range []struct {
		state, exit string
		code, sig   *int
	}{
		{"COMPLETED", "0:0", intp(0), intp(0)},
		{"FAILED", "3:0", intp(3), intp(0)},
		{"FAILED", "0:9", intp(0), intp(9)},
		{"OUT_OF_MEMORY", "0:125", intp(0), intp(125)},
		{"CANCELLED by 0", "0:15", intp(0), intp(15)},
		{"TIMEOUT", "0:0", intp(0), intp(0)},
		{"FAILED", "2", intp(2), nil},
		{"FAILED", "", nil, nil},
		{"RUNNING", "0:0", nil, nil},
		{"PENDING", "1:0", nil, nil},
		{"REQUEUED", "0:0", nil, nil},
	} {
		recs := sacct(t, row("42", tc.state, tc.exit, "n"))
		if len(recs) != 1 || recs[0].Outcome != OutcomeJob {
			t.Fatalf("%s %s: %+v", tc.state, tc.exit, recs)
		}
		r := recs[0]
		if !eqInt(r.ExitCode, tc.code) || !eqInt(r.Signal, tc.sig) {
			t.Errorf("%s %q: exit %v signal %v, want %v %v", tc.state, tc.exit,
				show(r.ExitCode), show(r.Signal), show(tc.code), show(tc.sig))
		}
	}
}

func TestSacctEveryState(t *testing.T) {
	for _, tc := range wantStates {
		recs := sacct(t, row("7", tc.raw, "0:0", "n"))
		if len(recs) != 1 {
			t.Fatalf("%s: %+v", tc.raw, recs)
		}
		r := recs[0]
		if r.Outcome != OutcomeJob || r.State != tc.state || r.Terminal != tc.terminal ||
			r.RawState != tc.raw {
			t.Errorf("%s: got %s %s terminal=%v raw=%q", tc.raw, r.Outcome, r.State,
				r.Terminal, r.RawState)
		}
	}
}

func TestSacctLastLineWins(t *testing.T) {
	out := row("7001", "NODE_FAIL", "0:0", "a") +
		row("7002", "RUNNING", "0:0", "b") +
		row("7001", "REQUEUED", "0:0", "a") +
		row("7001", "COMPLETED", "0:0", "a") +
		row("7002", "PREEMPTED", "0:15", "b")
	recs := sacct(t, out)
	if len(recs) != 2 {
		t.Fatalf("got %d records: %+v", len(recs), recs)
	}
	if recs[0].ID != "7001" || recs[0].State != job.Completed || !recs[0].Terminal {
		t.Errorf("first record %+v, want 7001 completed (its last line)", recs[0])
	}
	if recs[1].ID != "7002" || recs[1].State != job.Cancelled || *recs[1].Signal != 15 {
		t.Errorf("second record %+v, want 7002 cancelled by signal 15", recs[1])
	}
}

func TestSacctArrayIDs(t *testing.T) {
	ids := []string{"123_4", "123_[5-9]", "123456_[9201-10000%500]", "16_[1,3]", "77+0", "77+1"}
	var out strings.Builder
	for _, id := range ids {
		out.WriteString(row(id, "PENDING", "0:0", "arr"))
	}
	recs := sacct(t, out.String())
	if len(recs) != len(ids) {
		t.Fatalf("got %d records, want %d", len(recs), len(ids))
	}
	for i, id := range ids {
		if recs[i].ID != id {
			t.Errorf("record %d id %q, want %q (verbatim)", i, recs[i].ID, id)
		}
	}
}

// TestSacctNames covers names that break naive parsing; sacct prints `"` as a backtick.
func TestSacctNames(t *testing.T) {
	for _, tc := range []struct{ name, stdout, want string }{
		{"pipe", row("10", "COMPLETED", "0:0", "a|b"), "a|b"},
		{"many pipes", row("10", "COMPLETED", "0:0", "|a||b|"), "|a||b|"},
		{"spaces and quotes", row("8", "COMPLETED", "0:0", "my job `dq` 'sq' end"),
			"my job `dq` 'sq' end"},
		{"newline", row("9", "COMPLETED", "0:0", "line1\nline2"), "line1\nline2"},
		{"two newlines", row("9", "COMPLETED", "0:0", "l1\nl2\nl3"), "l1\nl2\nl3"},
		{"blank line inside", row("9", "COMPLETED", "0:0", "l1\n\nl3"), "l1\n\nl3"},
		{"newline and pipe", row("9", "COMPLETED", "0:0", "a|b\nc|d"), "a|b\nc|d"},
		{"empty", row("9", "COMPLETED", "0:0", ""), ""},
		{"crlf", strings.ReplaceAll(row("9", "COMPLETED", "0:0", "x"), "\n", "\r\n"), "x"},
		{"unicode", row("9", "COMPLETED", "0:0", "δ-shift ¹H"), "δ-shift ¹H"},
	} {
		recs := sacct(t, tc.stdout+row("99", "RUNNING", "0:0", "next"))
		if len(recs) != 2 || recs[0].Name != tc.want || recs[1].ID != "99" ||
			recs[1].Name != "next" {
			t.Errorf("%s: got %+v, want name %q then job 99", tc.name, recs, tc.want)
		}
	}

	last := row("99", "RUNNING", "0:0", "a\nb")
	recs := sacct(t, row("9", "COMPLETED", "0:0", "x")+strings.TrimSuffix(last, "\n"))
	if len(recs) != 2 || recs[1].Name != "a\nb" {
		t.Errorf("no final newline: got %+v, want job 99 named \"a\\nb\"", recs)
	}
}

func TestSacctTimes(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(TimeLayout, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		field string
		want  *time.Time
	}{
		{"2024-03-04T09:00:12", ptr(utc("2024-03-04T09:00:12"))},
		{"1796399010", ptr(utc("2026-12-04T15:43:30"))},
		{"Unknown", nil},
		{"None", nil},
		{"", nil},
		{"2024-13-04T09:00:12", nil},
		{"2024-03-04 09:00:12", nil},
		{"Tue 09:00", nil},
	} {
		recs := sacct(t, "5|RUNNING|0:0|"+tc.field+"|None|Unknown|n\n")
		if len(recs) != 1 {
			t.Fatalf("%q: %+v", tc.field, recs)
		}
		got := recs[0].Submit
		if (got == nil) != (tc.want == nil) || got != nil && !got.Equal(*tc.want) {
			t.Errorf("submit %q read as %v, want %v", tc.field, got, tc.want)
		}
		if recs[0].Start != nil || recs[0].End != nil {
			t.Errorf("None/Unknown read as times: %v %v", recs[0].Start, recs[0].End)
		}
	}

	// Standard times are wall time of the cluster's zone.
	zone := time.FixedZone("CET", 3600)
	recs := ParseSacctIn([]byte(row("1", "COMPLETED", "0:0", "n")), nil, 0, zone)
	if want := utc("2024-03-04T06:00:00"); !recs[0].Submit.Equal(want) {
		t.Errorf("submit in CET read as %v, want %v", recs[0].Submit.UTC(), want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSacctNotRecords(t *testing.T) {
	for name, stdout := range map[string]string{
		"garbage": "hello\nworld\n",
		"header": "JobID|State|ExitCode|Submit|Start|End|JobName\n" +
			row("1", "FAILED", "1:0", "n"),
		"six fields":      "1|FAILED|1:0|None|None|None\n",
		"lower-case":      "1|failed|1:0|None|None|None|n\n",
		"bad exit code":   "1|FAILED|x|None|None|None|n\n",
		"default layout":  "1      ok   debug   root   1  COMPLETED   0:0\n",
		"binary":          "\x00\xff\xfe|\x01\n",
		"id not a number": "abc|FAILED|1:0|None|None|None|n\n",
	} {
		recs := sacct(t, stdout)
		if len(recs) != 1 || recs[0].Outcome != OutcomeTransient || recs[0].ID != "" ||
			recs[0].Reason == "" {
			t.Errorf("%s: got %+v, want one transient record with a reason", name, recs)
		}
	}
}

func TestSacctSilence(t *testing.T) {
	for name, stdout := range map[string]string{"empty": "", "newline": "\n", "blank": " \n\n"} {
		if recs := sacct(t, stdout); len(recs) != 0 {
			t.Errorf("%s: got %+v, want no record", name, recs)
		}
	}
}

func TestSacctFailures(t *testing.T) {
	for _, tc := range []struct {
		name, stderr string
		exit         int
		want         Outcome
	}{
		{"accounting disabled", "Slurm accounting storage is disabled\n", 1,
			OutcomeAccountingDisabled},
		{"accounting disabled, exit 0", "Slurm accounting storage is disabled\n", 0,
			OutcomeAccountingDisabled},
		{"slurmdbd down", "sacct: error: slurm_persist_conn_open_without_init: failed to " +
			"open persistent connection to host:localhost:6819: Connection refused\n" +
			"sacct: error: Sending PersistInit msg: Connection refused\n" +
			"sacct: error: Problem talking to the database: Connection refused\n", 1,
			OutcomeTransient},
		{"silent failure", "", 1, OutcomeTransient},
		{"unknown message", "sacct: error: something new\n", 1, OutcomeTransient},
	} {
		recs := ParseSacct(nil, []byte(tc.stderr), tc.exit)
		if len(recs) != 1 || recs[0].Outcome != tc.want {
			t.Errorf("%s: got %+v, want one %s record", tc.name, recs, tc.want)
		}
	}

	// Rows on stdout with exit 0 are read whatever stderr says.
	recs := ParseSacct([]byte(row("3", "COMPLETED", "0:0", "ok")),
		[]byte("sacct: error: a warning\n"), 0)
	if len(recs) != 1 || recs[0].Outcome != OutcomeJob {
		t.Errorf("rows with a stderr warning: %+v", recs)
	}
}

// TestSacctUnknownState keeps the other jobs of a reply when one has a state qmd does not
// know, and keeps the raw state for the log.
func TestSacctUnknownState(t *testing.T) {
	recs := sacct(t, row("1", "COMPLETED", "0:0", "a")+row("2", "NEW_STATE", "0:0", "b"))
	if len(recs) != 2 || recs[0].Outcome != OutcomeJob || recs[1].Outcome != OutcomeTransient ||
		recs[1].ID != "2" || recs[1].RawState != "NEW_STATE" || recs[1].ExitCode != nil {
		t.Errorf("got %+v", recs)
	}
}

// TestSacctAllocations pins that the parser allocates per call, not per row: 1,000 rows
// must cost the same handful of allocations as 10.
func TestSacctAllocations(t *testing.T) {
	small, large := sacctRows(10), sacctRows(1000)
	a := testing.AllocsPerRun(20, func() { ParseSacctIn(small, nil, 0, time.UTC) })
	b := testing.AllocsPerRun(20, func() { ParseSacctIn(large, nil, 0, time.UTC) })
	if b > a+4 {
		t.Errorf("%v allocations for 10 rows but %v for 1,000: something allocates per row",
			a, b)
	}
}
