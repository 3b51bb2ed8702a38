package slurm

import (
	"strings"
	"testing"
)

// TestClassifyError reads messages Slurm clients print (from the samples, the field cases
// and Slurm's error strings) the way the daemon must act on them.
func TestClassifyError(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		exit   int
		want   Outcome
		id     string
	}{
		// Could not ask.
		{"sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
			1, OutcomeTransient, ""},
		{"sbatch: error: Batch job submission failed: Unable to contact slurm controller " +
			"(connect failure)", 1, OutcomeTransient, ""},
		{"slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
			1, OutcomeTransient, ""},
		{"slurm_load_jobs error: Zero Bytes were transmitted or received", 1,
			OutcomeTransient, ""},
		{"sbatch: error: Batch job submission failed: Resource temporarily unavailable", 1,
			OutcomeTransient, ""},
		{"sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying", 1,
			OutcomeTransient, ""},
		{"sbatch: error: Slurm controller not responding, sleeping and retrying", 1,
			OutcomeTransient, ""},
		{"sacct: error: Problem talking to the database: Connection refused", 1,
			OutcomeTransient, ""},
		{"sbatch: error: Batch job submission failed: Communication connection failure", 1,
			OutcomeTransient, ""},
		{"sbatch: error: Batch job submission failed: Protocol authentication error", 1,
			OutcomeTransient, ""},
		{"sbatch: error: Invalid authentication credential", 1, OutcomeTransient, ""},
		{"scancel: error: Kill job error on job id 27: Unable to contact slurm controller " +
			"(connect failure)", 8, OutcomeTransient, "27"},
		{"", 1, OutcomeTransient, ""},
		{"", -1, OutcomeTransient, ""},
		{"sbatch: error: Batch job submission failed: Something brand new", 1,
			OutcomeTransient, ""},
		{"Segmentation fault (core dumped)", 139, OutcomeTransient, ""},

		// The scheduler refused the request.
		{"sbatch: error: invalid partition specified: nosuchpart\n" +
			"sbatch: error: Batch job submission failed: Invalid partition name specified",
			1, OutcomeRejected, ""},
		{"sbatch: error: Invalid --time specification", 255, OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: Requested time limit is invalid " +
			"(missing or exceeds some limit)", 1, OutcomeRejected, ""},
		{"sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission " +
			"failed: Job violates accounting/QOS policy (job submit limit, user's size and/or " +
			"time limits)", 1, OutcomeRejected, ""},
		{"sbatch: error: AssocMaxSubmitJobLimit", 1, OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: Invalid account or account/partition " +
			"combination specified", 1, OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: Invalid qos specification", 1,
			OutcomeRejected, ""},
		{"sbatch: error: Memory specification can not be satisfied\nsbatch: error: Batch job " +
			"submission failed: Requested node configuration is not available", 1,
			OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: Node count specification invalid", 1,
			OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: Invalid generic resource (gres) " +
			"specification", 1, OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: Invalid feature specification", 1,
			OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: Job dependency problem", 1,
			OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: More processors requested than " +
			"permitted", 1, OutcomeRejected, ""},
		{"sbatch: error: Batch job submission failed: Access/permission denied", 1,
			OutcomeRejected, ""},
		{"sbatch: error: Unable to open file job.sh", 1, OutcomeRejected, ""},
		{"sbatch: error: Batch script contains DOS line breaks (\\r\\n)", 1,
			OutcomeRejected, ""},
		{"sbatch: unrecognized option '--frobnicate'\nTry \"sbatch --help\" for more " +
			"information", 1, OutcomeRejected, ""},

		// The job is not known, named or not.
		{"slurm_load_jobs error: Invalid job id specified", 1, OutcomeUnknownJob, ""},
		{"scancel: error: Kill job error on job id 999999: Invalid job id specified", 0,
			OutcomeUnknownJob, "999999"},
		{"scancel: error: Kill job error on job id 16_3: Invalid job id specified", 1,
			OutcomeUnknownJob, "16_3"},

		{"Slurm accounting storage is disabled", 1, OutcomeAccountingDisabled, ""},
		{"scancel: error: Kill job error on job id 19: Job/step already completing or " +
			"completed", 0, OutcomeOK, "19"},

		// Mixed messages: "could not ask" wins, so nothing changes on half an answer.
		{"sbatch: error: invalid partition specified: gpu\nsbatch: error: Batch job " +
			"submission failed: Socket timed out on send/recv operation", 1,
			OutcomeTransient, ""},
		{"slurm_load_jobs error: Invalid job id specified\nslurm_load_jobs error: Unable " +
			"to contact slurm controller (connect failure)", 1, OutcomeTransient, ""},
	} {
		r := ClassifyError([]byte(tc.stderr), tc.exit)
		if r.Outcome != tc.want || r.ID != tc.id || r.Reason == "" {
			t.Errorf("ClassifyError(%q, %d) = %s id=%q reason=%q; want %s id=%q with a reason",
				tc.stderr, tc.exit, r.Outcome, r.ID, r.Reason, tc.want, tc.id)
		}
	}
}

func TestClassifyErrorReason(t *testing.T) {
	r := ClassifyError([]byte("sbatch: note: checking\nsbatch: error: weird thing\n"), 1)
	if r.Reason != "sbatch: error: weird thing" {
		t.Errorf("reason %q, want the error line", r.Reason)
	}
	r = ClassifyError(nil, 3)
	if r.Reason != "exit status 3 and no message" {
		t.Errorf("reason %q for a silent failure", r.Reason)
	}
	long := "sbatch: error: " + strings.Repeat("é", 400)
	r = ClassifyError([]byte(long), 1)
	if len(r.Reason) > maxReason+len("…") || !strings.HasSuffix(r.Reason, "…") ||
		!strings.HasPrefix(long, strings.TrimSuffix(r.Reason, "…")) {
		t.Errorf("long reason not clipped on a rune boundary: %d bytes", len(r.Reason))
	}
}
