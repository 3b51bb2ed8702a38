package manager

import (
	"testing"
	"time"

	"qmd/daemon/config"
)

func pollCfg() *config.Cluster {
	c := config.DefaultCluster("slurm")
	c.PollInterval = config.Duration{Duration: 10 * time.Second}
	c.PollIntervalMax = config.Duration{Duration: 2 * time.Minute}
	c.PollBudget = 3
	return c
}

func TestNextInterval(t *testing.T) {
	cfg := pollCfg()
	s := time.Second
	tests := []struct {
		name             string
		cur              time.Duration
		changed, healthy bool
		want             time.Duration
	}{
		{"a change brings it back to the minimum", 80 * s, true, true, 10 * s},
		{"quiet grows by half", 10 * s, false, true, 15 * s},
		{"quiet stops at the maximum", 100 * s, false, true, 120 * s},
		{"no answer doubles", 10 * s, false, false, 20 * s},
		{"no answer stops at the maximum", 90 * s, true, false, 120 * s},
		{"never below the minimum", time.Second, false, true, 10 * s},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextInterval(tc.cur, tc.changed, tc.healthy, cfg); got != tc.want {
				t.Errorf("nextInterval(%s) = %s, want %s", tc.cur, got, tc.want)
			}
		})
	}
}

func TestJitterStaysWithinTenPercent(t *testing.T) {
	d := 10 * time.Second
	for i := 0; i < 1000; i++ {
		got := jitter("", d)
		if got < 9*time.Second || got > 11*time.Second {
			t.Fatalf("jitter(%s) = %s", d, got)
		}
	}
	a, b := jitter("hawk", d), jitter("hawk", d)
	if a != b {
		t.Errorf("a named cluster's first offset must be stable: %s vs %s", a, b)
	}
	if jitter("hawk", d) == jitter("eagle", d) && jitter("kite", d) == jitter("hawk", d) {
		t.Error("named clusters all get the same offset")
	}
}

func TestPollBudget(t *testing.T) {
	c := &cluster{}
	c.cfgp.Store(pollCfg())
	m := &Manager{}
	for i := 0; i < 3; i++ {
		if !m.takeBudget(c) {
			t.Fatalf("poll %d refused within a budget of 3", i+1)
		}
	}
	if m.takeBudget(c) {
		t.Fatal("a fourth poll in the same minute was allowed")
	}
	// Polls older than a minute no longer count.
	c.polls[0] = time.Now().Add(-61 * time.Second)
	if !m.takeBudget(c) {
		t.Fatal("budget not freed after a minute")
	}
}

func TestSubmitBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Manager{Now: func() time.Time { return now }}
	c := &cluster{retry: map[string]retryState{}}
	c.cfgp.Store(pollCfg())
	var got []time.Duration
	for i := 0; i < 6; i++ {
		got = append(got, m.backoff(c, "abc"))
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second,
		80 * time.Second, 120 * time.Second, 120 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("attempt %d waits %s, want %s", i+1, got[i], want[i])
		}
	}
	if !c.retry["abc"].next.Equal(now.Add(120 * time.Second)) {
		t.Errorf("next attempt at %s", c.retry["abc"].next)
	}
}
