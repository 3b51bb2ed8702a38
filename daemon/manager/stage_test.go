package manager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qmd/daemon/job"
	"qmd/scheduler/fake"
)

// fakeStager copies between two local trees, and fails Get while getErr is set.
type fakeStager struct {
	puts, gets int
	getErr     error
}

func (f *fakeStager) Put(ctx context.Context, localDir, remoteDir string) error {
	f.puts++
	return os.CopyFS(remoteDir, os.DirFS(localDir))
}

func (f *fakeStager) Get(ctx context.Context, remoteDir, localDir string, names []string) error {
	f.gets++
	if f.getErr != nil {
		return f.getErr
	}
	for _, n := range names {
		src := filepath.Join(remoteDir, n)
		ents, err := os.ReadDir(src)
		if err != nil {
			continue // a file, or missing
		}
		for _, e := range ents {
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				return err
			}
			dst := filepath.Join(localDir, n, e.Name())
			os.MkdirAll(filepath.Dir(dst), 0o750)
			if err := os.WriteFile(dst, data, 0o640); err != nil {
				return err
			}
		}
	}
	return nil
}

// A staged job whose outputs cannot be copied back is retried, then fails with the
// reason; it never completes from a partial copy.
func TestStagedOutputsThatCannotBeFetched(t *testing.T) {
	h := newHarness(t)
	remote := filepath.Join(h.dir, "remote")
	c := h.m.clusters[clusterA]
	st := &fakeStager{getErr: errors.New("sftp: connection lost")}
	c.stager = st
	c.cfg().RemoteRoot = remote
	h.fake(clusterA).Queue(fake.Script{fake.Running(1), fake.Exit(0, waterOut, waterErr)})
	id := h.submit(water("gas"))[0]
	h.cycle(clusterA) // submitted: staged first
	if st.puts != 1 {
		t.Fatalf("%d puts, want 1", st.puts)
	}
	if _, err := os.Stat(filepath.Join(remote, id, ScriptFile)); err != nil {
		t.Fatalf("job not staged to the remote root: %v", err)
	}
	for i := 0; i < fetchAttempts+2 && !h.state(id).Terminal(); i++ {
		h.cycle(clusterA)
		if s := h.state(id); s == job.Completed {
			t.Fatal("completed without its outputs")
		}
	}
	j, _ := h.job(id)
	if j.State != job.Failed || !strings.Contains(j.Error, "could not copy the outputs back") ||
		!strings.Contains(j.Error, "remote directory is kept") {
		t.Fatalf("state %s error %q", j.State, j.Error)
	}
	if st.gets != fetchAttempts {
		t.Errorf("%d fetch attempts, want %d", st.gets, fetchAttempts)
	}
	if _, err := os.Stat(filepath.Join(remote, id)); err != nil {
		t.Errorf("remote directory gone: %v", err)
	}
}

// A fetch that works on the second try completes the job.
func TestStagedOutputsFetchRetried(t *testing.T) {
	h := newHarness(t)
	c := h.m.clusters[clusterA]
	st := &fakeStager{getErr: errors.New("sftp: connection lost")}
	c.stager = st
	c.cfg().RemoteRoot = filepath.Join(h.dir, "remote")
	h.fake(clusterA).Queue(fake.Script{fake.Running(1), fake.Exit(0, waterOut, waterErr)})
	id := h.submit(water("gas"))[0]
	for i := 0; i < 10 && h.state(id) != job.Completing; i++ {
		h.cycle(clusterA)
	}
	if h.state(id) != job.Completing {
		t.Fatalf("state %s, want completing while the fetch fails", h.state(id))
	}
	st.getErr = nil
	h.cycle(clusterA)
	if s := h.state(id); s != job.Completed {
		t.Fatalf("state %s after a good fetch", s)
	}
}
