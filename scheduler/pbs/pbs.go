// Package pbs reads what the PBS Professional (OpenPBS) client commands print, and builds
// the argument lists qmd runs them with. The parts Torque shares with PBS Pro (qsub and
// qdel answers, error messages, job ids, exit statuses) live here too; package torque adds
// its own qstat text reader on top. Nothing here runs a command: every parser is a pure
// function of stdout, stderr and an exit code, so captured outputs can be replayed in
// tests, fuzzed, and shown by `qmd parse`.
//
// qmd pins `qstat -f -F json -x` for PBS Pro (see QstatArgs): JSON is the only qstat
// output whose fields do not move between versions, and -x keeps finished jobs visible, so
// an ended job reads as F with its Exit_status instead of as an error. The JSON is not
// always valid (PBS copies environment strings into Variable_List without escaping them),
// so it is read by a tolerant reader that loses at most the job whose record is broken.
package pbs

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"qmd/daemon/job"
)

// Outcome is the kind of answer a Record holds. The values are spelt as package slurm
// spells its own, so `qmd parse` prints one vocabulary whatever the scheduler and the
// daemon handles every backend alike. Facts about a job come only with OutcomeJob and
// OutcomeSubmitted; the others describe how the command went.
type Outcome string

// The outcomes, with the spelling `qmd parse` prints.
const (
	// OutcomeSubmitted: qsub took the job, and ID holds the id it printed, unchanged.
	OutcomeSubmitted Outcome = "submitted"
	// OutcomeRejected: the server turned the request down on its merits (unknown queue,
	// over a limit, a bad resource request); the same request would fail again.
	OutcomeRejected Outcome = "rejected"
	// OutcomeTransient: no usable answer, because the server was not reached or its
	// output could not be read. Nothing may change state on it; a qsub that ended this
	// way may still have created the job. With ID set, only that job went unread.
	OutcomeTransient Outcome = "transient"
	// OutcomeUnknownJob: the server has no such job. The message's id is in ID; when the
	// message gives none, the caller knows which id it asked about.
	OutcomeUnknownJob Outcome = "unknown_job"
	// OutcomeFinished: the server says the job has ended but did not say how, because it
	// was asked without -x (qstat exit 35, "Job has finished"). The answer to that is to
	// ask again with -x, never to guess the ending.
	OutcomeFinished Outcome = "finished"
	// OutcomeOK: the request is satisfied: qdel removed the job, or found it had already
	// finished, which leaves the same result.
	OutcomeOK Outcome = "ok"
	// OutcomeJob: what qstat said about one job at the time it was asked.
	OutcomeJob Outcome = "job"
)

// Record is one answer read from a command's output. Which fields are set depends on
// Outcome; see the field comments.
type Record struct {
	Outcome Outcome
	// ID is the job id exactly as the scheduler printed it ("123.pbs01", "123[].pbs01",
	// or a bare "21" from the Slurm wrappers). Compare ids with SameJob, not ==.
	ID string
	// Reason explains the outcome: the job's comment, what an exit status means, or the
	// message line an error outcome was read from.
	Reason string

	// State, Terminal, ExitCode and Signal are set for OutcomeJob. Terminal is true when
	// the server will not run the job again: a finished job (PBS Pro F or X, Torque C).
	// Such a job is usually in a terminal state, but one whose record has no exit status
	// is State Completing with Terminal set: it has ended, and how is to be read from the
	// exit-status file its batch script wrote (see EndedWithoutStatus).
	State    job.State
	Terminal bool
	// ExitCode is the batch script's exit status (0-255) and Signal the signal that
	// killed it; nil when unknown or not applicable, and always nil before the end.
	ExitCode *int
	Signal   *int

	// Name is Job_Name. QMDJobID is the QMD_JOB_ID variable QsubArgs puts in the job's
	// environment, read back from Variable_List; it names the qmd job even where the
	// server shortened Job_Name.
	Name     string
	QMDJobID string
	// RawState is job_state as printed ("F", "C", ...).
	RawState string
	// Submit, Start and End are the creation, start and end times when the record has
	// them (PBS Pro ctime, stime, obittime; Torque qtime, start_time, comp_time).
	Submit, Start, End *time.Time
}

// MarshalJSON writes the record as the JSON line `qmd parse` prints, with the names and
// order of slurm's records. Job records print "exit_code" and "signal" even when they are
// null, so a reader never mistakes a missing field for a zero; other outcomes print only
// what they set.
func (r Record) MarshalJSON() ([]byte, error) {
	if r.Outcome == OutcomeJob {
		return json.Marshal(struct {
			Outcome  Outcome    `json:"outcome"`
			ID       string     `json:"id"`
			State    job.State  `json:"state"`
			Terminal bool       `json:"terminal"`
			ExitCode *int       `json:"exit_code"`
			Signal   *int       `json:"signal"`
			Reason   string     `json:"reason,omitempty"`
			Name     string     `json:"name,omitempty"`
			RawState string     `json:"raw_state,omitempty"`
			QMDJobID string     `json:"qmd_job_id,omitempty"`
			Submit   *time.Time `json:"submit,omitempty"`
			Start    *time.Time `json:"start,omitempty"`
			End      *time.Time `json:"end,omitempty"`
		}{r.Outcome, r.ID, r.State, r.Terminal, r.ExitCode, r.Signal, r.Reason, r.Name,
			r.RawState, r.QMDJobID, r.Submit, r.Start, r.End})
	}
	return json.Marshal(struct {
		Outcome  Outcome `json:"outcome"`
		ID       string  `json:"id,omitempty"`
		Reason   string  `json:"reason,omitempty"`
		RawState string  `json:"raw_state,omitempty"`
	}{r.Outcome, r.ID, r.Reason, r.RawState})
}

// Commands are the command names Parse accepts, in the order `qmd parse` lists them.
var Commands = []string{"qsub", "qstat", "qdel"}

// ErrUnknownCommand is Parse's error for a command name outside Commands.
var ErrUnknownCommand = errors.New("no parser for this command")

// Parse reads the output of the named PBS Pro command. `qmd parse` and the case tests both
// come through here, so the records an admin is shown are those the daemon acts on.
func Parse(command string, stdout, stderr []byte, exit int) ([]Record, error) {
	switch command {
	case "qsub":
		return []Record{ParseQsub(stdout, stderr, exit)}, nil
	case "qstat":
		return ParseQstat(stdout, stderr, exit), nil
	case "qdel":
		return ParseQdel(stdout, stderr, exit), nil
	}
	return nil, fmt.Errorf("pbs %q: %w", command, ErrUnknownCommand)
}
