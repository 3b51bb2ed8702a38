package local

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// statTail is a /proc/PID/stat line after the command field: state R, ppid 1, pgrp 4321,
// start time 98765 ticks (field 22), and the usual fields after it.
const statTail = " R 1 4321 4321 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 " +
	"1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procInfo
		wantErr bool
	}{
		{name: "plain", line: "1234 (nwchem)" + statTail,
			want: procInfo{State: 'R', StartTicks: 98765, PGID: 4321}},
		{name: "spaces and parentheses in the name", line: "1234 (a b) (c)) S" + statTail[2:],
			want: procInfo{State: 'S', StartTicks: 98765, PGID: 4321}},
		{name: "name looks like fields", line: "1234 () Z 9 9 9 )" + statTail,
			want: procInfo{State: 'R', StartTicks: 98765, PGID: 4321}},
		{name: "empty name", line: "1234 ()" + statTail,
			want: procInfo{State: 'R', StartTicks: 98765, PGID: 4321}},
		{name: "zombie", line: "1234 (sh) Z" + statTail[2:],
			want: procInfo{State: 'Z', StartTicks: 98765, PGID: 4321}},
		{name: "no closing parenthesis", line: "1234 (sh R 1 2 3", wantErr: true},
		{name: "nothing after the name", line: "1234 (sh)", wantErr: true},
		{name: "too few fields", line: "1234 (sh) R 1 4321 4321 0", wantErr: true},
		{name: "bad pgrp", line: "1234 (sh) R 1 x" + statTail[9:], wantErr: true},
		{name: "empty", line: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat() error = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("parseStat() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseStatSelf checks the parser against the kernel's own line for this process.
func TestParseStatSelf(t *testing.T) {
	pi, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if pi.PGID <= 0 || pi.StartTicks == 0 || pi.State == 'Z' {
		t.Errorf("readProc(self) = %+v", pi)
	}
	if _, err := readProc(exitedPID(t)); !os.IsNotExist(err) {
		t.Errorf("readProc(reaped pid) error = %v, want not-exist", err)
	}
}

// TestAlive covers the pid checks Recover and Cancel rely on, including a zombie, which
// kill(pid, 0) would still call alive.
func TestAlive(t *testing.T) {
	self := os.Getpid()
	ticks := mustStartTicks(t, self)
	if !alive(self, ticks) {
		t.Error("alive(self) = false")
	}
	if alive(self, ticks+1) {
		t.Error("alive with another start time = true: a reused pid would be adopted")
	}
	for _, pid := range []int{0, -1, exitedPID(t)} {
		if alive(pid, 0) {
			t.Errorf("alive(%d) = true", pid)
		}
	}

	// An exited child not yet waited for stays a zombie until Wait.
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	zpid := cmd.Process.Pid
	zticks := mustStartTicks(t, zpid)
	deadline := time.Now().Add(waitTimeout)
	for {
		pi, err := readProc(zpid)
		if err != nil {
			t.Fatal(err)
		}
		if pi.State == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d never became a zombie", zpid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if alive(zpid, zticks) {
		t.Error("alive(zombie) = true")
	}
}
