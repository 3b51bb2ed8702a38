package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"qmd/daemon/job"
)

// base is the fake clock's starting point; every test time is derived from it.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock advances by one millisecond per reading, so every stamp the store takes is
// distinct and predictable, and it can be stepped by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// Set makes the next reading t + 1ms.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// openTest opens a fresh store in a temporary directory with a fake clock.
func openTest(tb testing.TB) (*Store, *fakeClock) {
	tb.Helper()
	s, err := Open(context.Background(), filepath.Join(tb.TempDir(), "qmd.db"))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	c := &fakeClock{t: base}
	s.Now = c.Now
	return s, c
}

// testID returns a well-formed job id for n.
func testID(n int) string { return fmt.Sprintf("%012x", n) }

// newJob returns a minimal job with id testID(n) in state st.
func newJob(n int, st job.State) job.Job {
	return job.Job{
		ID: testID(n), Name: fmt.Sprintf("job %d", n), OwnerUID: 1000, Cluster: "local",
		State: st, Multiplicity: 1,
	}
}

// mustCreate stores j and fails the test on error.
func mustCreate(tb testing.TB, s *Store, j job.Job) job.Job {
	tb.Helper()
	if err := s.Create(context.Background(), &j, "test"); err != nil {
		tb.Fatalf("Create %s: %v", j.ID, err)
	}
	return j
}

// seed inserts many jobs in one transaction through the same insert path as Create;
// one commit per job would make a 10,000-job fixture take one fsync per job.
func seed(tb testing.TB, s *Store, jobs []job.Job) {
	tb.Helper()
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	for i := range jobs {
		if err := insertJob(ctx, tx, &jobs[i], "seed"); err != nil {
			tb.Fatalf("seed %s: %v", jobs[i].ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// ids returns the ids of jobs, in order.
func ids(jobs []job.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func ptr[T any](v T) *T { return &v }
