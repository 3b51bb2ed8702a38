package pbs

import (
	"fmt"
	"strings"
)

// messages maps fragments of PBS Pro, Torque and Slurm-wrapper messages (lower case) to
// what they mean for qmd. Exit codes differ between the three (PBS exits with the low
// byte of its error number, the wrappers with 1 or a count), so the text decides and the
// exit code only fills in when there is no text. The first matching fragment wins, so a
// more specific fragment comes before a more general one. A message that matches nothing
// is transient: a qsub whose answer qmd cannot read may have created the job, and a poll
// that failed must change nothing.
var messages = []struct {
	fragment string
	outcome  Outcome
}{
	// Could not ask: the server, its authentication daemon or the network did not answer.
	{"cannot connect to", OutcomeTransient},
	{"unable to communicate", OutcomeTransient},
	{"connection refused", OutcomeTransient},
	{"connection timed out", OutcomeTransient},
	{"connection reset", OutcomeTransient},
	{"timed out", OutcomeTransient},
	{"no route to host", OutcomeTransient},
	{"network is unreachable", OutcomeTransient},
	{"communication failure", OutcomeTransient},
	{"end of file", OutcomeTransient},
	{"server is busy", OutcomeTransient},
	{"try again", OutcomeTransient},
	{"temporarily unavailable", OutcomeTransient},
	{"pbs_iff", OutcomeTransient},
	{"trqauthd", OutcomeTransient},
	{"munge", OutcomeTransient},
	// Authentication trouble (munge, trqauthd, pbs_iff) needs an admin, but says nothing
	// against the job itself, so it must not read as a rejection.
	{"credential", OutcomeTransient},
	{"authentication", OutcomeTransient},
	// The Slurm wrappers: libslurm's messages, and qstat's "die" when the controller is
	// away.
	{"unable to contact slurm controller", OutcomeTransient},
	{"problem loading jobs", OutcomeTransient},
	{"socket timed out", OutcomeTransient},

	{"unknown job id", OutcomeUnknownJob},
	{"invalid job id", OutcomeUnknownJob},
	{"job has finished", OutcomeFinished},
	// Torque's qdel on a completed job: "invalid state for job - COMPLETE".
	{"state for job - complete", OutcomeFinished},

	// The request itself is wrong or over a limit: the same qsub fails again.
	{"unknown queue", OutcomeRejected},
	{"would exceed", OutcomeRejected},
	{"rejected by all possible destinations", OutcomeRejected},
	{"exceeds queue", OutcomeRejected},
	{"violates queue", OutcomeRejected},
	{"exceed", OutcomeRejected},
	{"unknown resource", OutcomeRejected},
	{"illegal attribute or resource value", OutcomeRejected},
	{"illegal -", OutcomeRejected},
	{"invalid resource", OutcomeRejected},
	{"resource request", OutcomeRejected},
	{"cannot be satisfied", OutcomeRejected},
	{"queue is not enabled", OutcomeRejected},
	{"not allowed", OutcomeRejected},
	{"unauthorized request", OutcomeRejected},
	{"bad uid", OutcomeRejected},
	{"maximum number of jobs", OutcomeRejected},
	{"directive error", OutcomeRejected},
	{"script file", OutcomeRejected},
	{usageLine, OutcomeRejected},
	// The Slurm wrappers pass sbatch's refusals through.
	{"invalid partition", OutcomeRejected},
	{"invalid account", OutcomeRejected},
	{"invalid qos", OutcomeRejected},
	{"requested node configuration is not available", OutcomeRejected},
	{"access/permission denied", OutcomeRejected},
}

// usageLine starts the usage text a command prints when it does not accept its
// arguments (the wrapper's qsub for a script on stdin): qmd's own command line is wrong,
// and sending it again cannot help.
const usageLine = "usage:"

// rank decides between lines of one message that disagree. A transient line ranks first:
// if any part of the answer says the server was not reached, none of it is trusted.
var rank = map[Outcome]int{
	OutcomeTransient:  5,
	OutcomeUnknownJob: 4,
	OutcomeFinished:   3,
	OutcomeOK:         2,
	OutcomeRejected:   1,
}

// classifyLine returns the outcome a message line means, and false when no fragment
// matches.
func classifyLine(line string) (Outcome, bool) {
	lower := strings.ToLower(line)
	for _, m := range messages {
		if strings.Contains(lower, m.fragment) {
			return m.outcome, true
		}
	}
	return "", false
}

// classify reads the lines of a message that name no job as one answer: the outcome of
// the highest-ranked line, with that line as Reason. Among lines of the same rank the
// first that starts with the command's name ("qstat: cannot connect to server …") is the
// most telling and becomes the reason. With no recognised line the answer is transient;
// with no line at all the exit code decides (see exitOnly).
func classify(lines []string, command string, exit int) Record {
	best, bestRank, bestNamed := Record{}, 0, false
	for _, line := range lines {
		out, ok := classifyLine(line)
		if !ok {
			continue
		}
		named := strings.HasPrefix(line, command+":")
		if rank[out] > bestRank || rank[out] == bestRank && named && !bestNamed {
			reason := Clip(line)
			if strings.HasPrefix(strings.ToLower(line), usageLine) {
				reason = command + " printed its usage text: it did not accept qmd's arguments"
			}
			best, bestRank, bestNamed = Record{Outcome: out, Reason: reason}, rank[out], named
		}
	}
	if bestRank > 0 {
		return best
	}
	if len(lines) == 0 {
		return exitOnly(command, exit)
	}
	reason := lines[0]
	for _, line := range lines {
		if strings.HasPrefix(line, command+":") || strings.Contains(strings.ToLower(line),
			"error") {
			reason = line
			break
		}
	}
	return Record{Outcome: OutcomeTransient, Reason: Clip(reason)}
}

// exitOnly reads an exit code that came without any message. PBS commands exit with the
// low byte of the PBS error number, and the Slurm wrappers' qstat exits 153 in silence for
// an id Slurm does not know, so 153 (PBSE_UNKJOBID) and 35 (PBSE_HISTJOBID) keep their
// meaning without text; any other silent failure says nothing.
func exitOnly(command string, exit int) Record {
	switch exit {
	case 153:
		return Record{Outcome: OutcomeUnknownJob,
			Reason: command + " exited 153 (unknown job id) without a message"}
	case 35:
		return Record{Outcome: OutcomeFinished,
			Reason: command + " exited 35 (job has finished) without a message"}
	}
	return Record{Outcome: OutcomeTransient,
		Reason: fmt.Sprintf("%s exited %d without a message", command, exit)}
}

// messageLines returns the non-blank lines of out, trimmed of blanks and of the single
// quotes the Slurm wrapper's qsub puts around the sbatch output it quotes.
func messageLines(out []byte) []string {
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(strings.Trim(strings.TrimSpace(line), "'")); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// maxReason is how many bytes of printed text Clip keeps.
const maxReason = 300

// Clip keeps at most 300 bytes of printed text for a Reason, cut where a character starts,
// with invalid UTF-8 replaced, so the reason stays one clean JSON string; whoever ran the
// command still has all of it.
func Clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxReason {
		return s
	}
	end := 0
	for i := range s { // i steps from one character's start to the next
		if i > maxReason {
			break
		}
		end = i
	}
	return s[:end] + "…"
}

// recordList collects records in order of first appearance, one per id.
type recordList struct {
	out   []Record
	index map[string]int
}

// add appends r, or replaces the earlier record with r's id.
func (l *recordList) add(r Record) {
	if r.ID != "" {
		if l.index == nil {
			l.index = map[string]int{}
		}
		if i, dup := l.index[r.ID]; dup {
			l.out[i] = r
			return
		}
		l.index[r.ID] = len(l.out)
	}
	l.out = append(l.out, r)
}

// has reports whether a record for id was added.
func (l *recordList) has(id string) bool {
	_, ok := l.index[id]
	return ok
}
