package sshrunner

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"

	"qmd/scheduler/runner"
)

// remoteCommand is the only string a login shell ever sees. It holds no word that bash,
// tcsh or any other shell would expand, so what the user's shell is does not matter: the
// real command travels on stdin, where /bin/sh reads it as a script.
const remoteCommand = "/bin/sh -s"

// unsetVars are the variables runner.Environ drops, so a remote squeue or sacct prints
// what the parsers expect, as it does locally, whatever the user's dotfiles set. LANG and
// LANGUAGE go too because LC_ALL=C is set below.
var unsetVars = append(append([]string{}, runner.EnvUnset...), "LANG", "LANGUAGE")

// unsetPrefixed is a fixed line of shell that unsets every variable whose name starts
// with one of runner.EnvUnsetPrefixes (SQUEUE_*, SBATCH_* ...), as runner.Environ does.
var unsetPrefixed = func() string {
	alts := make([]string, len(runner.EnvUnsetPrefixes))
	for i, p := range runner.EnvUnsetPrefixes {
		alts[i] = strings.TrimSuffix(p, "_")
	}
	return "for v in $(env | awk -F= '/^(" + strings.Join(alts, "|") +
		")_[A-Za-z0-9_]*=/ {print $1}'); do unset \"$v\"; done\n"
}()

// newMarker returns a word that cannot occur by chance in the output of a login shell's
// dotfiles, so the runner can find where the command's own output begins.
func newMarker() string {
	// rand.Text is base32 (A-Z, 2-7): a bare word in every shell, nothing to quote.
	return "qmd-start-" + rand.Text()
}

// buildScript returns the script the remote /bin/sh reads from stdin for c.
//
// Every word is POSIX-quoted by runner.Quote; only sh parses it, never the login shell, so
// tcsh's history expansion and newline rules do not apply. The last line prints marker on
// stdout and stderr and then execs the command, all in one line: sh has read the whole
// script by the time the marker arrives, which is what makes passing Stdin safe (see
// Run). exec makes the command the process the SSH session signals and whose exit
// status it reports.
func buildScript(c runner.Command, marker string) (string, error) {
	if len(c.Argv) == 0 {
		return "", errors.New("empty command")
	}
	if strings.HasPrefix(c.Argv[0], "-") {
		// "exec -x" is read as an option by bash, and dash's exec takes no "--".
		return "", fmt.Errorf("program name %q starts with '-'", c.Argv[0])
	}
	for _, a := range c.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return "", fmt.Errorf("argument %q holds a NUL byte", a)
		}
	}
	if strings.IndexByte(c.Dir, 0) >= 0 {
		return "", fmt.Errorf("directory %q holds a NUL byte", c.Dir)
	}

	var b strings.Builder
	b.WriteString("unset " + strings.Join(unsetVars, " ") + "\n")
	b.WriteString(unsetPrefixed)
	b.WriteString("export LC_ALL=C\n")
	for _, kv := range c.Env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !validName(name) {
			return "", fmt.Errorf("environment entry %q is not NAME=value", kv)
		}
		if strings.IndexByte(kv, 0) >= 0 {
			return "", fmt.Errorf("environment entry %q holds a NUL byte", kv)
		}
		b.WriteString("export " + runner.Quote(kv) + "\n")
	}
	if c.Dir != "" {
		b.WriteString("cd -- " + runner.Quote(c.Dir) + " && ")
	}
	b.WriteString("printf %s " + marker + " && printf %s " + marker + " >&2 && exec ")
	b.WriteString(runner.QuoteArgv(c.Argv) + "\n")
	return b.String(), nil
}

// validName reports whether s is a POSIX shell variable name.
func validName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') ||
			(r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// markedBuffer collects one output stream of a remote command. What arrives before the
// marker came from the login shell's dotfiles, not from the command, and is dropped once
// the marker shows up; without a marker everything is kept, because then it is the only
// explanation of why the command never started.
//
// It is safe for concurrent use: a session abandoned on cancel may still write into it
// after Run has taken its snapshot, and those late writes are discarded.
type markedBuffer struct {
	mu      sync.Mutex
	marker  []byte
	pending []byte // everything before the marker, while it has not been seen
	out     bytes.Buffer
	found   bool
	frozen  bool
	noise   int           // bytes dropped before the marker
	seen    chan struct{} // closed when the marker has been seen
}

func newMarkedBuffer(marker string) *markedBuffer {
	return &markedBuffer{marker: []byte(marker), seen: make(chan struct{})}
}

func (m *markedBuffer) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.frozen:
	case m.found:
		m.out.Write(p)
	default:
		m.pending = append(m.pending, p...)
		if i := bytes.Index(m.pending, m.marker); i >= 0 {
			m.noise = i
			m.out.Write(m.pending[i+len(m.marker):])
			m.pending = nil
			m.found = true
			close(m.seen)
		}
	}
	return len(p), nil
}

// result stops collecting and returns the command's output and whether it started.
func (m *markedBuffer) result() (out []byte, started bool, noise int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.frozen = true
	if !m.found {
		return bytes.Clone(m.pending), false, 0
	}
	return bytes.Clone(m.out.Bytes()), true, m.noise
}
