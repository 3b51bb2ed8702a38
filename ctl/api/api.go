// Package api holds the wire types and route names shared by qmd's socket API and qmctl.
// It imports only the standard library, so qmctl links neither SQLite nor SSH.
package api

import "time"

// Routes served on the Unix socket.
const (
	RouteJobs    = "/v1/jobs"    // GET list, POST submit
	RouteJob     = "/v1/jobs/"   // GET /v1/jobs/ID, POST /v1/jobs/ID/cancel, GET .../result, .../logs
	RouteVersion = "/v1/version" // GET
)

// Error codes sent in ErrorResponse.Code; the client maps them back to exit codes.
const (
	CodeBadRequest = "bad_request" // bad input, bad options
	CodeNotFound   = "not_found"   // no such job, or not the caller's
	CodeConflict   = "conflict"    // e.g. cancel of a finished job, result of an unfinished one
	CodeDraining   = "draining"    // the daemon is stopping
	CodeInternal   = "internal"
)

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// SubmitRequest carries the molecule itself, never a path: the daemon may not be able to
// read the user's files.
type SubmitRequest struct {
	Name         string `json:"name,omitempty"`
	Filename     string `json:"filename,omitempty"` // used only to guess the format and name
	Format       string `json:"format,omitempty"`   // xyz, mol, sdf, smiles; guessed if empty
	Content      string `json:"content,omitempty"`
	SMILES       string `json:"smiles,omitempty"`
	Preset       string `json:"preset,omitempty"`
	Solvent      string `json:"solvent,omitempty"`
	Charge       *int   `json:"charge,omitempty"`
	Multiplicity *int   `json:"multiplicity,omitempty"`
	Cluster      string `json:"cluster,omitempty"`
	SplitRecords bool   `json:"split_records,omitempty"` // one job per SDF record
	// Conformers is "single" (the default: the geometry as given) or "search": Open
	// Babel's conformer search, one calculation per kept conformer under a parent job,
	// shieldings Boltzmann-averaged.
	Conformers string `json:"conformers,omitempty"`
	// TemperatureK is the Boltzmann temperature for a conformer search (default 298.15).
	TemperatureK float64 `json:"temperature_k,omitempty"`
	DryRun       bool    `json:"dry_run,omitempty"`
}

// SubmitResponse answers a submission. A dry run returns Rendered and no IDs.
type SubmitResponse struct {
	ID  string   `json:"id,omitempty"`
	IDs []string `json:"ids,omitempty"` // every job created (one per SDF record when split)
	// Conformers are the conformer jobs of a conformer search; the search itself (their
	// parent) is in ID and IDs, and is what to wait for and take the result of.
	Conformers []string   `json:"conformers,omitempty"`
	Rendered   []Rendered `json:"rendered,omitempty"`
}

// Rendered is one file a dry run would write.
type Rendered struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// Job is a job as qmctl shows it.
type Job struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Cluster     string `json:"cluster"`
	SchedulerID string `json:"scheduler_id"`
	// SchedulerReason is why the scheduler keeps the job waiting (Slurm's pending
	// reason, e.g. "Priority" or "QOSMaxJobsPerUserLimit"); empty when not waiting.
	SchedulerReason string    `json:"scheduler_reason,omitempty"`
	Name            string    `json:"name"`
	Preset          string    `json:"preset"`
	Solvent         string    `json:"solvent"`
	Owner           int       `json:"owner_uid"`
	Level           string    `json:"level,omitempty"`
	Software        string    `json:"software,omitempty"`
	TemplateHash    string    `json:"template_hash,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	Error           *string   `json:"error"`
	ExitCode        *int      `json:"exit_code,omitempty"`
	// Kind is "conformers" for a conformer search and "conformer" for one of its
	// conformer jobs, whose search is ParentID; empty for an ordinary job.
	Kind     string  `json:"kind,omitempty"`
	ParentID string  `json:"parent_id,omitempty"`
	History  []Event `json:"history,omitempty"`
}

// Event is one transition in a job's history.
type Event struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// Result is a finished job's shieldings and shifts.
type Result struct {
	ID            string    `json:"id"`
	EnergyHartree float64   `json:"energy_hartree"`
	Converged     bool      `json:"optimization_converged"`
	Reference     Reference `json:"reference"`
	Shifts        []Shift   `json:"shifts"`
	// For a conformer search: the temperature of the Boltzmann average, the estimated
	// weight of conformers that failed, and every conformer. Shieldings are then the
	// weighted means and EnergyHartree is the lowest conformer's.
	TemperatureK float64     `json:"temperature_k,omitempty"`
	LostWeight   float64     `json:"lost_weight,omitempty"`
	Conformers   []Conformer `json:"conformers,omitempty"`
}

// Conformer is one conformer of a search.
type Conformer struct {
	JobID string `json:"job_id"`
	State string `json:"state"`
	// ForceFieldKcal is its force-field energy relative to the lowest, from the search.
	ForceFieldKcal float64 `json:"force_field_kcal_mol"`
	// EnergyHartree and Weight are set for conformers that completed.
	EnergyHartree *float64 `json:"energy_hartree,omitempty"`
	Weight        *float64 `json:"weight,omitempty"`
}

// Reference says how shieldings became shifts.
type Reference struct {
	Method  string   `json:"method"` // "tms" or "linear"
	Level   string   `json:"level"`
	Solvent string   `json:"solvent"`
	H       *float64 `json:"h,omitempty"` // TMS shielding, or nil for linear scaling
	C       *float64 `json:"c,omitempty"`
	Source  string   `json:"source"`
}

// Shift is one atom's line in a result.
type Shift struct {
	Atom      int      `json:"atom"` // 1-based, input order
	Element   string   `json:"element"`
	Shielding float64  `json:"shielding"`
	Shift     *float64 `json:"shift"`
	BondedTo  *int     `json:"bonded_to"`
	Group     int      `json:"group"`
}

// Logs carries a job's log files.
type Logs struct {
	ID    string    `json:"id"`
	Files []LogFile `json:"files"`
}

// LogFile is one log, possibly only its tail.
type LogFile struct {
	Name      string `json:"name"`
	Content   string `json:"content"`
	Truncated bool   `json:"truncated"`
}

// Version answers RouteVersion.
type Version struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
}
