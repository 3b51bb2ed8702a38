package sshrunner

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"qmd/scheduler/runner"
)

// pollArgv is a status query as the poller sends it: cheap for the server, so the
// figures show the cost of reaching it.
var pollArgv = []string{"squeue", "--noheader", "--states=all", "--format=%i|%T|%r"}

// BenchmarkPoll100OverConnection sends 100 poll commands over one reused connection, as
// qmd does. Compare ns/op with BenchmarkPoll100FreshSSH, measured in the same run.
func BenchmarkPoll100OverConnection(b *testing.B) {
	needSSHDBench(b)
	r, err := New(Config{Host: testHost, Port: testPort, User: bashUser,
		IdentityFile: testKey, KnownHosts: testKnownHosts, MaxSessions: 4,
		ConnectTimeout: 5 * time.Second, KeepaliveInterval: 15 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if _, err := r.Run(ctx, runner.Command{Argv: pollArgv}); err != nil {
		b.Fatal(err) // connect outside the timing: qmd keeps its connection
	}
	for b.Loop() {
		for range 100 {
			if _, err := r.Run(ctx, runner.Command{Argv: pollArgv}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(r.Dials()), "dials")
}

// BenchmarkPoll100FreshSSH runs the same 100 commands as 100 fresh `ssh host squeue`, the
// way tools that open a connection per command do.
func BenchmarkPoll100FreshSSH(b *testing.B) {
	needSSHDBench(b)
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		b.Skip("no ssh client")
	}
	args := []string{"-q", "-i", testKey, "-p", strconv.Itoa(testPort),
		"-o", "UserKnownHostsFile=" + testKnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", bashUser + "@" + testHost}
	// One quoted command string, as a careful tool would send it to a bash login shell.
	args = append(args, runner.QuoteArgv(pollArgv))
	for b.Loop() {
		for range 100 {
			if out, err := exec.Command(ssh, args...).CombinedOutput(); err != nil {
				b.Fatalf("ssh: %v: %s", err, out)
			}
		}
	}
}

func needSSHDBench(b *testing.B) {
	if _, err := os.Stat(testKnownHosts); err != nil {
		b.Skip("test sshd unavailable; start it with .ci/sshd-up")
	}
}
