package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"qmd/daemon/job"
)

// BenchmarkTransition measures committed state changes (row CAS + event, one fsync'd
// transaction each) by bouncing one job between pending and running.
func BenchmarkTransition(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	j := mustCreate(b, s, newJob(1, job.Pending))
	from, to := job.Pending, job.Running
	n := 0
	for b.Loop() {
		if _, err := s.Transition(ctx, j.ID, from, to, "bench", Update{}); err != nil {
			b.Fatal(err)
		}
		from, to = to, from
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "transitions/s")
}

// tenK is the number of jobs BenchmarkList10k lists.
const tenK = 10_000

// BenchmarkList10k lists every one of 10,000 fully populated jobs.
func BenchmarkList10k(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	seed(b, s, manyJobs(tenK))
	for b.Loop() {
		got, err := s.List(ctx, Filter{})
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != tenK {
			b.Fatalf("listed %d jobs, want %d", len(got), tenK)
		}
	}
}

// BenchmarkBaselineSelect1 is one trivial round trip through the read pool, the floor
// against which List10k's cost is compared in the same run.
func BenchmarkBaselineSelect1(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	for b.Loop() {
		var one int
		if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			b.Fatal(one, err)
		}
	}
}

// manyJobs returns n jobs with every field set, spread over owners, clusters and states,
// so List10k scans rows of realistic width.
func manyJobs(n int) []job.Job {
	jobs := make([]job.Job, n)
	for i := range jobs {
		st := job.States[i%len(job.States)]
		at := base.Add(time.Duration(i) * time.Second)
		jobs[i] = job.Job{
			ID:           testID(i + 1),
			Name:         fmt.Sprintf("conformer %d", i),
			OwnerUID:     1000 + i%7,
			Cluster:      []string{"local", "hpc"}[i%2],
			State:        st,
			SchedulerID:  fmt.Sprint(50000 + i),
			SchedMeta:    `{"partition":"short","account":"chem"}`,
			Preset:       "opt-freq",
			Solvent:      "water",
			Charge:       i%3 - 1,
			Multiplicity: 1 + i%2,
			Level:        "B3LYP/6-31G*",
			Software:     "NWChem 7.0.2",
			TemplateHash: strings.Repeat("9f86d081", 8),
			InputFormat:  "xyz",
			ExitCode:     ptr(i % 2),
			CreatedAt:    at,
			UpdatedAt:    at.Add(time.Minute),
			SubmittedAt:  ptr(at.Add(time.Second)),
			StartedAt:    ptr(at.Add(2 * time.Second)),
		}
	}
	return jobs
}

// TestList10k keeps the listing path honest outside benchmarks: one query, every row,
// in order. The timing is logged, not asserted, as CI machines vary too much.
func TestList10k(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 10,000 jobs")
	}
	ctx := context.Background()
	s, _ := openTest(t)
	seed(t, s, manyJobs(tenK))
	start := time.Now()
	got, err := s.List(ctx, Filter{})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != tenK || got[0].ID != testID(tenK) || got[tenK-1].ID != testID(1) {
		t.Fatalf("listed %d jobs, first %s, last %s",
			len(got), got[0].ID, got[len(got)-1].ID)
	}
	t.Logf("List of %d jobs took %v", tenK, took)
}
