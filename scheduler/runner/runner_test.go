package runner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func TestLocalRun(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		cmd        Command
		wantStdout string
		wantCode   int
		wantCmdErr *CommandError // nil: no *CommandError expected
		wantErr    bool
	}{
		{
			name:       "success",
			cmd:        Command{Argv: []string{"/bin/echo", "hi", "a b"}},
			wantStdout: "hi a b\n",
		},
		{
			name:       "stdin",
			cmd:        Command{Argv: []string{"/bin/cat"}, Stdin: []byte("from stdin")},
			wantStdout: "from stdin",
		},
		{
			name:       "dir",
			cmd:        Command{Argv: []string{"/bin/pwd"}, Dir: dir},
			wantStdout: dir + "\n",
		},
		{
			name: "exit code with stderr",
			cmd: Command{Argv: []string{"/bin/sh", "-c",
				"echo out; echo 'no such partition' >&2; exit 3"}},
			wantStdout: "out\n",
			wantCode:   3,
			wantCmdErr: &CommandError{
				Program: "/bin/sh", ExitCode: 3, Stderr: "no such partition\n",
			},
			wantErr: true,
		},
		{
			name:    "program missing",
			cmd:     Command{Argv: []string{filepath.Join(dir, "no-such-program")}},
			wantErr: true,
		},
		{
			name:    "empty argv",
			cmd:     Command{},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Local{}.Run(context.Background(), tt.cmd)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Run() error = %v, want error %v", err, tt.wantErr)
			}
			if got := string(res.Stdout); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got, tt.wantStdout)
			}
			if res.ExitCode != tt.wantCode {
				t.Errorf("exit code = %d, want %d", res.ExitCode, tt.wantCode)
			}
			var ce *CommandError
			isCmdErr := errors.As(err, &ce)
			if isCmdErr != (tt.wantCmdErr != nil) {
				t.Fatalf("error %v: *CommandError = %v, want %v",
					err, isCmdErr, tt.wantCmdErr != nil)
			}
			if isCmdErr && *ce != *tt.wantCmdErr {
				t.Errorf("CommandError = %+v, want %+v", *ce, *tt.wantCmdErr)
			}
			if isCmdErr && string(res.Stderr) != ce.Stderr {
				t.Errorf("Result.Stderr = %q, CommandError.Stderr = %q", res.Stderr, ce.Stderr)
			}
		})
	}
}

// TestLocalRunDeadline checks that a command timeout and a cancelled caller both end a
// running program promptly and say which of them did it.
func TestLocalRunDeadline(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // cancel the caller's ctx after this long; <0: before Run
		want    error
	}{
		{name: "command timeout", timeout: 100 * time.Millisecond, want: context.DeadlineExceeded},
		{name: "caller cancels", cancel: 100 * time.Millisecond, want: context.Canceled},
		{name: "caller cancelled before", cancel: -1, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			switch {
			case tt.cancel < 0:
				cancel()
			case tt.cancel > 0:
				time.AfterFunc(tt.cancel, cancel)
			}

			start := time.Now()
			cmd := Command{Argv: []string{"/bin/sleep", "5"}, Timeout: tt.timeout}
			_, err := Local{}.Run(ctx, cmd)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Run() error = %v, want %v", err, tt.want)
			}
			var ce *CommandError
			if errors.As(err, &ce) {
				t.Errorf("a killed command must not look like a refusal: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Run took %s after the deadline", d)
			}
		})
	}
}

// TestLocalRunWaitDelay runs a program whose background child keeps stdout open: without
// WaitDelay, Run would wait for that child (5 s) instead of returning.
func TestLocalRunWaitDelay(t *testing.T) {
	tests := []struct {
		name    string
		script  string // $1 is the file the grandchild's pid goes to
		timeout time.Duration
		want    error
	}{
		{
			name:   "program exits, grandchild holds stdout",
			script: `sleep 5 & echo $! > "$1"`,
			want:   exec.ErrWaitDelay,
		},
		{
			name:    "program killed at timeout, grandchild holds stdout",
			script:  `sleep 5 & echo $! > "$1"; sleep 5`,
			timeout: 200 * time.Millisecond,
			want:    context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
			t.Cleanup(func() { killPidFile(t, pidFile) })

			start := time.Now()
			l := Local{WaitDelay: 200 * time.Millisecond}
			_, err := l.Run(context.Background(), Command{
				Argv:    []string{"/bin/sh", "-c", tt.script, "sh", pidFile},
				Timeout: tt.timeout,
			})
			if !errors.Is(err, tt.want) {
				t.Errorf("Run() error = %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Run took %s: it waited for the grandchild", d)
			}
		})
	}
}

// killPidFile ends the test's own background process whose pid a script wrote to path.
func killPidFile(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Errorf("bad pid file %s: %q", path, b)
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func TestEnviron(t *testing.T) {
	tests := []struct {
		name string
		base []string
		want []string
	}{
		{
			name: "empty",
			want: []string{"LC_ALL=C"},
		},
		{
			name: "keeps the rest in order",
			base: []string{"PATH=/usr/bin", "HOME=/root", "SLURM_CONF=/etc/slurm.conf",
				"SQUEUEX=kept"},
			want: []string{"PATH=/usr/bin", "HOME=/root", "SLURM_CONF=/etc/slurm.conf",
				"SQUEUEX=kept", "LC_ALL=C"},
		},
		{
			name: "drops format variables",
			base: []string{
				"SQUEUE_FORMAT=%i", "PATH=/bin", "SQUEUE_FORMAT2=JobID", "SACCT_FORMAT=JobID",
				"SLURM_TIME_FORMAT=relative", "SQUEUE_SORT=-t", "SINFO_FORMAT=%P",
				"SLURM_CLUSTERS=all", "SQUEUE_ALL=1", "SACCT_FEDERATION=1", "PBS_DEFAULT_FORMAT=x",
				"SQUEUE_USERS=", "SQUEUE_PARTITION=debug", "SBATCH_PARTITION=x",
				"SCANCEL_INTERACTIVE=1",
			},
			want: []string{"PATH=/bin", "LC_ALL=C"},
		},
		{
			name: "replaces the locale",
			base: []string{
				"LANG=de_DE.UTF-8", "LC_ALL=de_DE.UTF-8", "LANGUAGE=de", "LC_TIME=de_DE",
			},
			want: []string{"LC_TIME=de_DE", "LC_ALL=C"},
		},
		{
			name: "empty value still dropped",
			base: []string{"SQUEUE_FORMAT=", "LC_ALL="},
			want: []string{"LC_ALL=C"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Environ(tt.base); !slices.Equal(got, tt.want) {
				t.Errorf("Environ(%q) = %q, want %q", tt.base, got, tt.want)
			}
		})
	}
}

// TestLocalRunEnvironment checks that what Environ promises reaches the program.
func TestLocalRunEnvironment(t *testing.T) {
	t.Setenv("SQUEUE_FORMAT", "%.18i %.9P")
	t.Setenv("SACCT_FORMAT", "JobID")
	t.Setenv("LANG", "de_DE.UTF-8")
	t.Setenv("LC_ALL", "de_DE.UTF-8")

	res, err := Local{}.Run(context.Background(), Command{Argv: []string{"/usr/bin/env"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	var lcAll []string
	for _, l := range lines {
		name, _, _ := strings.Cut(l, "=")
		switch name {
		case "SQUEUE_FORMAT", "SACCT_FORMAT", "LANG":
			t.Errorf("the program saw %s", l)
		case "LC_ALL":
			lcAll = append(lcAll, l)
		}
	}
	if !slices.Equal(lcAll, []string{"LC_ALL=C"}) {
		t.Errorf("LC_ALL entries = %q, want exactly LC_ALL=C", lcAll)
	}
}

func TestCommandErrorMessage(t *testing.T) {
	long := strings.Repeat("x", maxStderr-1) + "é and more"
	tests := []struct {
		name string
		err  CommandError
		want string
	}{
		{
			name: "no stderr",
			err:  CommandError{Program: "sbatch", ExitCode: 1},
			want: "sbatch: exit status 1",
		},
		{
			name: "stderr trimmed",
			err:  CommandError{Program: "sbatch", ExitCode: 1, Stderr: "\n  invalid partition\n"},
			want: "sbatch: exit status 1: invalid partition",
		},
		{
			name: "long stderr cut before a split rune",
			err:  CommandError{Program: "qstat", ExitCode: 2, Stderr: long},
			want: "qstat: exit status 2: " + strings.Repeat("x", maxStderr-1) + "…",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err.Error()
			if got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Error() is not valid UTF-8: %q", got)
			}
		})
	}
}

// TestLocalRunStderrKeptWhole checks that the cap on the message does not cut the Result.
func TestLocalRunStderrKeptWhole(t *testing.T) {
	res, err := Local{}.Run(context.Background(), Command{
		Argv: []string{"/bin/sh", "-c", "head -c 2000 /dev/zero | tr '\\0' e >&2; exit 1"},
	})
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("Run() error = %v, want *CommandError", err)
	}
	if !bytes.Equal(res.Stderr, bytes.Repeat([]byte("e"), 2000)) {
		t.Errorf("Result.Stderr has %d bytes, want 2000", len(res.Stderr))
	}
	if len(ce.Error()) > maxStderr+100 {
		t.Errorf("error message has %d bytes", len(ce.Error()))
	}
}
