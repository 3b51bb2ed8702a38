package slurm

import "strings"

// clusterHeader starts the line squeue prints before each cluster's jobs when run with
// --clusters, even with --noheader.
const clusterHeader = "CLUSTER: "

// ParseSqueue reads `squeue --noheader --states=all --format=%i|%T|%r` output (see
// SqueueArgs): one record per job id, in order of first appearance, the last line for an
// id winning. Records are never terminal and carry no exit code: squeue keeps ended jobs
// only until MinJobAge and does not print how they ended, so the daemon takes the end
// from sacct. The pending reason %r goes to Reason; "None" (no reason) is dropped.
//
// A non-zero exit is read by ClassifyError; for one finished id squeue says "Invalid job
// id specified" without naming it, which gives an unknown_job record with no id. Ids that
// a multi-id reply leaves out produce no record. A line that is not id|STATE|reason means
// the format is not the pinned one, and the whole answer is one transient record: a
// partial reading of a drifted format could tell the daemon wrong states.
func ParseSqueue(stdout, stderr []byte, exit int) []Record {
	if exit != 0 || (isBlank(stdout) && hasError(stderr)) {
		return []Record{ClassifyError(stderr, exit)}
	}

	s := string(stdout)
	var out []Record
	index := map[string]int{}
	lineNo := 0
	for pos := 0; pos < len(s); {
		line, _, next := nextLine(s, pos)
		pos = next
		lineNo++
		if isBlankString(line) || strings.HasPrefix(line, clusterHeader) {
			continue
		}
		id, rest, ok1 := strings.Cut(line, "|")
		raw, reason, ok2 := strings.Cut(rest, "|")
		if !ok1 || !ok2 || !validID(id) || !stateSyntax(raw) {
			return []Record{unexpected("squeue", lineNo, line)}
		}

		r := Record{ID: id, RawState: raw}
		if reason != "None" {
			r.Reason = reason
		}
		if st, _, known := MapState(raw); known {
			r.Outcome, r.State = OutcomeJob, st
		} else {
			r.Outcome, r.Reason = OutcomeTransient, "job state not known to qmd"
		}
		if i, dup := index[id]; dup {
			out[i] = r
			continue
		}
		index[id] = len(out)
		out = append(out, r)
	}
	return out
}
