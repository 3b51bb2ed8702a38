package store

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"qmd/daemon/job"
)

func TestCreateGetRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	at := func(min int) *time.Time { return ptr(base.Add(time.Duration(min) * time.Minute)) }
	full := job.Job{
		ID:           testID(1),
		Name:         "benzene opt",
		OwnerUID:     1234,
		Cluster:      "hpc",
		State:        job.Running,
		SchedulerID:  "98765",
		SchedMeta:    `{"partition":"short"}`,
		Preset:       "opt",
		Solvent:      "water",
		Charge:       -1,
		Multiplicity: 2,
		Level:        "B3LYP/6-31G*",
		Software:     "NWChem 7.0.2",
		TemplateHash: strings.Repeat("ab", 32),
		InputFormat:  "xyz",
		Error:        "summary\n\nexcerpt",
		ExitCode:     ptr(3),
		CreatedAt:    base.Add(123456789 * time.Nanosecond),
		UpdatedAt:    base.Add(time.Hour),
		SubmittedAt:  at(1),
		StartedAt:    at(2),
		EndedAt:      at(3),
	}
	minimal := newJob(2, job.Queued)
	minimal.ExitCode = ptr(0) // zero is a real exit code and must not come back as nil

	for _, want := range []job.Job{full, minimal} {
		in := want
		if err := s.Create(ctx, &in, "submitted"); err != nil {
			t.Fatalf("Create %s: %v", want.ID, err)
		}
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatalf("Get %s: %v", want.ID, err)
		}
		if want.CreatedAt.IsZero() {
			want.CreatedAt, want.UpdatedAt = in.CreatedAt, in.CreatedAt
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", want.ID, got, want)
		}
	}
}

func TestCreateStampsTimes(t *testing.T) {
	ctx := context.Background()
	s, clock := openTest(t)
	clock.Set(base)
	j := newJob(1, job.Queued)
	if err := s.Create(ctx, &j, "submitted"); err != nil {
		t.Fatal(err)
	}
	want := base.Add(time.Millisecond)
	if !j.CreatedAt.Equal(want) || !j.UpdatedAt.Equal(want) {
		t.Errorf("Create set CreatedAt %v UpdatedAt %v, want both %v",
			j.CreatedAt, j.UpdatedAt, want)
	}
	ev, err := s.History(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEv := []job.Event{{JobID: j.ID, At: want, To: job.Queued, Reason: "submitted"}}
	if !reflect.DeepEqual(ev, wantEv) {
		t.Errorf("creation history = %+v, want %+v", ev, wantEv)
	}
}

func TestCreateRejects(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	taken := mustCreate(t, s, newJob(1, job.Queued))
	mod := func(f func(*job.Job)) *job.Job { j := newJob(2, job.Queued); f(&j); return &j }
	tests := []struct {
		name   string
		j      *job.Job
		target error // nil: any error will do
	}{
		{"nil", nil, nil},
		{"short id", mod(func(j *job.Job) { j.ID = "abc" }), nil},
		{"path id", mod(func(j *job.Job) { j.ID = "../../etc/pw" }), nil},
		{"empty state", mod(func(j *job.Job) { j.State = "" }), job.ErrUnknownState},
		{"unknown state", mod(func(j *job.Job) { j.State = "done" }), job.ErrUnknownState},
		{"zero pointer time", mod(func(j *job.Job) { j.StartedAt = &time.Time{} }), nil},
		{"duplicate", mod(func(j *job.Job) { j.ID = taken.ID }), ErrJobExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Create(ctx, tt.j, "x")
			if err == nil {
				t.Fatal("Create succeeded")
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("err = %v, want %v", err, tt.target)
			}
		})
	}
	all, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Name != taken.Name {
		t.Errorf("after rejected creates the store holds %+v, want the first job only",
			all)
	}
	ev, err := s.History(ctx, taken.ID)
	if err != nil || len(ev) != 1 {
		t.Errorf("first job's history = %+v, %v; want one event", ev, err)
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreate(t, s, newJob(1, job.Queued)) // a job exists, just not the one asked for
	missing := testID(99)
	calls := map[string]func() error{
		"Get":     func() error { _, err := s.Get(ctx, missing); return err },
		"History": func() error { _, err := s.History(ctx, missing); return err },
		"Transition": func() error {
			_, err := s.Transition(ctx, missing, job.Queued, job.Submitting, "",
				Update{})
			return err
		},
		"Update": func() error { return s.Update(ctx, missing, Update{Error: ptr("x")}) },
		"SaveResult": func() error {
			return s.SaveResult(ctx, missing, []byte(`{}`))
		},
		"Result": func() error { _, err := s.Result(ctx, missing); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, ErrJobNotFound) {
				t.Fatalf("err = %v, want ErrJobNotFound", err)
			}
			if !strings.Contains(err.Error(), missing) {
				t.Errorf("error does not name the job: %v", err)
			}
		})
	}
}

// listFixture stores jobs whose creation times are 1..n minutes after base, so newest
// first is the reverse of the slice, except that jobs 7 and 8 share a time to check ties.
func listFixture(t *testing.T, s *Store) {
	t.Helper()
	type spec struct {
		owner   int
		cluster string
		state   job.State
	}
	specs := []spec{
		{1000, "local", job.Queued},     // 1
		{1000, "local", job.Running},    // 2
		{1001, "local", job.Completed},  // 3
		{1001, "hpc", job.Pending},      // 4
		{1000, "hpc", job.Submitting},   // 5
		{1002, "hpc", job.Failed},       // 6
		{1000, "hpc", job.Completing},   // 7
		{1001, "local", job.Suspended},  // 8
		{1002, "local", job.Cancelled},  // 9
		{1000, "local", job.Lost},       // 10
		{1001, "hpc", job.Queued},       // 11
		{1002, "local", job.Timeout},    // 12
		{1000, "other", job.Running},    // 13
		{1001, "other", job.Submitting}, // 14
	}
	jobs := make([]job.Job, len(specs))
	for i, sp := range specs {
		j := newJob(i+1, sp.state)
		j.OwnerUID, j.Cluster = sp.owner, sp.cluster
		j.CreatedAt = base.Add(time.Duration(i+1) * time.Minute)
		if i+1 == 8 {
			j.CreatedAt = base.Add(7 * time.Minute)
		}
		jobs[i] = j
	}
	// Stored in a scrambled order so that insertion order cannot pass for sorting.
	for _, i := range []int{5, 0, 13, 8, 2, 11, 7, 1, 6, 10, 3, 12, 4, 9} {
		mustCreate(t, s, jobs[i])
	}
}

func TestListFilters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	listFixture(t, s)
	n := func(xs ...int) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = testID(x)
		}
		return out
	}
	all := n(14, 13, 12, 11, 10, 9, 7, 8, 6, 5, 4, 3, 2, 1)
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all, newest first, tie by id", Filter{}, all},
		{"owner", Filter{OwnerUID: ptr(1002)}, n(12, 9, 6)},
		{"owner with no jobs", Filter{OwnerUID: ptr(0)}, n()},
		{"one state", Filter{States: []job.State{job.Queued}}, n(11, 1)},
		{"states", Filter{States: []job.State{job.Running, job.Lost}}, n(13, 10, 2)},
		{"cluster", Filter{Cluster: "other"}, n(14, 13)},
		{"unknown cluster", Filter{Cluster: "nowhere"}, n()},
		{"active", Filter{Active: true}, n(14, 13, 7, 8, 5, 4, 2)},
		{"active and states",
			Filter{Active: true, States: []job.State{job.Queued, job.Pending}}, n(4)},
		{"limit", Filter{Limit: 3}, n(14, 13, 12)},
		{"limit over count", Filter{Limit: 100}, all},
		{"everything",
			Filter{OwnerUID: ptr(1000), Cluster: "hpc", Active: true, Limit: 1}, n(7)},
		{"owner and cluster", Filter{OwnerUID: ptr(1001), Cluster: "local"}, n(8, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !slices.Equal(g, tt.want) {
				t.Errorf("List = %v, want %v", g, tt.want)
			}
		})
	}
}

func TestListRejects(t *testing.T) {
	s, _ := openTest(t)
	for name, f := range map[string]Filter{
		"negative limit": {Limit: -1},
		"unknown state":  {States: []job.State{"done"}},
	} {
		if _, err := s.List(context.Background(), f); err == nil {
			t.Errorf("%s: List succeeded", name)
		}
	}
}

func TestListReturnsFullRows(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	j := newJob(1, job.Running)
	j.ExitCode, j.StartedAt, j.SchedMeta = ptr(0), ptr(base), `{"a":1}`
	mustCreate(t, s, j)
	got, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	one, err := s.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], one) {
		t.Errorf("List row %+v differs from Get %+v", got, one)
	}
}

// History must follow the order things happened in, even when the clock steps back.
func TestHistoryOrder(t *testing.T) {
	ctx := context.Background()
	s, clock := openTest(t)
	j := mustCreate(t, s, newJob(1, job.Queued))
	steps := []struct {
		to    job.State
		clock time.Time
	}{
		{job.Submitting, base.Add(time.Hour)},
		{job.Pending, base.Add(-time.Hour)}, // NTP stepped the clock back
		{job.Running, base.Add(2 * time.Hour)},
	}
	want := []job.Event{{JobID: j.ID, At: j.CreatedAt, To: job.Queued, Reason: "test"}}
	from := job.Queued
	for _, st := range steps {
		clock.Set(st.clock)
		reason := "to " + string(st.to)
		if _, err := s.Transition(ctx, j.ID, from, st.to, reason, Update{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, job.Event{JobID: j.ID, At: st.clock.Add(time.Millisecond),
			From: from, To: st.to, Reason: "to " + string(st.to)})
		from = st.to
	}
	got, err := s.History(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("History:\n got %+v\nwant %+v", got, want)
	}
}

// legalPairs walks job's table through its public API, so a change there is tested here.
func legalPairs() (legal, illegal [][2]job.State) {
	states := append(slices.Clone(job.States), "bogus", "")
	for _, from := range states {
		for _, to := range states {
			if job.CanMove(from, to) {
				legal = append(legal, [2]job.State{from, to})
			} else {
				illegal = append(illegal, [2]job.State{from, to})
			}
		}
	}
	return legal, illegal
}

func TestTransitionLegal(t *testing.T) {
	ctx := context.Background()
	s, clock := openTest(t)
	legal, _ := legalPairs()
	if len(legal) == 0 {
		t.Fatal("job's table allows no move")
	}
	for i, p := range legal {
		from, to := p[0], p[1]
		t.Run(string(from)+"→"+string(to), func(t *testing.T) {
			j := mustCreate(t, s, newJob(i+1, from))
			clock.Set(base.Add(time.Duration(i) * time.Hour))
			u := Update{
				SchedulerID: ptr("sched-1"), ExitCode: ptr(0), EndedAt: ptr(base),
			}
			got, err := s.Transition(ctx, j.ID, from, to, "why", u)
			if err != nil {
				t.Fatalf("Transition: %v", err)
			}
			wantAt := base.Add(time.Duration(i)*time.Hour + time.Millisecond)
			ok := got.State == to && got.SchedulerID == "sched-1" &&
				got.ExitCode != nil && *got.ExitCode == 0 &&
				got.EndedAt != nil && got.EndedAt.Equal(base) &&
				got.UpdatedAt.Equal(wantAt) && got.CreatedAt.Equal(j.CreatedAt)
			if !ok {
				t.Errorf("returned job %+v", got)
			}
			stored, err := s.Get(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stored, got) {
				t.Errorf("stored %+v, returned %+v", stored, got)
			}
			ev, err := s.History(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := job.Event{
				JobID: j.ID, At: wantAt, From: from, To: to, Reason: "why",
			}
			if len(ev) != 2 || ev[1] != want {
				t.Errorf("history %+v, want creation then %+v", ev, want)
			}
		})
	}
}

func TestTransitionIllegalWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	_, illegal := legalPairs()
	n := 0
	for _, p := range illegal {
		from, to := p[0], p[1]
		if !from.Valid() {
			continue // no job can be stored in an unknown state; covered below
		}
		n++
		t.Run(string(from)+"→"+string(to), func(t *testing.T) {
			j := mustCreate(t, s, newJob(n, from))
			before, err := s.Get(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Transition(ctx, j.ID, from, to, "nope", Update{Error: ptr("x")})
			if !errors.Is(err, job.ErrIllegalTransition) {
				t.Fatalf("err = %v, want ErrIllegalTransition", err)
			}
			after, err := s.Get(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before, after) {
				t.Errorf("row changed:\nbefore %+v\n after %+v", before, after)
			}
			if ev, err := s.History(ctx, j.ID); err != nil || len(ev) != 1 {
				t.Errorf("history %+v, %v; want only the creation event", ev, err)
			}
		})
	}
	// An unknown `from` is refused before the database is asked anything.
	j := mustCreate(t, s, newJob(1000, job.Queued))
	for _, from := range []job.State{"bogus", ""} {
		_, err := s.Transition(ctx, j.ID, from, job.Submitting, "", Update{})
		if !errors.Is(err, job.ErrIllegalTransition) {
			t.Errorf("from %q: err = %v, want ErrIllegalTransition", from, err)
		}
	}
	// And an illegal move of a missing job is still reported as illegal, not missing.
	_, err := s.Transition(ctx, testID(4095), job.Running, job.Queued, "", Update{})
	if !errors.Is(err, job.ErrIllegalTransition) {
		t.Errorf("illegal move of a missing job: err = %v", err)
	}
}

func TestTransitionConflict(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	j := mustCreate(t, s, newJob(1, job.Pending))
	_, err := s.Transition(ctx, j.ID, job.Pending, job.Running, "poll", Update{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Transition(ctx, j.ID, job.Pending, job.Cancelled, "user",
		Update{Error: ptr("x")})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second transition from pending: err = %v, want ErrConflict", err)
	}
	if !strings.Contains(err.Error(), "it is running") {
		t.Errorf("conflict error does not say the actual state: %v", err)
	}
	got, err := s.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != job.Running || got.Error != "" {
		t.Errorf("losing transition changed the row: %+v", got)
	}
	if ev, _ := s.History(ctx, j.ID); len(ev) != 2 {
		t.Errorf("history has %d events, want 2", len(ev))
	}
}

// Goroutines on one Store, and on two Stores over the same file (as two daemons would
// be), race the same move: exactly one may win and history must show exactly one move.
func TestTransitionRace(t *testing.T) {
	ctx := context.Background()
	for _, stores := range []int{1, 2} {
		t.Run(map[int]string{1: "one store", 2: "two stores"}[stores], func(t *testing.T) {
			s, _ := openTest(t)
			all := []*Store{s}
			if stores == 2 {
				other, err := Open(ctx, dbPath(t, s))
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				all = append(all, other)
			}
			for round := range 5 {
				j := mustCreate(t, s, newJob(round+1, job.Pending))
				targets := []job.State{
					job.Running, job.Cancelled, job.Suspended, job.Lost,
				}
				const racers = 16
				errs := make([]error, racers)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for g := range racers {
					wg.Go(func() {
						<-start
						st := all[g%len(all)]
						_, errs[g] = st.Transition(ctx, j.ID, job.Pending,
							targets[g%len(targets)], "race", Update{})
					})
				}
				close(start)
				wg.Wait()
				wins := 0
				for _, err := range errs {
					switch {
					case err == nil:
						wins++
					case !errors.Is(err, ErrConflict):
						t.Errorf("loser's error = %v, want ErrConflict",
							err)
					}
				}
				if wins != 1 {
					t.Errorf("round %d: %d winners, want 1", round, wins)
				}
				ev, err := s.History(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.Get(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(ev) != 2 || ev[1].To != got.State {
					t.Errorf("round %d: history %+v disagrees with state %s",
						round, ev, got.State)
				}
			}
		})
	}
}

// dbPath returns the database file s was opened on, for opening a second Store.
func dbPath(t *testing.T, s *Store) string {
	t.Helper()
	var seq int
	var name, file string
	if err := s.r.QueryRow("PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	s, clock := openTest(t)
	j := newJob(1, job.Running)
	j.Level, j.Software, j.SchedulerID = "HF/STO-3G", "NWChem 7.0.2", "42"
	j = mustCreate(t, s, j)

	clock.Set(base.Add(time.Hour))
	u := Update{Error: ptr("boom\n\ntrace"), ExitCode: ptr(137), StartedAt: ptr(base),
		TemplateHash: ptr("ff")}
	if err := s.Update(ctx, j.ID, u); err != nil {
		t.Fatal(err)
	}
	want := j
	want.Error, want.ExitCode, want.StartedAt, want.TemplateHash = "boom\n\ntrace", ptr(137),
		ptr(base), "ff"
	want.UpdatedAt = base.Add(time.Hour + time.Millisecond)
	got, err := s.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after Update:\n got %+v\nwant %+v", got, want)
	}
	if ev, _ := s.History(ctx, j.ID); len(ev) != 1 {
		t.Errorf("Update wrote %d events, want none", len(ev)-1)
	}
	// Every field of Update reaches its column.
	all := Update{
		SchedulerID: ptr("a"), SchedMeta: ptr("b"), Error: ptr("c"), ExitCode: ptr(4),
		SubmittedAt: ptr(base.Add(1)), StartedAt: ptr(base.Add(2)),
		EndedAt: ptr(base.Add(3)),
		Level:   ptr("d"), Software: ptr("e"), TemplateHash: ptr("f"),
	}
	if err := s.Update(ctx, j.ID, all); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	gotU := Update{
		SchedulerID: &got.SchedulerID, SchedMeta: &got.SchedMeta, Error: &got.Error,
		ExitCode: got.ExitCode, SubmittedAt: got.SubmittedAt, StartedAt: got.StartedAt,
		EndedAt: got.EndedAt, Level: &got.Level, Software: &got.Software,
		TemplateHash: &got.TemplateHash,
	}
	if !reflect.DeepEqual(gotU, all) {
		t.Errorf("fields after full Update = %+v, want %+v", gotU, all)
	}
	if err := s.Update(ctx, j.ID, Update{EndedAt: &time.Time{}}); err == nil {
		t.Error("Update accepted a zero time")
	}
}

func TestResults(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	j := mustCreate(t, s, newJob(1, job.Completed))
	if _, err := s.Result(ctx, j.ID); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("Result before save: err = %v, want ErrJobNotFound", err)
	}
	steps := []struct {
		data    string
		wantErr bool
	}{
		{`{"energy":-232.1}`, false},
		{`{"energy":-232.2,"freq":[1,2]}`, false}, // a re-parse replaces the result
		{`{"energy":`, true},
		{``, true},
	}
	last := ""
	for _, st := range steps {
		err := s.SaveResult(ctx, j.ID, []byte(st.data))
		if (err != nil) != st.wantErr {
			t.Fatalf("SaveResult(%q): err = %v, wantErr %v", st.data, err, st.wantErr)
		}
		if err == nil {
			last = st.data
		}
		got, err := s.Result(ctx, j.ID)
		if err != nil || string(got) != last {
			t.Errorf("after SaveResult(%q): Result = %q, %v; want %q",
				st.data, got, err, last)
		}
	}
}

func TestCountByState(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	got, err := s.CountByState(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v, %v", got, err)
	}
	listFixture(t, s)
	got, err = s.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[job.State]int{
		"local": {job.Queued: 1, job.Running: 1, job.Completed: 1, job.Suspended: 1,
			job.Cancelled: 1, job.Lost: 1, job.Timeout: 1},
		"hpc": {job.Pending: 1, job.Submitting: 1, job.Failed: 1, job.Completing: 1,
			job.Queued: 1},
		"other": {job.Running: 1, job.Submitting: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CountByState = %v, want %v", got, want)
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := openTest(t)
	j := mustCreate(t, s, newJob(1, job.Queued))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Transition(ctx, j.ID, job.Queued, job.Submitting, "", Update{})
	if err == nil {
		t.Error("Transition with a cancelled context succeeded")
	}
	got, err := s.Get(context.Background(), j.ID)
	if err != nil || got.State != job.Queued {
		t.Errorf("after cancelled Transition: %+v, %v", got, err)
	}
}
