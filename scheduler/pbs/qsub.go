package pbs

import (
	"strconv"
	"strings"
)

// ParseQsub reads qsub's answer (PBS Pro, Torque and the Slurm wrappers alike). Once qsub
// has printed a job id, the job exists, so an id line settles it even with a non-zero
// exit (`qsub -W block=true` returns the job's own status) or warnings on stderr. The id
// is kept as printed, "[]" and server name included ("123[].pbs01"): that is the handle
// qstat -x and qdel take. When several lines look like ids (a submit filter may print its
// own), the last one counts.
//
// No id means no known job. The answer is rejected only when the message is a refusal by
// the server (unknown queue, over a limit, no destination would take it, a bad resource
// request); anything else, exit 0 included, is transient, because the job may have been
// created before the answer went missing. The message is read from stderr, or from stdout
// when stderr is empty, as the Slurm wrapper's qsub reports errors there.
func ParseQsub(stdout, stderr []byte, exit int) Record {
	lines := strings.Split(string(stdout), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if id := strings.TrimSpace(lines[i]); ValidID(id) {
			return Record{Outcome: OutcomeSubmitted, ID: id}
		}
	}

	msg := messageLines(stderr)
	if len(msg) == 0 {
		msg = messageLines(stdout)
	}
	if len(msg) == 0 {
		if exit == 0 {
			return Record{Outcome: OutcomeTransient,
				Reason: "qsub exited 0 without printing a job id"}
		}
		return Record{Outcome: OutcomeTransient,
			Reason: "qsub exited " + strconv.Itoa(exit) + " without a message"}
	}
	r := classify(msg, "qsub", exit)
	r.ID = ""
	if r.Outcome != OutcomeRejected {
		// Only a refusal is final for a submission; any other answer leaves the job's
		// existence open, so the caller must look for it (by name or QMD_JOB_ID) before
		// submitting again.
		r.Outcome = OutcomeTransient
	}
	if exit == 0 && r.Outcome == OutcomeTransient {
		r.Reason = Clip("qsub printed no job id: " + r.Reason)
	}
	return r
}
