package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qmd/ctl/api"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// result of one qmctl invocation.
type outcome struct {
	stdout, stderr string
	code           int
}

// runQmctl runs a command line against socket with the clock pinned to fakeNow, times
// shown in UTC and wait polling sped up; everything else is the real code path.
func runQmctl(t *testing.T, socket, stdin string, args ...string) outcome {
	t.Helper()
	env := map[string]string{"QMD_SOCKET": socket, "TZ": "UTC"}
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	a := &app{
		env: getenv, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		now: func() time.Time { return fakeNow }, loc: localZone(getenv),
		pollEvery: func(int) time.Duration { return 5 * time.Millisecond },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := a.run(ctx, args)
	return outcome{out.String(), errb.String(), code}
}

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ctl/cli -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if intended)\ngot:\n%s\nwant:\n%s",
			path, got, want)
	}
}

// writeFile makes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const waterXYZ = "3\nwater\nO 0.000 0.000 0.117\nH 0.000 0.757 -0.467\nH 0.000 -0.757 -0.467\n"

const twoRecordSDF = "mol1\n\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n" +
	"mol2\n\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n"

// TestCommands checks each command's exit code, and its output against golden files or
// expected fragments. $DIR in args stands for a directory holding the molecule files.
func TestCommands(t *testing.T) {
	f := startFake(t)
	dir := t.TempDir()
	writeFile(t, dir, "water.xyz", waterXYZ)
	writeFile(t, dir, "two.sdf", twoRecordSDF)

	cases := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		golden string // stdout golden file, if any
		stdout string // exact stdout, if set
		stderr string // fragment expected on stderr
	}{
		{name: "help", args: []string{"help"}, golden: "help.txt"},
		{name: "dash h", args: []string{"-h"}, golden: "help.txt"},
		{name: "help submit", args: []string{"help", "submit"}, golden: "help_submit.txt"},
		{name: "submit -h", args: []string{"submit", "-h"}, golden: "help_submit.txt"},
		{name: "help unknown", args: []string{"help", "frobnicate"}, code: 2,
			stderr: `unknown command "frobnicate"`},
		{name: "no command", args: nil, code: 2, stderr: "qmctl: no command given"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2,
			stderr: `qmctl: unknown command "frobnicate" (run 'qmctl help'`},
		{name: "unknown flag", args: []string{"list", "--colour"}, code: 2,
			stderr: "qmctl: list: flag provided but not defined"},
		{name: "bad global flag", args: []string{"--colour", "list"}, code: 2},

		{name: "list", args: []string{"list"}, golden: "list.txt"},
		{name: "list json", args: []string{"list", "--json"}, golden: "list.json"},
		{name: "list filtered", args: []string{"list", "--state", "running,failed"},
			golden: "list_filtered.txt"},
		{name: "list repeated state", args: []string{"list", "--state", "running",
			"--state=failed"}, golden: "list_filtered.txt"},
		{name: "list empty json", args: []string{"list", "--state", "lost", "--json"},
			stdout: "[]\n"},
		{name: "list empty", args: []string{"list", "--state", "lost"},
			stdout: "ID  STATE  CLUSTER  NAME  PRESET  SOLVENT  CREATED  UPDATED\n"},
		{name: "list extra arg", args: []string{"list", "x"}, code: 2,
			stderr: "list takes no arguments"},

		{name: "show", args: []string{"show", idDone}, golden: "show.txt"},
		{name: "show failed", args: []string{"show", idFailed}, golden: "show_failed.txt"},
		{name: "show json", args: []string{"show", idDone, "--json"}, golden: "show.json"},
		{name: "show json no history", args: []string{"show", "--json", idRunning},
			golden: "show_no_history.json"},
		{name: "show flag first", args: []string{"--socket", f.socket, "show", "--json",
			idDone}, golden: "show.json"},
		{name: "show not found", args: []string{"show", "ffffffffffff"}, code: 1,
			stderr: "qmctl: no job ffffffffffff among yours: check the id with 'qmctl list'"},
		{name: "show internal", args: []string{"show", idBoom}, code: 2,
			stderr: "qmd failed on show: database is locked"},
		{name: "show no id", args: []string{"show"}, code: 2, stderr: "show needs a job id"},
		{name: "show two ids", args: []string{"show", idDone, idFailed}, code: 2,
			stderr: "show takes one job id, got 2"},

		{name: "cancel", args: []string{"cancel", idRunning}, stdout: "cancelled\n"},
		{name: "cancel finished", args: []string{"cancel", idDone}, code: 1,
			stderr: "qmctl: cancel " + idDone + ": job is already completed"},
		{name: "cancel not found", args: []string{"cancel", "nope"}, code: 1},

		{name: "result", args: []string{"result", idDone}, golden: "result.txt"},
		{name: "result json", args: []string{"result", "--json", idDone},
			golden: "result.json"},
		{name: "result running", args: []string{"result", idRunning}, code: 1,
			stderr: "is running (wait for it with 'qmctl wait " + idRunning + "')"},
		{name: "result not found", args: []string{"result", "nope"}, code: 1},

		{name: "logs", args: []string{"logs", idDone}, golden: "logs.txt",
			stderr: "only the end of nwchem.out is shown"},
		{name: "logs none", args: []string{"logs", idRunning}, stdout: "",
			stderr: "has no logs yet"},
		{name: "logs not found", args: []string{"logs", "nope"}, code: 1},

		{name: "version", args: []string{"version"}, golden: "version.txt"},
		{name: "version extra", args: []string{"version", "x"}, code: 2},

		{name: "wait completed", args: []string{"wait", idWaitOK}, stdout: "completed\n"},
		{name: "wait failed", args: []string{"wait", idWaitBad}, code: 1, stdout: "failed\n",
			stderr: "job " + idWaitBad + " ended failed: geometry optimization failed"},
		{name: "wait timeout", args: []string{"wait", idWaitInf, "--timeout", "60ms"},
			code: 1, stdout: "running\n", stderr: "is still running after 60ms"},
		{name: "wait already done", args: []string{"wait", idDone}, stdout: "completed\n"},
		{name: "wait not found", args: []string{"wait", "nope"}, code: 1},
		{name: "wait negative timeout", args: []string{"wait", idDone, "--timeout=-1s"},
			code: 2},
		{name: "wait bad timeout", args: []string{"wait", idDone, "--timeout", "soon"},
			code: 2, stderr: "invalid value"},

		{name: "submit file", args: []string{"submit", "$DIR/water.xyz"},
			stdout: "000000000001\n"},
		{name: "submit json", args: []string{"submit", "--json", "$DIR/water.xyz"},
			golden: "submit.json"},
		{name: "submit smiles", args: []string{"submit", "--smiles", "CCO"},
			stdout: "000000000001\n"},
		{name: "submit split", args: []string{"submit", "$DIR/two.sdf", "--split"},
			stdout: "000000000001\n000000000002\n"},
		{name: "submit split json", args: []string{"submit", "$DIR/two.sdf", "--split",
			"--json"}, golden: "submit_split.json"},
		{name: "submit stdin", args: []string{"submit", "-"}, stdin: waterXYZ,
			stdout: "000000000001\n"},
		{name: "submit dry run", args: []string{"submit", "$DIR/two.sdf", "--dry-run",
			"--split", "--charge", "-1"}, golden: "dry_run.txt"},
		{name: "submit dry run json", args: []string{"submit", "$DIR/water.xyz",
			"--dry-run", "--json"}, golden: "dry_run.json"},
		{name: "submit bad preset", args: []string{"submit", "$DIR/water.xyz", "--preset",
			"bogus"}, code: 2, stderr: `qmd refused the submit: unknown preset "bogus"`},
		{name: "submit missing file", args: []string{"submit", "$DIR/nope.xyz"}, code: 2,
			stderr: "nope.xyz: no such file"},
		{name: "submit directory", args: []string{"submit", "$DIR"}, code: 2,
			stderr: "is a directory"},
		{name: "submit empty stdin", args: []string{"submit", "-"}, code: 2,
			stderr: "standard input is empty"},
		{name: "submit nothing", args: []string{"submit"}, code: 2,
			stderr: "submit needs a FILE"},
		{name: "submit file and smiles", args: []string{"submit", "$DIR/water.xyz",
			"--smiles", "C"}, code: 2, stderr: "not both"},
		{name: "submit two files", args: []string{"submit", "$DIR/water.xyz",
			"$DIR/two.sdf"}, code: 2},
		{name: "submit bad charge", args: []string{"submit", "$DIR/water.xyz", "--charge",
			"one"}, code: 2, stderr: "not a whole number"},
		{name: "submit bad multiplicity", args: []string{"submit", "$DIR/water.xyz",
			"--multiplicity", "0"}, code: 2, stderr: "--multiplicity must be 1 or more"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "$DIR", dir)
			}
			got := runQmctl(t, f.socket, tc.stdin, args...)
			if got.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s",
					got.code, tc.code, got.stdout, got.stderr)
			}
			if tc.golden != "" {
				golden(t, tc.golden, got.stdout)
			} else if tc.stdout != "" || tc.code == 0 {
				if got.stdout != tc.stdout {
					t.Errorf("stdout %q, want %q", got.stdout, tc.stdout)
				}
			}
			if !strings.Contains(got.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", got.stderr, tc.stderr)
			}
			if tc.code != 0 {
				checkOneErrorLine(t, got.stderr)
			}
		})
	}
}

// checkOneErrorLine holds failures to the stderr contract: one "qmctl: " line.
func checkOneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "qmctl: ") {
		t.Errorf("last stderr line %q does not start with \"qmctl: \"", last)
	}
}

func TestUnreachable(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "absent.sock")
	for _, args := range [][]string{
		{"list"}, {"show", idDone}, {"submit", "--smiles", "C"}, {"wait", idDone},
		{"version"},
	} {
		got := runQmctl(t, socket, "", args...)
		want := "qmctl: cannot reach qmd at " + socket +
			": is the daemon running? (set --socket or QMD_SOCKET)\n"
		if got.code != 2 || !strings.HasSuffix(got.stderr, want) {
			t.Errorf("%v: exit %d stderr %q, want 2 and %q", args, got.code, got.stderr, want)
		}
	}
	// version still says which qmctl this is before reporting the daemon.
	got := runQmctl(t, socket, "", "version")
	if got.stdout != "qmctl dev\n" {
		t.Errorf("version stdout %q", got.stdout)
	}
}

func TestDraining(t *testing.T) {
	f := startFake(t)
	f.mu.Lock()
	f.draining = true
	f.mu.Unlock()
	got := runQmctl(t, f.socket, "", "show", idDone)
	if got.code != 2 || !strings.Contains(got.stderr, "qmd is shutting down") {
		t.Errorf("exit %d stderr %q, want 2 and a shutting-down message", got.code, got.stderr)
	}
}

// TestSocketPrecedence checks --socket over QMD_SOCKET over the default, through the
// public Run with a real environment function.
func TestSocketPrecedence(t *testing.T) {
	f := startFake(t)
	bogus := filepath.Join(t.TempDir(), "wrong.sock")
	run := func(env map[string]string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, func(k string) string { return env[k] },
			strings.NewReader(""), &out, &errb)
		return code, errb.String()
	}
	if code, stderr := run(map[string]string{"QMD_SOCKET": bogus}, "list", "--socket",
		f.socket); code != 0 {
		t.Errorf("--socket after the command should win over QMD_SOCKET: %d %s", code, stderr)
	}
	if code, stderr := run(map[string]string{"QMD_SOCKET": f.socket}, "list"); code != 0 {
		t.Errorf("QMD_SOCKET ignored: %d %s", code, stderr)
	}
	if _, stderr := run(map[string]string{}, "list"); !strings.Contains(stderr,
		DefaultSocket) {
		t.Errorf("without --socket or QMD_SOCKET the default should be tried: %s", stderr)
	}
}

// TestSubmitSendsContents checks that the molecule travels as text with its base name
// only, and that flags after the file are honoured.
func TestSubmitSendsContents(t *testing.T) {
	f := startFake(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "water.xyz", waterXYZ)
	got := runQmctl(t, f.socket, "", "submit", path, "--preset", "accurate", "--solvent",
		"dmso", "--charge", "-1", "--multiplicity", "2", "--cluster", "hpc", "--name", "w")
	if got.code != 0 {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.submits) != 1 {
		t.Fatalf("%d submissions, want 1", len(f.submits))
	}
	req, raw := f.submits[0], string(f.rawSubs[0])
	want := api.SubmitRequest{
		Name: "w", Filename: "water.xyz", Content: waterXYZ, Preset: "accurate",
		Solvent: "dmso", Charge: ptr(-1), Multiplicity: ptr(2), Cluster: "hpc",
	}
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(req)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("request\n%s\nwant\n%s", gotJSON, wantJSON)
	}
	if strings.Contains(raw, dir) {
		t.Errorf("the request body contains the local path %s: %s", dir, raw)
	}
}

// TestSubmitDefaults checks the defaults that are sent and the ones left to the daemon.
func TestSubmitDefaults(t *testing.T) {
	f := startFake(t)
	if got := runQmctl(t, f.socket, "", "submit", "--smiles", "CCO"); got.code != 0 {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	req := f.submits[0]
	if req.Preset != "draft" || req.Solvent != "chcl3" || req.SMILES != "CCO" {
		t.Errorf("defaults not sent: %+v", req)
	}
	if req.Charge != nil || req.Multiplicity != nil || req.Content != "" || req.DryRun {
		t.Errorf("unset options were sent: %+v", req)
	}
}

// TestSubmitSizeLimit checks that a file over 1 MiB is refused before anything is sent,
// from a file and from stdin, and that exactly 1 MiB passes.
func TestSubmitSizeLimit(t *testing.T) {
	f := startFake(t)
	dir := t.TempDir()
	line := "C 0.000 0.000 0.000\n"
	fill := func(n int) string {
		s := strings.Repeat(line, n/len(line)+1)
		return s[:n]
	}
	big := writeFile(t, dir, "big.xyz", fill(maxMolecule+1))
	exact := writeFile(t, dir, "exact.xyz", fill(maxMolecule))

	got := runQmctl(t, f.socket, "", "submit", big)
	if got.code != 2 || !strings.Contains(got.stderr, "big.xyz is 1.0 MiB; qmd takes "+
		"molecule files of at most 1 MiB") {
		t.Errorf("big file: exit %d stderr %q", got.code, got.stderr)
	}
	got = runQmctl(t, f.socket, fill(maxMolecule+10), "submit", "-")
	if got.code != 2 || !strings.Contains(got.stderr, "standard input is more than 1 MiB") {
		t.Errorf("big stdin: exit %d stderr %q", got.code, got.stderr)
	}
	f.mu.Lock()
	n := len(f.submits)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("%d oversized submissions reached the daemon", n)
	}
	if got = runQmctl(t, f.socket, "", "submit", exact); got.code != 0 {
		t.Errorf("a file of exactly 1 MiB was refused: %d %s", got.code, got.stderr)
	}
}

func TestSubmitRefusesBinary(t *testing.T) {
	f := startFake(t)
	p := writeFile(t, t.TempDir(), "mol.sdf.gz", "\x1f\x8b\x08\x00\xff\xfe")
	got := runQmctl(t, f.socket, "", "submit", p)
	if got.code != 2 || !strings.Contains(got.stderr, "is not a text file") {
		t.Errorf("exit %d stderr %q", got.code, got.stderr)
	}
}

// TestWaitSurvivesRestart checks that a daemon going away during a wait is waited out
// with one note, not taken for the job's end.
func TestWaitSurvivesRestart(t *testing.T) {
	f := startFake(t)
	f.mu.Lock()
	f.hiccups = 3
	f.mu.Unlock()
	got := runQmctl(t, f.socket, "", "wait", idWaitOK)
	if got.code != 0 || got.stdout != "completed\n" {
		t.Errorf("exit %d stdout %q stderr %q", got.code, got.stdout, got.stderr)
	}
	if n := strings.Count(got.stderr, "lost contact with qmd"); n != 1 {
		t.Errorf("%d notes about the lost daemon, want 1: %q", n, got.stderr)
	}
}

func TestResultHeaderWarnsUnconverged(t *testing.T) {
	r := cannedResult()
	r.Converged = false
	r.Reference = api.Reference{Method: "linear", Level: "mPW1PW91/6-311+G(2d,p)"}
	want := "job " + idDone + ": energy -155.03467421 Eh; reference method linear; " +
		"level mPW1PW91/6-311+G(2d,p); WARNING: geometry optimization did not converge"
	if got := resultHeader(r); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestWaitInterrupted(t *testing.T) {
	f := startFake(t)
	var out, errb bytes.Buffer
	a := &app{
		env:    func(k string) string { return map[string]string{"QMD_SOCKET": f.socket}[k] },
		stdout: &out, stderr: &errb, now: time.Now, loc: time.UTC,
		pollEvery: func(int) time.Duration { return 5 * time.Millisecond },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// A deadline on the caller's context is an interrupt, not --timeout.
	code := a.run(ctx, []string{"wait", idWaitInf})
	if code != 1 || !strings.Contains(errb.String(), "interrupted; job "+idWaitInf+
		" is still running") {
		t.Errorf("exit %d stderr %q", code, errb.String())
	}
}

// TestParseInterspersed pins the flag permutation, including the "--" terminator and a
// "--" given as a flag's value.
func TestParseInterspersed(t *testing.T) {
	cases := []struct {
		args []string
		pos  []string
		name string
		json bool
	}{
		{[]string{"a", "--json", "b"}, []string{"a", "b"}, "", true},
		{[]string{"--name", "x", "a"}, []string{"a"}, "x", false},
		{[]string{"a", "--", "--json", "-"}, []string{"a", "--json", "-"}, "", false},
		{[]string{"--json", "--", "a"}, []string{"a"}, "", true},
		{[]string{"--name", "--", "a", "--json"}, []string{"a"}, "--", true},
		{[]string{"-", "--name=n"}, []string{"-"}, "n", false},
	}
	for _, tc := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		name := fs.String("name", "", "")
		js := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if strings.Join(pos, "|") != strings.Join(tc.pos, "|") || *name != tc.name ||
			*js != tc.json {
			t.Errorf("%q: pos %q name %q json %v", tc.args, pos, *name, *js)
		}
	}
}

func TestExitTable(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{nil, 0},
		{usagef("x"), 2},
		{inputf("x"), 2},
		{notDonef("x"), 1},
		{context.Canceled, 2},
	}
	for _, tc := range cases {
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}

func TestFmtAgo(t *testing.T) {
	a := &app{now: func() time.Time { return fakeNow }}
	cases := map[time.Duration]string{
		-time.Minute:                "0s ago",
		59 * time.Second:            "59s ago",
		5 * time.Minute:             "5m ago",
		3*time.Hour + 7*time.Minute: "3h07m ago",
		50 * time.Hour:              "2d ago",
	}
	for d, want := range cases {
		if got := a.fmtAgo(fakeNow.Add(-d)); got != want {
			t.Errorf("fmtAgo(-%v) = %q, want %q", d, got, want)
		}
	}
	if got := a.fmtAgo(time.Time{}); got != "-" {
		t.Errorf("zero time: %q", got)
	}
}
