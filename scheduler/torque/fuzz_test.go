package torque

import (
	"encoding/json"
	"strings"
	"testing"

	"qmd/daemon/job"
	"qmd/scheduler/pbs"
)

// FuzzParseTorqueText feeds qstat -f text in either layout (seeded from the cases and
// testdata/fuzz) and checks the property every parser keeps: no panic, known outcomes, a
// job record with a well-formed id taken from a "Job Id:" line, a defined state, an exit
// code or signal only when terminal, one record per id, and a JSON rendering that works.
func FuzzParseTorqueText(f *testing.F) {
	for _, c := range loadCases(f) {
		if c.Scheduler == "torque" && c.Command == "qstat" {
			f.Add(c.stdoutBytes(f), []byte(c.Stderr), c.ExitCode)
		}
	}
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, exit int) {
		recs := ParseQstat(stdout, stderr, exit)
		ids := map[string]bool{}
		for _, r := range recs {
			switch r.Outcome {
			case pbs.OutcomeJob:
				if !pbs.ValidID(r.ID) || !r.State.Valid() ||
					!strings.Contains(string(stdout), "Job Id:") {
					t.Fatalf("job record %+v", r)
				}
				if !r.Terminal && (r.ExitCode != nil || r.Signal != nil || r.State.Terminal()) {
					t.Fatalf("a live record with an ending: %+v", r)
				}
				if r.Terminal && !r.State.Terminal() && r.State != job.Completing {
					t.Fatalf("terminal record in state %s", r.State)
				}
			case pbs.OutcomeTransient, pbs.OutcomeUnknownJob, pbs.OutcomeFinished,
				pbs.OutcomeOK, pbs.OutcomeRejected:
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
	})
}
