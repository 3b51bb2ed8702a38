package slurm

import (
	"strings"

	"qmd/daemon/job"
)

// states is the one table from Slurm's job state names (squeue %T, sacct State) to qmd's
// states. Held and requeued jobs are pending because Slurm can still run them; a job that
// ended by itself after a node or launch failure is failed, whatever the cause.
// PREEMPTED is cancelled: when Slurm requeues a preempted job it shows the job again as
// PENDING or REQUEUED, in squeue and as a later sacct line, and the last line wins.
var states = map[string]job.State{
	"PENDING":       job.Pending,
	"CONFIGURING":   job.Pending,
	"REQUEUED":      job.Pending,
	"REQUEUE_HOLD":  job.Pending,
	"RESV_DEL_HOLD": job.Pending,
	"RUNNING":       job.Running,
	"RESIZING":      job.Running,
	"SIGNALING":     job.Running,
	"COMPLETING":    job.Completing,
	"STAGE_OUT":     job.Completing,
	"SUSPENDED":     job.Suspended,
	"STOPPED":       job.Suspended,
	"COMPLETED":     job.Completed,
	"FAILED":        job.Failed,
	"OUT_OF_MEMORY": job.Failed,
	"NODE_FAIL":     job.Failed,
	"BOOT_FAIL":     job.Failed,
	"SPECIAL_EXIT":  job.Failed,
	"CANCELLED":     job.Cancelled,
	"REVOKED":       job.Cancelled,
	"PREEMPTED":     job.Cancelled,
	"TIMEOUT":       job.Timeout,
	"DEADLINE":      job.Timeout,
}

// MapState maps a Slurm state as printed to a qmd state. terminal says whether Slurm will
// not run the job again on its own; the parsers clear it for squeue, whose view of an
// ended job is not final. sacct appends the canceller's uid ("CANCELLED by 0"), so a
// " by …" suffix is accepted. ok is false for a state the table does not know, which the
// parsers report as transient rather than guess.
func MapState(raw string) (st job.State, terminal bool, ok bool) {
	name := raw
	if i := strings.IndexByte(raw, ' '); i >= 0 {
		if !strings.HasPrefix(raw[i:], " by ") {
			return "", false, false
		}
		name = raw[:i]
	}
	st, ok = states[name]
	if !ok {
		return "", false, false
	}
	return st, st.Terminal(), true
}

// stateSyntax reports whether s looks like a Slurm state name (upper-case letters and
// underscores, optionally " by " and an uid), known or not. It tells a record line from a
// continuation of the previous job's name, which can hold a newline.
func stateSyntax(s string) bool {
	name, rest, by := strings.Cut(s, " by ")
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return !by || rest != ""
}

// parseExitCode reads sacct's ExitCode "N:S" (exit status N of the batch script, signal S
// that ended it). An empty field is valid and unknown. A bare "N" is read as an exit
// status with no signal known.
func parseExitCode(s string) (code, signal int, hasCode, hasSignal, ok bool) {
	if s == "" {
		return 0, 0, false, false, true
	}
	c, sig, colon := strings.Cut(s, ":")
	code, ok = atoi(c)
	if !ok {
		return 0, 0, false, false, false
	}
	if !colon {
		return code, 0, true, false, true
	}
	signal, ok = atoi(sig)
	if !ok {
		return 0, 0, false, false, false
	}
	return code, signal, true, true, true
}

// atoi reads a short unsigned decimal. It refuses more than nine digits, so no value can
// overflow an int, and it does not allocate, unlike strconv's error path.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// validID reports whether s has the shape of a Slurm job id as squeue and sacct print it:
// a number, then array, heterogeneous-job or step parts ("123_4", "123_[5-9%2]",
// "123+1", "123.batch"). Anything else is not a record line.
func validID(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '_', c == '[', c == ']', c == '-', c == '%', c == ',', c == '+', c == '.':
		default:
			return false
		}
	}
	return true
}
