// Package slurm reads what Slurm's client commands print and builds the argument lists that
// make them print it in a form qmd can read. Everything here is a pure function of bytes,
// exit codes and ids: no command runs in this package, so the parsers can be fed captured
// outputs in tests, fuzzed, and shared by the daemon's backend and the `qmd parse` command.
//
// The formats are pinned (see SqueueArgs, SacctArgs, SbatchArgs) because a user's
// SQUEUE_FORMAT, SACCT_FORMAT or SLURM_TIME_FORMAT would otherwise change columns and
// widths under qmd's feet. The parsers still check every line, because a format that drifted
// anyway must read as "could not ask" rather than as a job state.
package slurm

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"qmd/daemon/job"
)

// Outcome says what kind of answer a Record is. The daemon acts on the outcome first: only
// OutcomeJob and OutcomeSubmitted carry facts about a job, every other outcome is about the
// command, and OutcomeTransient in particular must change nothing.
type Outcome string

// The outcomes, with the spelling `qmd parse` prints.
const (
	// OutcomeSubmitted: sbatch accepted the job; ID (and Cluster, when printed) name it.
	OutcomeSubmitted Outcome = "submitted"
	// OutcomeRejected: the scheduler refused the request itself, so retrying cannot help.
	OutcomeRejected Outcome = "rejected"
	// OutcomeTransient: qmd could not ask or could not read the answer. Retry later and
	// change nothing; after a failed sbatch the job may exist anyway.
	OutcomeTransient Outcome = "transient"
	// OutcomeUnknownJob: the scheduler does not know the job. ID is set only when the
	// message names it; otherwise the caller binds it to the single id it asked about.
	OutcomeUnknownJob Outcome = "unknown_job"
	// OutcomeAccountingDisabled: the cluster keeps no accounting, so sacct will never
	// answer; the daemon has to rely on squeue for this cluster.
	OutcomeAccountingDisabled Outcome = "accounting_disabled"
	// OutcomeOK: the command did what was asked (a cancel that went through, or one that
	// found the job already ending).
	OutcomeOK Outcome = "ok"
	// OutcomeJob: one observation of one job.
	OutcomeJob Outcome = "job"
)

// Record is one answer read from a command's output. Which fields are set depends on
// Outcome; see the field comments.
type Record struct {
	Outcome Outcome
	// ID is the job id exactly as Slurm printed it ("123", "123_4", "123_[5-9%2]").
	ID string
	// Cluster is the cluster sbatch named in "id;cluster" or "on cluster X". Later
	// commands for the job need it (-M) on multi-cluster sites.
	Cluster string
	// Reason explains the outcome: the pending reason squeue printed for a job, or the
	// message line a rejection or transient error was read from.
	Reason string

	// State, Terminal, ExitCode and Signal are set for OutcomeJob. Terminal is true only
	// when the observation is final: a terminal state read from sacct. squeue shows
	// finished jobs only until MinJobAge and without an exit code, so its records are
	// never terminal and the daemon confirms the end with sacct.
	State    job.State
	Terminal bool
	// ExitCode and Signal come from sacct's ExitCode "N:S" on a terminal record and are
	// nil otherwise, since Slurm prints a placeholder 0:0 for jobs that have not ended.
	ExitCode *int
	Signal   *int

	// Submit, Start and End are sacct's times, nil when Slurm printed Unknown or None.
	Submit, Start, End *time.Time
	// Name is the job name sacct printed (it turns `"` into a backtick, and may contain
	// `|` and newlines).
	Name string
	// RawState is the state text as printed, kept for logs and for states the table in
	// MapState does not know (those records are OutcomeTransient with ID set).
	RawState string
}

// MarshalJSON renders the record the way `qmd parse` prints it: a job always carries
// "exit_code" and "signal" (null when unknown), other outcomes only the fields they use.
func (r Record) MarshalJSON() ([]byte, error) {
	if r.Outcome == OutcomeJob {
		return json.Marshal(struct {
			Outcome  Outcome    `json:"outcome"`
			ID       string     `json:"id"`
			Cluster  string     `json:"cluster,omitempty"`
			State    job.State  `json:"state"`
			Terminal bool       `json:"terminal"`
			ExitCode *int       `json:"exit_code"`
			Signal   *int       `json:"signal"`
			Reason   string     `json:"reason,omitempty"`
			Name     string     `json:"name,omitempty"`
			RawState string     `json:"raw_state,omitempty"`
			Submit   *time.Time `json:"submit,omitempty"`
			Start    *time.Time `json:"start,omitempty"`
			End      *time.Time `json:"end,omitempty"`
		}{r.Outcome, r.ID, r.Cluster, r.State, r.Terminal, r.ExitCode, r.Signal, r.Reason,
			r.Name, r.RawState, r.Submit, r.Start, r.End})
	}
	return json.Marshal(struct {
		Outcome  Outcome `json:"outcome"`
		ID       string  `json:"id,omitempty"`
		Cluster  string  `json:"cluster,omitempty"`
		Reason   string  `json:"reason,omitempty"`
		RawState string  `json:"raw_state,omitempty"`
	}{r.Outcome, r.ID, r.Cluster, r.Reason, r.RawState})
}

// Commands lists the commands Parse reads, in the order `qmd parse` documents them.
var Commands = []string{"sbatch", "squeue", "sacct", "scancel"}

// ErrUnknownCommand is returned by Parse for a command it has no parser for.
var ErrUnknownCommand = errors.New("no parser for this command")

// Parse reads the output of the named command. It is the one entry point `qmd parse` and
// the tests share, so what an admin sees is what the daemon reads.
func Parse(command string, stdout, stderr []byte, exit int) ([]Record, error) {
	switch command {
	case "sbatch":
		return []Record{ParseSbatch(stdout, stderr, exit)}, nil
	case "squeue":
		return ParseSqueue(stdout, stderr, exit), nil
	case "sacct":
		return ParseSacct(stdout, stderr, exit), nil
	case "scancel":
		return ParseScancel(stdout, stderr, exit), nil
	}
	return nil, fmt.Errorf("slurm %q: %w", command, ErrUnknownCommand)
}
