package pbs

import (
	"encoding/json"
	"testing"
)

// addSeeds seeds a fuzz target with the outputs of every pbs case of command; the files
// in testdata/fuzz/<target> add broken JSON that go test replays on every run.
func addSeeds(f *testing.F, commands ...string) {
	f.Helper()
	for _, c := range loadCases(f) {
		for _, cmd := range commands {
			if c.Scheduler == "pbs" && c.Command == cmd {
				f.Add(c.stdoutBytes(f), []byte(c.Stderr), c.ExitCode)
			}
		}
	}
}

// checkRecords is the property every parser keeps, whatever it is fed: a known outcome;
// a job record with a well-formed id, a defined state, and an exit code or signal only on
// a terminal record; job fields on job records only; one record per id; and a JSON
// rendering that works.
func checkRecords(t *testing.T, recs []Record) {
	t.Helper()
	ids := map[string]bool{}
	for _, r := range recs {
		switch r.Outcome {
		case OutcomeJob:
			if !ValidID(r.ID) || !r.State.Valid() {
				t.Fatalf("job record %+v", r)
			}
			if !r.Terminal && (r.ExitCode != nil || r.Signal != nil || r.State.Terminal()) {
				t.Fatalf("a live record with an ending: %+v", r)
			}
			if r.Terminal && !r.State.Terminal() && r.State != "completing" {
				t.Fatalf("terminal record in state %s", r.State)
			}
		case OutcomeSubmitted, OutcomeRejected, OutcomeTransient, OutcomeUnknownJob,
			OutcomeFinished, OutcomeOK:
			if r.State != "" || r.Terminal || r.ExitCode != nil || r.Signal != nil {
				t.Fatalf("job fields on a %s record: %+v", r.Outcome, r)
			}
		default:
			t.Fatalf("outcome %q", r.Outcome)
		}
		if r.ID != "" {
			if ids[r.ID] {
				t.Fatalf("two records for %q", r.ID)
			}
			ids[r.ID] = true
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("marshal %+v: %v", r, err)
		}
	}
}

func FuzzParsePBSJSON(f *testing.F) {
	addSeeds(f, "qstat")
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, exit int) {
		recs := ParseQstat(stdout, stderr, exit)
		checkRecords(t, recs)

		// On valid JSON the tolerant reader agrees with encoding/json about which jobs
		// there are: every job record is one of the document's keys.
		var doc struct{ Jobs map[string]json.RawMessage }
		if json.Valid(stdout) && json.Unmarshal(stdout, &doc) == nil {
			for _, r := range recs {
				if _, ok := doc.Jobs[r.ID]; r.Outcome == OutcomeJob && !ok {
					t.Fatalf("job %q is not in the document", r.ID)
				}
			}
		}
	})
}

func FuzzParseQsubQdel(f *testing.F) {
	addSeeds(f, "qsub", "qdel")
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, exit int) {
		r := ParseQsub(stdout, stderr, exit)
		switch {
		case r.Outcome == OutcomeSubmitted && !ValidID(r.ID):
			t.Fatalf("submitted with id %q", r.ID)
		case r.Outcome != OutcomeSubmitted && r.Outcome != OutcomeRejected &&
			r.Outcome != OutcomeTransient:
			t.Fatalf("qsub gave a %s record", r.Outcome)
		}
		checkRecords(t, []Record{r})

		recs := ParseQdel(stdout, stderr, exit)
		if len(recs) == 0 {
			t.Fatal("qdel gave no record")
		}
		checkRecords(t, recs)
	})
}
