package slurm

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// sacctFields is the column count of the pinned sacct format
// (JobID,State,ExitCode,Submit,Start,End,JobName).
const sacctFields = 7

// ParseSacct reads the pinned sacct format with times in this machine's zone; see
// ParseSacctIn.
func ParseSacct(stdout, stderr []byte, exit int) []Record {
	return ParseSacctIn(stdout, stderr, exit, time.Local)
}

// ParseSacctIn reads `sacct --noheader --parsable2 --allocations --duplicates` output in
// the SacctArgs format. Times printed as SLURM_TIME_FORMAT=standard are wall-clock times of
// the cluster, so loc must be the cluster's zone; epoch seconds are accepted too.
//
// It returns one record per job id, in order of first appearance, taken from the id's last
// line: with --duplicates a requeued job has a line per run and only the newest counts.
// A line whose State and ExitCode do not read as such continues the previous job's name
// (names may hold newlines; JobName is last so a `|` in it stays in the name). A first
// line that is not a record means the format is not the pinned one, and the whole answer
// is one transient record. Step lines ("123.batch") are not jobs and are skipped, so the
// parser stays right if --allocations is ever dropped. Empty output is no record at all:
// slurmdbd lags behind the controller, so a missing row means "not known yet".
//
// Polls read thousands of rows per cycle, so the loop allocates per call, not per row:
// the input is converted to a string once and every field is a substring of it, and
// exit codes and times live in slices sized from the line count.
func ParseSacctIn(stdout, stderr []byte, exit int, loc *time.Location) []Record {
	if exit != 0 || (isBlank(stdout) && hasError(stderr)) {
		return []Record{ClassifyError(stderr, exit)}
	}
	if loc == nil {
		loc = time.Local
	}

	s := string(stdout)
	lines := strings.Count(s, "\n") + 1
	p := sacctParser{
		loc:   loc,
		out:   make([]Record, 0, lines),
		index: make(map[string]int, lines),
		ints:  make([]int, 0, 2*lines),
		times: make([]time.Time, 0, 3*lines),
	}

	seen := false // a record line was read, so a stray line continues a name
	last := -1    // index in p.out that a continuation line extends; -1 for a skipped step
	nameStart := 0
	lineNo := 0
	var f [sacctFields]string
	for pos := 0; pos < len(s); {
		line, start, next := nextLine(s, pos)
		pos = next
		lineNo++
		if isBlankString(line) {
			continue
		}
		if !splitSacct(line, &f) {
			if !seen {
				return []Record{unexpected("sacct", lineNo, line)}
			}
			if last >= 0 {
				p.out[last].Name = s[nameStart : start+len(line)]
			}
			continue
		}
		seen = true
		if strings.IndexByte(f[0], '.') >= 0 {
			last = -1
			continue
		}
		nameStart = start + len(line) - len(f[6])
		last = p.add(&f)
	}
	return p.out
}

// sacctParser holds the per-call slices records point into.
type sacctParser struct {
	loc   *time.Location
	out   []Record
	index map[string]int // job id → position in out
	ints  []int
	times []time.Time
}

// add turns one checked line into a record, replacing an earlier record for the same id
// in place, and returns the record's position.
func (p *sacctParser) add(f *[sacctFields]string) int {
	r := Record{ID: f[0], RawState: f[1], Name: f[6]}
	st, terminal, known := MapState(f[1])
	if known {
		r.Outcome, r.State, r.Terminal = OutcomeJob, st, terminal
		r.Submit, r.Start, r.End = p.time(f[3]), p.time(f[4]), p.time(f[5])
		if terminal {
			code, sig, hasCode, hasSig, _ := parseExitCode(f[2])
			if hasCode {
				r.ExitCode = p.int(code)
			}
			if hasSig {
				r.Signal = p.int(sig)
			}
		}
	} else {
		r.Outcome, r.Reason = OutcomeTransient, "job state not known to qmd"
	}

	if i, dup := p.index[r.ID]; dup {
		p.out[i] = r
		return i
	}
	p.index[r.ID] = len(p.out)
	p.out = append(p.out, r)
	return len(p.out) - 1
}

// int stores n in the per-call slice and returns its address.
func (p *sacctParser) int(n int) *int {
	p.ints = append(p.ints, n)
	return &p.ints[len(p.ints)-1]
}

// time reads a sacct time into the per-call slice, or returns nil for Unknown, None,
// an empty field or anything else that is not a time. A time that does not read is not
// worth dropping the job's state for: the state and exit code are what the daemon acts on.
func (p *sacctParser) time(s string) *time.Time {
	t, ok := parseTime(s, p.loc)
	if !ok {
		return nil
	}
	p.times = append(p.times, t)
	return &p.times[len(p.times)-1]
}

// splitSacct splits a line into the seven columns and reports whether it is a record:
// a job id, a state-shaped State and a readable ExitCode. JobName takes the rest of the
// line, `|` included.
func splitSacct(line string, f *[sacctFields]string) bool {
	rest := line
	for i := 0; i < sacctFields-1; i++ {
		j := strings.IndexByte(rest, '|')
		if j < 0 {
			return false
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	f[sacctFields-1] = rest
	if !validID(f[0]) || !stateSyntax(f[1]) {
		return false
	}
	_, _, _, _, ok := parseExitCode(f[2])
	return ok
}

// parseTime reads SLURM_TIME_FORMAT=standard ("2006-01-02T15:04:05", wall time in loc)
// or epoch seconds. It is written out by hand because time.Parse would be most of the
// cost of a row.
func parseTime(s string, loc *time.Location) (time.Time, bool) {
	if len(s) == 19 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
		s[16] == ':' {
		y, ok1 := atoi(s[0:4])
		mo, ok2 := atoi(s[5:7])
		d, ok3 := atoi(s[8:10])
		h, ok4 := atoi(s[11:13])
		mi, ok5 := atoi(s[14:16])
		sec, ok6 := atoi(s[17:19])
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
			mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 {
			return time.Time{}, false
		}
		return time.Date(y, time.Month(mo), d, h, mi, sec, 0, loc), true
	}
	if allDigits(s) && len(s) <= 12 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.Unix(n, 0).In(loc), true
	}
	return time.Time{}, false
}

// nextLine returns the line starting at pos without its "\n" (and a "\r" before it), the
// line's offset, and where the next line starts.
func nextLine(s string, pos int) (line string, start, next int) {
	end := strings.IndexByte(s[pos:], '\n')
	if end < 0 {
		line, next = s[pos:], len(s)
	} else {
		line, next = s[pos:pos+end], pos+end+1
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, pos, next
}

// unexpected is the transient record for output that is not in the pinned format.
func unexpected(cmd string, lineNo int, line string) Record {
	return Record{Outcome: OutcomeTransient,
		Reason: clip(cmd + " printed a line qmd cannot read (line " + strconv.Itoa(lineNo) +
			"): " + strings.TrimSpace(line))}
}

func isBlank(b []byte) bool { return len(bytes.TrimSpace(b)) == 0 }

func isBlankString(s string) bool { return len(strings.TrimSpace(s)) == 0 }

// hasError reports whether a command printed an error message: with nothing on stdout,
// that makes the silence a failure to ask rather than "no such job".
func hasError(stderr []byte) bool {
	return bytes.Contains(bytes.ToLower(stderr), []byte("error")) ||
		bytes.Contains(bytes.ToLower(stderr), []byte("accounting storage is disabled"))
}
