// Package runner runs external commands for qmd. Every command the daemon sends to a
// scheduler or helper program goes through a Runner: an argument list, never a shell
// string, with a deadline and a pinned environment. Local exec is here; SSH plugs in later.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Command is one program invocation.
type Command struct {
	Argv    []string
	Stdin   []byte
	Dir     string
	Timeout time.Duration // 0: only the caller's ctx bounds it
	// User, when set, runs the command with that user's credentials (uid, gid and
	// supplementary groups) instead of qmd's; qmd must be root. No shell is involved.
	User *Credential
	// Env is added after the pinned environment, for the variables a caller relies on
	// (SLURM_TIME_FORMAT=standard, say); it wins over anything inherited.
	Env []string
}

// Credential is a user a command runs as.
type Credential struct {
	UID, GID uint32
	Groups   []uint32
	Home     string // HOME for the command
	Name     string // USER and LOGNAME for the command
}

// Result is what a finished command printed and how it exited.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Runner runs commands. A non-zero exit is returned as *CommandError together with the
// Result, so callers can tell "the program said no" from "the program could not be run".
type Runner interface {
	Run(ctx context.Context, c Command) (Result, error)
}

// maxStderr caps the bytes of stderr an error message carries; the full text is in Result.
const maxStderr = 500

// CommandError is a command that ran and exited non-zero.
type CommandError struct {
	Program  string
	ExitCode int
	Stderr   string
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > maxStderr {
		// Cut on a rune boundary, so the message stays valid UTF-8 for logs and JSON.
		cut := maxStderr
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	if msg == "" {
		return fmt.Sprintf("%s: exit status %d", e.Program, e.ExitCode)
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.Program, e.ExitCode, msg)
}

// EnvUnset lists variables a user's shell may set that change what scheduler tools print.
var EnvUnset = []string{
	"SLURM_TIME_FORMAT", "SLURM_CLUSTERS", "SLURM_BITSTR_LEN", "PBS_DEFAULT_FORMAT",
}

// EnvUnsetPrefixes are the input variables of the Slurm commands: each SQUEUE_*, SACCT_*,
// SBATCH_* ... variable acts as a command-line option, and some (SQUEUE_USERS,
// SQUEUE_PARTITION, even set empty) hide jobs from `squeue --jobs`. SLURM_CONF stays.
var EnvUnsetPrefixes = []string{
	"SQUEUE_", "SACCT_", "SBATCH_", "SCANCEL_", "SINFO_", "SCONTROL_", "SALLOC_", "SRUN_",
}

// Environ returns base with the variables that alter tool output removed and LC_ALL=C set.
func Environ(base []string) []string {
	out := make([]string, 0, len(base)+1)
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		drop := name == "LC_ALL" || name == "LANG" || name == "LANGUAGE"
		for _, u := range EnvUnset {
			if name == u {
				drop = true
			}
		}
		for _, p := range EnvUnsetPrefixes {
			if strings.HasPrefix(name, p) {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return append(out, "LC_ALL=C")
}

// Local runs commands on this machine with os/exec.
type Local struct {
	// WaitDelay bounds how long Run waits for output pipes once the process has exited or
	// been killed, since a grandchild holding stdout open would otherwise keep Wait
	// blocked. If it expires after a clean exit, Run returns an error wrapping
	// exec.ErrWaitDelay: the output may be cut short. 0 means 2 s.
	WaitDelay time.Duration
}

// Run implements Runner.
func (l Local) Run(ctx context.Context, c Command) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{}, errors.New("run: empty command")
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}

	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(Environ(os.Environ()), c.Env...)
	if u := c.User; u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: u.UID, Gid: u.GID, Groups: u.Groups,
		}}
		cmd.Env = append(cmd.Env, "HOME="+u.Home, "USER="+u.Name, "LOGNAME="+u.Name)
	}
	cmd.WaitDelay = l.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 2 * time.Second
	}
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return res, fmt.Errorf("run %s: %w", c.Argv[0], ctxErr)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.ExitCode = exitErr.ExitCode()
		return res, &CommandError{
			Program: c.Argv[0], ExitCode: res.ExitCode, Stderr: stderr.String(),
		}
	}
	return res, fmt.Errorf("run %s: %w", c.Argv[0], err)
}

// Quote returns s as one POSIX shell word: wrapped in single quotes, each embedded single
// quote closed, escaped and reopened. It is right for sh, dash and bash; it is not enough
// for a string that a tcsh login shell reads, which is why remote commands use stdin.
//
// A word is left bare only if it means the same in every position of a command line, since
// QuoteArgv's first word is a command name: "A=b" there would be a variable assignment and
// "if" or "time" a reserved word, so both kinds are quoted.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, unsafeShellRune) < 0 && !reservedWords[s] {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// reservedWords are the words of letters only that sh or bash treat as syntax in command
// position; the others ("!", "{", "[[", ...) hold characters that are quoted anyway.
var reservedWords = map[string]bool{
	"case": true, "coproc": true, "do": true, "done": true, "elif": true, "else": true,
	"esac": true, "fi": true, "for": true, "function": true, "if": true, "in": true,
	"select": true, "then": true, "time": true, "until": true, "while": true,
}

// QuoteArgv quotes each word and joins them with spaces.
func QuoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

func unsafeShellRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	case strings.ContainsRune("-_./:,+@%", r):
		return false
	}
	return true
}
