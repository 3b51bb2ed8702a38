package daemon_test

// Integration tests of the SSH transport: qmd reaches the test Slurm through the test
// sshd on 127.0.0.1:2222 (see .ci/sshd-up), stages job directories over SFTP and copies
// the outputs back. They skip without that sshd unless CI is set.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	sshKey        = "/etc/qmd-testenv/ssh/id_ed25519"
	sshKnownHosts = "/etc/qmd-testenv/ssh/known_hosts"
	sshPidFile    = "/run/qmd-testenv/sshd/sshd.pid"
)

func needSSH(t *testing.T) {
	t.Helper()
	needSlurm(t)
	_, err := os.Stat(sshKnownHosts)
	if err == nil {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", "127.0.0.1:2222", 2*time.Second); err == nil {
			c.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the test sshd is not there but CI is set (%v): run make testenv", err)
		}
		t.Skipf("the test sshd is not there (%v); run make testenv", err)
	}
}

// sshEnv is an env whose default cluster is the test Slurm reached over SSH as the bash
// test user, with job directories staged under a fresh remote root.
func sshEnv(t *testing.T, knownHosts string, nwchem []string) (*env, string) {
	return sshEnvAs(t, "qmdsshbash", knownHosts, nwchem)
}

// sshEnvAs is sshEnv logging in as user (qmdsshbash or the tcsh user qmdsshtcsh).
func sshEnvAs(t *testing.T, user, knownHosts string, nwchem []string) (*env, string) {
	t.Helper()
	needSSH(t)
	var b [4]byte
	rand.Read(b[:])
	remote := "/tmp/qmd-remote-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { os.RemoveAll(remote) })
	conf := fmt.Sprintf(`default_cluster = "far"

[clusters.far]
scheduler = "slurm"
transport = "ssh"
host = "127.0.0.1"
port = 2222
user = %q
identity_file = %q
known_hosts = %q
remote_root = %q
partition = "debug"
time_limit = "30m"
poll_interval = "1s"
poll_interval_max = "4s"
query_timeout = "3s"
submit_timeout = "20s"
keepalive_interval = "2s"
connect_timeout = "3s"
`, user, sshKey, knownHosts, remote)
	conf += nwchemKey(nwchem)
	e := newEnv(t, conf)
	cancelLeftovers(t, e)
	return e, remote
}

func TestSSHWaterThroughSlurm(t *testing.T) {
	for _, user := range []string{"qmdsshbash", "qmdsshtcsh"} {
		t.Run(user, func(t *testing.T) { sshWater(t, user) })
	}
}

func sshWater(t *testing.T, user string) {
	e, remote := sshEnvAs(t, user, sshKnownHosts, nil)
	if out, err := exec.Command(e.qmd, "check", "--config", e.cfg).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "host key verified") {
		t.Fatalf("qmd check: %v\n%s", err, out)
	}
	e.start()
	id := e.submit(writeFile(t, e.dir, "water.xyz", waterXYZ), "--solvent", "gas")
	j := e.waitState(id, 5*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
	if j.State != "completed" {
		t.Fatalf("water over SSH ended %s: %v\n%s", j.State, j.Error, e.logs())
	}
	// Staged there, fetched back here, complete in both places.
	local := filepath.Join(e.dir, "state", "jobs", id, "output", "nwchem.out")
	far := filepath.Join(remote, id, "output", "nwchem.out")
	ls, err1 := os.Stat(local)
	rs, err2 := os.Stat(far)
	if err1 != nil || err2 != nil || ls.Size() != rs.Size() || ls.Size() == 0 {
		t.Fatalf("outputs: local %v %v, remote %v %v", ls, err1, rs, err2)
	}
	if st, _ := os.Stat(filepath.Join(remote, id)); st.Sys().(*syscall.Stat_t).Uid == 0 {
		t.Error("the remote job directory belongs to root, not to the SSH user")
	}
	if got := waitSacct(t, "qmd-"+id, oneJobIn("COMPLETED")); !oneJobIn("COMPLETED")(got) {
		t.Errorf("Slurm jobs named qmd-%s: %v", id, got)
	}
	// Many polls later, qmd holds exactly one TCP connection to the sshd.
	if n := sshConnections(t, e.proc.Process.Pid); n != 1 {
		t.Errorf("qmd holds %d connections to sshd, want 1", n)
	}
	e.stop()
}

// sshConnections counts pid's established TCP connections to 127.0.0.1:2222, with ss.
func sshConnections(t *testing.T, pid int) int {
	t.Helper()
	out, err := exec.Command("ss", "-tnpH", "state", "established", "dst",
		"127.0.0.1:2222").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	return strings.Count(string(out), "pid="+strconv.Itoa(pid)+",")
}

// TestSSHHostKeyChanged: a known_hosts whose key for the login node is not the server's
// refuses the connection with a clear error, and nothing is submitted.
func TestSSHHostKeyChanged(t *testing.T) {
	needSSH(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
		keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(keyFile + ".pub")
	f := strings.Fields(string(pub))
	wrong := filepath.Join(dir, "known_hosts")
	os.WriteFile(wrong, []byte("[127.0.0.1]:2222 "+f[0]+" "+f[1]+"\n"), 0o644)

	e, _ := sshEnv(t, wrong, nil)
	out, err := exec.Command(e.qmd, "check", "--config", e.cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ssh-keyscan") {
		t.Errorf("qmd check with a changed host key: %v\n%s", err, out)
	}
	e.start()
	id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
	time.Sleep(5 * time.Second)
	j := e.show(id)
	if j.State != "submitting" && j.State != "queued" {
		t.Errorf("job is %s with a refused host key", j.State)
	}
	if !strings.Contains(e.logs(), "ssh-keyscan") {
		t.Errorf("the log does not say how to add the key:\n%s", e.logs())
	}
	if got := sacctJobs(t, "qmd-"+id); len(got) != 0 {
		t.Errorf("a job was submitted through a refused connection: %v", got)
	}
	e.stop()
}

// TestSSHOutage: the sshd (listener and the process serving qmd's connection) is gone for
// 30 s while a job runs: no job changes state meanwhile, qmd reconnects, the job finishes.
func TestSSHOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over a minute")
	}
	e, _ := sshEnv(t, sshKnownHosts, []string{"/bin/sh", "-c", `sleep 40; exec nwchem "$0"`})
	e.start()
	id := e.submit(writeFile(t, e.dir, "w.xyz", waterXYZ), "--solvent", "gas")
	e.waitState(id, time.Minute, "running")
	before := e.show(id)

	ci := ciScript(t)
	b, err := os.ReadFile(sshPidFile)
	if err != nil {
		t.Fatal(err)
	}
	listener, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	children := childrenOf(listener)
	syscall.Kill(listener, syscall.SIGTERM)
	for _, pid := range children {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			exec.Command(ci("sshd-up")).Run()
		}
	})
	time.Sleep(30 * time.Second)
	during := e.show(id)
	if during.State != before.State || len(during.History) != len(before.History) {
		t.Errorf("job moved while the login node was unreachable: %s → %s", before.State,
			during.State)
	}
	if !strings.Contains(e.logs(), "scheduler not answering") {
		t.Errorf("the outage was not noticed:\n%s", e.logs())
	}
	if out, err := exec.Command(ci("sshd-up")).CombinedOutput(); err != nil {
		t.Fatalf("restart sshd: %v\n%s", err, out)
	}
	restarted = true
	j := e.waitState(id, 3*time.Minute, "completed", "failed", "lost", "cancelled", "timeout")
	if j.State != "completed" {
		t.Fatalf("after the outage the job ended %s: %v\n%s", j.State, j.Error, e.logs())
	}
	e.stop()
}

// childrenOf lists the processes whose parent is pid (here: the sshd processes serving
// established connections).
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
