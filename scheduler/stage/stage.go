// Package stage copies job directories to a cluster and outputs back, over SFTP on the
// cluster's one SSH connection. A copy is never taken for a result until every file's
// size matches its source, so a half-copied output cannot be parsed as a finished run.
package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
)

// Client opens SFTP clients; sshrunner.Runner is one.
type Client interface {
	SFTP(ctx context.Context) (*sftp.Client, func(), error)
}

// Stager moves job directories between this machine and one cluster.
type Stager struct {
	C Client
}

// Put copies the regular files of localDir (and its subdirectories) to remoteDir,
// creating directories as needed. It is safe to repeat: files are rewritten whole.
func (s Stager) Put(ctx context.Context, localDir, remoteDir string) error {
	cl, done, err := s.C.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("stage %s: %w", remoteDir, err)
	}
	defer done()

	return filepath.WalkDir(localDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, err := filepath.Rel(localDir, p)
		if err != nil {
			return err
		}
		remote := path.Join(remoteDir, filepath.ToSlash(rel))
		if d.IsDir() {
			if err := cl.MkdirAll(remote); err != nil {
				return fmt.Errorf("stage: mkdir %s: %w", remote, err)
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return putFile(cl, p, remote, info.Mode().Perm())
	})
}

func putFile(cl *sftp.Client, local, remote string, mode os.FileMode) error {
	src, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("stage %s: %w", local, err)
	}
	defer src.Close()
	tmp := remote + ".qmd-part"
	dst, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("stage: create %s: %w", tmp, err)
	}
	n, err := io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("stage: write %s: %w", remote, err)
	}
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if n != st.Size() {
		return fmt.Errorf("stage: %s: wrote %d of %d bytes", remote, n, st.Size())
	}
	if err := cl.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("stage: chmod %s: %w", tmp, err)
	}
	// PosixRename replaces an existing file in one step where the server supports it.
	if err := cl.PosixRename(tmp, remote); err != nil {
		if err := cl.Rename(tmp, remote); err != nil {
			return fmt.Errorf("stage: rename %s: %w", remote, err)
		}
	}
	return nil
}

// ErrIncomplete marks a copy whose size did not match the source.
var ErrIncomplete = errors.New("copy incomplete")

// Get copies the named files (relative to the job directory; a trailing "/" names every
// regular file of a directory) from remoteDir into localDir, each through a temporary
// file renamed into place only once its size matches the remote file's. Missing files
// are skipped; they are reported by the caller's own checks (no output is a failure).
func (s Stager) Get(ctx context.Context, remoteDir, localDir string, names []string) error {
	cl, done, err := s.C.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", remoteDir, err)
	}
	defer done()

	var files []string
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			files = append(files, n)
			continue
		}
		ents, err := cl.ReadDir(path.Join(remoteDir, n))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("fetch: list %s: %w", n, err)
		}
		for _, e := range ents {
			if e.Mode().IsRegular() {
				files = append(files, n+e.Name())
			}
		}
	}
	for _, f := range files {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := getFile(cl, path.Join(remoteDir, f), filepath.Join(localDir,
			filepath.FromSlash(f))); err != nil {
			return err
		}
	}
	return nil
}

func getFile(cl *sftp.Client, remote, local string) error {
	st, err := cl.Stat(remote)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch: stat %s: %w", remote, err)
	}
	src, err := cl.Open(remote)
	if err != nil {
		return fmt.Errorf("fetch: open %s: %w", remote, err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(local), 0o750); err != nil {
		return err
	}
	tmp := local + ".qmd-part"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	n, err := io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fetch %s: %w", remote, err)
	}
	if n != st.Size() {
		os.Remove(tmp)
		return fmt.Errorf("fetch %s: %w: got %d of %d bytes", remote, ErrIncomplete, n,
			st.Size())
	}
	return os.Rename(tmp, local)
}
