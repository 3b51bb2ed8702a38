package manager

import (
	"context"
	"errors"
	"strings"
	"testing"

	"qmd/daemon/job"
	"qmd/daemon/store"
	"qmd/scheduler"
	"qmd/scheduler/fake"
)

func TestCancel(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		cycles  int // poll cycles before the cancel
		script  fake.Script
		wantErr error // nil: the cancel succeeds
		// schedCancel is how many Cancel calls the scheduler must see.
		schedCancel int
	}{
		{name: "queued", cycles: 0, schedCancel: 0},
		{name: "pending", cycles: 1, script: fake.Script{fake.Pending(5)}, schedCancel: 1},
		{name: "running", cycles: 2, script: fake.Script{fake.Pending(1), fake.Running(5)},
			schedCancel: 1},
		{name: "completed", cycles: 2, wantErr: ErrFinished,
			script: fake.Script{fake.Exit(0, waterOut, waterErr)}},
		{name: "failed", cycles: 2, wantErr: ErrFinished,
			script: fake.Script{fake.EndedBy(job.Failed, "NODE_FAIL")}},
		{name: "timeout", cycles: 2, wantErr: ErrFinished,
			script: fake.Script{fake.EndedBy(job.Timeout, "TIMEOUT")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			f := h.fake(clusterA)
			f.Queue(tc.script)
			id := h.submit(water("gas"))[0]
			for range tc.cycles {
				h.cycle(clusterA)
			}
			before, histBefore := h.job(id)
			got, err := h.m.Cancel(ctx, id, testUID)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Cancel of a %s job: %v, want %v", before.State, err, tc.wantErr)
				}
				if _, hist := h.job(id); len(hist) != len(histBefore) {
					t.Errorf("a refused cancel changed the job: %v", path(hist))
				}
			} else {
				if err != nil {
					t.Fatalf("Cancel: %v", err)
				}
				if got.State != job.Cancelled || got.EndedAt == nil {
					t.Errorf("Cancel returned %s, ended %v", got.State, got.EndedAt)
				}
				_, hist := h.job(id)
				if e := hist[len(hist)-1]; e.From != before.State ||
					!strings.Contains(e.Reason, "uid 1000") {
					t.Errorf("last event %+v", e)
				}
			}
			if n := f.CallsFor("Cancel", id); n != tc.schedCancel {
				t.Errorf("scheduler Cancel called %d times, want %d", n, tc.schedCancel)
			}

			// Nothing brings a cancelled job back, nor hands a cancelled queued job over.
			for range 3 {
				h.cycle(clusterA)
			}
			if tc.wantErr == nil {
				if s := h.state(id); s != job.Cancelled {
					t.Errorf("after more cycles: %s", s)
				}
				if f.Known(id) != (tc.cycles > 0) {
					t.Errorf("scheduler knows the job: %v", f.Known(id))
				}
			}
		})
	}
}

func TestCancelCompletingAndUnknown(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.fake(clusterA).Queue(fake.Script{fake.Running(5)})
	id := h.submit(water("gas"))[0]
	h.cycle(clusterA)
	if _, err := h.st.Transition(ctx, id, job.Running, job.Completing, "test",
		store.Update{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Cancel(ctx, id, testUID); !errors.Is(err, ErrFinished) {
		t.Errorf("cancel of a completing job: %v, want ErrFinished", err)
	}
	if _, err := h.m.Cancel(ctx, "0123456789ab", testUID); !errors.Is(err,
		store.ErrJobNotFound) {
		t.Errorf("cancel of an unknown job: %v, want ErrJobNotFound", err)
	}
}

// A cancel the scheduler could not accept must not be recorded: the job would go on
// running on the cluster while qmd had stopped watching it.
func TestCancelSchedulerUnreachable(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	down := errors.New("ssh: dial hpc-login: i/o timeout")
	h.fakes[clusterA] = fake.New(fake.Options{Default: fake.Script{fake.Running(10)},
		Cluster: fake.Cluster{CancelErr: map[int]error{1: down}}})
	h.m.clusters[clusterA].sched = h.fakes[clusterA]
	id := h.submit(water("gas"))[0]
	h.cycle(clusterA)

	if _, err := h.m.Cancel(ctx, id, testUID); !errors.Is(err, down) {
		t.Fatalf("Cancel with the scheduler down: %v, want its error", err)
	}
	if s := h.state(id); s != job.Running {
		t.Fatalf("state %s after a failed cancel, want running", s)
	}
	if _, err := h.m.Cancel(ctx, id, testUID); err != nil {
		t.Fatalf("Cancel once the scheduler answers: %v", err)
	}
	h.cycle(clusterA)
	if s := h.state(id); s != job.Cancelled {
		t.Errorf("state %s", s)
	}
}

// A job the scheduler no longer knows can be cancelled: there is nothing left to stop.
func TestCancelJobSchedulerForgot(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	f := h.fake(clusterA)
	f.CancelFunc = func(_ context.Context, hd scheduler.Handle) error {
		return scheduler.ErrNotFound
	}
	h.fake(clusterA).Queue(fake.Script{fake.Running(1), fake.Vanish()})
	id := h.submit(water("gas"))[0]
	h.cycle(clusterA)
	if _, err := h.m.Cancel(ctx, id, testUID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if s := h.state(id); s != job.Cancelled {
		t.Errorf("state %s", s)
	}
}

// A cancel that lands while the scheduler is taking the job must not leave the job
// running on the cluster with qmd calling it cancelled.
func TestCancelRacingSubmission(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	f := h.fake(clusterA)
	var cancelled []scheduler.Handle
	f.CancelFunc = func(_ context.Context, hd scheduler.Handle) error {
		cancelled = append(cancelled, hd)
		if hd.SchedulerID == "" {
			return scheduler.ErrNotFound // not handed over yet
		}
		return nil
	}
	var cancelErr error
	f.SubmitFunc = func(context.Context, scheduler.SubmitRequest) (scheduler.Submission, error) {
		_, cancelErr = h.m.Cancel(ctx, h.onlyJob(), testUID)
		return scheduler.Submission{SchedulerID: "977", State: job.Pending}, nil
	}
	id := h.submit(water("gas"))[0]
	h.cycle(clusterA)
	if cancelErr != nil {
		t.Fatalf("Cancel during the submission: %v", cancelErr)
	}
	_, hist := h.job(id)
	wantPath(t, hist, job.Queued, job.Submitting, job.Cancelled)
	if len(cancelled) != 2 || cancelled[1].SchedulerID != "977" {
		t.Fatalf("scheduler cancels %+v; want a second one naming the new id 977", cancelled)
	}
}

func (h *harness) onlyJob() string {
	h.t.Helper()
	jobs, err := h.st.List(context.Background(), store.Filter{})
	if err != nil || len(jobs) != 1 {
		h.t.Fatalf("jobs %v, %v", jobs, err)
	}
	return jobs[0].ID
}
