package torque

import (
	"qmd/scheduler"
	"qmd/scheduler/pbs"
)

// Options configure a Backend; they are PBS Pro's, since the two share one backend.
type Options = pbs.Options

// Dialect is Torque's: `qstat -f` text (never -x, which is XML on Torque), and, to find
// a job whose qsub answer was lost, `qstat -f` of every job the user may see, matched by
// name and QMD_JOB_ID. qselect would be cheaper, but the Slurm wrappers have none, and a
// lookup that fails on a site would leave its jobs stuck in submitting; Torque keeps
// finished jobs for keep_completed only, so the list stays short.
var Dialect = pbs.Dialect{
	Name:       pbs.FlavourTorque,
	QstatArgs:  QstatArgs,
	ParseQstat: ParseQstatIn,
	ForeignStates: map[string]bool{
		"F": true, "X": true, "M": true, "B": true,
	},
}

// Backend implements scheduler.Scheduler for Torque and for the Slurm wrappers
// (slurm-wlm-torque). It is the PBS backend speaking Torque's dialect.
type Backend struct {
	*pbs.Backend
}

var _ scheduler.Scheduler = (*Backend)(nil)

// New returns a Torque backend.
func New(opt Options) *Backend { return &Backend{pbs.NewDialect(opt, Dialect)} }
