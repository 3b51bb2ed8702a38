package job

import (
	"errors"
	"testing"
)

// allowed is the transition table written out pair by pair, so that a change to the table
// in job.go must be made here too, on purpose.
var allowed = map[[2]State]bool{
	{Queued, Submitting}: true, {Queued, Cancelled}: true, {Queued, Failed}: true,

	{Submitting, Pending}: true, {Submitting, Running}: true, {Submitting, Completing}: true,
	{Submitting, Failed}: true, {Submitting, Cancelled}: true, {Submitting, Lost}: true,

	{Pending, Running}: true, {Pending, Suspended}: true, {Pending, Completing}: true,
	{Pending, Failed}: true, {Pending, Cancelled}: true, {Pending, Timeout}: true,
	{Pending, Lost}: true,

	{Running, Pending}: true, {Running, Suspended}: true, {Running, Completing}: true,
	{Running, Failed}: true, {Running, Cancelled}: true, {Running, Timeout}: true,
	{Running, Lost}: true,

	{Suspended, Running}: true, {Suspended, Pending}: true, {Suspended, Completing}: true,
	{Suspended, Failed}: true, {Suspended, Cancelled}: true, {Suspended, Timeout}: true,
	{Suspended, Lost}: true,

	{Completing, Completed}: true, {Completing, Failed}: true, {Completing, Cancelled}: true,
	{Completing, Timeout}: true,
}

func TestTransitionTable(t *testing.T) {
	for _, from := range States {
		for _, to := range States {
			want := allowed[[2]State{from, to}]
			if got := CanMove(from, to); got != want {
				t.Errorf("CanMove(%s, %s) = %v, want %v", from, to, got, want)
			}
			err := CheckMove(from, to)
			if want && err != nil {
				t.Errorf("CheckMove(%s, %s) = %v", from, to, err)
			}
			if !want && !errors.Is(err, ErrIllegalTransition) {
				t.Errorf("CheckMove(%s, %s) = %v, want ErrIllegalTransition", from, to, err)
			}
		}
	}
}

func TestTerminalStatesHaveNoExit(t *testing.T) {
	terminal := map[State]bool{Completed: true, Failed: true, Cancelled: true, Timeout: true, Lost: true}
	for _, s := range States {
		if s.Terminal() != terminal[s] {
			t.Errorf("%s.Terminal() = %v", s, s.Terminal())
		}
		if s.Terminal() && len(next[s]) != 0 {
			t.Errorf("terminal %s has moves %v", s, next[s])
		}
		if s.Terminal() && s.Active() {
			t.Errorf("%s both terminal and active", s)
		}
	}
}

func TestRequeueAllowed(t *testing.T) {
	// Slurm requeues jobs: running → pending must be legal.
	if !CanMove(Running, Pending) {
		t.Fatal("running → pending must be allowed")
	}
}

func TestParseState(t *testing.T) {
	for _, s := range States {
		got, err := ParseState(string(s))
		if err != nil || got != s {
			t.Errorf("ParseState(%q) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "RUNNING", "done", "unknown"} {
		if _, err := ParseState(bad); !errors.Is(err, ErrUnknownState) {
			t.Errorf("ParseState(%q) err %v", bad, err)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) {
			t.Fatalf("id %q is not 12 lowercase hex characters", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "ABCDEF012345", "0123456789a", "0123456789abc", "../../etc/pa"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
