package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"qmd/daemon/job"
)

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenFreshAppliesMigrations(t *testing.T) {
	s, _ := openTest(t)
	migs, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if got := userVersion(t, s.w); got != len(migs) {
		t.Errorf("user_version = %d, want %d", got, len(migs))
	}
	for _, table := range []string{"jobs", "job_events", "results"} {
		var n int
		err := s.r.QueryRow("SELECT COUNT(*) FROM sqlite_schema"+
			" WHERE type = 'table' AND name = ?", table).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("table %s: count %d, err %v", table, n, err)
		}
	}
}

func TestReopenIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "qmd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	j := newJob(1, job.Queued)
	if err := s.Create(ctx, &j, "submit"); err != nil {
		t.Fatal(err)
	}
	want := userVersion(t, s.w)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got := userVersion(t, s.w); got != want {
			t.Errorf("user_version after reopen = %d, want %d", got, want)
		}
		got, err := s.Get(ctx, j.ID)
		if err != nil || got.ID != j.ID {
			t.Errorf("job after reopen: %+v, %v", got, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "qmd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "downgrade") || !strings.Contains(err.Error(), "99") {
		t.Errorf("error does not explain the downgrade: %v", err)
	}
}

func TestPragmasReadBack(t *testing.T) {
	s, _ := openTest(t)
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
	}
	for _, tt := range tests {
		var got string
		if err := s.w.QueryRow("PRAGMA " + tt.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %s, want %s", tt.pragma, got, tt.want)
		}
	}
	// The read pool must not be able to write behind the writer's back.
	if _, err := s.r.Exec("PRAGMA user_version = 7"); err == nil {
		t.Error("read pool accepted a write")
	}
}

func TestWriterPoolIsOneConnection(t *testing.T) {
	s, _ := openTest(t)
	if got := s.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer MaxOpenConnections = %d, want 1", got)
	}
}

func TestFileMode(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		existing os.FileMode // 0: the file does not exist before Open
	}{
		{"fresh", 0},
		{"existing world-readable", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "qmd.db")
			if tt.existing != 0 {
				if err := os.WriteFile(path, nil, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			j := newJob(1, job.Queued)
			if err := s.Create(ctx, &j, ""); err != nil { // makes the -wal file exist
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600",
						filepath.Base(p), fi.Mode().Perm())
				}
			}
		})
	}
}

func TestOpenPathNeedsEscaping(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a?b#c%41 d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "qmd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j := newJob(1, job.Queued)
	if err := s.Create(ctx, &j, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the literal path: %v", err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("WAL not beside the literal path: %v", err)
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := Open(context.Background(), ""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestLoadMigrations(t *testing.T) {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantN   int
		wantErr bool
	}{
		{"embedded", nil, -1, false},
		{"two", fstest.MapFS{
			"migrations/0001_a.sql": f("CREATE TABLE a (x);"),
			"migrations/0002_b.sql": f("CREATE TABLE b (x);"),
		}, 2, false},
		{"gap", fstest.MapFS{
			"migrations/0001_a.sql": f(""),
			"migrations/0003_c.sql": f(""),
		}, 0, true},
		{"repeat", fstest.MapFS{
			"migrations/0001_a.sql": f(""),
			"migrations/0001_b.sql": f(""),
		}, 0, true},
		{"starts at 2", fstest.MapFS{"migrations/0002_b.sql": f("")}, 0, true},
		{"bad name", fstest.MapFS{"migrations/1_a.sql": f("")}, 0, true},
		{"empty", fstest.MapFS{"migrations/.keep": f("")}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var migs []migration
			var err error
			if tt.fsys == nil {
				migs, err = loadMigrations(migrationFS)
			} else {
				migs, err = loadMigrations(tt.fsys)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantN >= 0 && len(migs) != tt.wantN {
				t.Errorf("got %d migrations, want %d", len(migs), tt.wantN)
			}
			for i, m := range migs {
				if m.version != i+1 {
					t.Errorf("migration %d has version %d", i, m.version)
				}
			}
		})
	}
}

// A failing migration must leave the database at the previous version with none of the
// failing file's statements applied, so a fixed binary can simply try again.
func TestMigrationFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	migs, err := loadMigrations(fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x);")},
		"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (x); THIS IS NOT SQL;")},
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", dsn(filepath.Join(t.TempDir(), "m.db"), false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := migrate(ctx, db, migs); err == nil || !strings.Contains(err.Error(), "0002_b") {
		t.Fatalf("migrate: err = %v, want a failure naming 0002_b", err)
	}
	if got := userVersion(t, db); got != 1 {
		t.Errorf("user_version = %d, want 1", got)
	}
	var n int
	const q = "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('a', 'b')"
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d of tables a, b exist, want only a", n)
	}
}

// checkPragmas is the guard against the driver quietly applying weaker settings; it must
// refuse each one that differs from what durability needs.
func TestCheckPragmasRefusesMismatch(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, params, wantMsg string
	}{
		{"synchronous normal", "_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=on",
			"synchronous"},
		{"rollback journal", "_journal_mode=DELETE&_synchronous=FULL&_foreign_keys=on",
			"journal_mode"},
		{"no foreign keys", "_journal_mode=WAL&_synchronous=FULL&_foreign_keys=off",
			"foreign_keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.db")
			db, err := sql.Open("sqlite3", "file:"+path+"?"+tt.params)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			err = checkPragmas(ctx, db)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("checkPragmas = %v, want an error about %s",
					err, tt.wantMsg)
			}
		})
	}
}
