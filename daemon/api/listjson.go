package api

import (
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"qmd/daemon/job"
)

// A listing is the one answer that grows with the database: a group that keeps a year of
// jobs asks for ten thousand rows at each `qmctl list`. Encoding them through reflection
// (encoding/json on []wire.Job) cost about as much as reading them from SQLite, so the
// list route writes each job with appendJob instead. The bytes are exactly those
// encoding/json writes for toWire(j, nil), which TestAppendJobMatchesEncodingJSON checks,
// so clients cannot tell the difference.

// listFlush is how much encoded JSON is gathered before it is written out: large enough
// that the socket sees few writes, small enough that the client starts reading early.
const listFlush = 64 << 10

// writeJobs answers a listing with a JSON array of jobs, streamed in chunks.
func (h *Handler) writeJobs(w http.ResponseWriter, jobs []job.Job) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 0, listFlush+4<<10)
	buf = append(buf, '[')
	for i := range jobs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJob(buf, &jobs[i])
		if len(buf) >= listFlush {
			if _, err := w.Write(buf); err != nil {
				h.log().Debug("write response", "err", err)
				return
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, ']', '\n')
	if _, err := w.Write(buf); err != nil {
		h.log().Debug("write response", "err", err)
	}
}

// appendJob appends j as encoding/json encodes toWire(j, nil): the fields of wire.Job in
// declaration order, omitempty ones left out when empty, and no history.
func appendJob(b []byte, j *job.Job) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, j.ID)
	b = append(b, `,"state":`...)
	b = appendString(b, string(j.State))
	b = append(b, `,"cluster":`...)
	b = appendString(b, j.Cluster)
	b = append(b, `,"scheduler_id":`...)
	b = appendString(b, j.SchedulerID)
	if j.SchedReason != "" {
		b = append(b, `,"scheduler_reason":`...)
		b = appendString(b, j.SchedReason)
	}
	b = append(b, `,"name":`...)
	b = appendString(b, j.Name)
	b = append(b, `,"preset":`...)
	b = appendString(b, j.Preset)
	b = append(b, `,"solvent":`...)
	b = appendString(b, j.Solvent)
	b = append(b, `,"owner_uid":`...)
	b = strconv.AppendInt(b, int64(j.OwnerUID), 10)
	if j.Level != "" {
		b = append(b, `,"level":`...)
		b = appendString(b, j.Level)
	}
	if j.Software != "" {
		b = append(b, `,"software":`...)
		b = appendString(b, j.Software)
	}
	if j.TemplateHash != "" {
		b = append(b, `,"template_hash":`...)
		b = appendString(b, j.TemplateHash)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, j.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, j.UpdatedAt)
	b = append(b, `,"error":`...)
	if j.Error == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, j.Error)
	}
	if j.ExitCode != nil {
		b = append(b, `,"exit_code":`...)
		b = strconv.AppendInt(b, int64(*j.ExitCode), 10)
	}
	if j.Kind != "" {
		b = append(b, `,"kind":`...)
		b = appendString(b, string(j.Kind))
	}
	if j.ParentID != "" {
		b = append(b, `,"parent_id":`...)
		b = appendString(b, j.ParentID)
	}
	return append(b, '}')
}

// appendTime writes t as time.Time's MarshalJSON does. The store only holds years
// 1678–2261, all inside the range MarshalJSON accepts.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does by default: '<', '>'
// and '&' escaped for HTML, U+2028 and U+2029 escaped for JavaScript, each invalid UTF-8
// byte replaced by U+FFFD, and control characters written as short escapes where JSON
// has one and as \u00XX otherwise.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is waiting to be copied unchanged
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
