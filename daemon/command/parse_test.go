package command

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// parseSuites are the case files of each scheduler's parser package: the field cases
// shared with run-cases and qmd's own. They are read from there rather than copied, so a
// case added to a parser's tests is also run through the command; each scheduler's
// transcript is kept in its own golden file.
var parseSuites = []struct {
	scheduler string
	files     []string
	golden    string
	minCases  int // fewer cases than this means a case file went missing
}{
	{"slurm", []string{"../../scheduler/slurm/testdata/cases.json",
		"../../scheduler/slurm/testdata/qmd-cases.json"}, "parse-slurm.golden", 12},
	{"pbs", []string{"../../scheduler/pbs/testdata/cases.json",
		"../../scheduler/pbs/testdata/qmd-cases.json"}, "parse-pbs.golden", 5 + 30},
	{"torque", []string{"../../scheduler/torque/testdata/cases.json",
		"../../scheduler/torque/testdata/qmd-cases.json"}, "parse-torque.golden", 3 + 30},
}

// parseCase is one case of a case file; see scheduler/cases README for the schema.
type parseCase struct {
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

// pinLocalZone makes wall-clock times (sacct's, qstat's) read as UTC, the zone the golden
// files and the expected records are written in, whatever zone the test machine has.
func pinLocalZone() { time.Local = time.UTC }

// loadParseCases returns the parse cases of scheduler in files, in file order.
func loadParseCases(t *testing.T, scheduler string, files []string, minCases int) []parseCase {
	t.Helper()
	var out []parseCase
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cases []parseCase
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, c := range cases {
			if c.Scheduler == scheduler && (c.Kind == "" || c.Kind == "parse") {
				out = append(out, c)
			}
		}
	}
	if len(out) < minCases {
		t.Fatalf("only %d %s parse cases found", len(out), scheduler)
	}
	return out
}

// TestParseCases runs `qmd parse` through Run over every parse case of every scheduler,
// with the command's outputs in files as run-cases passes them, compares each output with
// the case's expected records, and each scheduler's whole transcript with its golden file
// in testdata.
func TestParseCases(t *testing.T) {
	pinLocalZone()
	dir := t.TempDir()
	for _, suite := range parseSuites {
		t.Run(suite.scheduler, func(t *testing.T) {
			var transcript bytes.Buffer
			for _, c := range loadParseCases(t, suite.scheduler, suite.files, suite.minCases) {
				out, ok := runParseCase(t, dir, c)
				if !ok {
					continue
				}
				if err := compareExpected(out, c.Expected); err != nil {
					t.Errorf("%s (%s): %v", c.ID, c.Title, err)
				}
				fmt.Fprintf(&transcript,
					"# %s: qmd parse --scheduler %s --command %s --exit-code %d\n%s",
					c.ID, c.Scheduler, c.Command, c.ExitCode, out)
			}
			golden(t, suite.golden, transcript.Bytes())
		})
	}
}

// runParseCase writes a case's outputs to files and runs `qmd parse` on them as run-cases
// does; it returns what was printed, and false after reporting a failure.
func runParseCase(t *testing.T, dir string, c parseCase) ([]byte, bool) {
	t.Helper()
	stdout := []byte(c.Stdout)
	if c.StdoutB64 != nil {
		var err error
		if stdout, err = base64.StdEncoding.DecodeString(*c.StdoutB64); err != nil {
			t.Fatalf("%s: %v", c.ID, err)
		}
	}
	outPath := filepath.Join(dir, c.ID+".stdout")
	errPath := filepath.Join(dir, c.ID+".stderr")
	if err := os.WriteFile(outPath, stdout, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(errPath, []byte(c.Stderr), 0o600); err != nil {
		t.Fatal(err)
	}

	args := []string{"parse", "--scheduler", c.Scheduler, "--command", c.Command,
		"--exit-code", strconv.Itoa(c.ExitCode), "--stderr", errPath, outPath}
	var out, errOut bytes.Buffer
	err := Run(context.Background(), args, &out, &errOut)
	if err != nil || errOut.Len() > 0 {
		t.Errorf("%s: %v, stderr %q", c.ID, err, errOut.String())
		return nil, false
	}
	return out.Bytes(), true
}

// compareExpected reads JSON lines and compares them with expected records as run-cases
// does: fields absent from an expected record are not compared, and "<absent>" means the
// field must not be printed.
func compareExpected(out []byte, want []map[string]any) error {
	var got []map[string]any
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return fmt.Errorf("not JSON: %q", line)
		}
		got = append(got, m)
	}
	if len(got) != len(want) {
		return fmt.Errorf("got %d records, want %d: %s", len(got), len(want), out)
	}
	for i := range want {
		for key, w := range want[i] {
			g, ok := got[i][key]
			if !ok {
				g = "<absent>"
			}
			if !reflect.DeepEqual(g, w) {
				return fmt.Errorf("record %d: %s = %#v, want %#v", i, key, g, w)
			}
		}
	}
	return nil
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d (review with -update and git diff):\n got: %s\n"+
					"want: %s", path, i+1, g, w)
			}
		}
	}
}

// TestParseStdin reads the command's output from standard input, with and without "-".
func TestParseStdin(t *testing.T) {
	pinLocalZone()
	const in = "75168975;hpc1\n"
	const want = `{"outcome":"submitted","id":"75168975","cluster":"hpc1"}` + "\n"
	for _, args := range [][]string{
		{"--scheduler", "slurm", "--command", "sbatch"},
		{"--scheduler", "slurm", "--command", "sbatch", "-"},
	} {
		var out, errOut bytes.Buffer
		if err := parse(args, strings.NewReader(in), &out, &errOut); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if out.String() != want {
			t.Errorf("%q: got %s, want %s", args, out.String(), want)
		}
	}

	// --stderr - reads the message from standard input when the output is a file.
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := parse([]string{"--scheduler", "slurm", "--command", "sacct", "--exit-code", "1",
		"--stderr", "-", empty}, strings.NewReader("Slurm accounting storage is disabled\n"),
		&out, &bytes.Buffer{})
	if err != nil || !strings.Contains(out.String(), `"outcome":"accounting_disabled"`) {
		t.Errorf("--stderr -: %v, %s", err, out.String())
	}
}

// TestParseUsage pins the usage errors (exit 2) and their messages.
func TestParseUsage(t *testing.T) {
	dir := t.TempDir()
	missing, present := filepath.Join(dir, "missing"), filepath.Join(dir, "present")
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args      []string
		exit      int
		msg       string
		wantUsage bool // the usage text is printed on stderr
	}{
		{[]string{}, 2, "qmd parse: --scheduler is required", true},
		{[]string{"--command", "sacct"}, 2, "qmd parse: --scheduler is required", true},
		{[]string{"--scheduler", "pbs"}, 2,
			"qmd parse: --command is required (pbs: qsub, qstat, qdel)", true},
		{[]string{"--scheduler", "torque", "--command", "sacct"}, 2,
			`qmd parse: scheduler torque: no parser for command "sacct" ` +
				"(known: qsub, qstat, qdel)", false},
		{[]string{"--scheduler", "lsf", "--command", "bsub"}, 2,
			`qmd parse: unknown scheduler "lsf" (known: pbs, slurm, torque)`, false},
		{[]string{"--scheduler", "slurm"}, 2,
			"qmd parse: --command is required (slurm: sbatch, squeue, sacct, scancel)", true},
		{[]string{"--scheduler", "slurm", "--command", "qstat"}, 2,
			`qmd parse: scheduler slurm: no parser for command "qstat" ` +
				"(known: sbatch, squeue, sacct, scancel)", false},
		{[]string{"--scheduler", "slurm", "--command", "sacct", "--exit-code", "one"}, 2,
			`qmd parse: invalid value "one" for flag -exit-code: parse error`, true},
		{[]string{"--scheduler", "slurm", "--command", "sacct", "--color"}, 2,
			"qmd parse: flag provided but not defined: -color", true},
		{[]string{"--scheduler", "slurm", "--command", "sacct", "a", "b"}, 2,
			`qmd parse: unexpected argument "b": give one output file or -`, true},
		{[]string{"--scheduler", "slurm", "--command", "sacct", "--stderr", "-"}, 2,
			"qmd parse: stdout and --stderr cannot both be read from standard input", true},
		{[]string{"--scheduler", "slurm", "--command", "sacct", missing}, 1,
			"qmd parse: read command output: open " + missing + ": no such file or directory",
			false},
		{[]string{"--scheduler", "slurm", "--command", "sacct", "--stderr", missing, present}, 1,
			"qmd parse: read --stderr: open " + missing + ": no such file or directory", false},
	} {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), append([]string{"parse"}, tc.args...), &out, &errOut)
		if ExitCode(err) != tc.exit || err == nil || err.Error() != tc.msg {
			t.Errorf("%q: exit %d, error %v; want exit %d, %q", tc.args, ExitCode(err), err,
				tc.exit, tc.msg)
		}
		if got := strings.Contains(errOut.String(), "usage: qmd parse"); got != tc.wantUsage {
			t.Errorf("%q: usage printed = %v, want %v", tc.args, got, tc.wantUsage)
		}
		if out.Len() > 0 {
			t.Errorf("%q: printed %q on stdout", tc.args, out.String())
		}
	}
}

func TestParseHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), []string{"parse", "-h"}, &out, &errOut)
	if err != nil || !strings.HasPrefix(out.String(), "usage: qmd parse") {
		t.Errorf("-h: %v, %q", err, out.String())
	}
}
