package sshrunner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"qmd/scheduler/runner"
)

// The test sshd that .ci/sshd-up starts, and what it leaves for the tests.
const (
	testHost       = "127.0.0.1"
	testPort       = 2222
	testKey        = "/etc/qmd-testenv/ssh/id_ed25519"
	testKnownHosts = "/etc/qmd-testenv/ssh/known_hosts"
	testHostKeyPub = "/etc/qmd-testenv/sshd/ssh_host_ed25519_key.pub"
	bashUser       = "qmdsshbash"
	tcshUser       = "qmdsshtcsh"
)

// testUsers differ only in login shell: every command must behave the same for both.
var testUsers = []string{bashUser, tcshUser}

// needSSHD skips the test when the test sshd is not there, or fails it under CI, where a
// skipped integration test would let a broken SSH runner land.
func needSSHD(t *testing.T) {
	t.Helper()
	_, err := os.Stat(testKnownHosts)
	if err == nil {
		var c net.Conn
		c, err = net.DialTimeout("tcp", net.JoinHostPort(testHost, strconv.Itoa(testPort)),
			2*time.Second)
		if err == nil {
			c.Close()
		}
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("test sshd unavailable (%v): run make testenv (.ci/sshd-up)", err)
	}
	t.Skipf("test sshd unavailable (%v); start it with .ci/sshd-up", err)
}

// syncBuffer is a log sink that outlives the test: connection goroutines may log after
// it ends, which t.Log would not allow.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger returns a debug logger whose output is shown only if the test fails.
func testLogger(t *testing.T) *slog.Logger {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("runner log:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestRunner returns a runner for user on the test sshd, closed when the test ends.
func newTestRunner(t *testing.T, user string, edit func(*Config)) *Runner {
	t.Helper()
	cfg := Config{
		Host: testHost, Port: testPort, User: user,
		IdentityFile: testKey, KnownHosts: testKnownHosts,
		ConnectTimeout: 5 * time.Second, CommandTimeout: 20 * time.Second,
		KeepaliveInterval: 5 * time.Second,
		Logger:            testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// run runs argv and fails the test on any error.
func run(t *testing.T, r *Runner, argv ...string) runner.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := r.Run(ctx, runner.Command{Argv: argv})
	if err != nil {
		t.Fatalf("run %q: %v (stderr %q)", argv, err, res.Stderr)
	}
	return res
}

// remoteTempDir makes a directory owned by the remote user and removes it at the end.
func remoteTempDir(t *testing.T, r *Runner) string {
	t.Helper()
	dir := strings.TrimSpace(string(run(t, r, "mktemp", "-d", "/tmp/qmd-sshtest.XXXXXX").Stdout))
	if !strings.HasPrefix(dir, "/tmp/qmd-sshtest.") {
		t.Fatalf("mktemp printed %q", dir)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := r.Run(ctx, runner.Command{Argv: []string{"rm", "-rf", dir}}); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// hostFingerprint is the SHA256 fingerprint of the test sshd's host key.
func hostFingerprint(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(testHostKeyPub)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(pub)
}

// newHostKey writes a fresh Ed25519 host key to dir and returns its public half.
func newHostKey(t *testing.T, dir string) (path string, pub ssh.PublicKey) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "qmd test host")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "host_ed25519_key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err = ssh.NewPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return path, pub
}

// writeKnownHosts writes a known_hosts file holding key for [127.0.0.1]:port.
func writeKnownHosts(t *testing.T, dir string, port int, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(dir, "known_hosts")
	line := ""
	if key != nil {
		addr := net.JoinHostPort(testHost, strconv.Itoa(port))
		line = knownhosts.Line([]string{addr}, key) + "\n"
	}
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// privateSSHD is a second sshd of this test's own (own port, key, config and pid), run
// in the foreground (-D) as the test's child so it can be ended and restarted by pid.
type privateSSHD struct {
	t      *testing.T
	dir    string
	port   int
	config string
	cmd    *exec.Cmd
	pubKey ssh.PublicKey
}

func startPrivateSSHD(t *testing.T) *privateSSHD {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Fatalf("no sshd (%v): run make testenv (.ci/sshd-up)", err)
	}
	dir := t.TempDir()
	keyPath, pub := newHostKey(t, dir)

	l, err := net.Listen("tcp", testHost+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	s := &privateSSHD{t: t, dir: dir, port: port, pubKey: pub,
		config: filepath.Join(dir, "sshd_config")}
	conf := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
PidFile %s
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers %s %s
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
`, port, testHost, keyPath, filepath.Join(dir, "sshd.pid"), bashUser, tcshUser)
	if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs the listener and waits until it accepts connections.
func (s *privateSSHD) start() {
	t := s.t
	t.Helper()
	// The absolute path matters: sshd re-executes itself for each connection.
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-f", s.config,
		"-E", filepath.Join(s.dir, "sshd.log"))
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(testHost, strconv.Itoa(s.port))
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
			t.Fatalf("private sshd on %s not answering: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopListener ends the listening sshd by its pid; connections it accepted live on,
// as with any OpenSSH sshd.
func (s *privateSSHD) stopListener() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// stop ends the listener and every process serving one of its connections.
func (s *privateSSHD) stop() {
	var pids []int
	if s.cmd != nil {
		pids = descendants(s.cmd.Process.Pid)
	}
	s.stopListener()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// descendants returns the pids of every process below pid, read from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state, ppid, ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[p] = pp
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}
