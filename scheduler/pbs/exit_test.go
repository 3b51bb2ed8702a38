package pbs

import (
	"testing"

	"qmd/daemon/job"
)

func intp(n int) *int { return &n }

func eqInt(a, b *int) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// TestEndState walks every kind of exit status, the boundaries included.
func TestEndState(t *testing.T) {
	for _, tc := range []struct {
		status       int
		state        job.State
		code, signal *int
	}{
		{0, job.Completed, intp(0), nil},
		{1, job.Failed, intp(1), nil},
		{128 + 9, job.Failed, intp(137), nil}, // the script's own code, whatever it means
		{255, job.Failed, intp(255), nil},
		{256, job.Failed, nil, nil},
		{257, job.Failed, nil, intp(1)},
		{271, job.Failed, nil, intp(15)},
		{256 + 64, job.Failed, nil, intp(64)},
		{-1, job.Failed, nil, nil},
		{-3, job.Failed, nil, nil},
		{-28, job.Failed, nil, nil},
		{-29, job.Timeout, nil, nil},
		{-30, job.Failed, nil, nil},
		{-1000, job.Failed, nil, nil},
	} {
		st, code, sig, why := EndState(tc.status, ExecCodes)
		if st != tc.state || !eqInt(code, tc.code) || !eqInt(sig, tc.signal) {
			t.Errorf("EndState(%d) = %s, %v, %v; want %s, %v, %v", tc.status, st, code, sig,
				tc.state, tc.code, tc.signal)
		}
		if tc.status != 0 && (tc.status < 0 || tc.status >= 256) && why == "" {
			t.Errorf("EndState(%d) gives no reason", tc.status)
		}
	}
}

// TestExecCodes: every JOB_EXEC_* code of job.h (-1 to -7, -10 to -30) is there, the
// walltime kill is the only timeout, and every entry is negative and named.
func TestExecCodes(t *testing.T) {
	for code := -30; code <= -1; code++ {
		if _, ok := ExecCodes[code]; ok != (code <= -10 || code >= -7) {
			t.Errorf("ExecCodes[%d] present = %v", code, ok)
		}
	}
	for code, c := range ExecCodes {
		if code >= 0 || c.Name == "" || c.Meaning == "" || !c.State.Terminal() {
			t.Errorf("ExecCodes[%d] = %+v", code, c)
		}
		if (c.State == job.Timeout) != (code == -29) {
			t.Errorf("ExecCodes[%d] is %s", code, c.State)
		}
	}
}

// TestEndedWithoutStatus: the job is over for the scheduler but its ending is unknown.
func TestEndedWithoutStatus(t *testing.T) {
	r := Record{ID: "21", RawState: "C", ExitCode: intp(0), Reason: "Job deleted"}
	EndedWithoutStatus(&r)
	if r.Outcome != OutcomeJob || r.State != job.Completing || !r.Terminal ||
		r.ExitCode != nil || r.Signal != nil {
		t.Errorf("EndedWithoutStatus: %+v", r)
	}
	if want := "job_state C without an exit status: read the job's exit-status file; " +
		"Job deleted"; r.Reason != want {
		t.Errorf("reason %q, want %q", r.Reason, want)
	}
}

// TestMapLiveState: every letter of a live PBS Pro job, and the letters it must refuse.
func TestMapLiveState(t *testing.T) {
	want := map[string]job.State{
		"Q": job.Pending, "H": job.Pending, "W": job.Pending, "T": job.Pending,
		"R": job.Running, "B": job.Running, "E": job.Completing,
		"S": job.Suspended, "U": job.Suspended,
	}
	for raw, st := range want {
		if got, ok := MapLiveState(raw); !ok || got != st {
			t.Errorf("MapLiveState(%q) = %s, %v; want %s", raw, got, ok, st)
		}
	}
	for _, raw := range []string{"F", "X", "M", "C", "", "RR", "q"} {
		if _, ok := MapLiveState(raw); ok {
			t.Errorf("MapLiveState(%q) is known", raw)
		}
	}
}
