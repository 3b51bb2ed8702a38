package pbs

import "strconv"

// ParseQdel reads qdel's answer (PBS Pro, Torque and the Slurm wrappers alike). qdel is
// silent for every id it deletes, so a quiet success is a single ok record and ids that
// no message names were deleted.
//
// Each message line that names a job gives that job one record, the last line for it
// winning: a job that has already finished ("Job has finished", Torque's "invalid state
// for job - COMPLETE") is ok, since the goal, a job that no longer runs, holds, and how
// it ended comes from qstat; an id the server does not know is unknown_job; a server
// that did not answer is transient; a refusal (not the job's owner) is rejected. Lines
// that name no job are read together into one more record when qdel failed.
//
// A failure with no message at all is ok: that is how the Slurm wrapper's qdel answers
// for a job that already ended or that Slurm does not know (it only prints other
// errors), and a PBS or Torque qdel that failed for another reason says so.
func ParseQdel(stdout, stderr []byte, exit int) []Record {
	var list recordList
	var anonymous []string
	lines := append(messageLines(stderr), messageLines(stdout)...)
	for _, line := range lines {
		id := namedJobID(line)
		if id == "" {
			anonymous = append(anonymous, line)
			continue
		}
		out, ok := classifyLine(line)
		if !ok {
			out = OutcomeTransient
		}
		if out == OutcomeFinished {
			out = OutcomeOK
		}
		list.add(Record{Outcome: out, ID: id, Reason: Clip(line)})
	}

	switch {
	case exit != 0 && len(lines) == 0:
		list.add(Record{Outcome: OutcomeOK, Reason: "qdel exited " + strconv.Itoa(exit) +
			" without a message: the job had already ended or is not known"})
	case exit != 0 && len(anonymous) > 0:
		r := classify(anonymous, "qdel", exit)
		if r.Outcome == OutcomeFinished {
			r.Outcome = OutcomeOK
		}
		list.add(r)
	}
	if len(list.out) == 0 {
		return []Record{{Outcome: OutcomeOK}}
	}
	return list.out
}
