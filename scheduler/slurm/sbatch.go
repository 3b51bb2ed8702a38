package slurm

import "strings"

// submittedPrefix starts the line sbatch prints without --parsable. Sites and wrappers
// that drop --parsable still print it, so both forms are read.
const submittedPrefix = "Submitted batch job "

// ParseSbatch reads sbatch's answer. A job id on stdout means the job exists, whatever the
// exit status and stderr say: sbatch prints notices on stderr with exit 0, and
// `sbatch --wait` exits with the job's own status after printing the id. The id is taken
// from the last line that has one, because site plugins may print lines before it.
// Without an id the result is rejected when the message says the scheduler refused the job
// (see ClassifyError) and transient otherwise, exit 0 included, since the job may have
// been created.
func ParseSbatch(stdout, stderr []byte, exit int) Record {
	lines := strings.Split(string(stdout), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if id, cluster, ok := sbatchLine(strings.TrimSpace(lines[i])); ok {
			return Record{Outcome: OutcomeSubmitted, ID: id, Cluster: cluster}
		}
	}

	msg := stderr
	if strings.TrimSpace(string(msg)) == "" {
		msg = stdout // wrappers (the Torque qsub one, for instance) print errors on stdout
	}
	r := ClassifyError(msg, exit)
	r.ID = ""
	if r.Outcome != OutcomeRejected {
		// Only a refusal is final for a submission; any other message leaves the job's
		// existence open.
		r.Outcome = OutcomeTransient
	}
	if exit == 0 && r.Outcome == OutcomeTransient {
		if strings.TrimSpace(string(msg)) == "" {
			r.Reason = "sbatch exited 0 without printing a job id"
		} else {
			r.Reason = clip("sbatch printed no job id: " + r.Reason)
		}
	}
	return r
}

// sbatchLine reads "Submitted batch job N[ on cluster X]" or the --parsable "N[;X]".
func sbatchLine(line string) (id, cluster string, ok bool) {
	if rest, found := strings.CutPrefix(line, submittedPrefix); found {
		id, rest, _ = strings.Cut(rest, " ")
		if !allDigits(id) {
			return "", "", false
		}
		if c, found := strings.CutPrefix(rest, "on cluster "); found {
			cluster = strings.TrimSpace(c)
		}
		return id, cluster, true
	}
	id, cluster, semi := strings.Cut(line, ";")
	if !allDigits(id) {
		return "", "", false
	}
	if semi && (cluster == "" || strings.ContainsAny(cluster, " \t;")) {
		return "", "", false
	}
	return id, cluster, true
}

// allDigits reports whether s is a non-empty run of ASCII digits. Job ids of federated
// clusters exceed nine digits, so this does not go through atoi.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
