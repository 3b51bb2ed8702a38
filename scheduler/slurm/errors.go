package slurm

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// messages maps fragments of Slurm error messages (lower case) to what they mean for qmd.
// Every Slurm client fails with exit 1 whatever went wrong, so the text is all there is.
// A message that matches nothing is transient: a job submission whose answer qmd cannot
// read may still have created the job, and a poll that failed must change nothing.
var messages = []struct {
	fragment string
	outcome  Outcome
}{
	{"accounting storage is disabled", OutcomeAccountingDisabled},

	// Could not ask: the controller or database did not answer in time, or at all.
	{"socket timed out", OutcomeTransient},
	{"unable to contact slurm controller", OutcomeTransient},
	{"zero bytes were transmitted or received", OutcomeTransient},
	{"connection refused", OutcomeTransient},
	{"connection timed out", OutcomeTransient},
	{"connection reset", OutcomeTransient},
	{"communication connection failure", OutcomeTransient},
	{"not responding", OutcomeTransient},
	{"temporarily unable", OutcomeTransient},
	{"resource temporarily unavailable", OutcomeTransient},
	{"problem talking to the database", OutcomeTransient},
	{"persistent connection", OutcomeTransient},
	{"standby mode", OutcomeTransient},
	{"no route to host", OutcomeTransient},
	{"network is unreachable", OutcomeTransient},
	// A munge or credential failure is a site problem that someone must fix, not a
	// verdict on the job, so it is kept out of the "invalid …" rejections below.
	{"authentication", OutcomeTransient},
	{"credential", OutcomeTransient},

	{"invalid job id specified", OutcomeUnknownJob},
	{"already completing or completed", OutcomeOK},

	// The request itself is wrong or over a limit: the same sbatch will fail again.
	{"invalid partition", OutcomeRejected},
	{"invalid account", OutcomeRejected},
	{"invalid qos", OutcomeRejected},
	{"invalid wckey", OutcomeRejected},
	{"invalid user id", OutcomeRejected},
	{"invalid node name", OutcomeRejected},
	{"invalid feature specification", OutcomeRejected},
	{"invalid generic resource", OutcomeRejected},
	{"invalid trackable resource", OutcomeRejected},
	{"invalid job array specification", OutcomeRejected},
	{"invalid --", OutcomeRejected},
	{"invalid numeric value", OutcomeRejected},
	{"invalid option", OutcomeRejected},
	{"unrecognized option", OutcomeRejected},
	{"requested time limit is invalid", OutcomeRejected},
	{"violates accounting/qos policy", OutcomeRejected},
	{"maxsubmitjob", OutcomeRejected},
	{"grpsubmitjob", OutcomeRejected},
	{"memory specification can not be satisfied", OutcomeRejected},
	{"cpu count per node can not be satisfied", OutcomeRejected},
	{"requested node configuration is not available", OutcomeRejected},
	{"requested partition configuration not available", OutcomeRejected},
	{"node count specification invalid", OutcomeRejected},
	{"more processors requested than permitted", OutcomeRejected},
	{"requested reservation is invalid", OutcomeRejected},
	{"not permitted to use this partition", OutcomeRejected},
	{"job dependency problem", OutcomeRejected},
	{"access/permission denied", OutcomeRejected},
	{"unable to open file", OutcomeRejected},
	{"dos line breaks", OutcomeRejected},
	{"does not look like a batch script", OutcomeRejected},
}

// rank orders outcomes when a message has lines of several kinds. "Could not ask" wins
// over everything, because acting on half an answer is worse than asking again.
var rank = map[Outcome]int{
	OutcomeTransient:          5,
	OutcomeAccountingDisabled: 4,
	OutcomeUnknownJob:         3,
	OutcomeOK:                 2,
	OutcomeRejected:           1,
}

// classifyLine returns the outcome the line's message means, and false when no fragment
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

// ClassifyError reads a failed command's message. The result is rejected, transient,
// unknown_job, accounting_disabled or ok, with the line it was read from as Reason and
// the job id when that line names one ("… on job id 27: …"). With no message it is
// transient and says the exit status, since nothing was learnt.
func ClassifyError(stderr []byte, exit int) Record {
	best := Record{Outcome: OutcomeTransient}
	bestRank := 0
	firstError := ""
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if firstError == "" && strings.Contains(strings.ToLower(line), "error") {
			firstError = line
		}
		out, ok := classifyLine(line)
		if !ok || rank[out] <= bestRank {
			continue
		}
		best = Record{Outcome: out, ID: namedJobID(line), Reason: clip(line)}
		bestRank = rank[out]
	}
	if bestRank > 0 {
		return best
	}

	// Nothing recognised: say why qmd treats it as transient, quoting what was printed.
	switch {
	case firstError != "":
		best.Reason = clip(firstError)
	case strings.TrimSpace(string(stderr)) != "":
		best.Reason = clip(firstLine(string(stderr)))
	default:
		best.Reason = fmt.Sprintf("exit status %d and no message", exit)
	}
	best.ID = namedJobID(best.Reason)
	return best
}

// namedJobID returns the id in "job id 27: …" (scancel's and slurmctld's wording), or "".
func namedJobID(line string) string {
	// The search folds case in place: an index into strings.ToLower(line) would not be an
	// index into line, since lowering can change a character's length in bytes.
	const marker = "job id "
	i := -1
	for j := 0; j+len(marker) <= len(line); j++ {
		if strings.EqualFold(line[j:j+len(marker)], marker) {
			i = j
			break
		}
	}
	if i < 0 {
		return ""
	}
	rest := line[i+len(marker):]
	end := strings.IndexAny(rest, ": \t")
	if end >= 0 {
		rest = rest[:end]
	}
	if !validID(rest) {
		return ""
	}
	return rest
}

// maxReason caps the bytes of a message line kept as Reason; the full output stays with
// the caller.
const maxReason = 300

// clip shortens s to maxReason bytes on a rune boundary, so it stays valid UTF-8 in JSON.
func clip(s string) string {
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// firstLine returns the first non-blank line of s, trimmed.
func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}
