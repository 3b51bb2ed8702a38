package pbs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler"
	"qmd/scheduler/runner"
)

// ErrTransient marks an answer that says nothing about the job: a timeout, an unreachable
// server, output that does not parse. The caller changes nothing and asks again later; a
// submission that ended this way may have created the job.
var ErrTransient = errors.New("pbs did not answer")

// ErrWrongFlavour marks a qstat answer in the other flavour's shape: the cluster runs
// Torque (or the Slurm wrappers) and qmd is configured for PBS Pro, or the reverse. Asking
// again cannot help, so the message says which scheduler to configure.
var ErrWrongFlavour = errors.New("qstat answers in the other PBS flavour's format")

// VarJobDir is the variable Submit puts in the job's environment holding its directory.
// PBS Pro and Torque start a job in the user's home and the Slurm wrappers in qsub's
// working directory, so the batch script changes to this directory before anything else.
const VarJobDir = "QMD_JOB_DIR"

// Options configure a Backend.
type Options struct {
	Runner runner.Runner
	Logger *slog.Logger
	// SubmitTimeout bounds each qsub, QueryTimeout each qstat, qselect and qdel.
	SubmitTimeout, QueryTimeout time.Duration
	// Location is the server's time zone, in which qstat prints times.
	Location *time.Location
	// ExitFile is the file the batch script writes "code unixtime" into, relative to the
	// job directory; read when the server does not say how a job ended.
	ExitFile string
}

// Dialect is what differs between the flavours sharing this backend: how qstat is asked
// and read, and how a job whose qsub answer was lost is looked for. Package torque builds
// its backend from one; New uses PBS Pro's.
type Dialect struct {
	// Name is the scheduler kind ("pbs", "torque"), also the flavour DetectFlavour names.
	Name string
	// QstatArgs builds the qstat argv for at most MaxIDsPerCall ids; with no ids it must
	// list every job the user may see (Torque's Recover reads that).
	QstatArgs func(ids []string) []string
	// ParseQstat reads that qstat's answer.
	ParseQstat func(stdout, stderr []byte, exit int, loc *time.Location) []Record
	// SelectByName, when set, builds a command that prints the ids of the jobs with a
	// given name, finished ones included (PBS Pro's `qselect -x -N`). When nil, Recover
	// lists every job with QstatArgs(nil) and matches names itself.
	SelectByName func(name string) []string
	// ForeignStates are job_state letters only the other flavour prints; seeing one
	// means the cluster is configured as the wrong scheduler.
	ForeignStates map[string]bool
}

// ProDialect is PBS Pro: `qstat -f -F json -x` (QstatArgs) and `qselect -x -N` by name.
var ProDialect = Dialect{
	Name:       FlavourPBS,
	QstatArgs:  QstatArgs,
	ParseQstat: ParseQstatIn,
	SelectByName: func(name string) []string {
		return []string{"qselect", "-x", "-N", name}
	},
	ForeignStates: map[string]bool{"C": true},
}

// Backend implements scheduler.Scheduler with qsub, qstat, qselect and qdel, for PBS Pro
// or, through Dialect, Torque.
type Backend struct {
	opt Options
	d   Dialect
	log *slog.Logger
}

var _ scheduler.Scheduler = (*Backend)(nil)

// New returns a PBS Pro backend.
func New(opt Options) *Backend { return NewDialect(opt, ProDialect) }

// NewDialect returns a backend speaking d; package torque uses it.
func NewDialect(opt Options, d Dialect) *Backend {
	if opt.Runner == nil {
		opt.Runner = runner.Local{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.SubmitTimeout <= 0 {
		opt.SubmitTimeout = 60 * time.Second
	}
	if opt.QueryTimeout <= 0 {
		opt.QueryTimeout = 30 * time.Second
	}
	if opt.Location == nil {
		opt.Location = time.Local
	}
	if opt.ExitFile == "" {
		opt.ExitFile = "exit_status"
	}
	return &Backend{opt: opt, d: d, log: opt.Logger}
}

// Name implements scheduler.Scheduler.
func (b *Backend) Name() string { return b.d.Name }

// meta is what qmd keeps with a job: when it was submitted, for the operator.
type meta struct {
	SubmittedAt time.Time `json:"submitted_at"`
}

func metaAt(t time.Time) string {
	m, _ := json.Marshal(meta{SubmittedAt: t})
	return string(m)
}

// run runs one command. A non-zero exit is an answer to read; a command that could not
// run or did not finish says nothing, and is ErrTransient.
func (b *Backend) run(ctx context.Context, argv []string, dir string, timeout time.Duration,
	user *runner.Credential) (runner.Result, error) {
	res, err := b.opt.Runner.Run(ctx, runner.Command{Argv: argv, Dir: dir, Timeout: timeout,
		User: user})
	var ce *runner.CommandError
	if err != nil && !errors.As(err, &ce) {
		return res, fmt.Errorf("%w: %s: %w", ErrTransient, argv[0], err)
	}
	return res, nil
}

// qsubArgv builds the submission: always named Tag(JobID), since Recover looks for a job
// whose qsub answer was lost by that name (a Handle carries no tag). The job directory
// goes in VarJobDir unless it holds a character -v cannot carry (a comma separates
// variables, quotes are rewritten by the wrappers); the script then falls back to
// PBS_O_WORKDIR, which is qsub's working directory, also the job directory.
func (b *Backend) qsubArgv(req scheduler.SubmitRequest) []string {
	var opts []string
	if !strings.ContainsAny(req.Dir, ",'\"\n=") {
		opts = append(opts, "-v", VarJobDir+"="+req.Dir)
	}
	return QsubArgs(req.JobID, opts, filepath.Join(req.Dir, req.Script))
}

// Submit implements scheduler.Scheduler. A refusal wraps scheduler.ErrRejected; any other
// failure wraps ErrTransient, and the job may exist: Recover looks for it by its tag.
func (b *Backend) Submit(ctx context.Context,
	req scheduler.SubmitRequest) (scheduler.Submission, error) {
	now := time.Now()
	res, err := b.run(ctx, b.qsubArgv(req), req.Dir, b.opt.SubmitTimeout, req.Owner)
	if err != nil {
		return scheduler.Submission{}, fmt.Errorf("submit %s: %w", req.JobID, err)
	}
	rec := ParseQsub(res.Stdout, res.Stderr, res.ExitCode)
	switch rec.Outcome {
	case OutcomeSubmitted:
		return scheduler.Submission{SchedulerID: rec.ID, Meta: metaAt(now),
			State: job.Pending}, nil
	case OutcomeRejected:
		return scheduler.Submission{}, fmt.Errorf("submit %s: %w: %s", req.JobID,
			scheduler.ErrRejected, rec.Reason)
	}
	return scheduler.Submission{}, fmt.Errorf("submit %s: %w: %s", req.JobID, ErrTransient,
		rec.Reason)
}

// Poll implements scheduler.Scheduler: one qstat per owner and per MaxIDsPerCall ids. A
// job ends only on a terminal observation, or, once the server has forgotten it, on the
// exit-status file its script wrote; with neither it is left out of the answer.
func (b *Backend) Poll(ctx context.Context,
	handles []scheduler.Handle) (map[string]scheduler.Status, error) {
	return scheduler.PollByOwner(ctx, handles, b.pollGroup)
}

// pollGroup polls the jobs of one owner.
func (b *Backend) pollGroup(ctx context.Context,
	handles []scheduler.Handle) (map[string]scheduler.Status, error) {
	var asked []scheduler.Handle
	for _, h := range handles {
		if h.SchedulerID != "" {
			asked = append(asked, h)
		}
	}
	out := map[string]scheduler.Status{}
	for start := 0; start < len(asked); start += MaxIDsPerCall {
		chunk := asked[start:min(start+MaxIDsPerCall, len(asked))]
		ids := make([]string, len(chunk))
		for i, h := range chunk {
			ids[i] = h.SchedulerID
		}
		recs, err := b.qstat(ctx, ids, chunk[0].Owner)
		if err != nil {
			return nil, err
		}
		sts, err := b.statuses(chunk, recs)
		if err != nil {
			return nil, err
		}
		for id, st := range sts {
			out[id] = st
		}
	}
	return out, nil
}

// qstat asks about ids (all jobs when empty) and checks the answer is in this flavour's
// shape.
func (b *Backend) qstat(ctx context.Context,
	ids []string, user *runner.Credential) ([]Record, error) {
	res, err := b.run(ctx, b.d.QstatArgs(ids), "", b.opt.QueryTimeout, user)
	if err != nil {
		return nil, err
	}
	if f, ok := DetectFlavour(res.Stdout); ok && f != b.d.Name {
		return nil, b.wrongFlavour(f)
	}
	recs := b.d.ParseQstat(res.Stdout, res.Stderr, res.ExitCode, b.opt.Location)
	for _, r := range recs {
		if b.d.ForeignStates[r.RawState] {
			other := FlavourPBS
			if b.d.Name == FlavourPBS {
				other = FlavourTorque
			}
			return nil, b.wrongFlavour(other)
		}
	}
	return recs, nil
}

func (b *Backend) wrongFlavour(f string) error {
	name := map[string]string{FlavourPBS: "PBS Pro", FlavourTorque: "Torque"}[f]
	return fmt.Errorf("%w: qstat answers like %s; set scheduler = %q", ErrWrongFlavour,
		name, f)
}

// statuses reads one qstat answer about chunk. An answer that names no job and is not
// about jobs (the server did not answer) fails the whole chunk, so nothing changes on it.
func (b *Backend) statuses(chunk []scheduler.Handle,
	recs []Record) (map[string]scheduler.Status, error) {
	find := func(id string) int {
		for i, h := range chunk {
			if SameJob(h.SchedulerID, id) {
				return i
			}
		}
		return -1
	}
	out := map[string]scheduler.Status{}
	answered := make([]bool, len(chunk))
	gone := make([]bool, len(chunk)) // the server forgot it or says it finished
	for _, r := range recs {
		i := -1
		if r.ID != "" {
			if i = find(r.ID); i < 0 {
				continue // a job not asked about
			}
		}
		switch r.Outcome {
		case OutcomeJob:
			answered[i] = true
			st, ok := b.jobStatus(chunk[i], r)
			if ok {
				out[chunk[i].JobID] = st
			}
		case OutcomeUnknownJob, OutcomeFinished:
			if i >= 0 {
				answered[i], gone[i] = true, true
			}
		case OutcomeTransient:
			if i < 0 {
				return nil, fmt.Errorf("%w: qstat: %s", ErrTransient, r.Reason)
			}
			// Only this job went unread: it keeps the state it has.
			answered[i] = true
			if h := chunk[i]; h.State == job.Pending || h.State == job.Running ||
				h.State == job.Suspended {
				out[h.JobID] = scheduler.Status{State: h.State, Reason: r.Reason}
			}
		default:
			return nil, fmt.Errorf("%w: qstat answered %s: %s", ErrTransient, r.Outcome,
				r.Reason)
		}
	}
	// A job the answer leaves out is one the server no longer knows: the Slurm wrappers
	// drop unknown ids silently, and a bare "Unknown Job Id" with exit 153 names none.
	// Such a job ends only on its exit-status file; without one it is left out.
	for i, h := range chunk {
		if answered[i] && !gone[i] {
			continue
		}
		if st, ok := b.fromExitFile(h); ok {
			out[h.JobID] = st
		}
	}
	return out, nil
}

// jobStatus turns one job record into a status; ok is false when the record says the job
// ended without saying how and no exit-status file tells it.
func (b *Backend) jobStatus(h scheduler.Handle, r Record) (scheduler.Status, bool) {
	st := scheduler.Status{State: r.State, ExitCode: r.ExitCode, Signal: r.Signal,
		StartedAt: r.Start, EndedAt: r.End, Reason: r.Reason}
	if !r.Terminal {
		if st.State == job.Completing {
			// Exiting: the server may still requeue it; it ends on a terminal record.
			st.State = job.Running
		}
		st.ExitCode, st.Signal = nil, nil
		return st, true
	}
	prefix := b.d.Name + ": job_state " + r.RawState
	switch {
	case r.State == job.Completing && r.ExitCode == nil:
		fs, ok := b.fromExitFile(h)
		if !ok {
			return scheduler.Status{}, false
		}
		fs.StartedAt = r.Start
		if fs.EndedAt == nil {
			fs.EndedAt = r.End
		}
		return fs, true
	case r.ExitCode != nil && (r.State == job.Completed || r.State == job.Failed):
		// The script ran to its end: NWChem's output decides.
		st.State = job.Completing
		st.Reason = fmt.Sprintf("%s, exit status %d", prefix, *r.ExitCode)
	case r.Signal != nil:
		st.State = job.Failed
		st.Reason = fmt.Sprintf("%s: killed by signal %d", prefix, *r.Signal)
	default:
		st.Reason = prefix + ": " + r.Reason
	}
	return st, true
}

// fromExitFile reads the exit status the batch script wrote: "code unixtime". It is the
// only word on how a job ended that the server has forgotten, or that the Slurm wrappers
// report as C without exit_status. A job without the file is not guessed at.
func (b *Backend) fromExitFile(h scheduler.Handle) (scheduler.Status, bool) {
	if h.Dir == "" {
		return scheduler.Status{}, false
	}
	data, err := os.ReadFile(filepath.Join(h.Dir, b.opt.ExitFile))
	if err != nil {
		return scheduler.Status{}, false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return scheduler.Status{}, false
	}
	code, err := strconv.Atoi(f[0])
	if err != nil || code < 0 || code > 255 {
		return scheduler.Status{}, false
	}
	st := scheduler.Status{State: job.Completing, ExitCode: &code,
		Reason: fmt.Sprintf("%s: batch script recorded exit status %d", b.d.Name, code)}
	if len(f) > 1 {
		if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil && sec > 0 {
			t := time.Unix(sec, 0)
			st.EndedAt = &t
		}
	}
	return st, true
}

// Cancel implements scheduler.Scheduler. A job the server no longer knows, or one that
// has already finished, is not an error: either way it no longer runs.
func (b *Backend) Cancel(ctx context.Context, h scheduler.Handle) error {
	if h.SchedulerID == "" {
		return fmt.Errorf("cancel %s: %w", h.JobID, scheduler.ErrNotFound)
	}
	res, err := b.run(ctx, QdelArgs([]string{h.SchedulerID}), "", b.opt.QueryTimeout, h.Owner)
	if err != nil {
		return fmt.Errorf("cancel %s: %w", h.JobID, err)
	}
	for _, r := range ParseQdel(res.Stdout, res.Stderr, res.ExitCode) {
		switch r.Outcome {
		case OutcomeOK, OutcomeUnknownJob:
		case OutcomeRejected:
			return fmt.Errorf("cancel %s: qdel refused: %s", h.JobID, r.Reason)
		default:
			return fmt.Errorf("cancel %s: %w: %s", h.JobID, ErrTransient, r.Reason)
		}
	}
	return nil
}

// Recover implements scheduler.Scheduler. Jobs with an id are polled. A job left in
// submitting is looked for by its tag and QMD_JOB_ID: found → adopted with its id; not
// found → its exit-status file, else lost when its script has started (a job the server
// has already forgotten must not run twice), else left out so the caller submits it. Any
// failure to ask is an error, and nothing is submitted.
func (b *Backend) Recover(ctx context.Context,
	handles []scheduler.Handle) (map[string]scheduler.Status, error) {
	return scheduler.RecoverByTag(ctx, handles, b.Poll, b.lookup)
}

// lookup looks for the job Submit may have created for h.
func (b *Backend) lookup(ctx context.Context, h scheduler.Handle) (scheduler.Status, bool, error) {
	recs, err := b.findByName(ctx, h)
	if err != nil {
		return scheduler.Status{}, false, err
	}
	var pick *Record
	for i := range recs {
		r := &recs[i]
		if pick == nil || pick.Terminal && !r.Terminal {
			pick = r
		}
	}
	if len(recs) > 1 {
		b.log.Warn("several scheduler jobs carry one qmd job's name; adopting one",
			"job", h.JobID, "tag", Tag(h.JobID), "adopted", pick.ID, "count", len(recs))
	}
	if pick != nil {
		st, ok := b.jobStatus(h, *pick)
		if !ok {
			st = scheduler.Status{State: job.Pending, Reason: "ended; the next poll reads how"}
		}
		st.SchedulerID = pick.ID
		st.Reason = fmt.Sprintf("adopted %s job %s found by its name %s: %s", b.d.Name,
			pick.ID, Tag(h.JobID), st.Reason)
		return adopted(h, st), true, nil
	}
	if st, ok := b.fromExitFile(h); ok {
		return adopted(h, st), true, nil
	}
	if h.Dir != "" {
		if _, err := os.Stat(filepath.Join(h.Dir, "started")); err == nil {
			return scheduler.Status{State: job.Lost, Meta: h.Meta,
				Reason: "the batch script started but the scheduler no longer lists the " +
					"job and it left no exit status"}, true, nil
		}
	}
	return scheduler.Status{}, false, nil
}

// findByName returns the job records named Tag(h.JobID) or carrying its QMD_JOB_ID.
func (b *Backend) findByName(ctx context.Context, h scheduler.Handle) ([]Record, error) {
	tag := Tag(h.JobID)
	var recs []Record
	if b.d.SelectByName != nil {
		argv := b.d.SelectByName(tag)
		res, err := b.run(ctx, argv, "", b.opt.QueryTimeout, h.Owner)
		if err != nil {
			return nil, err
		}
		if res.ExitCode != 0 {
			return nil, fmt.Errorf("%w: %s exited %d: %s", ErrTransient, argv[0],
				res.ExitCode, Clip(strings.TrimSpace(string(res.Stderr))))
		}
		var ids []string
		for _, line := range strings.Split(string(res.Stdout), "\n") {
			if id := strings.TrimSpace(line); id != "" {
				if !ValidID(id) {
					return nil, fmt.Errorf("%w: %s printed %q, not a job id", ErrTransient,
						argv[0], Clip(id))
				}
				ids = append(ids, id)
			}
		}
		for _, chunk := range Chunk(ids, MaxIDsPerCall) {
			r, err := b.qstat(ctx, chunk, h.Owner)
			if err != nil {
				return nil, err
			}
			recs = append(recs, r...)
		}
	} else {
		r, err := b.qstat(ctx, nil, h.Owner)
		if err != nil {
			return nil, err
		}
		recs = r
	}
	var out []Record
	for _, r := range recs {
		switch r.Outcome {
		case OutcomeJob:
			if r.QMDJobID == h.JobID || r.QMDJobID == "" && r.Name == tag {
				out = append(out, r)
			}
		case OutcomeUnknownJob, OutcomeFinished:
			// qselect named it, then it left the server's memory: not found.
		default:
			return nil, fmt.Errorf("%w: qstat: %s", ErrTransient, r.Reason)
		}
	}
	return out, nil
}

// adopted makes the status of a job found by name one its stored state can move to. A
// job in submitting cannot move to every state; such a job is adopted as pending with its
// id, and the next poll reports the real state.
func adopted(h scheduler.Handle, st scheduler.Status) scheduler.Status {
	if st.Meta == "" {
		st.Meta = h.Meta
	}
	if st.Meta == "" {
		st.Meta = metaAt(time.Now())
	}
	from := h.State
	if from == "" {
		from = job.Submitting
	}
	if st.State != from && !job.CanMove(from, st.State) && st.SchedulerID != "" {
		st.Reason = fmt.Sprintf("adopted job %s, which is %s; the next poll reports that",
			st.SchedulerID, st.State)
		st.State = job.Pending
		st.ExitCode, st.Signal = nil, nil
	}
	return st
}
