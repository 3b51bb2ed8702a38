package manager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"qmd/ctl/api"
	"qmd/daemon/job"
	"qmd/daemon/store"
)

func intp(v int) *int { return &v }

func TestBadInputCreatesNothing(t *testing.T) {
	sdf, err := os.ReadFile(multiSDF)
	if err != nil {
		t.Fatal(err)
	}
	xyz := func(body string) api.SubmitRequest {
		return api.SubmitRequest{Filename: "m.xyz", Content: body}
	}
	// with is the water submission changed by f.
	with := func(f func(*api.SubmitRequest)) api.SubmitRequest {
		r := water("gas")
		f(&r)
		return r
	}
	type req = api.SubmitRequest
	tests := []struct {
		name string
		req  api.SubmitRequest
		want string // part of the message
	}{
		{"unknown element", xyz("3\nw\nXx 0 0 0\nH 1 0 0\nH 0 1 0\n"),
			`line 3: unknown element "Xx"`},
		{"unknown atomic number", xyz("1\nw\n200 0 0 0\n"), `line 3: unknown element "200"`},
		{"no atoms", xyz("0\nnothing\n"), "no atoms"},
		{"empty", xyz("  \n"), "empty"},
		{"atoms too close", xyz("2\nw\nO 0 0 0\nH 0.1 0 0\n"),
			"atoms 1 (O) and 2 (H) are 0.100 Å"},
		{"count is not a number", xyz("three\nw\nO 0 0 0\n"),
			"line 1: expected the number of atoms"},
		{"count too high", xyz("4\nw\nO 0 0 0\nH 1 0 0\nH 0 1 0\n"),
			"line 1: the atom count says 4"},
		{"count too low", xyz("2\nw\nO 0 0 0\nH 1 0 0\nH 0 1 0\n"),
			"line 5: more atom lines"},
		{"bad coordinate", xyz("2\nw\nO 0 0 0\nH 1 x 0\n"),
			`line 4: coordinate "x" is not a number`},
		{"over size", xyz("1\n" + strings.Repeat("x", maxInput) + "\nH 0 0 0\n"),
			"over the limit"},
		{"multiplicity mismatch", with(func(r *req) { r.Multiplicity = intp(2) }),
			"multiplicity 2 need an odd number of electrons"},
		{"charge mismatch", with(func(r *req) { r.Charge = intp(1) }),
			"charge 1 and multiplicity 1"},
		{"zero multiplicity", with(func(r *req) { r.Multiplicity = intp(0) }),
			"multiplicity must be 1"},
		{"multi-record SDF without split", req{Filename: "m.sdf", Content: string(sdf)},
			"holds 3 molecules"},
		{"split SDF with one bad record", req{Filename: "m.sdf", SplitRecords: true,
			Content: strings.Replace(string(sdf), " C   0", " Q   0", 1)}, "unknown element"},
		{"unknown preset", with(func(r *req) { r.Preset = "ultra" }), `unknown preset "ultra"`},
		{"unknown solvent", with(func(r *req) { r.Solvent = "water" }),
			`unknown solvent "water"`},
		{"unknown cluster", with(func(r *req) { r.Cluster = "nope" }),
			`unknown cluster "nope"`},
		{"name with a slash", with(func(r *req) { r.Name = "../etc" }), "job name"},
		{"name with a space", with(func(r *req) { r.Name = "my job" }), "job name"},
		{"name with a quote", with(func(r *req) { r.Name = "a'b" }), "job name"},
		{"name too long", with(func(r *req) { r.Name = strings.Repeat("a", 65) }),
			"at most 64"},
		{"file and SMILES", with(func(r *req) { r.SMILES = "O" }), "not both"},
		{"unknown format", with(func(r *req) { r.Format = "pdb" }), "unknown input format"},
	}

	h := newHarness(t)
	earlier := h.submit(water("chcl3"))[0]
	h.fake(clusterA).Queue(nil)
	h.cycle(clusterA)
	before, histBefore := h.job(earlier)
	dirsBefore := h.jobDirs()
	ctx := context.Background()

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, dry := range []bool{false, true} {
				req := tc.req
				req.DryRun = dry
				resp, err := h.m.Submit(ctx, testUID, req)
				var ie *InputError
				if !errors.As(err, &ie) {
					t.Fatalf("dry %v: Submit = %+v, %v; want *InputError", dry, resp, err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q lacks %q", err, tc.want)
				}
				if resp.ID != "" || len(resp.IDs) > 0 || len(resp.Rendered) > 0 {
					t.Errorf("a refused submission answered %+v", resp)
				}
			}
			if n := h.count(); n != 1 {
				t.Errorf("%d jobs stored, want only the earlier one", n)
			}
			if d := h.jobDirs(); !slices.Equal(d, dirsBefore) {
				t.Errorf("jobs directory now %v, was %v", d, dirsBefore)
			}
		})
	}
	after, histAfter := h.job(earlier)
	if after.State != before.State || after.UpdatedAt != before.UpdatedAt ||
		len(histAfter) != len(histBefore) {
		t.Errorf("the earlier job changed: %s → %s", before.State, after.State)
	}
}

func TestSubmitStoresWhatWasAsked(t *testing.T) {
	h := newHarness(t)
	req := water("dmso")
	req.Preset = "production"
	req.Name = "w-1.b+c_d"
	id := h.submit(req)[0]
	j, _ := h.job(id)
	want := job.Job{ID: id, Name: "w-1.b+c_d", OwnerUID: testUID, Cluster: clusterA,
		State: job.Queued, Preset: "production", Solvent: "dmso", Charge: 0, Multiplicity: 1,
		Level: "B3LYP/6-311+G(2d,p)//B3LYP/6-31G* COSMO(dmso)", Software: "NWChem",
		InputFormat: "xyz"}
	got := j
	got.CreatedAt, got.UpdatedAt, got.TemplateHash = want.CreatedAt, want.UpdatedAt, ""
	if got != want {
		t.Errorf("stored\n%+v\nwant\n%+v", got, want)
	}
	if j.TemplateHash == "" || strings.Trim(j.TemplateHash, "0123456789abcdef") != "" {
		t.Errorf("template hash %q", j.TemplateHash)
	}
	dir := filepath.Join(h.cfg.JobsDir(), id)
	for _, f := range []string{"input.xyz", GeometryFile, MoleculeFile, DeckFile, ScriptFile,
		"output", "logs", ScratchDir} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("job directory: %v", err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, ScriptFile)); err == nil && st.Mode()&0o100 == 0 {
		t.Errorf("batch script mode %v is not executable", st.Mode())
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "input.xyz")); string(got) != waterXYZ {
		t.Errorf("input kept as %q", got)
	}
	deck, _ := os.ReadFile(filepath.Join(dir, DeckFile))
	if !strings.Contains(string(deck), "dmso") ||
		!strings.Contains(string(deck), "6-311+G(2d,p)") {
		t.Errorf("deck lacks the solvent or the basis:\n%s", deck)
	}
	if names := h.jobDirs(); !slices.Equal(names, []string{id}) {
		t.Errorf("jobs directory holds %v", names)
	}
}

func TestSubmitDefaultsAndCharge(t *testing.T) {
	h := newHarness(t)
	// Hydroxide: the charge comes from the request; the name from the file name.
	id := h.submit(api.SubmitRequest{Filename: "dir/hydroxide ion.xyz",
		Content: "2\nOH-\nO 0 0 0\nH 0.97 0 0\n", Charge: intp(-1)})[0]
	j, _ := h.job(id)
	if j.Charge != -1 || j.Multiplicity != 1 || j.Preset != "draft" || j.Solvent != "chcl3" ||
		j.Name != "hydroxideion" {
		t.Errorf("job %+v", j)
	}
}

func TestSplitSDF(t *testing.T) {
	sdf, err := os.ReadFile(multiSDF)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.fake(clusterA).Queue(nil, nil, nil)
	ids := h.submit(api.SubmitRequest{Name: "set", Filename: "multi.sdf", Content: string(sdf),
		SplitRecords: true, Solvent: "gas"})
	if len(ids) != 3 {
		t.Fatalf("%d jobs, want one per record (3)", len(ids))
	}
	wantCharge := []int{0, 0, -1} // water, methane, acetate (M  CHG)
	for i, id := range ids {
		j, _ := h.job(id)
		if want := "set-" + string(rune('1'+i)); j.Name != want {
			t.Errorf("job %d name %q, want %q", i, j.Name, want)
		}
		if j.Charge != wantCharge[i] || j.InputFormat != "sdf" {
			t.Errorf("job %d charge %d format %s", i, j.Charge, j.InputFormat)
		}
	}
	if h.count() != 3 || len(h.jobDirs()) != 3 {
		t.Errorf("%d rows, dirs %v", h.count(), h.jobDirs())
	}
	// Dispatch keeps the records' order.
	h.cycle(clusterA)
	var submitted []string
	for _, c := range h.fake(clusterA).Calls() {
		if c.Method == "Submit" {
			submitted = append(submitted, c.JobIDs...)
		}
	}
	if !slices.Equal(submitted, ids) {
		t.Errorf("submitted %v, want %v", submitted, ids)
	}
}

func TestDryRunStoresNothing(t *testing.T) {
	h := newHarness(t)
	req := water("gas")
	req.DryRun = true
	resp, err := h.m.Submit(context.Background(), testUID, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID != "" || len(resp.IDs) != 0 {
		t.Errorf("a dry run returned ids %+v", resp)
	}
	var names []string
	var id string
	for _, r := range resp.Rendered {
		dir, name, _ := strings.Cut(r.Path, "/")
		if !job.ValidID(dir) || (id != "" && dir != id) {
			t.Errorf("rendered path %q", r.Path)
		}
		id = dir
		names = append(names, name)
		if r.Content == "" {
			t.Errorf("%s is empty", r.Path)
		}
	}
	want := []string{"input.xyz", GeometryFile, MoleculeFile, DeckFile, ScriptFile}
	if !slices.Equal(names, want) {
		t.Errorf("rendered %v, want %v", names, want)
	}
	if h.count() != 0 || len(h.jobDirs()) != 0 {
		t.Errorf("a dry run stored %d jobs, dirs %v", h.count(), h.jobDirs())
	}
	h.cycle(clusterA)
	if n := h.fake(clusterA).Count("Submit"); n != 0 {
		t.Errorf("a dry run reached the scheduler (%d submits)", n)
	}
	// The deck is the one a real submission renders, apart from the job id.
	deck := resp.Rendered[3].Content
	if !strings.Contains(deck, id) || !strings.Contains(deck, "task") {
		t.Errorf("deck:\n%s", deck)
	}
}

func TestDrainingRefusesSubmissions(t *testing.T) {
	h := newHarness(t)
	h.m.Drain()
	if _, err := h.m.Submit(context.Background(), testUID, water("gas")); !errors.Is(err,
		ErrDraining) {
		t.Errorf("Submit while draining: %v", err)
	}
	if h.count() != 0 || len(h.jobDirs()) != 0 {
		t.Error("a refused submission left something behind")
	}
}

func TestListAndLogs(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	a := h.submit(water("gas"))[0]
	b := h.submit(water("gas"))[0]
	other := 2000
	if _, err := h.m.Submit(ctx, other, water("gas")); err != nil {
		t.Fatal(err)
	}
	uid := testUID
	jobs, err := h.m.List(ctx, store.Filter{OwnerUID: &uid})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != b || jobs[1].ID != a {
		t.Errorf("List = %d jobs, want b then a", len(jobs))
	}
	j, _ := h.job(a)
	logs, err := h.m.Logs(ctx, j)
	if err != nil || len(logs.Files) != 0 {
		t.Errorf("logs of a queued job: %+v, %v", logs, err)
	}
	copyFile(t, waterErr, filepath.Join(h.cfg.JobsDir(), a, StderrFile))
	logs, err = h.m.Logs(ctx, j)
	if err != nil || len(logs.Files) != 1 || logs.Files[0].Name != StderrFile {
		t.Errorf("logs: %+v, %v", logs, err)
	}
}

// A split submission that cannot be stored fails as a whole: the client will send it
// again, so nothing of it may stay behind, neither rows nor directories.
func TestSplitSubmissionIsAllOrNothing(t *testing.T) {
	sdf, err := os.ReadFile(multiSDF)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	earlier := h.submit(water("gas"))[0]
	// A creation time the store cannot hold fails the insert of the batch.
	good := h.st.Now
	h.st.Now = func() time.Time { return time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }
	_, err = h.m.Submit(context.Background(), testUID, api.SubmitRequest{Filename: "m.sdf",
		Content: string(sdf), SplitRecords: true})
	h.st.Now = good
	if err == nil {
		t.Fatal("Submit succeeded with a store that cannot take the jobs")
	}
	jobs, err := h.st.List(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].ID != earlier {
		t.Fatalf("%d jobs stored (%v), want only the earlier one", len(jobs), jobs)
	}
	if d := h.jobDirs(); len(d) != 1 {
		t.Errorf("job dirs %v; the failed submission's must be gone", d)
	}
}
