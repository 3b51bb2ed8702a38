// Package scheduler defines the seam between qmd's job manager and the systems that run
// jobs: the embedded local executor now, Slurm, PBS and Torque behind the same interface.
package scheduler

import (
	"context"
	"errors"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler/runner"
)

// Handle names one job to a scheduler: qmd's id, the job directory the batch script lives
// in, and whatever the scheduler returned when the job was handed over.
type Handle struct {
	JobID       string
	Dir         string
	SchedulerID string
	Meta        string // scheduler-private data (JSON), stored with the job
	State       job.State
	// Owner, when set, is the user the scheduler's commands for this job run as
	// (run_as = "owner"); nil runs them as qmd's own user.
	Owner *runner.Credential
}

// SubmitRequest hands a rendered job directory to a scheduler.
type SubmitRequest struct {
	JobID  string
	Dir    string // job directory holding the batch script
	Script string // batch script file name inside Dir
	Tag    string // names the qmd job in the scheduler (job name or comment), for reconciling
	Owner  *runner.Credential
}

// Submission is what the scheduler answered to a submission.
type Submission struct {
	SchedulerID string
	Meta        string
	State       job.State // usually Pending
}

// Status is one observation of a job by its scheduler. State is Pending, Running or
// Suspended while the job lives; Completing once the program ended and its outputs should
// be checked; Failed, Cancelled or Timeout when the scheduler itself ended it.
type Status struct {
	State       job.State
	SchedulerID string // set when the scheduler learned a new id (the local pid at start)
	Meta        string
	ExitCode    *int
	Signal      *int
	Reason      string
	StartedAt   *time.Time
	EndedAt     *time.Time
}

// Scheduler runs jobs. Every method takes ctx first and honours its deadline.
type Scheduler interface {
	// Name is the scheduler kind: "local", "slurm", ...
	Name() string

	// Submit hands one job over. An error wrapping ErrRejected means the scheduler refused
	// the job for good; any other error may be transient.
	Submit(ctx context.Context, req SubmitRequest) (Submission, error)

	// Poll observes many jobs in one go. A job missing from the map is unknown to the
	// scheduler; an error means "could not ask", and no job may change state because of it.
	Poll(ctx context.Context, jobs []Handle) (map[string]Status, error)

	// Cancel asks the scheduler to end a job. It returns once the request is accepted.
	Cancel(ctx context.Context, h Handle) error

	// Recover is called once at start with every job left active by an earlier run of qmd,
	// so the scheduler can re-adopt them. It never starts a job a second time.
	Recover(ctx context.Context, jobs []Handle) (map[string]Status, error)
}

// ErrRejected marks a submission the scheduler refused (bad partition, over a limit, ...).
var ErrRejected = errors.New("scheduler rejected the job")

// ErrNotFound marks a job the scheduler does not know.
var ErrNotFound = errors.New("job not known to the scheduler")

// PollByOwner polls handles one owner at a time, in first-seen order, so each user's
// jobs are asked about as that user (run_as = "owner"); handles without an owner form one
// group. Any group's failure fails the whole poll, since "could not ask" must change
// nothing.
func PollByOwner(ctx context.Context, handles []Handle,
	poll func(context.Context, []Handle) (map[string]Status, error)) (map[string]Status, error) {
	idx := map[int64]int{}
	var groups [][]Handle
	for _, h := range handles {
		k := int64(-1)
		if h.Owner != nil {
			k = int64(h.Owner.UID)
		}
		i, ok := idx[k]
		if !ok {
			i = len(groups)
			idx[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], h)
	}
	out := map[string]Status{}
	for _, g := range groups {
		sts, err := poll(ctx, g)
		if err != nil {
			return nil, err
		}
		for id, st := range sts {
			out[id] = st
		}
	}
	return out, nil
}

// RecoverByTag is the Recover batch schedulers share: jobs with a scheduler id are
// polled; a job without one (left in submitting) is looked up by its tag, and left out of
// the answer when the lookup finds nothing, so the caller submits it. Any failure to ask
// is an error, and then nothing is submitted.
func RecoverByTag(ctx context.Context, handles []Handle,
	poll func(context.Context, []Handle) (map[string]Status, error),
	lookup func(context.Context, Handle) (Status, bool, error)) (map[string]Status, error) {
	out := map[string]Status{}
	var known []Handle
	for _, h := range handles {
		if h.SchedulerID != "" {
			known = append(known, h)
			continue
		}
		st, found, err := lookup(ctx, h)
		if err != nil {
			return nil, err
		}
		if found {
			out[h.JobID] = st
		}
	}
	if len(known) > 0 {
		sts, err := poll(ctx, known)
		if err != nil {
			return nil, err
		}
		for k, v := range sts {
			out[k] = v
		}
	}
	return out, nil
}
