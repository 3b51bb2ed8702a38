package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"qmd/ctl/api"
	"qmd/daemon/job"
	"qmd/daemon/store"
)

// ErrFinished is returned when an action needs a job that has not ended, or the reverse.
var ErrFinished = errors.New("job state does not allow this")

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }

// Job returns one job with its history. The row and the events are two reads, and a poll
// may move the job between them; they are read again until they agree, so nobody is
// shown a job whose history ends in another state than the one it is in.
func (m *Manager) Job(ctx context.Context, id string) (job.Job, []job.Event, error) {
	var j job.Job
	var h []job.Event
	for range 5 {
		var err error
		if j, err = m.st.Get(ctx, id); err != nil {
			return job.Job{}, nil, err
		}
		if h, err = m.st.History(ctx, id); err != nil {
			return job.Job{}, nil, err
		}
		if h[len(h)-1].To == j.State {
			break
		}
	}
	return j, h, nil
}

// List returns jobs, newest first.
func (m *Manager) List(ctx context.Context, f store.Filter) ([]job.Job, error) {
	return m.st.List(ctx, f)
}

// Result returns a completed job's stored result (JSON).
func (m *Manager) Result(ctx context.Context, j job.Job) ([]byte, error) {
	if j.State != job.Completed {
		return nil, fmt.Errorf("%w: job %s is %s; results exist once it is completed",
			ErrFinished, j.ID, j.State)
	}
	return m.st.Result(ctx, j.ID)
}

// logTail is how much of each log a request returns.
const logTail = 256 << 10

// Logs returns the tails of a job's log files.
func (m *Manager) Logs(ctx context.Context, j job.Job) (api.Logs, error) {
	dir := m.jobDir(j)
	out := api.Logs{ID: j.ID, Files: []api.LogFile{}}
	for _, name := range []string{OutputFile, StderrFile, "logs/wrapper.log"} {
		content, truncated, err := tail(filepath.Join(dir, name), logTail)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return api.Logs{}, fmt.Errorf("read %s: %w", name, err)
		}
		out.Files = append(out.Files, api.LogFile{Name: name, Content: content, Truncated: truncated})
	}
	return out, nil
}

func tail(path string, n int64) (string, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", false, err
	}
	truncated := st.Size() > n
	if truncated {
		if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
			return "", false, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, n))
	return string(b), truncated, err
}
