package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"qmd/ctl/api"
)

// fakeQMD serves the socket API contract from canned data, so the command line can be
// tested end to end (socket, HTTP, JSON) without the real daemon.
type fakeQMD struct {
	socket string

	mu       sync.Mutex
	submits  []api.SubmitRequest
	rawSubs  [][]byte
	draining bool
	// hiccups is how many "draining" answers a wait-sequence job gets after its first
	// poll, as when the daemon restarts under a long wait.
	hiccups int
	polls   map[string]int // GETs seen per wait-sequence job
}

// Fixed ids and times keep golden files stable.
const (
	idDone    = "a1b2c3d4e5f6"
	idFailed  = "0f0f0f0f0f0f"
	idRunning = "123456789abc"
	idBoom    = "b00b00b00b00" // answers 500
	idWaitOK  = "waitdone0001" // queued, running, then completed
	idWaitBad = "waitfail0001" // running, then failed
	idWaitInf = "waitever0001" // running for ever
)

var (
	t0      = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	fakeNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func ptr[T any](v T) *T { return &v }

func cannedJobs() []api.Job {
	return []api.Job{
		{
			ID: idDone, State: "completed", Cluster: "local", SchedulerID: "48121",
			Name: "ethanol", Preset: "draft", Solvent: "chcl3", Owner: 1000,
			Level: "B3LYP/6-31G(d)", Software: "NWChem 7.2.2", TemplateHash: "9c1e0b7d",
			CreatedAt: t0.Add(15 * time.Minute), UpdatedAt: t0.Add(42*time.Minute + 10*time.Second),
			ExitCode: ptr(0),
			History: []api.Event{
				{At: t0.Add(15 * time.Minute), From: "", To: "queued", Reason: "submitted"},
				{At: t0.Add(16 * time.Minute), From: "queued", To: "submitting", Reason: ""},
				{At: t0.Add(16 * time.Minute), From: "submitting", To: "running",
					Reason: "pid 48121"},
				{At: t0.Add(42 * time.Minute), From: "running", To: "completing",
					Reason: "exit 0"},
				{At: t0.Add(42*time.Minute + 10*time.Second), From: "completing",
					To: "completed", Reason: "parsed 9 shieldings"},
			},
		},
		{
			ID: idFailed, State: "failed", Cluster: "hpc", SchedulerID: "7781234",
			Name: "caffeine", Preset: "accurate", Solvent: "dmso", Owner: 1000,
			CreatedAt: t0.Add(-26 * time.Hour), UpdatedAt: t0.Add(-20 * time.Hour),
			Error:    ptr("nwchem exited 1:\nSCF did not converge in 50 iterations"),
			ExitCode: ptr(1),
			History: []api.Event{
				{At: t0.Add(-26 * time.Hour), To: "queued", Reason: "submitted"},
				{At: t0.Add(-20 * time.Hour), From: "running", To: "failed",
					Reason: "exit 1"},
			},
		},
		{
			ID: idRunning, State: "running", Cluster: "hpc", SchedulerID: "7781300",
			Name: "<strychnine> & co", Preset: "draft", Solvent: "chcl3", Owner: 1000,
			CreatedAt: t0.Add(2 * time.Hour), UpdatedAt: fakeNow.Add(-95 * time.Second),
		},
	}
}

func cannedResult() api.Result {
	return api.Result{
		ID: idDone, EnergyHartree: -155.0346742113, Converged: true,
		Reference: api.Reference{Method: "tms", Level: "B3LYP/6-31G(d)", Solvent: "chcl3",
			H: ptr(31.88), C: ptr(189.7), Source: "computed"},
		Shifts: []api.Shift{
			{Atom: 1, Element: "C", Shielding: 172.1234, Shift: ptr(17.5766), Group: 1},
			{Atom: 2, Element: "C", Shielding: 131.9, Shift: ptr(57.8), Group: 2},
			{Atom: 3, Element: "O", Shielding: 268.4, Shift: nil, Group: 3},
			{Atom: 4, Element: "H", Shielding: 30.71, Shift: ptr(1.17), BondedTo: ptr(1),
				Group: 4},
			{Atom: 9, Element: "H", Shielding: 29.9, Shift: ptr(1.98), BondedTo: ptr(3),
				Group: 6},
		},
	}
}

// startFake serves the fake on a socket in a fresh temporary directory.
func startFake(t *testing.T) *fakeQMD {
	t.Helper()
	f := &fakeQMD{socket: socketPath(t), polls: map[string]int{}}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatalf("listen on %s: %v", f.socket, err)
	}
	srv := &http.Server{Handler: f.routes(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("fake qmd: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return f
}

// socketPath is a socket path in t.TempDir(), or in a shorter directory when a long TMPDIR
// would push it past the kernel's limit of about 108 bytes for Unix socket paths.
func socketPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qmd.sock")
	if len(p) < 100 {
		return p
	}
	dir, err := os.MkdirTemp("/tmp", "qmctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "qmd.sock")
}

func (f *fakeQMD) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.RouteJobs, f.submit)
	mux.HandleFunc("GET "+api.RouteJobs, f.list)
	mux.HandleFunc("GET "+api.RouteJob+"{id}", f.get)
	mux.HandleFunc("POST "+api.RouteJob+"{id}/cancel", f.cancel)
	mux.HandleFunc("GET "+api.RouteJob+"{id}/result", f.result)
	mux.HandleFunc("GET "+api.RouteJob+"{id}/logs", f.logs)
	mux.HandleFunc("GET "+api.RouteVersion, func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, api.Version{Version: "0.4.1", Commit: "3f2a9c1"})
	})
	// Every route answers "draining" while the fake is told to be stopping.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		draining := f.draining
		f.mu.Unlock()
		if draining {
			replyErr(w, http.StatusServiceUnavailable, api.CodeDraining, "qmd is stopping")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func replyErr(w http.ResponseWriter, status int, code, msg string) {
	reply(w, status, api.ErrorResponse{Error: msg, Code: code})
}

func (f *fakeQMD) submit(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var req api.SubmitRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		replyErr(w, http.StatusBadRequest, api.CodeBadRequest, "bad JSON: "+err.Error())
		return
	}
	f.mu.Lock()
	f.submits = append(f.submits, req)
	f.rawSubs = append(f.rawSubs, raw)
	f.mu.Unlock()
	switch {
	case req.Content == "" && req.SMILES == "":
		replyErr(w, http.StatusBadRequest, api.CodeBadRequest, "no molecule given")
		return
	case req.Preset == "bogus":
		replyErr(w, http.StatusBadRequest, api.CodeBadRequest,
			`unknown preset "bogus" (known: draft, accurate)`)
		return
	}
	records := 1
	if req.SplitRecords {
		records = strings.Count(req.Content, "$$$$")
	}
	if req.DryRun {
		var out api.SubmitResponse
		for i := range records {
			dir := fmt.Sprintf("jobs/dry-run-%d/", i+1)
			out.Rendered = append(out.Rendered,
				api.Rendered{Path: dir + "input.nw",
					Content: fmt.Sprintf("start mol%d\ncharge %d\ngeometry\n end\n", i+1,
						deref(req.Charge))},
				api.Rendered{Path: dir + "job.sh", Content: "#!/bin/sh\nnwchem input.nw"})
		}
		reply(w, http.StatusOK, out)
		return
	}
	var out api.SubmitResponse
	for i := range records {
		out.IDs = append(out.IDs, fmt.Sprintf("00000000000%d", i+1))
	}
	out.ID = out.IDs[0]
	if !req.SplitRecords {
		out.IDs = nil
	}
	reply(w, http.StatusCreated, out)
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func (f *fakeQMD) list(w http.ResponseWriter, r *http.Request) {
	states := r.URL.Query()["state"]
	out := []api.Job{}
	for _, j := range cannedJobs() {
		if len(states) == 0 || slices.Contains(states, j.State) {
			j.History = nil
			out = append(out, j)
		}
	}
	reply(w, http.StatusOK, out)
}

// lookup finds a canned job, or steps a wait-sequence job one state further.
func (f *fakeQMD) lookup(w http.ResponseWriter, id string, poll bool) (api.Job, bool) {
	if id == idBoom {
		replyErr(w, http.StatusInternalServerError, api.CodeInternal, "database is locked")
		return api.Job{}, false
	}
	for _, j := range cannedJobs() {
		if j.ID == id {
			return j, true
		}
	}
	seqs := map[string][]string{
		idWaitOK:  {"queued", "running", "running", "completed"},
		idWaitBad: {"running", "failed"},
		idWaitInf: {"running"},
	}
	seq, ok := seqs[id]
	if !ok {
		replyErr(w, http.StatusNotFound, api.CodeNotFound, "no job "+id)
		return api.Job{}, false
	}
	f.mu.Lock()
	n := f.polls[id]
	if poll && n >= 1 && f.hiccups > 0 {
		f.hiccups--
		f.mu.Unlock()
		replyErr(w, http.StatusServiceUnavailable, api.CodeDraining, "qmd is stopping")
		return api.Job{}, false
	}
	if poll {
		f.polls[id]++
	}
	f.mu.Unlock()
	j := api.Job{ID: id, State: seq[min(n, len(seq)-1)], Cluster: "local", Name: "wait",
		CreatedAt: t0, UpdatedAt: t0}
	if j.State == "failed" {
		j.Error = ptr("geometry optimization failed")
	}
	return j, true
}

func (f *fakeQMD) get(w http.ResponseWriter, r *http.Request) {
	if j, ok := f.lookup(w, r.PathValue("id"), true); ok {
		reply(w, http.StatusOK, j)
	}
}

func (f *fakeQMD) cancel(w http.ResponseWriter, r *http.Request) {
	j, ok := f.lookup(w, r.PathValue("id"), false)
	if !ok {
		return
	}
	if terminalStates[j.State] {
		replyErr(w, http.StatusConflict, api.CodeConflict, "job is already "+j.State)
		return
	}
	j.State = "cancelled"
	reply(w, http.StatusOK, j)
}

func (f *fakeQMD) result(w http.ResponseWriter, r *http.Request) {
	j, ok := f.lookup(w, r.PathValue("id"), false)
	if !ok {
		return
	}
	if j.State != "completed" {
		replyErr(w, http.StatusConflict, api.CodeConflict, "job "+j.ID+" is "+j.State)
		return
	}
	reply(w, http.StatusOK, cannedResult())
}

func (f *fakeQMD) logs(w http.ResponseWriter, r *http.Request) {
	j, ok := f.lookup(w, r.PathValue("id"), false)
	if !ok {
		return
	}
	out := api.Logs{ID: j.ID, Files: []api.LogFile{}}
	if j.ID == idDone {
		out.Files = []api.LogFile{
			{Name: "nwchem.out", Content: "...\n Total DFT energy = -155.0346742113\n",
				Truncated: true},
			{Name: "job.err", Content: "warning: \x1b[31mcolour\x1b[0m\n"},
		}
	}
	reply(w, http.StatusOK, out)
}
