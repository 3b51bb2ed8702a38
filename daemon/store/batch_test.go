package store

import (
	"context"
	"errors"
	"testing"

	"qmd/daemon/job"
)

// TestApplyBatch: legal moves and field updates land together with one event per move;
// an illegal move, a lost race and a missing job each get their own error and stop
// nothing else.
func TestApplyBatch(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	run := mustCreate(t, s, newJob(1, job.Running))
	pend := mustCreate(t, s, newJob(2, job.Pending))
	done := mustCreate(t, s, newJob(3, job.Completed))
	raced := mustCreate(t, s, newJob(4, job.Running))
	reason := "Priority"
	code := 0

	changes := []Change{
		{ID: run.ID, From: job.Running, To: job.Completing, Reason: "ended",
			Update: Update{ExitCode: &code}},
		{ID: pend.ID, From: job.Pending, To: job.Pending, Update: Update{SchedReason: &reason}},
		{ID: done.ID, From: job.Completed, To: job.Running, Reason: "illegal"},
		{ID: raced.ID, From: job.Pending, To: job.Running, Reason: "stale view"},
		{ID: "ffffffffffff", From: job.Running, To: job.Completing, Reason: "gone"},
	}
	errs, err := s.Apply(ctx, changes)
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, nil, job.ErrIllegalTransition, ErrConflict, ErrJobNotFound}
	for i, w := range want {
		if w == nil && errs[i] != nil || w != nil && !errors.Is(errs[i], w) {
			t.Errorf("change %d: err %v, want %v", i, errs[i], w)
		}
	}

	if j, _ := s.Get(ctx, run.ID); j.State != job.Completing || j.ExitCode == nil || *j.ExitCode != 0 {
		t.Errorf("moved job: %+v", j)
	}
	if h, _ := s.History(ctx, run.ID); len(h) != 2 || h[1].To != job.Completing {
		t.Errorf("moved job history: %+v", h)
	}
	if j, _ := s.Get(ctx, pend.ID); j.State != job.Pending || j.SchedReason != "Priority" {
		t.Errorf("updated job: %+v", j)
	}
	if h, _ := s.History(ctx, pend.ID); len(h) != 1 {
		t.Errorf("a fields-only update wrote an event: %+v", h)
	}
	for _, id := range []string{done.ID, raced.ID} {
		if h, _ := s.History(ctx, id); len(h) != 1 {
			t.Errorf("refused change of %s wrote an event: %+v", id, h)
		}
	}
	if j, _ := s.Get(ctx, raced.ID); j.State != job.Running {
		t.Errorf("raced job is %s", j.State)
	}
}

func TestApplyEmptyAndCancelled(t *testing.T) {
	s, _ := openTest(t)
	if errs, err := s.Apply(context.Background(), nil); err != nil || len(errs) != 0 {
		t.Errorf("empty batch: %v %v", errs, err)
	}
	j := mustCreate(t, s, newJob(1, job.Running))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Apply(ctx, []Change{{ID: j.ID, From: job.Running, To: job.Completing}}); err == nil {
		t.Error("a cancelled context wrote a batch")
	}
	if got, _ := s.Get(context.Background(), j.ID); got.State != job.Running {
		t.Errorf("state %s after a cancelled batch", got.State)
	}
}
