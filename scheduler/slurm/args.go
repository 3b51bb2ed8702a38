package slurm

import (
	"strings"
	"time"
)

// MaxIDsPerCall bounds the ids one squeue, sacct or scancel call names. Argument lists
// stay far below ARG_MAX and the SSH command line, and one failed call leaves at most
// this many jobs unobserved for a cycle.
const MaxIDsPerCall = 100

// The pinned formats. JobName is sacct's last column because users can put `|` in a name,
// and the parser splits a line into at most seven fields.
const (
	SqueueFormat = "%i|%T|%r"
	SacctFormat  = "JobID,State,ExitCode,Submit,Start,End,JobName"
)

// TimeLayout is how SLURM_TIME_FORMAT=standard prints times, and how --starttime is given.
const TimeLayout = "2006-01-02T15:04:05"

// Env returns the variables every Slurm command qmd runs needs on top of the runner's
// cleaned environment: SLURM_TIME_FORMAT=standard, so a user's "relative" or "%s" in a
// login profile cannot change how sacct prints times.
func Env() []string { return []string{"SLURM_TIME_FORMAT=standard"} }

// SbatchArgs builds the sbatch argv for one batch script. --parsable makes sbatch print
// only "id[;cluster]"; name is the job name qmd reconciles by after an sbatch whose answer
// was lost (look it up with squeue --name before submitting again). opts go before the
// script, since anything after it would be the script's own arguments.
func SbatchArgs(name string, opts []string, script string) []string {
	argv := make([]string, 0, len(opts)+4)
	argv = append(argv, "sbatch", "--parsable", "--job-name="+name)
	argv = append(argv, opts...)
	return append(argv, script)
}

// SqueueArgs builds the squeue argv for at most MaxIDsPerCall ids (see Chunk).
// --states=all keeps recently ended jobs in the answer, so a job that just finished is
// not mistaken for one Slurm forgot.
func SqueueArgs(ids []string) []string {
	return []string{"squeue", "--noheader", "--states=all", "--jobs=" + strings.Join(ids, ","),
		"--format=" + SqueueFormat}
}

// SacctArgs builds the sacct argv for at most MaxIDsPerCall ids. since (the earliest
// submission among the ids) keeps out older jobs that had the same id, as ids wrap around
// and restart when a controller's state is reset; it is written as wall time in its own
// location, which must be the cluster's zone. --allocations leaves out job steps, and
// --duplicates shows every run of a requeued job so the parser can take the last.
func SacctArgs(ids []string, since time.Time) []string {
	return []string{"sacct", "--noheader", "--parsable2", "--allocations", "--duplicates",
		"--starttime=" + since.Format(TimeLayout), "--jobs=" + strings.Join(ids, ","),
		"--format=" + SacctFormat}
}

// SqueueByNameArgs builds the squeue argv that looks a job up by the unique name qmd gave
// it. After an sbatch whose answer was lost (a socket timeout), the job may exist anyway;
// the daemon adopts what this finds instead of submitting a second copy.
func SqueueByNameArgs(name string) []string {
	return []string{"squeue", "--noheader", "--states=all", "--name=" + name,
		"--format=" + SqueueFormat}
}

// SacctByNameArgs is SqueueByNameArgs for jobs squeue has already forgotten. since matters
// more here than in SacctArgs: without --jobs, sacct's default window starts at midnight
// today and would miss a job submitted the day before.
func SacctByNameArgs(name string, since time.Time) []string {
	return []string{"sacct", "--noheader", "--parsable2", "--allocations", "--duplicates",
		"--starttime=" + since.Format(TimeLayout), "--name=" + name,
		"--format=" + SacctFormat}
}

// ScancelArgs builds the scancel argv for at most MaxIDsPerCall ids. --verbose makes
// scancel say what happened to each id; without it an unknown id is silent, exit 0.
func ScancelArgs(ids []string) []string {
	argv := make([]string, 0, len(ids)+2)
	argv = append(argv, "scancel", "--verbose")
	return append(argv, ids...)
}

// Chunk splits ids into runs of at most n (MaxIDsPerCall when n < 1), in order. The runs
// share ids' backing array with their capacity capped, so appending to one copies it
// rather than overwriting the next.
func Chunk(ids []string, n int) [][]string {
	if n < 1 {
		n = MaxIDsPerCall
	}
	chunks := make([][]string, 0, (len(ids)+n-1)/n)
	for len(ids) > n {
		chunks = append(chunks, ids[:n:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		chunks = append(chunks, ids)
	}
	return chunks
}
