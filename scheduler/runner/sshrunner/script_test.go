package sshrunner

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"qmd/scheduler/runner"
)

// localShells are what a cluster's /bin/sh may be: dash on Debian, bash elsewhere.
var localShells = []string{"/bin/sh", "/bin/bash"}

// printArgs prints $QMD_FUZZ and then each argument, NUL-terminated.
const printArgs = `printf '%s\0' "$QMD_FUZZ" "$@"`

// FuzzRemoteQuote feeds the script Run would send to a local sh -s, exactly as the remote
// sh reads it, and checks that the words arrive intact and nothing else runs. The seeds in
// testdata/fuzz/FuzzRemoteQuote are the hostile words of the integration test; plain
// `go test` replays them, `make fuzz`-style long runs are not part of CI.
func FuzzRemoteQuote(f *testing.F) {
	f.Fuzz(func(t *testing.T, arg, env string) {
		c := runner.Command{
			Argv: []string{"/bin/sh", "-c", printArgs, "sh", arg, env},
			Env:  []string{"QMD_FUZZ=" + env},
		}
		marker := newMarker()
		script, err := buildScript(c, marker)
		if strings.ContainsRune(arg+env, 0) {
			if err == nil {
				t.Fatal("a NUL byte was accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want := env + "\x00" + arg + "\x00" + env + "\x00"
		for _, sh := range localShells {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sh, "-s")
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader(script)
			out := newMarkedBuffer(marker)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = out, &stderr
			cmd.WaitDelay = time.Second
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v: %s", sh, err, stderr.Bytes())
			}
			got, started, noise := out.result()
			if !started || noise != 0 || string(got) != want {
				t.Errorf("%s: got %q (started %v, noise %d), want %q", sh, got, started,
					noise, want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("%s: script created %s: a word was executed", sh, entries[0].Name())
			}
		}
	})
}

func TestBuildScriptRefuses(t *testing.T) {
	tests := []struct {
		name string
		c    runner.Command
	}{
		{"empty", runner.Command{}},
		{"dash program", runner.Command{Argv: []string{"-x"}}},
		{"NUL in arg", runner.Command{Argv: []string{"echo", "a\x00b"}}},
		{"NUL in dir", runner.Command{Argv: []string{"true"}, Dir: "/tmp\x00"}},
		{"no =", runner.Command{Argv: []string{"true"}, Env: []string{"A"}}},
		{"bad name", runner.Command{Argv: []string{"true"}, Env: []string{"A-B=1"}}},
		{"digit first", runner.Command{Argv: []string{"true"}, Env: []string{"1A=1"}}},
		{"substitution", runner.Command{Argv: []string{"true"}, Env: []string{"$(id)=1"}}},
		{"NUL in value", runner.Command{Argv: []string{"true"}, Env: []string{"A=\x00"}}},
	}
	for _, tt := range tests {
		if s, err := buildScript(tt.c, "m"); err == nil {
			t.Errorf("%s: accepted, script %q", tt.name, s)
		}
	}
}

func TestBuildScriptShape(t *testing.T) {
	s, err := buildScript(runner.Command{
		Argv: []string{"squeue", "-h", "-o", "%i %T"},
		Dir:  "/scratch/it's",
		Env:  []string{"SLURM_TIME_FORMAT=standard"},
	}, "M")
	if err != nil {
		t.Fatal(err)
	}
	want := "unset " + strings.Join(unsetVars, " ") + "\n" + unsetPrefixed +
		"export LC_ALL=C\n" +
		"export 'SLURM_TIME_FORMAT=standard'\n" +
		`cd -- '/scratch/it'\''s' && printf %s M && printf %s M >&2 && ` +
		"exec squeue -h -o '%i %T'\n"
	if s != want {
		t.Errorf("script\n%s\nwant\n%s", s, want)
	}
}

// TestUnsetVarsMatchRunner checks that every variable runner.Environ drops locally is
// unset remotely too (LANG and LANGUAGE are dropped there for LC_ALL=C).
func TestUnsetVarsMatchRunner(t *testing.T) {
	for _, v := range unsetVars {
		if env := runner.Environ([]string{v + "=x"}); len(env) != 1 || env[0] != "LC_ALL=C" {
			t.Errorf("runner.Environ keeps %s (%q): unsetVars is out of step", v, env)
		}
	}
}

func TestMarkedBuffer(t *testing.T) {
	const marker = "qmd-start-XYZ"
	tests := []struct {
		name   string
		chunks []string
		want   string
		start  bool
		noise  int
	}{
		{"clean", []string{marker + "out"}, "out", true, 0},
		{"dotfile noise", []string{"Welcome!\n", marker, "out"}, "out", true, 9},
		{"split marker", []string{"ab", "qmd-st", "art-X", "YZo", "ut"}, "out", true, 2},
		{"marker in output", []string{marker + "a" + marker}, "a" + marker, true, 0},
		{"never started", []string{"sh: cd: can't cd"}, "sh: cd: can't cd", false, 0},
	}
	for _, tt := range tests {
		m := newMarkedBuffer(marker)
		for _, c := range tt.chunks {
			m.Write([]byte(c))
		}
		got, started, noise := m.result()
		if string(got) != tt.want || started != tt.start || noise != tt.noise {
			t.Errorf("%s: got %q %v %d, want %q %v %d", tt.name, got, started, noise,
				tt.want, tt.start, tt.noise)
		}
		m.Write([]byte("late")) // after result: dropped, no race
		if again, _, _ := m.result(); string(again) != tt.want {
			t.Errorf("%s: a late write changed the result to %q", tt.name, again)
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	_, err := New(Config{Port: 70000, MaxSessions: -1})
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, w := range []string{"host: required", "user: required", "port: 70000",
		"known_hosts: required", "identity_file or use_agent", "max_sessions"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}

	dir := t.TempDir()
	key := dir + "/key"
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Host: "h", User: "u", IdentityFile: key,
		KnownHosts: dir + "/missing"})
	if err == nil || !strings.Contains(err.Error(), "identity_file") ||
		!strings.Contains(err.Error(), "known_hosts") {
		t.Errorf("bad key and missing known_hosts: %v", err)
	}
}
