// Package sdnotify speaks systemd's notify protocol: READY=1 once qmd serves, STOPPING=1
// as it stops, WATCHDOG=1 while its main loops keep turning. Outside systemd
// (no NOTIFY_SOCKET) every call does nothing, so the binary also runs by hand.
package sdnotify

import (
	"errors"
	"net"
	"os"
	"strconv"
	"time"
)

// Messages.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
	Watchdog  = "WATCHDOG=1"
)

// Send writes one message to $NOTIFY_SOCKET. It returns (false, nil) when there is no
// socket to talk to.
func Send(msg string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		return false, err
	}
	return true, nil
}

// WatchdogInterval is how often to ping: half of $WATCHDOG_USEC, as systemd advises, or
// 0 when no watchdog is set (or it is meant for another process: $WATCHDOG_PID).
func WatchdogInterval() (time.Duration, error) {
	usec := os.Getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("WATCHDOG_USEC is not a positive number: " + usec)
	}
	return time.Duration(n) * time.Microsecond / 2, nil
}
