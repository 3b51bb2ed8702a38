package slurm

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

// TestMain pins the local zone: sacct prints wall-clock times, ParseSacct reads them in
// time.Local, and the expected records and golden file are written in UTC.
func TestMain(m *testing.M) {
	time.Local = time.UTC
	os.Exit(m.Run())
}

// caseFiles are read by the table test: the field cases shared with run-cases, and qmd's own
// cases in the same schema (samples relaid out to the pinned formats, and cousins).
var caseFiles = []string{"cases.json", "qmd-cases.json"}

// fieldCase is one case of cases.json. Expected records list only the fields that matter;
// a field absent from a record is not compared, and the value "<absent>" means the field
// must not be printed (run-cases reads that the same way).
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
	Expected  []map[string]any `json:"expected"`
}

// stdoutBytes returns the exact stdout: stdout_b64 when the case has it, since a JSON string
// cannot hold bytes that are not UTF-8.
func (c fieldCase) stdoutBytes(t *testing.T) []byte {
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

// slurmParseCases returns every slurm parse case of the case files, in file order.
func slurmParseCases(t *testing.T) []fieldCase {
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
		for _, c := range cases {
			if c.Scheduler == "slurm" && (c.Kind == "" || c.Kind == "parse") {
				out = append(out, c)
			}
		}
	}
	return out
}

// printed renders records as `qmd parse` prints them and reads them back as JSON objects,
// so the comparison sees exactly the printed fields.
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

// matchExpected compares the printed objects with a case's expected records the way
// run-cases does, and returns the first difference.
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
				return fmt.Errorf("record %d: %s = %#v, want %#v (record %v)",
					i, key, g, w, got[i])
			}
		}
	}
	return nil
}

// TestCases runs every slurm parse case through Parse, the entry point `qmd parse` uses,
// and compares with the expected records. It also keeps the complete printed output of
// every case in testdata/parse.golden, so fields the cases leave out (reasons, names,
// times) cannot change unnoticed.
func TestCases(t *testing.T) {
	cases := slurmParseCases(t)
	if len(cases) < 12+50 {
		t.Fatalf("only %d slurm parse cases found; are the case files complete?", len(cases))
	}
	var golden bytes.Buffer
	for _, c := range cases {
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

	if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "/") {
		return // a subset of the cases ran; the golden file holds them all
	}
	path := filepath.Join("testdata", "parse.golden")
	if *update {
		if err := os.WriteFile(path, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(golden.Bytes(), want) {
		t.Errorf("printed records differ from %s; review with go test -update and git diff:\n%s",
			path, firstDiff(golden.String(), string(want)))
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := bytes.Split([]byte(got), []byte("\n")), bytes.Split([]byte(want), []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, gl, wl)
		}
	}
	return "(no difference)"
}
