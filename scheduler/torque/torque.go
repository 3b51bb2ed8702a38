// Package torque reads what Torque's client commands print. qsub and qdel answer as PBS
// Pro's do and are read by package pbs; what differs is qstat, which Torque can only
// print as text (`qstat -f`; its -x means XML, not history), its job states (C for every
// finished job) and its negative exit statuses. Records are pbs.Record, so `qmd parse`
// and the daemon read both flavours the same way.
//
// Two layouts of `qstat -f` are read. Torque itself indents attributes with four spaces
// and continues a long value on lines that start with a tab, cutting anywhere, even inside
// a word. The qstat of Debian's slurm-wlm-torque wrappers indents every attribute with a
// tab, wraps nothing, and never prints exit_status. The layout is decided per job from
// its first attribute line, so a tab-led line is a continuation in the first and an
// attribute in the second.
package torque

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"qmd/daemon/job"
	"qmd/scheduler/pbs"
)

// Commands are the command names Parse accepts, as for PBS Pro.
var Commands = []string{"qsub", "qstat", "qdel"}

// Parse reads the output of the named Torque command. `qmd parse` and the case tests both
// come through here, so the records an admin is shown are those the daemon acts on.
func Parse(command string, stdout, stderr []byte, exit int) ([]pbs.Record, error) {
	switch command {
	case "qsub":
		return []pbs.Record{pbs.ParseQsub(stdout, stderr, exit)}, nil
	case "qstat":
		return ParseQstat(stdout, stderr, exit), nil
	case "qdel":
		return pbs.ParseQdel(stdout, stderr, exit), nil
	}
	return nil, fmt.Errorf("torque %q: %w", command, pbs.ErrUnknownCommand)
}

// ExecCodes are Torque's negative exit_status values, set by pbs_mom when it could not
// start a job or ended it over a limit. Torque's own walltime code is -11; -29 is PBS
// Pro's, which no Torque release uses, so it reads the same here and both flavours agree
// on it. Every other code is a failure.
var ExecCodes = map[int]pbs.ExecCode{
	-1: {Name: "JOB_EXEC_FAIL1", State: job.Failed,
		Meaning: "could not start the job, before its files were set up"},
	-2: {Name: "JOB_EXEC_FAIL2", State: job.Failed,
		Meaning: "could not start the job, after its files were set up"},
	-3: {Name: "JOB_EXEC_RETRY", State: job.Failed,
		Meaning: "the job failed to start and was to be retried"},
	-4: {Name: "JOB_EXEC_INITABT", State: job.Failed,
		Meaning: "the job was aborted when pbs_mom started up"},
	-5: {Name: "JOB_EXEC_INITRST", State: job.Failed,
		Meaning: "the job was aborted when pbs_mom started up (checkpointed)"},
	-6: {Name: "JOB_EXEC_INITRMG", State: job.Failed,
		Meaning: "the job was aborted when pbs_mom started up (migratable)"},
	-7: {Name: "JOB_EXEC_BADRESRT", State: job.Failed,
		Meaning: "restarting the job failed"},
	-8: {Name: "JOB_EXEC_CMDFAIL", State: job.Failed,
		Meaning: "could not run the job's command"},
	-9: {Name: "JOB_EXEC_STDOUTFAIL", State: job.Failed,
		Meaning: "could not create or open the job's output files"},
	-10: {Name: "JOB_EXEC_OVERLIMIT_MEM", State: job.Failed,
		Meaning: "killed for exceeding a memory limit"},
	-11: {Name: "JOB_EXEC_OVERLIMIT_WT", State: job.Timeout,
		Meaning: "killed for exceeding its walltime"},
	-12: {Name: "JOB_EXEC_OVERLIMIT_CPUT", State: job.Failed,
		Meaning: "killed for exceeding a cpu time limit"},
	-13: {Name: "JOB_EXEC_RETRY_CGROUP", State: job.Failed,
		Meaning: "setting up the job's cgroup failed"},
	-14: {Name: "JOB_EXEC_RETRY_PROLOGUE", State: job.Failed,
		Meaning: "the prologue failed"},
	-29: {Name: "JOB_EXEC_KILL_WALLTIME", State: job.Timeout,
		Meaning: "killed for exceeding its walltime (PBS Pro's code)"},
}

// states maps Torque's job_state letters for jobs that have not finished. Held, waiting
// and transiting jobs are pending because Torque can still run them; an exiting job (E)
// has left its script and is completing, not terminal, while Torque cleans up. C is read
// in jobRecord.
var states = map[string]job.State{
	"Q": job.Pending,
	"H": job.Pending,
	"W": job.Pending,
	"T": job.Pending,
	"R": job.Running,
	"E": job.Completing,
	"S": job.Suspended,
}

// notTorque explains letters that are not Torque states but reach this parser anyway.
var notTorque = map[string]string{
	"U": "job_state U: the Slurm wrapper's 'unknown' (it prints U for OUT_OF_MEMORY and " +
		"DEADLINE); the job's exit-status file or sacct says how it ended",
	"F": "job_state F is PBS Pro's: is the cluster's scheduler pbs rather than torque?",
	"X": "job_state X is PBS Pro's: is the cluster's scheduler pbs rather than torque?",
	"M": "job_state M is PBS Pro's: is the cluster's scheduler pbs rather than torque?",
	"B": "job_state B is PBS Pro's: is the cluster's scheduler pbs rather than torque?",
}

// MapState maps a Torque job_state letter of a job that has not finished; ok is false for
// C and for letters Torque does not use.
func MapState(raw string) (st job.State, ok bool) {
	st, ok = states[raw]
	return st, ok
}

// QstatArgs builds the Torque qstat argv for at most pbs.MaxIDsPerCall ids (see
// pbs.Chunk). Torque has no JSON and no history flag (-x asks it for XML), so this is the
// text of -f; finished jobs stay visible as C for the server's keep_completed time.
func QstatArgs(ids []string) []string {
	argv := make([]string, 0, len(ids)+2)
	argv = append(argv, "qstat", "-f")
	return append(argv, ids...)
}

// QsubArgs builds the qsub argv; Torque's qsub takes the same -N and -v as PBS Pro's, so
// this is pbs.QsubArgs, named here so a Torque backend needs one package for its argv.
func QsubArgs(jobID string, opts []string, script string) []string {
	return pbs.QsubArgs(jobID, opts, script)
}

// QdelArgs builds the qdel argv for at most pbs.MaxIDsPerCall ids; see pbs.QdelArgs.
func QdelArgs(ids []string) []string { return pbs.QdelArgs(ids) }

// ParseQstat reads `qstat -f` text with times in this machine's zone; see ParseQstatIn.
func ParseQstat(stdout, stderr []byte, exit int) []pbs.Record {
	return ParseQstatIn(stdout, stderr, exit, time.Local)
}

// ParseQstatIn reads `qstat -f` text (QstatArgs) in either layout: one record per "Job Id:"
// block, in order, the last block for an id winning. Times are wall-clock times of the
// server, so loc must be its zone.
//
// C is terminal: with exit_status it is read as PBS Pro's Exit_status is (pbs.EndState
// with Torque's ExecCodes); without it, as from the Slurm wrappers, the job has ended in
// a way qstat does not tell (pbs.EndedWithoutStatus), and is never taken as completed. A
// block without a readable job_state, or with a letter Torque does not use, is transient
// for its id. Text before the first block means the output is not `qstat -f` and the
// whole answer is one transient record, which names PBS Pro when the answer is its JSON.
// stderr is read by pbs.MergeQstatErrors, as for PBS Pro.
func ParseQstatIn(stdout, stderr []byte, exit int, loc *time.Location) []pbs.Record {
	if loc == nil {
		loc = time.Local
	}
	blocks, bad := readBlocks(string(stdout))
	var recs []pbs.Record
	if bad != nil {
		recs = append(recs, *bad)
	} else {
		for _, b := range blocks {
			recs = append(recs, jobRecord(b, loc))
		}
	}
	return pbs.MergeQstatErrors(recs, stderr, exit)
}

// block is one "Job Id:" block of qstat -f: the id and the attributes, values joined.
type block struct {
	id    string
	attrs map[string]string
}

// The layouts of a block, decided by its first attribute line.
const (
	layoutUnknown = iota
	layoutSpaces  // Torque: four-space attributes, tab-led continuations
	layoutTabs    // the Slurm wrappers: tab-led attributes, no continuations
)

// readBlocks cuts qstat -f text into blocks. A continuation is appended to the value of
// the attribute before it: a tab-led one without a separator, as Torque cuts values at a
// fixed width and even inside a word, and an unindented one (a raw newline in a job
// name) after a newline. bad is set when the text is not qstat -f at all.
func readBlocks(s string) (blocks []block, bad *pbs.Record) {
	var cur *block
	layout, last := layoutUnknown, ""
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if rest, ok := strings.CutPrefix(line, "Job Id:"); ok {
			blocks = append(blocks, block{id: strings.TrimSpace(rest),
				attrs: map[string]string{}})
			cur = &blocks[len(blocks)-1]
			layout, last = layoutUnknown, ""
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if cur == nil {
			return nil, notQstatF(s, n+1, line)
		}

		if layout == layoutUnknown {
			layout = layoutSpaces
			if line[0] == '\t' {
				layout = layoutTabs
			}
		}
		if key, value, ok := attribute(line, layout); ok {
			cur.attrs[key] = value
			last = key
			continue
		}
		switch {
		case last == "":
			return nil, notQstatF(s, n+1, line)
		case line[0] == '\t':
			cur.attrs[last] += line[1:]
		default:
			cur.attrs[last] += "\n" + line
		}
	}
	return blocks, nil
}

// attribute reads an attribute line, "key = value" after its indentation: four spaces
// (any run of spaces) in Torque's layout, and also a tab in the wrappers' layout.
func attribute(line string, layout int) (key, value string, ok bool) {
	var body string
	switch {
	case line[0] == ' ':
		body = strings.TrimLeft(line, " ")
	case line[0] == '\t' && layout == layoutTabs:
		body = line[1:]
	default:
		return "", "", false
	}
	key, value, ok = strings.Cut(body, " = ")
	if !ok {
		key, ok = strings.CutSuffix(strings.TrimRight(body, " "), " =")
	}
	if !ok || !validKey(key) {
		return "", "", false
	}
	return key, value, true
}

// validKey reports whether s can be an attribute name ("job_state",
// "Resource_List.nodes").
func validKey(s string) bool {
	if s == "" || !isLetter(s[0]) && s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && (c < '0' || c > '9') && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// notQstatF is the record for output that is not qstat -f text.
func notQstatF(s string, lineNo int, line string) *pbs.Record {
	r := pbs.Record{Outcome: pbs.OutcomeTransient}
	switch f, _ := pbs.DetectFlavour([]byte(s)); {
	case f == pbs.FlavourPBS:
		r.Reason = "qstat answered in PBS Pro's JSON, not Torque's text: is the cluster's " +
			"scheduler pbs rather than torque?"
	case strings.HasPrefix(strings.TrimSpace(s), "<"):
		r.Reason = "qstat printed XML (Torque's -x); qmd reads the text of qstat -f"
	default:
		r.Reason = pbs.Clip(fmt.Sprintf("qstat printed a line qmd cannot read (line %d): %s",
			lineNo, strings.TrimSpace(line)))
	}
	return &r
}

// jobRecord turns one block into a record.
func jobRecord(b block, loc *time.Location) pbs.Record {
	if !pbs.ValidID(b.id) {
		return pbs.Record{Outcome: pbs.OutcomeTransient,
			Reason: pbs.Clip(fmt.Sprintf("qstat printed a Job Id that is not a job id: %q", b.id))}
	}
	r := pbs.Record{ID: b.id, RawState: strings.TrimSpace(b.attrs["job_state"])}
	if r.RawState == "" {
		return pbs.Record{Outcome: pbs.OutcomeTransient, ID: b.id,
			Reason: "job record has no job_state"}
	}
	r.Name = b.attrs["Job_Name"]
	r.QMDJobID = pbs.ListVariable(b.attrs["Variable_List"], pbs.VarJobID)
	r.Submit = pbs.ParseTime(b.attrs["qtime"], loc)
	r.Start = pbs.ParseTime(b.attrs["start_time"], loc)
	comment := strings.TrimSpace(b.attrs["comment"])

	if r.RawState == "C" {
		r.End = pbs.ParseTime(b.attrs["comp_time"], loc)
		r.Reason = comment
		raw, has := b.attrs["exit_status"]
		if !has {
			raw, has = b.attrs["Exit_status"]
		}
		if !has {
			pbs.EndedWithoutStatus(&r)
			return r
		}
		status, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return pbs.Record{Outcome: pbs.OutcomeTransient, ID: b.id, RawState: r.RawState,
				Reason: pbs.Clip("completed job with an unreadable exit_status: " + raw)}
		}
		var why string
		r.Outcome, r.Terminal = pbs.OutcomeJob, true
		r.State, r.ExitCode, r.Signal, why = pbs.EndState(status, ExecCodes)
		if why != "" {
			r.Reason = why
		}
		return r
	}

	st, ok := states[r.RawState]
	if !ok {
		why := notTorque[r.RawState]
		if why == "" {
			why = "job_state not known to qmd"
		}
		return pbs.Record{Outcome: pbs.OutcomeTransient, ID: b.id, RawState: r.RawState,
			Reason: why}
	}
	r.Outcome, r.State, r.Reason = pbs.OutcomeJob, st, pbs.Clip(comment)
	return r
}
