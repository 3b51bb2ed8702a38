package slurm

import "strings"

// terminatingPrefix starts the line `scancel --verbose` prints for each job it signals.
const terminatingPrefix = "Terminating job "

// ParseScancel reads scancel's stderr; stdout is not read, as scancel prints nothing
// there. ScancelArgs asks for --verbose, because plain scancel prints nothing at all and
// exits 0 even for an id Slurm does not know.
//
// Each job named in a line gets one record, the last line for it winning: "Terminating
// job N" is ok, and an error on N is read by its message (transient when the controller
// did not answer, unknown_job for an id Slurm does not know, ok when the job was already
// ending, rejected when the user may not cancel it). An error line that names no job, or
// a non-zero exit with no error line to explain it, adds one record from ClassifyError.
// A quiet success is a single ok record.
func ParseScancel(stdout, stderr []byte, exit int) []Record {
	var out []Record
	index := map[string]int{}
	put := func(r Record) {
		if i, dup := index[r.ID]; dup && r.ID != "" {
			out[i] = r
			return
		}
		if r.ID != "" {
			index[r.ID] = len(out)
		}
		out = append(out, r)
	}

	var anonymous []string // error lines that name no job
	sawError := false
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.Contains(strings.ToLower(line), "error") {
			if i := strings.Index(line, terminatingPrefix); i >= 0 {
				id := strings.TrimSpace(line[i+len(terminatingPrefix):])
				if validID(id) {
					put(Record{Outcome: OutcomeOK, ID: id})
				}
			}
			continue
		}
		sawError = true
		id := namedJobID(line)
		if id == "" {
			anonymous = append(anonymous, line)
			continue
		}
		r := ClassifyError([]byte(line), exit)
		r.ID = id
		put(r)
	}

	switch {
	case len(anonymous) > 0:
		put(ClassifyError([]byte(strings.Join(anonymous, "\n")), exit))
	case exit != 0 && !sawError:
		put(ClassifyError(stderr, exit))
	}
	if len(out) == 0 {
		return []Record{{Outcome: OutcomeOK}}
	}
	return out
}
