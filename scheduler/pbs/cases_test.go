package pbs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/parse.golden from the current code")

// TestMain pins the local zone to UTC, the zone the expected records and the golden file
// are written in: qstat prints wall-clock times and ParseQstat reads them in time.Local.
func TestMain(m *testing.M) {
	time.Local = time.UTC
	os.Exit(m.Run())
}

// caseFiles are the PB-* and GEN-* field cases, copied from the shared cases.json that
// run-cases reads, and qmd's own cases in the same schema: every state and exit status,
// broken JSON, and every qsub and qdel answer.
var caseFiles = []string{"cases.json", "qmd-cases.json"}

// fieldCase is one case of a case file. An expected record lists only the fields that
// matter; "<absent>" means the field must not be printed, as run-cases reads it.
type fieldCase struct {
	ID        string           `json:"id"`
	Title     string           `json:"title"`
	Scheduler string           `json:"scheduler"`
	Command   string           `json:"command"`
	Kind      string           `json:"kind"`
	Stdout    string           `json:"stdout"`
	StdoutB64 *string          `json:"stdout_b64"`
	Stderr    string           `json:"stderr"`
	ExitCode  int              `json:"exit_code"`
	Check     string           `json:"check"`
	Argv      []string         `json:"argv"`
	Expected  []map[string]any `json:"expected"`
}

// stdoutBytes is the exact stdout: stdout_b64 when the case has bytes a JSON string
// cannot hold.
func (c fieldCase) stdoutBytes(t testing.TB) []byte {
	t.Helper()
	if c.StdoutB64 == nil {
		return []byte(c.Stdout)
	}
	b, err := base64.StdEncoding.DecodeString(*c.StdoutB64)
	if err != nil {
		t.Fatalf("%s: stdout_b64: %v", c.ID, err)
	}
	return b
}

// loadCases returns the cases of every case file, in file order.
func loadCases(t testing.TB) []fieldCase {
	t.Helper()
	var out []fieldCase
	for _, name := range caseFiles {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		var cases []fieldCase
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, cases...)
	}
	return out
}

// caseByID returns one case of the case files.
func caseByID(t *testing.T, id string) fieldCase {
	t.Helper()
	for _, c := range loadCases(t) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no case %s", id)
	return fieldCase{}
}

// printed renders records as `qmd parse` prints them, and reads them back as objects so
// a comparison sees exactly the printed fields.
func printed(t *testing.T, recs []Record) (lines []byte, objs []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, m)
	}
	return buf.Bytes(), objs
}

// matchExpected compares printed objects with expected records as run-cases does.
func matchExpected(got, want []map[string]any) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d records, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		for key, w := range want[i] {
			g, ok := got[i][key]
			if !ok {
				g = "<absent>"
			}
			if !reflect.DeepEqual(g, w) {
				return fmt.Errorf("record %d: %s = %#v, want %#v (record %v)", i, key, g, w,
					got[i])
			}
		}
	}
	return nil
}

// TestCases runs every pbs parse case through Parse, the entry point of `qmd parse`,
// and keeps the whole printed output in testdata/parse.golden, so the fields the cases
// leave out (reasons, names, times) cannot change unnoticed.
func TestCases(t *testing.T) {
	var golden bytes.Buffer
	n := 0
	for _, c := range loadCases(t) {
		if c.Scheduler != "pbs" || c.Kind != "parse" {
			continue
		}
		n++
		t.Run(c.ID, func(t *testing.T) {
			recs, err := Parse(c.Command, c.stdoutBytes(t), []byte(c.Stderr), c.ExitCode)
			if err != nil {
				t.Fatal(err)
			}
			lines, objs := printed(t, recs)
			if err := matchExpected(objs, c.Expected); err != nil {
				t.Errorf("%s (%s): %v", c.ID, c.Title, err)
			}
			fmt.Fprintf(&golden, "# %s %s\n%s", c.ID, c.Title, lines)
		})
	}
	if n < 5+30 {
		t.Fatalf("only %d pbs parse cases; are the case files complete?", n)
	}

	if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "/") {
		return // only some cases ran; the golden file holds them all
	}
	checkGolden(t, "parse.golden", golden.Bytes())
}

// checkGolden compares got with testdata/name, or rewrites the file with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s differs at line %d (review with go test -update and git diff):\n"+
				" got: %s\nwant: %s", path, i+1, gl, wl)
		}
	}
}

// TestParseUnknownCommand: a command Parse has no parser for is an error, not a record.
func TestParseUnknownCommand(t *testing.T) {
	if _, err := Parse("qalter", nil, nil, 0); err == nil {
		t.Fatal("qalter parsed")
	}
}
