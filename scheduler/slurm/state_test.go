package slurm

import (
	"testing"

	"qmd/daemon/job"
)

// wantStates is the mapping written out independently of the table in state.go, so a
// change to either shows up here: every Slurm state name with its qmd state and whether
// an observation of it from sacct is final.
var wantStates = []struct {
	raw      string
	state    job.State
	terminal bool
}{
	{"PENDING", job.Pending, false},
	{"CONFIGURING", job.Pending, false},
	{"REQUEUED", job.Pending, false},
	{"REQUEUE_HOLD", job.Pending, false},
	{"RESV_DEL_HOLD", job.Pending, false},
	{"RUNNING", job.Running, false},
	{"RESIZING", job.Running, false},
	{"SIGNALING", job.Running, false},
	{"COMPLETING", job.Completing, false},
	{"STAGE_OUT", job.Completing, false},
	{"SUSPENDED", job.Suspended, false},
	{"STOPPED", job.Suspended, false},
	{"COMPLETED", job.Completed, true},
	{"FAILED", job.Failed, true},
	{"OUT_OF_MEMORY", job.Failed, true},
	{"NODE_FAIL", job.Failed, true},
	{"BOOT_FAIL", job.Failed, true},
	{"SPECIAL_EXIT", job.Failed, true},
	{"CANCELLED", job.Cancelled, true},
	{"CANCELLED by 0", job.Cancelled, true},
	{"CANCELLED by 12345", job.Cancelled, true},
	{"REVOKED", job.Cancelled, true},
	{"PREEMPTED", job.Cancelled, true},
	{"TIMEOUT", job.Timeout, true},
	{"DEADLINE", job.Timeout, true},
}

func TestMapState(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range wantStates {
		st, terminal, ok := MapState(tc.raw)
		if !ok || st != tc.state || terminal != tc.terminal {
			t.Errorf("MapState(%q) = %q, %v, %v; want %q, %v, true",
				tc.raw, st, terminal, ok, tc.state, tc.terminal)
		}
		seen[tc.raw] = true
	}
	for raw := range states {
		if !seen[raw] {
			t.Errorf("state %q is in the table but not in this test", raw)
		}
	}
}

func TestMapStateUnknown(t *testing.T) {
	for _, raw := range []string{
		"", "running", "Running", "R", "PD", "CA", "RUNNING now", "CANCELLED by",
		"CANCELLED+", "WARP_DRIVE", " RUNNING", "RUNNING ",
	} {
		if st, terminal, ok := MapState(raw); ok || st != "" || terminal {
			t.Errorf("MapState(%q) = %q, %v, %v; want unknown", raw, st, terminal, ok)
		}
	}
}

// TestStatesAreJobStates checks every mapped state is one the job package defines, and that
// "terminal" agrees with the job package's idea of a final state.
func TestStatesAreJobStates(t *testing.T) {
	for raw, st := range states {
		if !st.Valid() || !st.Active() && !st.Terminal() {
			t.Errorf("%s maps to %q, which is not a state a scheduler can report", raw, st)
		}
	}
}

func TestParseExitCode(t *testing.T) {
	for _, tc := range []struct {
		in                  string
		code, sig           int
		hasCode, hasSig, ok bool
	}{
		{"0:0", 0, 0, true, true, true},
		{"3:0", 3, 0, true, true, true},
		{"0:9", 0, 9, true, true, true},
		{"0:15", 0, 15, true, true, true},
		{"0:125", 0, 125, true, true, true},
		{"255:0", 255, 0, true, true, true},
		{"1:15", 1, 15, true, true, true},
		{"2", 2, 0, true, false, true},
		{"", 0, 0, false, false, true},
		{":", 0, 0, false, false, false},
		{"0:", 0, 0, false, false, false},
		{":9", 0, 0, false, false, false},
		{"a:b", 0, 0, false, false, false},
		{"-1:0", 0, 0, false, false, false},
		{"0:0:0", 0, 0, false, false, false},
		{"9999999999:0", 0, 0, false, false, false},
	} {
		code, sig, hasCode, hasSig, ok := parseExitCode(tc.in)
		if code != tc.code || sig != tc.sig || hasCode != tc.hasCode || hasSig != tc.hasSig ||
			ok != tc.ok {
			t.Errorf("parseExitCode(%q) = %d, %d, %v, %v, %v; want %d, %d, %v, %v, %v",
				tc.in, code, sig, hasCode, hasSig, ok,
				tc.code, tc.sig, tc.hasCode, tc.hasSig, tc.ok)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"123": true, "123_4": true, "123_[5-9]": true, "2653343_[3-4%2]": true,
		"123456_[9201-10000%500]": true, "16_[1,3,5-7]": true, "123+1": true,
		"123.batch": true, "16_3.extern": true,
		"": false, "abc": false, "_1": false, "JOBID": false, "1 2": false, "1|2": false,
		"12\n": false, "line2": false,
	} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v, want %v", id, got, want)
		}
	}
}
