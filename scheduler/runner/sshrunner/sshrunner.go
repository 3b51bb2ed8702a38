// Package sshrunner is a runner.Runner that runs commands on a cluster's login node over
// SSH, so the Slurm and PBS backends work on a remote cluster without knowing it.
//
// It speaks SSH itself (golang.org/x/crypto/ssh) rather than calling the ssh binary, so
// one TCP connection per cluster carries every command as a session of its own: a poll
// cycle costs a few milliseconds per command instead of a key exchange each.
//
// # What the login shell sees
//
// The server hands an exec request's string to the user's login shell, and that shell
// may be tcsh, which expands "!" even inside single quotes and rejects quoted newlines.
// So the string is always the fixed "/bin/sh -s", and the POSIX-quoted command travels on
// the session's stdin as a script for that sh. Whatever the login shell, names, paths and
// values arrive byte for byte and nothing in them is executed.
//
// # Stdin
//
// sh -s reads its script from the same stdin the command inherits, and dash (Debian's
// /bin/sh) reads a pipe in blocks of up to 8 KiB: data sent right behind the script is
// swallowed by sh and never reaches the command (tested over this package's own sshd).
// bash reads a pipe byte by byte and would not need help, but /bin/sh is not bash on
// Debian. So the script's last line prints a random marker and then execs the command,
// and the runner holds Command.Stdin back until it has seen the marker: by then sh has
// read the whole script and nothing more. The same marker also separates the command's
// output from anything the login shell's dotfiles printed before it, which is dropped.
//
// # Exit status
//
// A non-zero exit is a *runner.CommandError with the Result, as with runner.Local. A
// command that never started (Dir missing, /bin/sh unusable) is an error wrapping
// ErrNotStarted, not a CommandError, so callers can tell "sbatch said no" from "sbatch
// never ran".
//
// # Differences from runner.Local
//
//   - A command killed by a signal exits 128 plus the signal number (137 for SIGKILL),
//     as a shell reports it; runner.Local says -1 there because os/exec does.
//   - A program missing on the remote side is CommandError 127 from sh, not an exec
//     error.
//   - The environment is the remote login's, minus what runner.Environ drops, with
//     LC_ALL=C and then Command.Env; an empty Dir means the remote user's home.
//   - Command.User is refused: the remote user is the one qmd logs in as.
package sshrunner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"qmd/scheduler/runner"
)

// Defaults for zero Config fields.
const (
	DefaultPort              = 22
	DefaultMaxSessions       = 8 // below OpenSSH's default MaxSessions of 10; see openSession
	DefaultConnectTimeout    = 10 * time.Second
	DefaultKeepaliveInterval = 30 * time.Second
	DefaultBackoffMin        = time.Second
	DefaultBackoffMax        = 2 * time.Minute
)

// ErrUnavailable means the cluster could not be asked: no connection, the connection was
// lost, or reconnecting is backing off. Run returns it at once while the link is down
// rather than blocking a poll cycle, and the poller must not change any job's state
// because of it. If the connection drops while a command runs, the command may still
// have run; the message says so.
var ErrUnavailable = errors.New("ssh connection unavailable")

// ErrHostKey means the server's host key is not in the known_hosts file, or differs from
// the one there, and nothing was run. The runner never trusts a key on first use: a
// changed key may be a machine in the middle. The errors Run returns for it are
// *HostKeyError values naming the host, port and the offered key's SHA256 fingerprint;
// they wrap ErrUnavailable too, since the cluster cannot be asked.
var ErrHostKey = errors.New("ssh host key unknown or changed: after checking its " +
	"fingerprint with the cluster's admins, add it with " +
	"ssh-keyscan -p PORT HOST >> KNOWN_HOSTS")

// ErrNotStarted means the remote command was certainly not run: the connection and the
// login worked, but the shell or the cd to Command.Dir failed before the command's exec.
// Retrying a submission that failed with it cannot submit a job twice.
var ErrNotStarted = errors.New("remote command did not start")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("ssh runner closed")

// Config says where and how to connect. Host, User, KnownHosts and one of IdentityFile or
// UseAgent are required; zero durations and counts take the Default* values.
type Config struct {
	Host string
	Port int
	User string

	// IdentityFile is an unencrypted private key (read once, by New). A passphrase-
	// protected key belongs in an agent: the daemon has nobody to ask for a passphrase.
	IdentityFile string
	// UseAgent offers the keys of the agent at $SSH_AUTH_SOCK, asked on every connect.
	UseAgent bool

	// KnownHosts is the OpenSSH known_hosts file holding the server's key; a key missing
	// from it or different from it is refused (ErrHostKey). It is re-read on every
	// connect, so a key added after the daemon started is picked up without a restart.
	KnownHosts string

	// MaxSessions caps the commands (and SFTP clients) open at once on the one
	// connection; further commands wait for a slot (or their ctx). Keep it below the
	// server's MaxSessions (OpenSSH's default: 10): the server refuses sessions beyond
	// it instead of queueing them, and frees a slot only a moment after a command ends.
	// Refused opens are retried for a few seconds.
	MaxSessions int

	// ConnectTimeout bounds the TCP connect, key exchange and login.
	ConnectTimeout time.Duration
	// CommandTimeout bounds each command without a Command.Timeout of its own; 0: none.
	CommandTimeout time.Duration
	// KeepaliveInterval is how often a keepalive@openssh.com request checks the peer. A
	// peer that has not answered by the next one is declared dead and the connection
	// closed, so a vanished login node is noticed within about two intervals, not after
	// the kernel's TCP timeouts of many minutes.
	KeepaliveInterval time.Duration

	// BackoffMin and BackoffMax bound the exponential, jittered wait between reconnect
	// attempts, so an unreachable cluster costs one connect attempt per wait, not one per
	// command.
	BackoffMin, BackoffMax time.Duration

	// Logger receives connection events (connected, lost, dial failed); nil: discard.
	Logger *slog.Logger
}

// Runner runs commands over one SSH connection, dialled on first use and redialled after
// it breaks. It is safe for concurrent use; create one per cluster and Close it at
// shutdown.
type Runner struct {
	cfg     Config
	addr    string
	signers []ssh.Signer
	log     *slog.Logger
	slots   chan struct{}

	ctx    context.Context // cancelled by Close; bounds dials
	cancel context.CancelFunc

	mu           sync.Mutex
	conn         *conn         // nil while not connected
	dialing      chan struct{} // non-nil while a dial is in progress; closed when it ends
	lastErr      error         // why the last dial failed or the last connection ended
	nextDial     time.Time     // no dial before this (backoff)
	failures     int           // dial failures and short-lived connections in a row
	dials        int
	dialFailures int
	closed       bool
}

var _ runner.Runner = (*Runner)(nil)

// New checks cfg and loads the identity file and known_hosts file; it does not connect.
// Errors here are configuration errors and do not wrap ErrUnavailable.
func New(cfg Config) (*Runner, error) {
	var errs []error
	if cfg.Host == "" {
		errs = append(errs, errors.New("host: required"))
	}
	if cfg.User == "" {
		errs = append(errs, errors.New("user: required"))
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d out of range", cfg.Port))
	}
	if cfg.KnownHosts == "" {
		errs = append(errs, errors.New("known_hosts: required (host keys are never trusted "+
			"on first use)"))
	} else if _, err := knownhosts.New(cfg.KnownHosts); err != nil {
		errs = append(errs, fmt.Errorf("known_hosts: %w", err))
	}
	if cfg.IdentityFile == "" && !cfg.UseAgent {
		errs = append(errs, errors.New("identity_file or use_agent: one is required"))
	}
	if cfg.UseAgent && cfg.IdentityFile == "" && os.Getenv("SSH_AUTH_SOCK") == "" {
		errs = append(errs, errors.New("use_agent: SSH_AUTH_SOCK is not set"))
	}
	var signers []ssh.Signer
	if cfg.IdentityFile != "" {
		s, err := loadIdentity(cfg.IdentityFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("identity_file: %w", err))
		} else {
			signers = append(signers, s)
		}
	}
	if cfg.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("max_sessions: %d is negative", cfg.MaxSessions))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("ssh runner: %w", errors.Join(errs...))
	}

	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{
		cfg:     cfg,
		addr:    addr,
		signers: signers,
		log:     log.With("host", cfg.Host, "port", cfg.Port, "user", cfg.User),
		slots:   make(chan struct{}, cfg.MaxSessions),
		ctx:     ctx,
		cancel:  cancel,
	}, nil
}

// Healthy reports whether the runner holds a live connection: false before the first
// command, while reconnecting and after Close. It never dials.
func (r *Runner) Healthy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn != nil && !r.conn.gone()
}

// Dials returns how many connections were established (handshake and login done) since
// New, for metrics: more than one means the link broke and was rebuilt.
func (r *Runner) Dials() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dials
}

// DialFailures returns how many connect attempts failed since New.
func (r *Runner) DialFailures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dialFailures
}

// OpenConnections returns the number of open connections: 0 or 1.
func (r *Runner) OpenConnections() int {
	if r.Healthy() {
		return 1
	}
	return 0
}

// Close closes the connection and stops reconnecting; running commands fail.
func (r *Runner) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	c := r.conn
	r.conn = nil
	r.mu.Unlock()

	r.cancel()
	if c != nil {
		c.kill("runner closed")
	}
	return nil
}

// Run implements runner.Runner. See the package doc for how the command reaches the
// remote sh and how exits are reported. Command.User is refused: the remote user is the
// one qmd logged in as, and switching it would need sudo on the cluster.
func (r *Runner) Run(ctx context.Context, c runner.Command) (runner.Result, error) {
	if len(c.Argv) == 0 {
		return runner.Result{}, errors.New("run: empty command")
	}
	prog := c.Argv[0]
	if c.User != nil {
		return runner.Result{}, fmt.Errorf("run %s: running as another user (%s) is not "+
			"supported over ssh", prog, c.User.Name)
	}
	marker := newMarker()
	script, err := buildScript(c, marker)
	if err != nil {
		return runner.Result{}, fmt.Errorf("run %s: %w", prog, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = r.cfg.CommandTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()

	cn, err := r.connection(ctx)
	if err != nil {
		return runner.Result{}, fmt.Errorf("run %s: %w", prog, err)
	}
	release, err := r.acquire(ctx)
	if err != nil {
		return runner.Result{}, fmt.Errorf("run %s: wait for a session slot: %w", prog, err)
	}
	sess, err := cn.openSession(ctx, release)
	if err != nil {
		return runner.Result{}, fmt.Errorf("run %s: %w", prog, r.sessionError(cn, err))
	}
	// From here on the session owns the slot: it is released once the session is
	// finished with, which after a cancel may be later than Run's return.

	stdout := newMarkedBuffer(marker)
	stderr := newMarkedBuffer(marker)
	sess.Stdout = stdout
	sess.Stderr = stderr
	stdin, err := sess.StdinPipe()
	if err == nil {
		err = sess.Start(remoteCommand)
	}
	if err != nil {
		sess.Close()
		release()
		return runner.Result{}, fmt.Errorf("run %s: start session: %w", prog,
			linkError(cn, err))
	}

	waited := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		err := sess.Wait()
		sess.Close()
		release()
		close(finished)
		waited <- err
	}()
	go feedStdin(stdin, script, c.Stdin, stdout.seen, finished)

	select {
	case err = <-waited:
	case <-ctx.Done():
		// Session has no context. OpenSSH delivers the signal with killpg to the
		// session's process group, so it reaches the command even when the login
		// shell (tcsh) forked instead of exec'ing; closing the channel alone would
		// leave the command running. Both only queue packets, but on a hung peer even
		// that may block, and Run must return now.
		go func() {
			_ = sess.Signal(ssh.SIGKILL)
			sess.Close()
		}()
		res := r.result(stdout, stderr)
		return res, fmt.Errorf("run %s: %w", prog, ctx.Err())
	}

	res := r.result(stdout, stderr)
	_, started, _ := stdout.result()
	r.log.Debug("ssh command done", "cmd", prog,
		"duration_seconds", time.Since(start).Seconds(), "err", err)

	var exitErr *ssh.ExitError
	switch {
	case err == nil && started:
		return res, nil
	case errors.As(err, &exitErr) && started:
		res.ExitCode = exitErr.ExitStatus()
		return res, &runner.CommandError{
			Program: prog, ExitCode: res.ExitCode, Stderr: string(res.Stderr),
		}
	case err == nil || errors.As(err, &exitErr):
		// A clean exit without the marker: sh or cd failed before exec.
		code := 0
		if exitErr != nil {
			code = exitErr.ExitStatus()
		}
		res.ExitCode = code
		return res, fmt.Errorf("run %s: %w (exit status %d): %s", prog, ErrNotStarted,
			code, trim(res.Stderr))
	case cn.deadWithin(time.Second):
		// The session ended without an exit status because the connection did; the
		// connection's own watcher may notice a moment after Wait returns.
		return res, fmt.Errorf("run %s: %w: connection lost while the command ran; it "+
			"may have run: %w", prog, ErrUnavailable, err)
	default:
		return res, fmt.Errorf("run %s: %w", prog, err)
	}
}

// result snapshots both streams; ExitCode is filled in by the caller.
func (r *Runner) result(stdout, stderr *markedBuffer) runner.Result {
	out, _, noise := stdout.result()
	errOut, _, errNoise := stderr.result()
	if noise+errNoise > 0 {
		r.log.Debug("dropped login shell output", "stdout_bytes", noise,
			"stderr_bytes", errNoise)
	}
	return runner.Result{Stdout: out, Stderr: errOut}
}

// feedStdin writes the script and then, once sh has started the command (the marker was
// seen), the command's stdin; then it closes stdin so the command sees EOF. Without
// stdin it closes right after the script. It gives up when the session ends.
func feedStdin(w io.WriteCloser, script string, data []byte, started, done <-chan struct{}) {
	defer w.Close()
	if _, err := w.Write([]byte(script)); err != nil || len(data) == 0 {
		return
	}
	select {
	case <-started:
		_, _ = w.Write(data)
	case <-done:
	}
}

// acquire takes one of MaxSessions slots, waiting for ctx at most.
func (r *Runner) acquire(ctx context.Context) (func(), error) {
	select {
	case r.slots <- struct{}{}:
		return sync.OnceFunc(func() { <-r.slots }), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sessionError marks a failure to open or start a session as ErrUnavailable unless the
// server itself refused the channel (over its MaxSessions, say): anything else means the
// connection under it is gone or going, and callers should treat it as "could not ask".
func (r *Runner) sessionError(cn *conn, err error) error {
	var refused *ssh.OpenChannelError
	if errors.As(err, &refused) && !cn.isDead() {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// linkError marks a failed request on an open session as ErrUnavailable when the
// connection died under it; a request the server merely refused stays a plain error.
func linkError(cn *conn, err error) error {
	if cn.deadWithin(200 * time.Millisecond) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// trim shortens a remote message for an error string, cutting on a rune boundary so logs
// and JSON stay valid UTF-8; the full text is in the Result.
func trim(b []byte) string {
	const limit = 500
	s := strings.TrimSpace(string(b))
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
