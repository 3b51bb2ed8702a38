package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Time layouts. Tables use minutes, which is what matters when scanning a queue; show
// gives seconds and the zone because it is what people paste into tickets.
const (
	shortTime = "2006-01-02 15:04"
	longTime  = "2006-01-02 15:04:05 MST"
)

// writeJSON prints v indented. HTML escaping is off because SMILES and file names contain
// '<', '>' and '&' that would otherwise come out as \u003c and friends.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeRawJSONArray indents a JSON array as writeJSON would print it, without decoding
// it; null becomes [], since scripts expect an array.
func writeRawJSONArray(w io.Writer, raw []byte) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("[]")
	}
	var buf bytes.Buffer
	buf.Grow(len(raw) + len(raw)/4)
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("format qmd's answer: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// table aligns columns with tabwriter. Cells are sanitized so that a job name or scheduler
// message cannot break the layout or send escape sequences to the terminal.
type table struct {
	tw *tabwriter.Writer
}

// newTable starts a table; with no header it serves for aligned "key: value" lines.
func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		c = sanitize(c)
		if c == "" {
			c = "-"
		}
		cells[i] = c
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// sanitize replaces control characters (tabs and newlines included) with spaces or '?'
// so that text from the daemon prints as one inert cell or line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return '?'
		}
		return r
	}, s)
}

// sanitizeBlock is sanitize for multi-line text shown as a block (an error message, a
// log): newlines and tabs survive, other control characters do not.
func sanitizeBlock(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n':
			return r
		case r == '\r':
			return -1
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return '?'
		}
		return r
	}, s)
}

// fmtTime renders t in the display zone; the zero time (never set) shows as "-".
func (a *app) fmtTime(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(a.loc).Format(layout)
}

// fmtAgo says how long ago t was in the coarsest unit that still tells jobs apart.
func (a *app) fmtAgo(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := a.now().Sub(t)
	if d < 0 {
		d = 0 // clocks of the login node and daemon host can disagree slightly
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		h := int(d / time.Hour)
		m := int((d % time.Hour) / time.Minute)
		return fmt.Sprintf("%dh%02dm ago", h, m)
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// ensureNewline makes each printed file end its last line, so the next header starts on a
// line of its own even when the file lacks a final newline.
func ensureNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
