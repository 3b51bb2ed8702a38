package slurm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addSeeds seeds a fuzz target with the stdout and stderr of every case for command, so
// the fuzzer starts from real outputs (the samples relaid out, the field cases).
func addSeeds(f *testing.F, command string) {
	f.Helper()
	for _, name := range caseFiles {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		var cases []fieldCase
		if err := json.Unmarshal(b, &cases); err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			if c.Scheduler == "slurm" && c.Command == command {
				f.Add([]byte(c.Stdout), []byte(c.Stderr), c.ExitCode)
			}
		}
	}
	f.Add(sacctRows(30), []byte(nil), 0)
}

// checkRecords is the property every parser keeps on any input: a known outcome; a job
// record with an id taken verbatim from the input, a defined state, and an exit code only
// when it is final; at most one record per id and no more records than lines; and a JSON
// rendering that works.
func checkRecords(t *testing.T, stdout []byte, recs []Record, squeue bool) {
	t.Helper()
	ids := map[string]bool{}
	lines := strings.Count(string(stdout), "\n") + 1
	if len(recs) > lines && len(recs) > 1 {
		t.Fatalf("%d records from %d lines", len(recs), lines)
	}
	for _, r := range recs {
		switch r.Outcome {
		case OutcomeJob:
			if r.ID == "" || !strings.Contains(string(stdout), r.ID) {
				t.Fatalf("job id %q not in the input", r.ID)
			}
			if !r.State.Valid() || r.Terminal != (r.State.Terminal() && !squeue) {
				t.Fatalf("state %q terminal=%v (squeue=%v)", r.State, r.Terminal, squeue)
			}
			if !r.Terminal && (r.ExitCode != nil || r.Signal != nil) {
				t.Fatalf("exit code on a non-final record: %+v", r)
			}
			if ids[r.ID] {
				t.Fatalf("two records for id %q", r.ID)
			}
			ids[r.ID] = true
		case OutcomeTransient, OutcomeUnknownJob, OutcomeAccountingDisabled, OutcomeRejected,
			OutcomeOK:
			if r.State != "" || r.Terminal || r.ExitCode != nil {
				t.Fatalf("job fields on a %s record: %+v", r.Outcome, r)
			}
		default:
			t.Fatalf("outcome %q", r.Outcome)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("marshal %+v: %v", r, err)
		}
	}
}

func FuzzParseSacct(f *testing.F) {
	addSeeds(f, "sacct")
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, exit int) {
		recs := ParseSacctIn(stdout, stderr, exit, time.UTC)
		if exit != 0 && len(recs) != 1 {
			t.Fatalf("a failed sacct gave %d records", len(recs))
		}
		checkRecords(t, stdout, recs, false)
	})
}

func FuzzParseSqueue(f *testing.F) {
	addSeeds(f, "squeue")
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, exit int) {
		recs := ParseSqueue(stdout, stderr, exit)
		if exit != 0 && len(recs) != 1 {
			t.Fatalf("a failed squeue gave %d records", len(recs))
		}
		checkRecords(t, stdout, recs, true)
	})
}

func FuzzParseSbatchScancel(f *testing.F) {
	addSeeds(f, "sbatch")
	addSeeds(f, "scancel")
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, exit int) {
		r := ParseSbatch(stdout, stderr, exit)
		if r.Outcome == OutcomeSubmitted && (r.ID == "" || !allDigits(r.ID)) {
			t.Fatalf("submitted with id %q", r.ID)
		}
		switch r.Outcome {
		case OutcomeSubmitted, OutcomeRejected, OutcomeTransient:
		default:
			t.Fatalf("sbatch gave a %s record: %+v", r.Outcome, r)
		}
		if recs := ParseScancel(stdout, stderr, exit); len(recs) == 0 {
			t.Fatal("scancel gave no record")
		}
	})
}
