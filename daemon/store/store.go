// Package store keeps jobs, their state history and their results in one SQLite file.
//
// The daemon must never lose, forget or duplicate a job, so every write that changes a
// job's state also records the event in the same transaction, every commit is fsynced
// (synchronous=FULL), and state changes are compare-and-set so two goroutines or two
// processes acting on the same job cannot both win.
package store

import (
	"qmd/daemon/job"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// ErrJobNotFound is returned, wrapped, when no job (or no result) exists for an id.
var ErrJobNotFound = errors.New("job not found")

// ErrConflict is returned, wrapped, when a compare-and-set lost: the row was not in the
// state the caller expected, usually because another writer moved it first.
var ErrConflict = errors.New("job changed concurrently")

// ErrJobExists is returned, wrapped, by Create when the id is already taken. Callers that
// draw random ids can test for it and draw again instead of failing the submission.
var ErrJobExists = errors.New("job already exists")

// ErrSchemaTooNew is returned, wrapped, by Open when the database was migrated by a newer
// binary. Running an older binary on it could misread or clobber columns it does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Store is the job database. It is safe for concurrent use.
//
// Writes go through a pool of exactly one connection: SQLite allows one writer at a time
// anyway, and queueing writers inside the process is cheaper and fairer than having them
// spin on SQLITE_BUSY. Reads use their own pool so a long listing never waits for a write,
// which WAL mode allows.
type Store struct {
	w *sql.DB // the single writer connection; every transaction is BEGIN IMMEDIATE
	r *sql.DB // readers; query_only so a mistake cannot write outside the writer's queue

	// Now is the clock for every time the store stamps (created, updated, event times).
	// Tests replace it to get deterministic times; it must be set before the Store is
	// shared between goroutines. Its result is converted to UTC.
	Now func() time.Time

	// OnMove, if set, is called after each committed state transition (metrics count
	// them here, where every path that moves a job passes). Set it before sharing.
	OnMove func(from, to job.State)
}

// Pragmas passed to every connection. Synchronous must be FULL: in WAL mode the driver
// would otherwise pick NORMAL, under which a power cut can roll back a committed job
// and the client, having been told "accepted", submits it again.
const baseParams = "_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_foreign_keys=on"

// dsn builds the driver URI for path. The path is percent-escaped where the URI syntax
// would otherwise swallow it: '?' and '#' would end the path and '%' would start an escape.
func dsn(path string, reader bool) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	if reader {
		// Deferred (the default) locking for readers: an immediate BEGIN would take
		// the write lock and serialise readers behind the writer. _mutex=no drops
		// SQLite's per-call connection mutex, which costs about a sixth of a large
		// List; it is safe because database/sql never uses one connection from two
		// goroutines at once, and the writer keeps the mutex all the same.
		return "file:" + esc + "?" + baseParams + "&_query_only=on&_mutex=no"
	}
	return "file:" + esc + "?" + baseParams + "&_txlock=immediate"
}

// Open opens or creates the database at path, checks that the durability settings took
// effect, and migrates the schema to the version this binary knows.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	migs, err := loadMigrations(migrationFS)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}

	w, err := sql.Open("sqlite3", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := checkPragmas(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := migrate(ctx, w, migs); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}

	r, err := sql.Open("sqlite3", dsn(abs, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	n := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n) // keep them: opening a connection runs a dozen pragmas
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open store %s: read pool: %w", abs, err)
	}
	return &Store{w: w, r: r, Now: time.Now}, nil
}

// prepareFile creates the database file with mode 0600 before SQLite sees it, because
// SQLite copies the main file's permissions onto its -wal and -shm files; it also
// tightens files left by an older run so job data is never readable by other users.
func prepareFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if fi.Mode().Perm() != 0o600 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("restrict %s to 0600: %w", p, err)
			}
		}
	}
	return nil
}

// checkPragmas reads the settings back from the writer connection. The driver applies
// DSN options silently and a typo, a driver change or a filesystem that cannot do WAL
// would otherwise leave the daemon running with weaker durability than it promises.
func checkPragmas(ctx context.Context, w *sql.DB) error {
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var syncMode, fk int
	if err := w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
		return fmt.Errorf("read synchronous: %w", err)
	}
	if syncMode != 2 {
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", syncMode)
	}
	if err := w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return fmt.Errorf("read foreign_keys: %w", err)
	}
	if fk != 1 {
		return fmt.Errorf("foreign_keys is %d, want 1", fk)
	}
	return nil
}

// Close closes both connection pools. SQLite checkpoints the WAL when the last
// connection closes.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// now returns the store clock's time in UTC, which also drops the monotonic reading so
// that a stored and reloaded time compares equal with ==.
func (s *Store) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// isConstraint reports whether err is the SQLite constraint failure with extended code.
func isConstraint(err error, code sqlite3.ErrNoExtended) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == code
}
