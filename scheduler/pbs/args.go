package pbs

import (
	"slices"
	"strings"
)

// MaxIDsPerCall caps the ids a single qstat or qdel names. A hundred ids keep the command
// line short for any shell or SSH channel, and a call that fails then leaves no more than
// a hundred jobs without news until the next poll.
const MaxIDsPerCall = 100

// VarJobID is the variable QsubArgs puts in every job's environment, holding the qmd job
// id. It comes back in qstat's Variable_List (Record.QMDJobID), whole, wherever the job
// name had to be shortened.
const VarJobID = "QMD_JOB_ID"

// maxName is the longest job name every PBS server accepts: older PBS Pro and Torque
// servers refuse or cut names over 15 characters, and qstat's job lists print no more.
const maxName = 15

// Tag is the job name that marks a qmd job on PBS and Torque: "qmd" and the job id, cut
// to 15 characters. qmd's ids are 12 characters, so the tag is whole; it drops the "-"
// Slurm's tag has to get there. Reconciling after a lost qsub answer matches the
// QMD_JOB_ID variable first, which is never cut, and the tag after it.
func Tag(jobID string) string {
	name := "qmd" + jobID
	if len(name) > maxName {
		name = name[:maxName]
	}
	return name
}

// QstatArgs builds the PBS Pro qstat argv for at most MaxIDsPerCall ids (see Chunk): -f for
// every attribute, -F json for a format that does not move between versions, -x so a job
// that has finished reads as F with its Exit_status instead of exit 35 "Job has finished".
func QstatArgs(ids []string) []string {
	argv := make([]string, 0, len(ids)+5)
	argv = append(argv, "qstat", "-f", "-F", "json", "-x")
	return append(argv, ids...)
}

// QsubArgs builds the qsub argv for one batch script of the qmd job jobID (an id as
// job.NewID makes: hex digits, which need no quoting in -v). The site's opts come first
// and qmd's -N and -v after them, so on servers where a later option wins qmd's name
// stands; any -v among opts is merged into qmd's single -v, since servers disagree on
// whether a second -v adds to the first or replaces it. The script goes last, as
// anything after it would be the script's arguments.
func QsubArgs(jobID string, opts []string, script string) []string {
	vars := []string{}
	argv := make([]string, 0, len(opts)+6)
	argv = append(argv, "qsub")
	for i := 0; i < len(opts); i++ {
		switch o := opts[i]; {
		case o == "-v" && i+1 < len(opts):
			vars = append(vars, opts[i+1])
			i++
		case strings.HasPrefix(o, "-v") && len(o) > 2:
			vars = append(vars, o[2:])
		default:
			argv = append(argv, o)
		}
	}
	vars = append(vars, VarJobID+"="+jobID)
	argv = append(argv, "-N", Tag(jobID), "-v", strings.Join(vars, ","))
	return append(argv, script)
}

// QdelArgs builds the qdel argv for at most MaxIDsPerCall ids.
func QdelArgs(ids []string) []string {
	argv := make([]string, 0, len(ids)+1)
	argv = append(argv, "qdel")
	return append(argv, ids...)
}

// Chunk cuts ids, in order, into groups of n or fewer for QstatArgs and QdelArgs (n < 1
// means MaxIDsPerCall). Each group is clipped to its length, so a caller appending to one
// group cannot write over the ids of the next.
func Chunk(ids []string, n int) [][]string {
	if n < 1 {
		n = MaxIDsPerCall
	}
	return slices.Collect(slices.Chunk(ids, n))
}
