package sshrunner

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// stableAfter is how long a connection must have lived for its loss to reset the backoff.
// A server that accepts and then drops every connection (MaxStartups, a dying node) would
// otherwise be redialled at once each time.
const stableAfter = time.Minute

// conn is one established connection and the goroutines that watch it.
type conn struct {
	client *ssh.Client
	at     time.Time
	dead   chan struct{} // closed once the connection is closed, for whatever reason

	mu     sync.Mutex
	reason string // why it was closed by us (keepalive, Close), if it was
}

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// gone reports whether the connection is dead or being closed by us (keepalive, Close):
// kill returns before the watcher has taken the connection out of service.
func (c *conn) gone() bool {
	c.mu.Lock()
	killed := c.reason != ""
	c.mu.Unlock()
	return killed || c.isDead()
}

// deadWithin reports whether the connection is dead or dies within d.
func (c *conn) deadWithin(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.dead:
		return true
	case <-t.C:
		return false
	}
}

// kill closes the connection, remembering why for the log and for callers' errors.
func (c *conn) kill(reason string) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.mu.Unlock()
	c.client.Close()
}

func (c *conn) closeReason(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason != "" {
		return errors.New(c.reason)
	}
	if err == nil {
		return errors.New("closed by the server")
	}
	return err
}

// Refused session opens are retried for up to sessionRetryFor, starting at
// sessionRetryMin and doubling to sessionRetryMax. OpenSSH still counts a session for a
// moment after the client has seen it end, so a burst of back-to-back commands is
// refused ("open failed") even below the server's MaxSessions: measured on OpenSSH 9.2
// with MaxSessions 10, 1,000 concurrent "true" commands through 8 slots saw 152 refusals,
// through 5 none. With these retries all 1,000 passed through 10 slots in about 2 s.
const (
	sessionRetryMin = 5 * time.Millisecond
	sessionRetryMax = 200 * time.Millisecond
	sessionRetryFor = 3 * time.Second
)

// openSession opens a session, giving up when ctx is done. NewSession waits for the
// server's answer and has no context, and a hung server answers only when the keepalive
// gives up on it; a late session is closed and only then is the slot released. On error
// the slot is released (now or later); on success the caller owns it.
func (c *conn) openSession(ctx context.Context, release func()) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		delay := sessionRetryMin
		giveUp := time.Now().Add(sessionRetryFor)
		for {
			s, err := c.client.NewSession()
			var refused *ssh.OpenChannelError
			if err == nil || !errors.As(err, &refused) ||
				refused.Reason != ssh.ConnectionFailed || time.Now().After(giveUp) {
				if refused != nil && refused.Reason == ssh.ConnectionFailed {
					err = fmt.Errorf("%w (is the server's MaxSessions below max_sessions?)",
						err)
				}
				ch <- opened{s, err}
				return
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				ch <- opened{nil, ctx.Err()}
				return
			}
			delay = min(2*delay, sessionRetryMax)
		}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			release()
			return nil, fmt.Errorf("open session: %w", o.err)
		}
		return o.s, nil
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
			release()
		}()
		return nil, fmt.Errorf("open session: %w", ctx.Err())
	}
}

// connection returns the live connection, dialling if there is none and the backoff
// allows. While backing off it fails at once, wrapping ErrUnavailable and the reason.
// Callers arriving during a dial wait for it (bounded by ConnectTimeout) or for ctx.
func (r *Runner) connection(ctx context.Context) (*conn, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if c := r.conn; c != nil {
		r.mu.Unlock()
		return c, nil
	}
	if r.dialing == nil {
		if wait := time.Until(r.nextDial); wait > 0 {
			err := r.lastErr
			r.mu.Unlock()
			return nil, fmt.Errorf("%w: %s@%s: next attempt in %s; last error: %w",
				ErrUnavailable, r.cfg.User, r.addr, wait.Round(time.Millisecond), err)
		}
		r.dialing = make(chan struct{})
		go r.dial(r.dialing)
	}
	dialing := r.dialing
	r.mu.Unlock()

	select {
	case <-dialing:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s@%s: waiting for connect: %w", ErrUnavailable,
			r.cfg.User, r.addr, ctx.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case r.conn == nil:
		return nil, fmt.Errorf("%w: %s@%s: %w", ErrUnavailable, r.cfg.User, r.addr, r.lastErr)
	}
	return r.conn, nil
}

// dial connects once and records the outcome. It runs on its own goroutine with the
// runner's context, not a caller's, so one impatient caller cannot fail the dial for all
// the others waiting on it.
func (r *Runner) dial(done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.ConnectTimeout)
	defer cancel()
	start := time.Now()
	client, err := r.connect(ctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.dialing = nil
	if err == nil && r.closed {
		client.Close()
		err = ErrClosed
	}
	if errors.Is(err, ErrClosed) || r.closed {
		r.lastErr = ErrClosed
		return
	}
	if err != nil {
		r.dialFailures++
		r.failures++
		wait := r.backoff()
		r.lastErr = err
		r.nextDial = time.Now().Add(wait)
		r.log.Warn("ssh connect failed", "err", err, "retry_in_seconds", wait.Seconds())
		return
	}
	c := &conn{client: client, at: time.Now(), dead: make(chan struct{})}
	r.conn = c
	r.dials++
	r.log.Info("ssh connected", "duration_seconds", time.Since(start).Seconds(),
		"dials", r.dials)
	go r.watch(c)
	go r.keepalive(c)
}

// backoff returns the wait before the next dial: BackoffMin doubled per failure in a
// row, capped at BackoffMax, then jittered down by up to half so that many qmd instances
// (or clusters behind one gateway) do not retry in step. Called with r.mu held.
func (r *Runner) backoff() time.Duration {
	d := r.cfg.BackoffMin
	for i := 1; i < r.failures && d < r.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

// watch waits for the connection to end and takes it out of service.
func (r *Runner) watch(c *conn) {
	err := c.client.Wait()
	close(c.dead)
	reason := c.closeReason(err)

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != c {
		return
	}
	r.conn = nil
	r.lastErr = fmt.Errorf("connection lost: %w", reason)
	if time.Since(c.at) >= stableAfter {
		r.failures = 0
		r.nextDial = time.Time{}
	} else {
		r.failures++
		r.nextDial = time.Now().Add(r.backoff())
	}
	if !r.closed {
		r.log.Warn("ssh connection lost", "err", reason,
			"retry_in_seconds", max(0, time.Until(r.nextDial).Seconds()))
	}
}

// keepalive sends keepalive@openssh.com every KeepaliveInterval and closes the
// connection if an answer has not come by the next tick. OpenSSH answers it with a
// failure reply, which counts: any reply proves the peer is alive.
func (r *Runner) keepalive(c *conn) {
	every := r.cfg.KeepaliveInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		timer := time.NewTimer(every)
		select {
		case err := <-replied:
			timer.Stop()
			if err != nil {
				c.kill("keepalive failed: " + err.Error())
				return
			}
		case <-timer.C:
			c.kill(fmt.Sprintf("no keepalive reply within %s", every))
			return
		case <-c.dead:
			timer.Stop()
			return
		}
	}
}

// connect dials, checks the host key and logs in, all within ctx.
func (r *Runner) connect(ctx context.Context) (*ssh.Client, error) {
	hostKeys, err := knownhosts.New(r.cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	var keyErr error
	cfg := &ssh.ClientConfig{
		User: r.cfg.User,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			if err := hostKeys(host, remote, key); err != nil {
				keyErr = r.hostKeyError(err, key)
				return keyErr
			}
			return nil
		},
		// Ask only for key types the file has for this host. Otherwise the server may
		// present, say, its ECDSA key while the file holds its Ed25519 one, and knownhosts
		// reports that as a mismatch although nothing changed.
		HostKeyAlgorithms: knownAlgorithms(hostKeys, r.addr),
	}

	signers := r.signers
	if r.cfg.UseAgent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		var d net.Dialer
		ac, err := d.DialContext(ctx, "unix", sock)
		var agentSigners []ssh.Signer
		if err == nil {
			defer ac.Close() // only needed while logging in
			agentSigners, err = agent.NewClient(ac).Signers()
		}
		if err != nil {
			// The identity file may still get us in; without one there is no key to offer.
			if len(signers) == 0 {
				return nil, fmt.Errorf("ssh agent at %q: %w", sock, err)
			}
			r.log.Warn("ssh agent unusable, trying the identity file only", "err", err)
		}
		signers = append(signers[:len(signers):len(signers)], agentSigners...)
	}
	// One method for all keys: x/crypto tries each method name only once, so a second
	// "publickey" method would never be offered.
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(signers...)}

	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", r.addr, err)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(nc, r.addr, cfg)
	if !stop() {
		if err == nil {
			cc.Close()
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", r.addr, ctx.Err())
	}
	if err != nil {
		nc.Close()
		if keyErr != nil {
			return nil, keyErr
		}
		return nil, fmt.Errorf("ssh login as %s to %s: %w", r.cfg.User, r.addr, err)
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

// HostKeyError is the detailed form of ErrHostKey (errors.Is matches it): which host
// offered which key, what known_hosts holds for it instead, and what to run once the
// fingerprint has been checked.
type HostKeyError struct {
	Host        string
	Port        int
	KeyType     string   // of the offered key, e.g. ssh-ed25519
	Fingerprint string   // of the offered key, SHA256:...
	KnownHosts  string   // the file consulted
	Known       []string // keys the file holds for the host: set when the key changed
	Revoked     bool     // the file marks the offered key @revoked
}

func (e *HostKeyError) Error() string {
	add := fmt.Sprintf("ssh-keyscan -p %d %s >> %s", e.Port, e.Host, e.KnownHosts)
	offered := fmt.Sprintf("%s port %d offered %s key %s", e.Host, e.Port, e.KeyType,
		e.Fingerprint)
	switch {
	case e.Revoked:
		return fmt.Sprintf("ssh host key revoked: %s, which %s marks @revoked; nothing "+
			"was run", offered, e.KnownHosts)
	case len(e.Known) > 0:
		return fmt.Sprintf("ssh host key changed: %s, but %s holds %s; the host was "+
			"reinstalled or something is in the middle, and nothing was run. If the "+
			"cluster's admins confirm the new fingerprint, delete the old line and run: %s",
			offered, e.KnownHosts, strings.Join(e.Known, ", "), add)
	default:
		return fmt.Sprintf("ssh host key unknown: %s, which is not in %s; nothing was "+
			"run. If the cluster's admins confirm that fingerprint, run: %s",
			offered, e.KnownHosts, add)
	}
}

// Is makes errors.Is(err, ErrHostKey) true.
func (e *HostKeyError) Is(target error) bool { return target == ErrHostKey }

// hostKeyError turns a knownhosts verdict into a *HostKeyError; other failures of the
// check (a malformed file line, say) keep their own text and still match ErrHostKey.
func (r *Runner) hostKeyError(err error, key ssh.PublicKey) error {
	e := &HostKeyError{
		Host: r.cfg.Host, Port: r.cfg.Port, KeyType: key.Type(),
		Fingerprint: ssh.FingerprintSHA256(key), KnownHosts: r.cfg.KnownHosts,
	}
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(err, &revoked):
		e.Revoked = true
	case errors.As(err, &keyErr):
		for _, k := range keyErr.Want {
			e.Known = append(e.Known, fmt.Sprintf("%s %s (line %d)", k.Key.Type(),
				ssh.FingerprintSHA256(k.Key), k.Line))
		}
	default:
		return fmt.Errorf("%w: %s: %w", ErrHostKey, e.Fingerprint, err)
	}
	return e
}

// probeKey is a key no known_hosts file holds: checking it makes knownhosts list the keys
// it does hold for a host (KeyError.Want).
var probeKey, _ = ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, 32)).Public())

// knownAlgorithms returns the host key algorithms matching the keys known for addr, or
// nil (the library's defaults) when none are, so that the handshake reaches the host key
// check and fails there with the offered key's fingerprint.
func knownAlgorithms(hostKeys ssh.HostKeyCallback, addr string) []string {
	var keyErr *knownhosts.KeyError
	err := hostKeys(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey)
	if !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		names := []string{k.Key.Type()}
		if k.Key.Type() == ssh.KeyAlgoRSA {
			// An RSA key signs with SHA-2 by preference; plain ssh-rsa is the SHA-1 last
			// resort that OpenSSH servers no longer offer by default.
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos
}

// loadIdentity reads an unencrypted private key.
func loadIdentity(path string) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("%s is passphrase-protected; load it into an agent and set "+
			"use_agent instead", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
