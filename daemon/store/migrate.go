package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
)

// The schema lives in numbered SQL files compiled into the binary, so a binary always
// carries exactly the schema history it was tested with.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one schema step; applying it moves PRAGMA user_version to version.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads migrations/NNNN_name.sql from fsys. Versions must run 1, 2, 3...
// without gaps or repeats: a gap would make user_version ambiguous about what was applied.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries { // ReadDir returns names sorted
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("migration %q: name is not NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(out)+1 {
			return nil, fmt.Errorf("migration %q: version %d, want %d",
				e.Name(), v, len(out)+1)
		}
		b, err := fs.ReadFile(fsys, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	if len(out) == 0 {
		return nil, errors.New("no migrations found")
	}
	return out, nil
}

// migrate brings the database up to the newest migration, one transaction per step.
// Each step re-reads user_version inside its own write transaction, so two processes
// opening the same fresh file at once cannot both apply the same step.
func migrate(ctx context.Context, w *sql.DB, migs []migration) error {
	for {
		done, err := migrateStep(ctx, w, migs)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next pending migration, or reports done when there is none.
func migrateStep(ctx context.Context, w *sql.DB, migs []migration) (done bool, err error) {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed

	var cur int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return false, fmt.Errorf("migrate: read user_version: %w", err)
	}
	switch {
	case cur > len(migs):
		return false, fmt.Errorf("%w: database is at version %d, this binary knows"+
			" up to %d; refusing to downgrade", ErrSchemaTooNew, cur, len(migs))
	case cur == len(migs):
		return true, nil
	case cur < 0:
		return false, fmt.Errorf("migrate: user_version is %d,"+
			" not a version this store wrote", cur)
	}
	m := migs[cur]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migrate: apply %s: %w", m.name, err)
	}
	// PRAGMA takes no bound parameters; version is an int from our own file name.
	setVersion := fmt.Sprintf("PRAGMA user_version = %d", m.version)
	if _, err := tx.ExecContext(ctx, setVersion); err != nil {
		return false, fmt.Errorf("migrate: set user_version %d: %w", m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate: commit %s: %w", m.name, err)
	}
	return false, nil
}
