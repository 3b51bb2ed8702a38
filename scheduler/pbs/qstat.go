package pbs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"qmd/daemon/job"
)

// liveState is how a job_state letter of a job that has not finished reads for qmd.
type liveState struct {
	state job.State
	why   string // the reason given when the job has no comment
}

// proStates maps PBS Pro's job_state letters for jobs that have not finished. Held,
// waiting and transiting jobs are pending because PBS can still run them. An array job
// that has begun (B) is running. An exiting job (E) has left its script and is being
// cleaned up: completing, not terminal, because PBS may still requeue it. U is the
// workstation-busy suspension of cycle harvesting. F, X and M are read in jobFromAttrs.
var proStates = map[string]liveState{
	"Q": {job.Pending, "queued"},
	"H": {job.Pending, "held"},
	"W": {job.Pending, "waiting for its execution time"},
	"T": {job.Pending, "in transit between queues or servers"},
	"R": {job.Running, ""},
	"B": {job.Running, "array job whose subjobs have begun"},
	"E": {job.Completing, "exiting: the script has ended and PBS is cleaning up"},
	"S": {job.Suspended, "suspended"},
	"U": {job.Suspended, "suspended because its workstation became busy"},
}

// MapLiveState maps a PBS Pro job_state letter of a job that has not finished; ok is
// false for F, X, M and letters PBS Pro does not use.
func MapLiveState(raw string) (st job.State, ok bool) {
	s, ok := proStates[raw]
	return s.state, ok
}

// timeLayout is the time format of qstat -f on PBS Pro and Torque
// ("Mon Mar  4 10:00:00 2024"), also inside PBS Pro's JSON.
const timeLayout = "Mon Jan _2 15:04:05 2006"

// ParseQstat reads `qstat -f -F json -x` output with times in this machine's zone; see
// ParseQstatIn.
func ParseQstat(stdout, stderr []byte, exit int) []Record {
	return ParseQstatIn(stdout, stderr, exit, time.Local)
}

// ParseQstatIn reads `qstat -f -F json -x` output (QstatArgs): one record per job of
// "Jobs", in order, the job's key being its id as the server prints it. Times are
// wall-clock times of the server, so loc must be its zone.
//
// Finished jobs (F, and X for an expired subjob) are terminal and read by their
// Exit_status (EndState, EndedWithoutStatus). A moved job (M) is transient for its id:
// it now lives on another server under another id, so this server's record no longer
// follows it, and reporting it pending would freeze a job that may have ended long ago.
// A job whose record cannot be read, or whose job_state is not known, is transient for
// its id alone; the other jobs are read as usual.
//
// Messages on stderr are read by MergeQstatErrors: PBS answers for the ids it found and
// names each id it did not ("Unknown Job Id", exit 153), so a partial answer yields both.
// Output that is not JSON at all is one transient record, which names the Torque format
// when it is that, since the cluster is then configured with the wrong scheduler.
func ParseQstatIn(stdout, stderr []byte, exit int, loc *time.Location) []Record {
	if loc == nil {
		loc = time.Local
	}
	var recs []Record
	body := bytes.TrimSpace(stdout)
	switch {
	case len(body) == 0:
	case body[0] != '{':
		recs = append(recs, wrongShape(body))
	default:
		recs = readJSON(stdout, loc)
	}
	return MergeQstatErrors(recs, stderr, exit)
}

// wrongShape is the record for qstat output that is not JSON.
func wrongShape(body []byte) Record {
	if f, ok := DetectFlavour(body); ok && f == FlavourTorque {
		return Record{Outcome: OutcomeTransient, Reason: "qstat answered in Torque's format, " +
			"not PBS Pro JSON: is the cluster's scheduler torque rather than pbs?"}
	}
	line, _, _ := bytes.Cut(body, []byte("\n"))
	return Record{Outcome: OutcomeTransient,
		Reason: Clip("qstat printed something that is not PBS Pro JSON: " +
			strings.TrimSpace(string(line)))}
}

// MergeQstatErrors adds what qstat printed on stderr to the records read from its stdout,
// for PBS Pro and Torque alike. A line that names a job gives that job a record (unknown
// job, finished without -x, or transient) unless stdout already had one, the last line
// for an id winning. Lines that name no job become one more record, read together, when
// qstat failed or nothing else was read. A failure without any message is read by its
// exit code alone: 153 is an unknown job, 35 a finished one (asked without -x), anything
// else transient.
func MergeQstatErrors(recs []Record, stderr []byte, exit int) []Record {
	var list recordList
	fromStdout := map[string]bool{}
	for _, r := range recs {
		list.add(r)
		if r.ID != "" {
			fromStdout[r.ID] = true
		}
	}

	var anonymous []string
	named := false
	for _, line := range messageLines(stderr) {
		id := namedJobID(line)
		if id == "" {
			anonymous = append(anonymous, line)
			continue
		}
		named = true
		if fromStdout[id] {
			continue
		}
		out, ok := classifyLine(line)
		if !ok {
			out = OutcomeTransient
		}
		list.add(Record{Outcome: out, ID: id, Reason: Clip(line)})
	}

	switch {
	case len(anonymous) > 0 && (exit != 0 || len(list.out) == 0):
		list.add(classify(anonymous, "qstat", exit))
	case len(anonymous) == 0 && !named && exit != 0:
		list.add(exitOnly("qstat", exit))
	}
	return list.out
}

// readJSON reads the jobs of a `qstat -F json` document. The document is first repaired
// in the ways that cannot change valid JSON. Only when something in it still cannot be
// read is the bolder repair of stray quotes tried; being a guess, it may mend one job and
// spoil another, so the two readings are merged job by job, each job taken from the
// reading that read it better.
func readJSON(stdout []byte, loc *time.Location) []Record {
	first := readDoc(repairJSON(stdout, false), loc)
	if !first.broken() {
		return first.recs
	}
	return mergeReadings(first, readDoc(repairJSON(stdout, true), loc))
}

// How well a reading read one job: the order matters, higher is better.
const (
	unread   = iota // no job record: transient, or missing
	degraded        // a job record, but some attribute was not valid JSON
	whole           // a job record with every attribute valid
)

// docResult is one reading of a document: its records, how well each was read (parallel
// to recs), and the transient record for a document cut short, if it was.
type docResult struct {
	recs    []Record
	quality []int
	cut     *Record
}

// broken reports whether anything in the reading could not be read.
func (d docResult) broken() bool {
	return d.cut != nil || slices.ContainsFunc(d.quality, func(q int) bool { return q != whole })
}

// mergeReadings takes each job from the reading that read it better, in the first
// reading's order, the first reading winning ties. Jobs only the second reading found
// (the first was cut short before them) follow, and the document is reported cut only
// if both readings were.
func mergeReadings(first, second docResult) []Record {
	better := map[string]int{}
	for i, r := range second.recs {
		if r.ID != "" {
			better[r.ID] = i
		}
	}
	var list recordList
	for i, r := range first.recs {
		if j, ok := better[r.ID]; ok && r.ID != "" && second.quality[j] > first.quality[i] {
			r = second.recs[j]
		}
		list.add(r)
	}
	for _, r := range second.recs {
		if r.ID != "" && !list.has(r.ID) {
			list.add(r)
		}
	}
	if first.cut != nil && second.cut != nil {
		list.add(*first.cut)
	}
	return list.out
}

// readDoc walks the top-level object to "Jobs" and reads each job on its own. When the
// structure breaks inside a job, that job is transient and the reading stops there,
// keeping the jobs before it; the document is then cut, since the jobs after that point
// are missing from the answer.
func readDoc(doc []byte, loc *time.Location) docResult {
	var res docResult
	add := func(r Record, q int) {
		res.recs = append(res.recs, r)
		res.quality = append(res.quality, q)
	}
	seen := map[string]bool{}
	current := ""
	_, err := eachMember(doc, 0, func(key string, at int) (int, error) {
		if key != "Jobs" {
			return scanValue(doc, at)
		}
		return eachMember(doc, at, func(id string, at int) (int, error) {
			current = id
			end, err := scanValue(doc, at)
			if err != nil {
				return 0, err
			}
			r, q := readJob(id, doc[at:end], loc)
			if seen[id] {
				// A repeated key: the later record replaces the earlier one in place.
				i := slices.IndexFunc(res.recs, func(old Record) bool { return old.ID == id })
				res.recs[i], res.quality[i] = r, q
			} else {
				add(r, q)
				seen[id] = r.ID != ""
			}
			current = ""
			return end, nil
		})
	})
	if err != nil {
		if current != "" && ValidID(current) && !seen[current] {
			add(Record{Outcome: OutcomeTransient, ID: current,
				Reason: Clip("job record unreadable: " + err.Error())}, unread)
		}
		res.cut = &Record{Outcome: OutcomeTransient,
			Reason: Clip("qstat JSON output unreadable, jobs after this point are " +
				"missing: " + err.Error())}
	}
	return res
}

// readJob reads one job's attributes. Each attribute is decoded on its own, so a value
// that is still broken (most often Variable_List) costs that attribute, not the job;
// only job_state and, for a finished job, Exit_status must be readable. quality says how
// well the job was read.
func readJob(id string, raw []byte, loc *time.Location) (r Record, quality int) {
	if !ValidID(id) {
		return Record{Outcome: OutcomeTransient,
			Reason: Clip(fmt.Sprintf("qstat printed a job key that is not a job id: %q",
				id))}, unread
	}
	attrs := map[string][]byte{}
	valid := true
	if _, err := eachMember(raw, 0, func(key string, at int) (int, error) {
		end, err := scanValue(raw, at)
		if err == nil {
			attrs[key] = raw[at:end]
			valid = valid && json.Valid(attrs[key])
		}
		return end, err
	}); err != nil {
		return Record{Outcome: OutcomeTransient, ID: id,
			Reason: Clip("job record unreadable: " + err.Error())}, unread
	}
	r = jobFromAttrs(id, attrs, loc)
	switch {
	case r.Outcome != OutcomeJob:
		return r, unread
	case !valid:
		return r, degraded
	}
	return r, whole
}

// jobFromAttrs reads a job record from its attributes, each still raw JSON.
func jobFromAttrs(id string, attrs map[string][]byte, loc *time.Location) Record {
	r := Record{ID: id}
	var ok bool
	if r.RawState, ok = jsonString(attrs["job_state"]); !ok {
		return Record{Outcome: OutcomeTransient, ID: id,
			Reason: "job record has no readable job_state"}
	}
	r.RawState = Clip(r.RawState)
	r.Name, _ = jsonString(attrs["Job_Name"])
	r.QMDJobID = jsonVariable(attrs["Variable_List"], VarJobID)
	comment, _ := jsonString(attrs["comment"])
	r.Submit = jsonTime(attrs["ctime"], loc)
	r.Start = jsonTime(attrs["stime"], loc)

	switch r.RawState {
	case "F", "X":
		r.End = jsonTime(attrs["obittime"], loc)
		r.Reason = Clip(comment)
		rawStatus, has := attrs["Exit_status"]
		if !has {
			EndedWithoutStatus(&r)
			return r
		}
		status, ok := jsonInt(rawStatus)
		if !ok {
			return Record{Outcome: OutcomeTransient, ID: id, RawState: r.RawState,
				Reason: Clip("finished job with an unreadable Exit_status: " +
					string(rawStatus))}
		}
		r.Outcome, r.Terminal = OutcomeJob, true
		var why string
		r.State, r.ExitCode, r.Signal, why = EndState(status, ExecCodes)
		if why != "" {
			r.Reason = why
		}
		return r
	case "M":
		return Record{Outcome: OutcomeTransient, ID: id, RawState: r.RawState,
			Reason: Clip(strings.TrimSuffix("job_state M: moved to another server, which "+
				"now holds its state under another id; "+comment, "; "))}
	}
	live, known := proStates[r.RawState]
	if !known {
		why := "job_state not known to qmd"
		if r.RawState == "C" {
			why = "job_state C is Torque's: is the cluster's scheduler torque rather than pbs?"
		}
		return Record{Outcome: OutcomeTransient, ID: id, RawState: r.RawState, Reason: why}
	}
	r.Outcome, r.State, r.Reason = OutcomeJob, live.state, comment
	if r.Reason == "" {
		r.Reason = live.why
	}
	r.Reason = Clip(r.Reason)
	return r
}

// jsonString decodes a JSON string value; ok is false when raw is missing or not one.
func jsonString(raw []byte) (string, bool) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonInt decodes an integer given as a JSON number or a numeric string ("0").
func jsonInt(raw []byte) (int, bool) {
	s, isString := jsonString(raw)
	if !isString {
		s = string(bytes.TrimSpace(raw))
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}

// jsonTime decodes a time printed as "Mon Mar  4 10:00:00 2024" in loc, or as epoch
// seconds; nil when raw is missing or neither.
func jsonTime(raw []byte, loc *time.Location) *time.Time {
	if raw == nil {
		return nil
	}
	if s, ok := jsonString(raw); ok {
		return ParseTime(s, loc)
	}
	if n, ok := jsonInt(raw); ok && n > 0 {
		t := time.Unix(int64(n), 0).In(loc)
		return &t
	}
	return nil
}

// ParseTime reads a time as qstat -f prints it on PBS Pro and Torque, a wall-clock time
// of the server's zone loc; nil when s is empty or not in that format, since a missing
// time must not become the zero time.
func ParseTime(s string, loc *time.Location) *time.Time {
	t, err := time.ParseInLocation(timeLayout, strings.TrimSpace(s), loc)
	if err != nil {
		return nil
	}
	return &t
}

// jsonVariable returns one variable of a Variable_List, which PBS Pro prints as an
// object of strings; older servers print the "NAME=value,…" list instead.
func jsonVariable(raw []byte, name string) string {
	if raw == nil {
		return ""
	}
	var vars map[string]json.RawMessage
	if json.Unmarshal(raw, &vars) == nil {
		v, _ := jsonString(vars[name])
		return v
	}
	if s, ok := jsonString(raw); ok {
		return ListVariable(s, name)
	}
	return ""
}

// ListVariable returns one variable of a Variable_List printed as "NAME=value,…" (Torque,
// PBS text output), or "". A comma inside a value is escaped with a backslash.
func ListVariable(list, name string) string {
	for len(list) > 0 {
		item := list
		end := -1
		for i := 0; i < len(list); i++ {
			if list[i] == '\\' {
				i++
				continue
			}
			if list[i] == ',' {
				end = i
				break
			}
		}
		if end >= 0 {
			item, list = list[:end], list[end+1:]
		} else {
			list = ""
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(item), "="); ok && k == name {
			return strings.ReplaceAll(v, `\,`, ",")
		}
	}
	return ""
}
