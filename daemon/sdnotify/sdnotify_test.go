package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSendWithoutSocketDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Send(Ready); sent || err != nil {
		t.Errorf("Send without NOTIFY_SOCKET = %v, %v", sent, err)
	}
}

func TestSendReachesTheSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	for _, msg := range []string{Ready, Watchdog, Stopping} {
		if sent, err := Send(msg); !sent || err != nil {
			t.Fatalf("Send(%s) = %v, %v", msg, sent, err)
		}
		buf := make([]byte, 64)
		ln.SetReadDeadline(time.Now().Add(time.Second))
		n, err := ln.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Errorf("received %q, %v; want %q", buf[:n], err, msg)
		}
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"90000000", "", 45 * time.Second, false},
		{"90000000", strconv.Itoa(os.Getpid()), 45 * time.Second, false},
		{"90000000", "1", 0, false},
		{"soon", "", 0, true},
	}
	for _, tc := range tests {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("usec %q pid %q: %v, %v", tc.usec, tc.pid, got, err)
		}
	}
}
