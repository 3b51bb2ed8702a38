package sshrunner

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"qmd/scheduler/runner"
)

// hostile returns words that break naive quoting in sh, bash or tcsh. pwned names a file
// that exists afterwards only if one of them was executed.
func hostile(pwned string) []string {
	return []string{
		"plain", "with space", "  lead and trail  ", "", " ",
		"it's", `say "hi"`, `'"'"'`, `\`, `a\nb`, `\'`,
		"$HOME", "${HOME}", "$$", "$?", "$0", "$(touch " + pwned + ")",
		"`touch " + pwned + "`", "$(id)", "'$(touch " + pwned + ")'",
		"!", "!!", "!$", "a!b", "!-1", "^a^b", "!touch",
		"new\nline", "trailing\n", "\n", "tab\there", "cr\rlf",
		"*", "?", "[a-z]*", "{a,b}", "~", "~root", "#comment", "a # b",
		";", "a; touch " + pwned, "&&", "||", "|", "&", ">", "<", "2>&1", ">& x", "<<EOF",
		"a=b", "if", "-n", "--", "%s", "%", `\0`,
		"é", "日本語", "\xff\xfe", "\u00a0nbsp", "emoji 🧪",
		strings.Repeat(`x'y"$z `, 3000), // longer than dash's 8 KiB read
	}
}

// newPwnedPath returns a path in /tmp that the remote users can create, removed at the
// end; if it ever exists, something was executed that should not have been.
func newPwnedPath(t *testing.T) string {
	t.Helper()
	p := "/tmp/qmd-pwned-" + rand.Text()
	t.Cleanup(func() { os.Remove(p) })
	return p
}

func TestHostileArgvRoundTrip(t *testing.T) {
	needSSHD(t)
	for _, user := range testUsers {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			r := newTestRunner(t, user, nil)
			pwned := newPwnedPath(t)
			words := hostile(pwned)

			res := run(t, r, append([]string{"printf", `%s\0`}, words...)...)
			want := []byte(strings.Join(words, "\x00") + "\x00")
			if !bytes.Equal(res.Stdout, want) {
				t.Errorf("argv round trip differs:\n got %q\nwant %q", res.Stdout, want)
			}
			if len(res.Stderr) != 0 {
				t.Errorf("stderr: %q", res.Stderr)
			}

			// The same words as environment values and as the command's stdin.
			for i, w := range words {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := r.Run(ctx, runner.Command{
					Argv:  []string{"/bin/sh", "-c", `printf '%s\0' "$QMD_W"; cat`},
					Env:   []string{"QMD_W=" + w},
					Stdin: []byte(w),
				})
				cancel()
				if err != nil {
					t.Fatalf("word %d: %v", i, err)
				}
				if want := w + "\x00" + w; string(res.Stdout) != want {
					t.Errorf("word %d via env and stdin: got %q, want %q", i, res.Stdout, want)
				}
			}

			if _, err := os.Stat(pwned); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s exists (stat: %v): a quoted word was executed", pwned, err)
			}
			if n := r.Dials(); n != 1 {
				t.Errorf("Dials() = %d, want 1: every command should share one connection", n)
			}
		})
	}
}

func TestDirEnvExit(t *testing.T) {
	needSSHD(t)
	for _, user := range testUsers {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			r := newTestRunner(t, user, nil)
			base := remoteTempDir(t, r)
			odd := path.Join(base, "it's a $dir !x")
			run(t, r, "mkdir", odd)
			ctx := context.Background()

			res, err := r.Run(ctx, runner.Command{
				Argv: []string{"/bin/sh", "-c", `pwd; printf '%s|%s|%s\n' "$A" "$B" "$LC_ALL"`},
				Dir:  odd,
				Env:  []string{"A=one two", "B=$HOME !x"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := odd + "\none two|$HOME !x|C\n"; string(res.Stdout) != want {
				t.Errorf("stdout %q, want %q", res.Stdout, want)
			}

			res, err = r.Run(ctx, runner.Command{
				Argv: []string{"/bin/sh", "-c", "echo out; echo 'it failed' >&2; exit 3"},
			})
			var ce *runner.CommandError
			if !errors.As(err, &ce) || ce.ExitCode != 3 || res.ExitCode != 3 {
				t.Fatalf("exit 3: err %v (%T), result %+v", err, err, res)
			}
			if ce.Program != "/bin/sh" || !strings.Contains(ce.Stderr, "it failed") ||
				string(res.Stdout) != "out\n" || string(res.Stderr) != "it failed\n" {
				t.Errorf("exit 3: error %+v, result stdout %q stderr %q", ce, res.Stdout,
					res.Stderr)
			}

			// A missing directory: the command never ran, which is not a CommandError.
			_, err = r.Run(ctx, runner.Command{Argv: []string{"true"}, Dir: base + "/nope"})
			if !errors.Is(err, ErrNotStarted) || errors.As(err, &ce) {
				t.Errorf("missing Dir: err %v, want ErrNotStarted", err)
			}

			// A missing program is reported by the remote sh as exit 127.
			_, err = r.Run(ctx, runner.Command{Argv: []string{"qmd-no-such-program"}})
			if !errors.As(err, &ce) || ce.ExitCode != 127 {
				t.Errorf("missing program: err %v, want CommandError 127", err)
			}

			// Killed by a signal: 128 + 9, for tcsh (which forks) as for bash (which execs).
			res, err = r.Run(ctx, runner.Command{Argv: []string{"/bin/sh", "-c", "kill -9 $$"}})
			if !errors.As(err, &ce) || ce.ExitCode != 137 || res.ExitCode != 137 {
				t.Errorf("killed by SIGKILL: err %v, result %+v, want exit 137", err, res)
			}

			_, err = r.Run(ctx, runner.Command{Argv: []string{"id"},
				User: &runner.Credential{Name: "nobody"}})
			if err == nil || !strings.Contains(err.Error(), "not supported over ssh") {
				t.Errorf("Command.User: err %v, want 'not supported over ssh'", err)
			}
		})
	}
}

func TestStdin(t *testing.T) {
	needSSHD(t)
	// Binary, with NULs, and much larger than dash's 8 KiB read: if sh read any of it as
	// script, it would be missing from the echo and sh would likely complain.
	data := make([]byte, 300_000)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	for _, user := range testUsers {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			r := newTestRunner(t, user, nil)
			ctx := context.Background()
			res, err := r.Run(ctx, runner.Command{Argv: []string{"cat"}, Stdin: data})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.Stdout, data) {
				t.Errorf("cat returned %d bytes, want the %d sent", len(res.Stdout), len(data))
			}
			// A command that ignores its stdin still finishes.
			if _, err := r.Run(ctx, runner.Command{Argv: []string{"true"}, Stdin: data}); err != nil {
				t.Errorf("true with stdin: %v", err)
			}
			// No stdin: the command sees EOF at once.
			res = run(t, r, "wc", "-c")
			if strings.TrimSpace(string(res.Stdout)) != "0" {
				t.Errorf("wc -c without stdin printed %q", res.Stdout)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	needSSHD(t)
	for _, user := range testUsers {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			r := newTestRunner(t, user, nil)
			// A unique argument, so the test can look for this very process afterwards.
			arg := "29." + strconv.Itoa(int(time.Now().UnixNano()%1e6))

			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := r.Run(ctx, runner.Command{Argv: []string{"sleep", arg}})
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v, want context.DeadlineExceeded", err)
			}
			if took > 2*time.Second {
				t.Errorf("Run returned after %s, want soon after the 0.5 s deadline", took)
			}
			waitGone(t, "sleep\x00"+arg+"\x00")

			// Command.Timeout works the same without a deadline on ctx.
			start = time.Now()
			_, err = r.Run(context.Background(), runner.Command{
				Argv: []string{"sleep", arg}, Timeout: 300 * time.Millisecond,
			})
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
				t.Errorf("Command.Timeout: err %v after %s", err, time.Since(start))
			}
			waitGone(t, "sleep\x00"+arg+"\x00")

			// The runner is still usable.
			run(t, r, "true")
		})
	}
}

// waitGone fails unless no process with exactly this command line remains within 3 s.
func waitGone(t *testing.T, cmdline string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := findProcs(cmdline)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL) // this test's own leftover
			}
			t.Fatalf("remote command %q still running after cancel (pids %v)", cmdline, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func findProcs(cmdline string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && string(b) == cmdline {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestMaxSessions(t *testing.T) {
	needSSHD(t)
	t.Parallel()
	r := newTestRunner(t, bashUser, func(c *Config) { c.MaxSessions = 2 })
	dir := remoteTempDir(t, r)
	log := dir + "/events"
	script := `echo start >> "$1"; sleep 0.5; echo end >> "$1"`

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_, err := r.Run(ctx, runner.Command{Argv: []string{"/bin/sh", "-c", script, "sh", log}})
			errs <- err
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	if took < 1200*time.Millisecond {
		t.Errorf("5 × sleep 0.5 with 2 sessions took %s, want ≥ 1.2 s (3 rounds)", took)
	}
	events := strings.Fields(string(run(t, r, "cat", log).Stdout))
	running, peak := 0, 0
	for _, e := range events {
		if e == "start" {
			running++
		} else {
			running--
		}
		peak = max(peak, running)
	}
	if len(events) != 10 || peak > 2 {
		t.Errorf("events %v: peak %d at once, want 10 events and at most 2", events, peak)
	}
	if n := r.Dials(); n != 1 {
		t.Errorf("Dials() = %d, want 1", n)
	}
	if n := r.OpenConnections(); n != 1 {
		t.Errorf("OpenConnections() = %d, want 1", n)
	}
}

// TestBurstAtServerLimit runs many short commands through as many slots as the server
// allows (OpenSSH's MaxSessions 10). The server frees a slot a moment after the client
// has seen the session end, so without openSession's retry many of these are refused.
func TestBurstAtServerLimit(t *testing.T) {
	needSSHD(t)
	t.Parallel()
	r := newTestRunner(t, bashUser, func(c *Config) { c.MaxSessions = 10 })
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := r.Run(ctx, runner.Command{Argv: []string{"true"}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed == 0 {
				t.Error(err)
			}
			failed++
		}
	}
	if failed > 0 || r.Dials() != 1 {
		t.Errorf("%d of 200 commands failed, Dials() = %d; want 0 and 1", failed, r.Dials())
	}
}

func TestMaxSessionsWaitHonoursContext(t *testing.T) {
	needSSHD(t)
	t.Parallel()
	r := newTestRunner(t, bashUser, func(c *Config) { c.MaxSessions = 1 })
	run(t, r, "true") // connect first, so only the slot wait is measured

	done := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), runner.Command{Argv: []string{"sleep", "1"}})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, runner.Command{Argv: []string{"true"}})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("waiting for the only slot: err %v after %s, want deadline after 0.2 s",
			err, time.Since(start))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHostKey(t *testing.T) {
	needSSHD(t)
	t.Parallel()
	fp := hostFingerprint(t)
	_, otherKey := newHostKey(t, t.TempDir())

	tests := []struct {
		name string
		key  ssh.PublicKey // what known_hosts holds for [127.0.0.1]:2222
		want []string
	}{
		{"unknown", nil, []string{"not in", "ssh-keyscan -p 2222 127.0.0.1 >> "}},
		{"changed", otherKey, []string{"changed", ssh.FingerprintSHA256(otherKey),
			"ssh-keyscan -p 2222 127.0.0.1 >> "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kh := writeKnownHosts(t, dir, testPort, tt.key)
			r := newTestRunner(t, bashUser, func(c *Config) { c.KnownHosts = kh })
			pwned := newPwnedPath(t)

			for range 2 { // the second answer comes from the backoff, without a dial
				_, err := r.Run(context.Background(), runner.Command{
					Argv: []string{"touch", pwned}})
				if !errors.Is(err, ErrHostKey) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("err %v, want ErrHostKey and ErrUnavailable", err)
				}
				var hke *HostKeyError
				if !errors.As(err, &hke) || hke.Fingerprint != fp || hke.Port != testPort {
					t.Errorf("err %v: want a *HostKeyError for %s on port %d", err, fp,
						testPort)
				}
				msg := err.Error()
				for _, w := range append(tt.want, "127.0.0.1 port 2222", fp, kh) {
					if !strings.Contains(msg, w) {
						t.Errorf("error lacks %q:\n%s", w, msg)
					}
				}
			}
			if _, err := os.Stat(pwned); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the command ran despite the host key (stat: %v)", err)
			}
			if r.Dials() != 0 || r.Healthy() {
				t.Errorf("Dials() = %d, Healthy() = %v; want 0, false", r.Dials(), r.Healthy())
			}
		})
	}
}

func TestDeadPeerReconnect(t *testing.T) {
	needSSHD(t)
	t.Parallel()
	sshd := startPrivateSSHD(t)
	kh := writeKnownHosts(t, t.TempDir(), sshd.port, sshd.pubKey)
	const every = 300 * time.Millisecond
	r := newTestRunner(t, bashUser, func(c *Config) {
		c.Port = sshd.port
		c.KnownHosts = kh
		c.KeepaliveInterval = every
		c.BackoffMin = 100 * time.Millisecond
		c.BackoffMax = 400 * time.Millisecond
		c.ConnectTimeout = 2 * time.Second
	})

	run(t, r, "true")
	if !r.Healthy() || r.Dials() != 1 {
		t.Fatalf("after the first command: Healthy() = %v, Dials() = %d", r.Healthy(), r.Dials())
	}
	// Keepalives answered for a while: an idle, healthy connection is not dropped.
	time.Sleep(3 * every)
	if !r.Healthy() {
		t.Fatal("idle connection declared dead")
	}

	// The processes serving our connection: the listener's per-connection child and its
	// unprivileged child. Stopping them makes a peer that is gone without a FIN or RST,
	// like a login node that froze or fell off the network: only the keepalive notices.
	conn := descendants(sshd.cmd.Process.Pid)
	if len(conn) == 0 {
		t.Fatal("found no sshd process serving the connection")
	}
	t.Cleanup(func() {
		for _, pid := range conn {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	sshd.stopListener() // and nobody to reconnect to, until the restart below
	for _, pid := range conn {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("stop pid %d: %v", pid, err)
		}
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := r.Run(ctx, runner.Command{Argv: []string{"true"}})
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run on a dead peer: err %v, want ErrUnavailable", err)
	}
	if took > 2*every+time.Second { // slack for a loaded machine
		t.Errorf("dead peer noticed after %s, want within about 2 × %s", took, every)
	}
	if r.Healthy() {
		t.Error("Healthy() = true after the peer died")
	}

	// While down, Run fails fast: backoff, or a refused connect.
	for range 3 {
		start = time.Now()
		_, err = r.Run(ctx, runner.Command{Argv: []string{"true"}})
		if !errors.Is(err, ErrUnavailable) || time.Since(start) > 500*time.Millisecond {
			t.Errorf("Run while down: err %v after %s, want ErrUnavailable at once", err,
				time.Since(start))
		}
	}

	// Once the backoff has passed, the next Run dials, is refused, and says so at once.
	time.Sleep(400 * time.Millisecond)
	start = time.Now()
	_, err = r.Run(ctx, runner.Command{Argv: []string{"true"}})
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > 500*time.Millisecond {
		t.Errorf("Run after the backoff: err %v after %s, want a refused dial at once",
			err, time.Since(start))
	}
	if r.DialFailures() == 0 {
		t.Error("DialFailures() = 0, want the refused attempt counted")
	}

	for _, pid := range conn {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	sshd.start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = r.Run(ctx, runner.Command{Argv: []string{"true"}})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !r.Healthy() || r.Dials() != 2 {
		t.Errorf("after reconnecting: Healthy() = %v, Dials() = %d, want true, 2",
			r.Healthy(), r.Dials())
	}
}

func TestSFTP(t *testing.T) {
	needSSHD(t)
	t.Parallel()
	r := newTestRunner(t, tcshUser, nil)
	dir := remoteTempDir(t, r)
	data := make([]byte, 200_000)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, done, err := r.SFTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	name := dir + "/it's input.nw"
	f, err := c.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(data)) {
		t.Errorf("remote size %d, want %d", st.Size(), len(data))
	}
	f, err = c.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Errorf("read back %d bytes (err %v), want the %d written", len(back), err, len(data))
	}
	// The command side sees the same file, over the same connection.
	if out := run(t, r, "wc", "-c", name).Stdout; !bytes.HasPrefix(out, []byte("200000 ")) {
		t.Errorf("wc -c: %q", out)
	}
	if n := r.Dials(); n != 1 {
		t.Errorf("Dials() = %d, want 1: SFTP must share the command connection", n)
	}
}

func TestAgent(t *testing.T) {
	needSSHD(t)
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Fatalf("ssh-agent: %v (openssh-client is installed by .ci/sshd-up)", err)
	}
	sock := t.TempDir() + "/agent.sock"
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agentCmd.Process.Kill()
		_ = agentCmd.Wait()
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 100 {
			t.Fatal("ssh-agent socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	add := exec.Command("ssh-add", "-q", testKey)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)

	r := newTestRunner(t, tcshUser, func(c *Config) {
		c.IdentityFile = ""
		c.UseAgent = true
	})
	if out := run(t, r, "printf", "%s", "via agent").Stdout; string(out) != "via agent" {
		t.Errorf("printed %q", out)
	}
}

func TestClose(t *testing.T) {
	needSSHD(t)
	t.Parallel()
	r := newTestRunner(t, bashUser, nil)
	run(t, r, "true")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Run(context.Background(), runner.Command{Argv: []string{"true"}})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	if r.Healthy() || r.OpenConnections() != 0 {
		t.Error("closed runner reports a connection")
	}
}
