package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	wire "qmd/ctl/api"
	"qmd/ctl/client"
	"qmd/daemon/job"
	"qmd/daemon/store"
	"qmd/scheduler"
)

var t0 = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

// add stores a job with a fixed id, walked to state through legal moves, so answers that
// name it are stable enough for golden files.
func (e *env) add(id string, owner int, state job.State) string {
	e.t.Helper()
	ctx := context.Background()
	j := job.Job{ID: id, Name: "job-" + id[10:], OwnerUID: owner, Cluster: clusterID,
		State: job.Queued, Preset: "draft", Solvent: "gas", Multiplicity: 1,
		CreatedAt: t0, UpdatedAt: t0}
	if err := e.st.Create(ctx, &j, "test"); err != nil {
		e.t.Fatal(err)
	}
	walk := map[job.State][]job.State{
		job.Queued:    nil,
		job.Running:   {job.Submitting, job.Pending, job.Running},
		job.Completed: {job.Submitting, job.Pending, job.Running, job.Completing, job.Completed},
		job.Failed:    {job.Submitting, job.Failed},
	}[state]
	from := job.Queued
	for _, to := range walk {
		u := store.Update{}
		if to == job.Failed {
			msg := "NWChem failed\n\nexcerpt"
			u.Error = &msg
		}
		if _, err := e.st.Transition(ctx, id, from, to, "test", u); err != nil {
			e.t.Fatal(err)
		}
		from = to
	}
	if state == job.Completed {
		if err := e.st.SaveResult(ctx, id, []byte(`{"id":"`+id+`","shifts":[]}`)); err != nil {
			e.t.Fatal(err)
		}
	}
	return id
}

func TestRoutes(t *testing.T) {
	e := newEnv(t)
	c := e.serve(&Peer{UID: 0})
	queued := e.add("00000000000a", aliceUID, job.Queued)
	running := e.add("00000000000b", aliceUID, job.Running)
	done := e.add("00000000000c", aliceUID, job.Completed)
	e.fake.Adopt(running, "", "7", nil)

	sub, _ := json.Marshal(wire.SubmitRequest{Filename: "w.xyz", Content: waterXYZ,
		DryRun: true})
	badSub, _ := json.Marshal(wire.SubmitRequest{Filename: "w.xyz", Content: "1\nx\nXx 0 0 0\n"})
	huge, _ := json.Marshal(wire.SubmitRequest{Content: strings.Repeat("x", maxInput*3)})
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		method, path string
		header       http.Header
		body         []byte
		status       int
		code         string // "" for a success
	}{
		{"GET", "/v1/version", nil, nil, 200, ""},
		{"GET", "/v1/jobs?state=queued", nil, nil, 200, ""},
		{"GET", "/v1/jobs?state=sleeping", nil, nil, 400, wire.CodeBadRequest},
		{"GET", "/v1/jobs/" + queued, nil, nil, 200, ""},
		{"GET", "/v1/jobs/0000000000ff", nil, nil, 404, wire.CodeNotFound},
		{"GET", "/v1/jobs/not-an-id", nil, nil, 404, wire.CodeNotFound},
		{"GET", "/v1/jobs/" + queued + "/result", nil, nil, 409, wire.CodeConflict},
		{"GET", "/v1/jobs/" + done + "/result", nil, nil, 200, ""},
		{"GET", "/v1/jobs/" + done + "/logs", nil, nil, 200, ""},
		{"POST", "/v1/jobs/" + queued + "/cancel", nil, nil, 200, ""},
		{"POST", "/v1/jobs/" + queued + "/cancel", nil, nil, 409, wire.CodeConflict},
		{"POST", "/v1/jobs/" + running + "/cancel", nil, nil, 200, ""},
		{"POST", "/v1/jobs/" + done + "/cancel", nil, nil, 409, wire.CodeConflict},
		{"GET", "/v1/jobs/" + done + "/cancel", nil, nil, 404, wire.CodeNotFound},
		{"DELETE", "/v1/jobs/" + done, nil, nil, 404, wire.CodeNotFound},
		{"GET", "/v1/jobs/" + done + "/result/x", nil, nil, 404, wire.CodeNotFound},
		{"GET", "/v2/jobs", nil, nil, 404, wire.CodeNotFound},
		{"PUT", "/v1/jobs", nil, nil, 404, wire.CodeNotFound},
		{"POST", "/v1/jobs", jsonCT, sub, 200, ""},
		{"POST", "/v1/jobs", jsonCT, badSub, 400, wire.CodeBadRequest},
		{"POST", "/v1/jobs", jsonCT, []byte(`{"content":"x","colour":"red"}`), 400,
			wire.CodeBadRequest},
		{"POST", "/v1/jobs", jsonCT, []byte(`{"content":`), 400, wire.CodeBadRequest},
		{"POST", "/v1/jobs", jsonCT, huge, 413, wire.CodeBadRequest},
		{"GET", "/v1/version", http.Header{"Origin": {"https://evil.example"}}, nil, 403,
			wire.CodeBadRequest},
		{"GET", "/v1/jobs", http.Header{"Referer": {"https://evil.example/"}}, nil, 403,
			wire.CodeBadRequest},
	}
	var log bytes.Buffer
	for _, tc := range tests {
		status, body := raw(t, c, tc.method, tc.path, tc.header, tc.body)
		name := tc.method + " " + tc.path
		if status != tc.status {
			t.Errorf("%s = %d %s, want %d", name, status, body, tc.status)
		}
		var er wire.ErrorResponse
		if tc.code != "" {
			if err := json.Unmarshal(body, &er); err != nil || er.Code != tc.code ||
				er.Error == "" {
				t.Errorf("%s: body %s, want code %s and a message", name, body, tc.code)
			}
			fmt.Fprintf(&log, "%s %s -> %d %s: %s\n", tc.method, trim(tc.path), status,
				er.Code, er.Error)
		} else {
			if !json.Valid(body) {
				t.Errorf("%s: answer is not JSON: %s", name, body)
			}
			fmt.Fprintf(&log, "%s %s -> %d\n", tc.method, trim(tc.path), status)
		}
	}
	checkGolden(t, "routes.golden", log.Bytes())

	if n := e.fake.CallsFor("Cancel", running); n != 1 {
		t.Errorf("scheduler Cancel calls for the running job: %d", n)
	}
	if n := e.fake.Count("Submit"); n != 0 {
		t.Errorf("the API reached the scheduler's Submit %d times", n)
	}
}

// trim shortens long paths in the golden file.
func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func TestClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.serve(nil) // the kernel's answer: this process

	v, err := c.Version(ctx)
	if err != nil || v.Version != "v-test" {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	resp, err := c.Submit(ctx, wire.SubmitRequest{Name: "w", Filename: "w.xyz",
		Content: waterXYZ, Solvent: "gas"})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.ID
	j, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Owner != os.Getuid() || j.State != "queued" || len(j.History) != 1 ||
		j.Name != "w" || j.Error != nil {
		t.Errorf("Get = %+v; the owner must be the uid SO_PEERCRED gave (%d)", j, os.Getuid())
	}
	jobs, err := c.List(ctx, nil)
	if err != nil || len(jobs) != 1 || jobs[0].ID != id || jobs[0].History != nil {
		t.Errorf("List = %+v, %v", jobs, err)
	}
	jobs, err = c.List(ctx, []string{"running", "lost"})
	if err != nil || len(jobs) != 0 {
		t.Errorf("List(running, lost) = %+v, %v", jobs, err)
	}
	if _, err := c.Result(ctx, id); !errors.Is(err, client.ErrConflict) {
		t.Errorf("Result of a queued job: %v, want ErrConflict", err)
	}
	cj, err := c.Cancel(ctx, id)
	if err != nil || cj.State != "cancelled" || len(cj.History) != 2 {
		t.Errorf("Cancel = %+v, %v", cj, err)
	}
	if _, err := c.Cancel(ctx, id); !errors.Is(err, client.ErrConflict) {
		t.Errorf("second Cancel: %v, want ErrConflict", err)
	}
	if _, err := c.Get(ctx, "0123456789ab"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get of an unknown job: %v, want ErrNotFound", err)
	}
	_, err = c.Submit(ctx, wire.SubmitRequest{Filename: "w.xyz", Content: waterXYZ,
		Multiplicity: ptr(2)})
	if !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "multiplicity") {
		t.Errorf("bad submission: %v, want ErrBadRequest naming the multiplicity", err)
	}
	logs, err := c.Logs(ctx, id)
	if err != nil || logs.ID != id {
		t.Errorf("Logs = %+v, %v", logs, err)
	}

	e.m.Drain()
	if _, err := c.Submit(ctx, wire.SubmitRequest{Filename: "w.xyz",
		Content: waterXYZ}); !errors.Is(err, client.ErrDraining) {
		t.Errorf("Submit while draining: %v, want ErrDraining", err)
	}
	if _, err := c.List(ctx, nil); err != nil {
		t.Errorf("List while draining: %v; reads go on", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestUsersSeeOnlyTheirOwnJobs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	alice := e.serve(&Peer{UID: aliceUID})
	bob := e.serve(&Peer{UID: bobUID})
	admin := e.serve(&Peer{UID: adminUID}) // in the admin group
	root := e.serve(&Peer{UID: 0})

	a1 := e.add("0000000000a1", aliceUID, job.Running)
	a2 := e.add("0000000000a2", aliceUID, job.Completed)
	b1 := e.add("0000000000b1", bobUID, job.Queued)
	e.fake.Adopt(a1, "", "1", nil)
	resp, err := alice.Submit(ctx, wire.SubmitRequest{Filename: "w.xyz", Content: waterXYZ})
	if err != nil {
		t.Fatal(err)
	}
	a3 := resp.ID

	ids := func(c *client.Client) []string {
		jobs, err := c.List(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, j := range jobs {
			out = append(out, j.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(alice); !slices.Equal(got, []string{a1, a2, a3}) {
		t.Errorf("alice lists %v", got)
	}
	if got := ids(bob); !slices.Equal(got, []string{b1}) {
		t.Errorf("bob lists %v", got)
	}
	all := []string{a1, a2, a3, b1}
	slices.Sort(all)
	for name, c := range map[string]*client.Client{"admin group": admin, "root": root} {
		if got := ids(c); !slices.Equal(got, all) {
			t.Errorf("%s lists %v, want every job", name, got)
		}
	}

	// Another user's job does not exist for bob, whatever he asks of it.
	for _, id := range []string{a1, a2} {
		if _, err := bob.Get(ctx, id); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("bob Get %s: %v", id, err)
		}
		if _, err := bob.Result(ctx, id); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("bob Result %s: %v", id, err)
		}
		if _, err := bob.Logs(ctx, id); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("bob Logs %s: %v", id, err)
		}
		if _, err := bob.Cancel(ctx, id); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("bob Cancel %s: %v", id, err)
		}
	}
	_, err = bob.Get(ctx, a1)
	var ae *client.APIError
	if !errors.As(err, &ae) || strings.Contains(ae.Message, "alice") || ae.Status != 404 {
		t.Errorf("bob's answer %v", err)
	}
	if j, _ := root.Get(ctx, a1); j.State != "running" {
		t.Errorf("bob's attempts changed alice's job: %s", j.State)
	}
	if n := e.fake.Count("Cancel"); n != 0 {
		t.Errorf("bob reached the scheduler's Cancel %d times", n)
	}

	if r, err := alice.Result(ctx, a2); err != nil || r.ID != a2 {
		t.Errorf("alice Result = %+v, %v", r, err)
	}
	if j, err := admin.Cancel(ctx, a1); err != nil || j.State != "cancelled" {
		t.Errorf("admin cancel of alice's job: %+v, %v", j, err)
	}
	j, err := admin.Get(ctx, a1)
	if err != nil || !strings.Contains(j.History[len(j.History)-1].Reason, fmt.Sprint(adminUID)) {
		t.Errorf("the cancel does not name who did it: %+v, %v", j, err)
	}
	j, err = bob.Get(ctx, b1)
	if err != nil || j.Owner != bobUID {
		t.Errorf("bob Get own job: %+v, %v", j, err)
	}
}

func TestIsAdmin(t *testing.T) {
	tests := []struct {
		uid   int
		group string
		want  bool
	}{
		{0, "", true},
		{0, "nosuchgroup", true},
		{aliceUID, "", false},
		{adminUID, adminGrp, true}, // primary group
		{2, adminGrp, false},       // bin: not a member
		{adminUID, "nosuchgrp", false},
		{987654, adminGrp, false}, // no such user
	}
	for _, tc := range tests {
		if got := isAdmin(tc.uid, tc.group); got != tc.want {
			t.Errorf("isAdmin(%d, %q) = %v, want %v", tc.uid, tc.group, got, tc.want)
		}
	}
}

// A request whose connection has no peer credentials is refused, never served as root.
func TestNoPeerIsRefused(t *testing.T) {
	e := newEnv(t)
	for _, ctx := range []context.Context{
		context.Background(),
		context.WithValue(context.Background(), peerKey{}, errors.New("getsockopt failed")),
	} {
		req := httptest.NewRequest("GET", "/v1/jobs", nil).WithContext(ctx)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("status %d, want 403: %s", rec.Code, rec.Body)
		}
	}
}

// The zero values of the optional fields must give a working handler, not one that
// refuses every submission (MaxBody 0) or panics on the first error (Log nil).
func TestHandlerDefaults(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := serveOn(t, &Handler{M: e.m}, shortDir(t)+"/s.sock", &Peer{UID: aliceUID})
	if _, err := c.Submit(ctx, wire.SubmitRequest{Filename: "w.xyz",
		Content: waterXYZ}); err != nil {
		t.Errorf("Submit: %v", err)
	}
	if _, err := c.Get(ctx, "0123456789ab"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get: %v", err)
	}
	e.st.Close() // every later store call fails: the internal-error path
	if _, err := c.List(ctx, nil); !errors.Is(err, client.ErrInternal) {
		t.Errorf("List on a closed store: %v, want ErrInternal", err)
	}
}

// A cancel the cluster could not take is an error for the caller, and the job stays as
// it was: qmd still watches it, and the caller can try again.
func TestCancelWhenTheClusterIsDown(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.serve(&Peer{UID: aliceUID})
	id := e.add("0000000000c1", aliceUID, job.Running)
	e.fake.CancelFunc = func(context.Context, scheduler.Handle) error {
		return errors.New("ssh: dial hpc-login: i/o timeout")
	}
	_, err := c.Cancel(ctx, id)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Code != wire.CodeInternal ||
		!strings.Contains(ae.Message, "i/o timeout") {
		t.Fatalf("Cancel = %v, want a 500 naming the cluster's error", err)
	}
	if j, _ := c.Get(ctx, id); j.State != "running" {
		t.Errorf("state %s after a refused cancel", j.State)
	}
}
