// Package job holds the job record and its state machine. It does no I/O: the store
// enforces the transition table when it writes, and every other package reads it here.
package job

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// State is where a job is in its life. It is a named type, not a bare string, so that a
// scheduler's own codes (PD, R, Q, ...) must be mapped to it explicitly by each backend.
type State string

// The job states. The last five are terminal: once there, a job never moves again.
const (
	Queued     State = "queued"     // accepted and stored, not yet handed to a scheduler
	Submitting State = "submitting" // being handed to a scheduler; reconciled after a crash
	Pending    State = "pending"    // the scheduler has it and has not started it
	Running    State = "running"
	Suspended  State = "suspended"
	Completing State = "completing" // the program ended; outputs are being fetched and parsed
	Completed  State = "completed"
	Failed     State = "failed"
	Cancelled  State = "cancelled"
	Timeout    State = "timeout"
	Lost       State = "lost" // the scheduler forgot the job and no evidence says how it ended
)

// States lists every state in life order; tests and metrics walk it.
var States = []State{
	Queued, Submitting, Pending, Running, Suspended, Completing,
	Completed, Failed, Cancelled, Timeout, Lost,
}

// next is the one table of allowed transitions. running → pending is allowed because
// Slurm requeues jobs; completing → failed covers outputs that cannot be parsed.
var next = map[State][]State{
	Queued:     {Submitting, Cancelled, Failed},
	Submitting: {Pending, Running, Completing, Failed, Cancelled, Lost},
	Pending:    {Running, Suspended, Completing, Failed, Cancelled, Timeout, Lost},
	Running:    {Pending, Suspended, Completing, Failed, Cancelled, Timeout, Lost},
	Suspended:  {Running, Pending, Completing, Failed, Cancelled, Timeout, Lost},
	Completing: {Completed, Failed, Cancelled, Timeout},
}

// ErrIllegalTransition is returned, wrapped with both states, for a move the table forbids.
var ErrIllegalTransition = errors.New("illegal state transition")

// ErrUnknownState is returned when a string names no state.
var ErrUnknownState = errors.New("unknown job state")

// CanMove reports whether the table allows from → to.
func CanMove(from, to State) bool { return slices.Contains(next[from], to) }

// CheckMove returns nil if from → to is allowed and a wrapped ErrIllegalTransition if not.
func CheckMove(from, to State) error {
	if CanMove(from, to) {
		return nil
	}
	return fmt.Errorf("%w: %s → %s", ErrIllegalTransition, from, to)
}

// Terminal reports whether s is a final state.
func (s State) Terminal() bool {
	switch s {
	case Completed, Failed, Cancelled, Timeout, Lost:
		return true
	}
	return false
}

// Active reports whether the scheduler may hold the job (it has been or is being handed over
// and has not ended). Pollers and restart reconciliation look at these.
func (s State) Active() bool {
	switch s {
	case Submitting, Pending, Running, Suspended, Completing:
		return true
	}
	return false
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool { return slices.Contains(States, s) }

// ParseState turns a string into a State, or returns ErrUnknownState.
func ParseState(s string) (State, error) {
	st := State(s)
	if !st.Valid() {
		return "", fmt.Errorf("%w: %q", ErrUnknownState, s)
	}
	return st, nil
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// NewID returns 12 random lowercase hex characters.
func NewID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate job id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ValidID reports whether s has the shape of a job id. Ids reach file paths, so callers
// check them before joining.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// Job is one stored job.
type Job struct {
	ID           string
	Name         string
	OwnerUID     int
	Cluster      string
	State        State
	SchedulerID  string // the scheduler's handle: a pid for local, a job id for Slurm
	SchedMeta    string // scheduler-private data needed to re-adopt the job (JSON)
	SchedReason  string // the scheduler's reason for a waiting job, e.g. "Priority"
	Preset       string
	Solvent      string
	Charge       int
	Multiplicity int
	Level        string // level of theory, e.g. "B3LYP/6-31G*//B3LYP/6-31G*"
	Software     string // program and version the job is run with, e.g. "NWChem 7.0.2"
	TemplateHash string // sha256 of the templates used to render the job
	InputFormat  string
	Error        string // one-line summary, a blank line, then the excerpt; empty if none
	ExitCode     *int
	CreatedAt    time.Time
	UpdatedAt    time.Time
	SubmittedAt  *time.Time
	StartedAt    *time.Time
	EndedAt      *time.Time
	// Kind tells plain jobs from the parts of a conformer search; ParentID is a
	// conformer's search job, and Meta carries kind-specific settings as JSON.
	Kind     Kind
	ParentID string
	Meta     string
}

// Kind is what a job is for.
type Kind string

// Job kinds. A conformer search (KindSearch) is a parent with no batch script of its own:
// its state follows its conformer jobs (KindConformer), which are ordinary calculations,
// and its result is their Boltzmann average.
const (
	KindPlain     Kind = ""
	KindSearch    Kind = "conformers"
	KindConformer Kind = "conformer"
)

// Schedulable lists the kinds a scheduler runs.
var Schedulable = []Kind{KindPlain, KindConformer}

// Event is one transition in a job's history.
type Event struct {
	JobID  string
	At     time.Time
	From   State // empty for the creating event
	To     State
	Reason string
}
