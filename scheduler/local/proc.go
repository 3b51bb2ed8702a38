package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procInfo is what /proc tells about a process: its state letter and its start time in
// clock ticks since boot. The start time tells a job's process from a later process that
// reused its pid.
type procInfo struct {
	State      byte
	StartTicks uint64
	PGID       int
}

// readProc reads /proc/PID/stat. A missing process returns os.ErrNotExist.
func readProc(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return procInfo{}, os.ErrNotExist
		}
		return procInfo{}, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat parses a /proc/PID/stat line. The command name is in parentheses and may
// itself hold spaces and parentheses, so the fields are counted from the last ')'.
func parseStat(b []byte) (procInfo, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 || end+2 >= len(b) {
		return procInfo{}, fmt.Errorf("parse /proc stat: no command field")
	}
	fields := strings.Fields(string(b[end+2:]))
	// After the command: state(3) ppid(4) pgrp(5) ... starttime(22); index = field - 3.
	if len(fields) < 20 {
		return procInfo{}, fmt.Errorf("parse /proc stat: %d fields", len(fields))
	}
	pgid, err := strconv.Atoi(fields[2])
	if err != nil {
		return procInfo{}, fmt.Errorf("parse /proc stat pgrp: %w", err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procInfo{}, fmt.Errorf("parse /proc stat starttime: %w", err)
	}
	return procInfo{State: fields[0][0], StartTicks: start, PGID: pgid}, nil
}

// alive reports whether pid is the process that started at startTicks and has not died.
// A zombie counts as dead: PID 1 on some machines reaps orphans a second or two late, and
// kill(pid, 0) succeeds on a zombie.
func alive(pid int, startTicks uint64) bool {
	if pid <= 0 {
		return false
	}
	pi, err := readProc(pid)
	if err != nil {
		return false
	}
	return pi.StartTicks == startTicks && pi.State != 'Z' && pi.State != 'X'
}
