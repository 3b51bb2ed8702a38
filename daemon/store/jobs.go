package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"qmd/daemon/job"
)

// jobCols is the column order every job query selects and scanJob reads; keeping one
// list is what lets Get, List and Transition's RETURNING share a scanner.
const jobCols = `id, name, owner_uid, cluster, state, scheduler_id, sched_meta, preset,
	solvent, charge, multiplicity, level, software, template_hash, input_format, error,
	exit_code, created_at, updated_at, submitted_at, started_at, ended_at, sched_reason,
	parent_id, kind, meta`

const insertJobSQL = `INSERT INTO jobs (` + jobCols + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const insertEventSQL = `INSERT INTO job_events (job_id, at, from_state, to_state, reason)
	VALUES (?, ?, ?, ?, ?)`

// setFields applies an Update: a NULL parameter (a nil pointer in Update) keeps the
// column as it is, so one fixed statement serves every combination of fields.
const setFields = `scheduler_id = COALESCE(?, scheduler_id),
	sched_meta = COALESCE(?, sched_meta),
	error = COALESCE(?, error),
	exit_code = COALESCE(?, exit_code),
	submitted_at = COALESCE(?, submitted_at),
	started_at = COALESCE(?, started_at),
	ended_at = COALESCE(?, ended_at),
	level = COALESCE(?, level),
	software = COALESCE(?, software),
	template_hash = COALESCE(?, template_hash),
	sched_reason = COALESCE(?, sched_reason)`

// The state test in the WHERE clause is the compare-and-set: the row changes only if it
// is still where the caller saw it, and RETURNING hands back the new row in the same step.
const transitionSQL = `UPDATE jobs SET state = ?, updated_at = ?, ` + setFields + `
	WHERE id = ? AND state = ? RETURNING ` + jobCols

const updateSQL = `UPDATE jobs SET updated_at = ?, ` + setFields + ` WHERE id = ?`

// Update holds the job fields a caller may change alongside, or without, a state change.
// A nil pointer leaves the stored value alone; there is deliberately no way to set a
// field back to NULL, because nothing in a job's life un-happens.
type Update struct {
	SchedulerID, SchedMeta, Error   *string
	ExitCode                        *int
	SubmittedAt, StartedAt, EndedAt *time.Time
	Level, Software, TemplateHash   *string
	// SchedReason is the scheduler's reason for a waiting job ("" clears it).
	SchedReason *string
}

// args returns the parameters for setFields, in its order.
func (u Update) args() ([]any, error) {
	sub, err := optTime(u.SubmittedAt)
	if err != nil {
		return nil, fmt.Errorf("submitted_at: %w", err)
	}
	start, err := optTime(u.StartedAt)
	if err != nil {
		return nil, fmt.Errorf("started_at: %w", err)
	}
	end, err := optTime(u.EndedAt)
	if err != nil {
		return nil, fmt.Errorf("ended_at: %w", err)
	}
	return []any{
		optStr(u.SchedulerID), optStr(u.SchedMeta), optStr(u.Error), optInt(u.ExitCode),
		sub, start, end, optStr(u.Level), optStr(u.Software), optStr(u.TemplateHash),
		optStr(u.SchedReason),
	}, nil
}

// Filter selects jobs for List. Zero values select everything; set fields are ANDed.
type Filter struct {
	OwnerUID *int
	States   []job.State // any of these; empty means any state
	Cluster  string      // empty means any cluster
	Limit    int         // 0 means no limit
	Active   bool        // only states for which job.State.Active() is true
	// Kinds selects by kind; empty means any. The cluster loops ask for job.Schedulable,
	// since a conformer search's parent has nothing to submit or poll.
	Kinds []job.Kind
	// Parent selects the children of one job.
	Parent string
}

// Create stores a new job and its creating event (from nothing to j.State) in one
// transaction, so no job ever exists without the history saying how it began. It fills
// in CreatedAt and UpdatedAt from the store clock when they are zero. The id must have
// job.ValidID's shape, since ids end up in file paths; a taken id wraps ErrJobExists.
// CreateMany stores several new jobs, each with its first event, in ONE transaction: all
// or none. A submission of many molecules costs one commit instead of one per job.
func (s *Store) CreateMany(ctx context.Context, jobs []*job.Job, reason string) error {
	recs := make([]job.Job, len(jobs))
	now := s.now()
	for i, j := range jobs {
		if j == nil {
			return errors.New("create jobs: nil job")
		}
		if !job.ValidID(j.ID) {
			return fmt.Errorf("create job %q: malformed id", j.ID)
		}
		if !j.State.Valid() {
			return fmt.Errorf("create job %s: %w: %q", j.ID, job.ErrUnknownState, j.State)
		}
		recs[i] = *j
		if recs[i].CreatedAt.IsZero() {
			// A nanosecond apart, so the jobs keep their order (first in, first out).
			recs[i].CreatedAt = now.Add(time.Duration(i))
		}
		if recs[i].UpdatedAt.IsZero() {
			recs[i].UpdatedAt = recs[i].CreatedAt
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create jobs: begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed
	for i := range recs {
		if err := insertJob(ctx, tx, &recs[i], reason); err != nil {
			return fmt.Errorf("create job %s: %w", recs[i].ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create jobs: commit: %w", err)
	}
	for i, j := range jobs {
		j.CreatedAt, j.UpdatedAt = recs[i].CreatedAt, recs[i].UpdatedAt
	}
	return nil
}

func (s *Store) Create(ctx context.Context, j *job.Job, reason string) error {
	if j == nil {
		return errors.New("create job: nil job")
	}
	if !job.ValidID(j.ID) {
		return fmt.Errorf("create job %q: malformed id", j.ID)
	}
	if !j.State.Valid() {
		return fmt.Errorf("create job %s: %w: %q", j.ID, job.ErrUnknownState, j.State)
	}
	rec := *j
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = s.now()
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = rec.CreatedAt
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create job %s: begin: %w", j.ID, err)
	}
	defer tx.Rollback() // a no-op once committed
	if err := insertJob(ctx, tx, &rec, reason); err != nil {
		return fmt.Errorf("create job %s: %w", j.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create job %s: commit: %w", j.ID, err)
	}
	j.CreatedAt, j.UpdatedAt = rec.CreatedAt, rec.UpdatedAt
	return nil
}

// insertJob writes the row and its creating event inside tx. It is separate from Create
// so that tests can load many jobs in one transaction through the same code path.
func insertJob(ctx context.Context, tx *sql.Tx, j *job.Job, reason string) error {
	created, err := nanos(j.CreatedAt)
	if err != nil {
		return fmt.Errorf("created_at: %w", err)
	}
	updated, err := nanos(j.UpdatedAt)
	if err != nil {
		return fmt.Errorf("updated_at: %w", err)
	}
	sub, err := optTime(j.SubmittedAt)
	if err != nil {
		return fmt.Errorf("submitted_at: %w", err)
	}
	start, err := optTime(j.StartedAt)
	if err != nil {
		return fmt.Errorf("started_at: %w", err)
	}
	end, err := optTime(j.EndedAt)
	if err != nil {
		return fmt.Errorf("ended_at: %w", err)
	}
	_, err = tx.ExecContext(ctx, insertJobSQL,
		j.ID, j.Name, j.OwnerUID, j.Cluster, string(j.State), j.SchedulerID, j.SchedMeta,
		j.Preset, j.Solvent, j.Charge, j.Multiplicity, j.Level, j.Software, j.TemplateHash,
		j.InputFormat, j.Error, optInt(j.ExitCode), created, updated, sub, start, end, j.SchedReason,
		j.ParentID, string(j.Kind), j.Meta)
	if isConstraint(err, sqlite3.ErrConstraintPrimaryKey) {
		return ErrJobExists
	}
	if err != nil {
		return fmt.Errorf("insert row: %w", err)
	}
	_, err = tx.ExecContext(ctx, insertEventSQL, j.ID, created, nil, string(j.State), reason)
	if err != nil {
		return fmt.Errorf("insert creation event: %w", err)
	}
	return nil
}

// Get returns the job with id, or an error wrapping ErrJobNotFound.
func (s *Store) Get(ctx context.Context, id string) (job.Job, error) {
	row := s.r.QueryRowContext(ctx, "SELECT "+jobCols+" FROM jobs WHERE id = ?", id)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return job.Job{}, fmt.Errorf("get job %s: %w", id, ErrJobNotFound)
	}
	if err != nil {
		return job.Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// List returns the jobs matching f, newest first (ties broken by id so the order is
// stable). It is built for large listings, because the daemon lists every active job on
// each poll and at restart: a count and one query in a single read transaction, no query
// per job, rows scanned without reflection into a slice allocated once.
func (s *Store) List(ctx context.Context, f Filter) ([]job.Job, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("list jobs: negative limit %d", f.Limit)
	}
	var where []string
	var args []any
	if f.OwnerUID != nil {
		where = append(where, "owner_uid = ?")
		args = append(args, *f.OwnerUID)
	}
	if f.Cluster != "" {
		where = append(where, "cluster = ?")
		args = append(args, f.Cluster)
	}
	if len(f.States) > 0 {
		for _, st := range f.States {
			if !st.Valid() {
				return nil, fmt.Errorf("list jobs: %w: %q",
					job.ErrUnknownState, st)
			}
			args = append(args, string(st))
		}
		where = append(where, "state IN ("+placeholders(len(f.States))+")")
	}
	if f.Active {
		n := 0
		for _, st := range job.States {
			if st.Active() {
				args = append(args, string(st))
				n++
			}
		}
		where = append(where, "state IN ("+placeholders(n)+")")
	}
	if len(f.Kinds) > 0 {
		for _, k := range f.Kinds {
			args = append(args, string(k))
		}
		where = append(where, "kind IN ("+placeholders(len(f.Kinds))+")")
	}
	if f.Parent != "" {
		where = append(where, "parent_id = ?")
		args = append(args, f.Parent)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}

	// The count sizes the result exactly: appending one by one would grow a slice of
	// these large structs by about 1.25x at a time, allocating and copying several times
	// the final size on a big listing. Count and rows come from one read transaction so
	// they see the same snapshot.
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list jobs: begin: %w", err)
	}
	defer tx.Rollback() // read-only; nothing to keep
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM jobs"+cond, args...).
		Scan(&n); err != nil {
		return nil, fmt.Errorf("list jobs: count: %w", err)
	}
	q := "SELECT " + jobCols + " FROM jobs" + cond + " ORDER BY created_at DESC, id"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
		n = min(n, f.Limit)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	out := make([]job.Job, 0, n)
	r := newJobRow()
	for rows.Next() {
		j, err := r.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// History returns the job's events oldest first. The order is the insertion order (the
// autoincrement id), not the timestamps, so a clock that steps backwards cannot reorder
// it. A job with no events does not exist, as Create always writes one.
func (s *Store) History(ctx context.Context, id string) ([]job.Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT at, from_state, to_state, reason
		FROM job_events WHERE job_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("history of job %s: %w", id, err)
	}
	defer rows.Close()
	var out []job.Event
	for rows.Next() {
		var at intCol
		var from sql.NullString
		var to, reason string
		if err := rows.Scan(&at, &from, &to, &reason); err != nil {
			return nil, fmt.Errorf("history of job %s: %w", id, err)
		}
		out = append(out, job.Event{
			JobID: id, At: fromNanos(at.v), From: job.State(from.String),
			To: job.State(to), Reason: reason,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of job %s: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("history of job %s: %w", id, ErrJobNotFound)
	}
	return out, nil
}

// Transition moves job id from `from` to `to` and applies u, as one compare-and-set in
// the same transaction as the event insert, so history and state always agree.
//
// A move the job package forbids (including from == to) wraps job.ErrIllegalTransition
// and touches nothing. If the row is not in `from`, the error wraps ErrConflict and names
// the state it is actually in; the caller should reload and decide again rather than
// retry blindly. A missing job wraps ErrJobNotFound. The returned job is the stored row
// after the move.
func (s *Store) Transition(ctx context.Context, id string, from, to job.State, reason string,
	u Update) (job.Job, error) {
	if err := job.CheckMove(from, to); err != nil {
		return job.Job{}, fmt.Errorf("transition job %s: %w", id, err)
	}
	fields, err := u.args()
	if err != nil {
		return job.Job{}, fmt.Errorf("transition job %s: %w", id, err)
	}
	at, err := nanos(s.now())
	if err != nil {
		return job.Job{}, fmt.Errorf("transition job %s: clock: %w", id, err)
	}

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return job.Job{}, fmt.Errorf("transition job %s: begin: %w", id, err)
	}
	defer tx.Rollback() // a no-op once committed

	args := make([]any, 0, len(fields)+4)
	args = append(args, string(to), at)
	args = append(args, fields...)
	args = append(args, id, string(from))
	j, err := scanJob(tx.QueryRowContext(ctx, transitionSQL, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var cur string
		err := tx.QueryRowContext(ctx, "SELECT state FROM jobs WHERE id = ?", id).
			Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return job.Job{}, fmt.Errorf("transition job %s: %w", id, ErrJobNotFound)
		}
		if err != nil {
			return job.Job{}, fmt.Errorf("transition job %s: read current state: %w",
				id, err)
		}
		return job.Job{}, fmt.Errorf("transition job %s %s → %s: %w: it is %s",
			id, from, to, ErrConflict, cur)
	}
	if err != nil {
		return job.Job{}, fmt.Errorf("transition job %s: update row: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, insertEventSQL, id, at, string(from), string(to),
		reason); err != nil {
		return job.Job{}, fmt.Errorf("transition job %s: insert event: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return job.Job{}, fmt.Errorf("transition job %s: commit: %w", id, err)
	}
	if s.OnMove != nil {
		s.OnMove(from, to)
	}
	return j, nil
}

// Update changes fields of job id without touching its state, for facts learned while a
// job stays where it is (a scheduler id assigned, an exit code read late).
func (s *Store) Update(ctx context.Context, id string, u Update) error {
	fields, err := u.args()
	if err != nil {
		return fmt.Errorf("update job %s: %w", id, err)
	}
	at, err := nanos(s.now())
	if err != nil {
		return fmt.Errorf("update job %s: clock: %w", id, err)
	}
	args := make([]any, 0, len(fields)+2)
	args = append(args, at)
	args = append(args, fields...)
	args = append(args, id)
	res, err := s.w.ExecContext(ctx, updateSQL, args...)
	if err != nil {
		return fmt.Errorf("update job %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update job %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("update job %s: %w", id, ErrJobNotFound)
	}
	return nil
}

// SaveResult stores (or replaces) the parsed result of job id. data must be valid JSON:
// it is checked here so a parser bug fails at the write, not when a user asks later.
func (s *Store) SaveResult(ctx context.Context, id string, data []byte) error {
	if !json.Valid(data) {
		return fmt.Errorf("save result of job %s: data is not valid JSON", id)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO results (job_id, json) VALUES (?, ?)
		ON CONFLICT (job_id) DO UPDATE SET json = excluded.json`, id, string(data))
	if isConstraint(err, sqlite3.ErrConstraintForeignKey) {
		return fmt.Errorf("save result of job %s: %w", id, ErrJobNotFound)
	}
	if err != nil {
		return fmt.Errorf("save result of job %s: %w", id, err)
	}
	return nil
}

// Result returns the stored result of job id. It wraps ErrJobNotFound both when the job
// does not exist and when it has no result yet: either way there is nothing to show.
func (s *Store) Result(ctx context.Context, id string) ([]byte, error) {
	var data string
	err := s.r.QueryRowContext(ctx, "SELECT json FROM results WHERE job_id = ?", id).
		Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("result of job %s: %w", id, ErrJobNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("result of job %s: %w", id, err)
	}
	return []byte(data), nil
}

// CountByState returns how many jobs each cluster has in each state, for metrics and
// capacity checks; it is answered from the (cluster, state) index without reading rows.
func (s *Store) CountByState(ctx context.Context) (map[string]map[job.State]int, error) {
	rows, err := s.r.QueryContext(ctx,
		"SELECT cluster, state, COUNT(*) FROM jobs GROUP BY cluster, state")
	if err != nil {
		return nil, fmt.Errorf("count jobs by state: %w", err)
	}
	defer rows.Close()
	out := make(map[string]map[job.State]int)
	for rows.Next() {
		var cluster, state string
		var n intCol
		if err := rows.Scan(&cluster, &state, &n); err != nil {
			return nil, fmt.Errorf("count jobs by state: %w", err)
		}
		if out[cluster] == nil {
			out[cluster] = make(map[job.State]int)
		}
		out[cluster][job.State(state)] = int(n.v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count jobs by state: %w", err)
	}
	return out, nil
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

// scanJob reads one row in jobCols order, for the single-row queries.
func scanJob(sc scanner) (job.Job, error) { return newJobRow().scan(sc) }

// jobRow holds the scan destinations for rows in jobCols order. List allocates one per
// query and reuses it for every row: handing fresh locals to Scan would move each of
// them, and the whole job.Job, to the heap once per row, and at ten thousand rows that
// garbage costs more than reading the database. Strings scan straight into the struct;
// integers go through intCol and nullIntCol, which database/sql calls directly instead
// of converting by reflection.
type jobRow struct {
	j                                     job.Job
	state, kind                           string
	owner, charge, mult, created, updated intCol
	exit, sub, start, end                 nullIntCol
	dest                                  []any
}

func newJobRow() *jobRow {
	r := &jobRow{}
	j := &r.j
	r.dest = []any{&j.ID, &j.Name, &r.owner, &j.Cluster, &r.state, &j.SchedulerID,
		&j.SchedMeta, &j.Preset, &j.Solvent, &r.charge, &r.mult, &j.Level, &j.Software,
		&j.TemplateHash, &j.InputFormat, &j.Error, &r.exit, &r.created, &r.updated, &r.sub,
		&r.start, &r.end, &j.SchedReason, &j.ParentID, &r.kind, &j.Meta}
	return r
}

// scan reads the current row and returns it as a job that shares nothing with r.
func (r *jobRow) scan(sc scanner) (job.Job, error) {
	r.j = job.Job{}
	if err := sc.Scan(r.dest...); err != nil {
		return job.Job{}, err
	}
	j := r.j
	j.State, j.Kind = job.State(r.state), job.Kind(r.kind)
	j.OwnerUID, j.Charge, j.Multiplicity = int(r.owner.v), int(r.charge.v), int(r.mult.v)
	j.CreatedAt, j.UpdatedAt = fromNanos(r.created.v), fromNanos(r.updated.v)
	if r.exit.ok {
		v := int(r.exit.v)
		j.ExitCode = &v
	}
	j.SubmittedAt, j.StartedAt, j.EndedAt = r.sub.time(), r.start.time(), r.end.time()
	return j, nil
}

// intCol scans a NOT NULL INTEGER column.
type intCol struct{ v int64 }

func (c *intCol) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("want an integer, got %T", src)
	}
	c.v = v
	return nil
}

// nullIntCol scans a nullable INTEGER column.
type nullIntCol struct {
	v  int64
	ok bool
}

func (c *nullIntCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		c.v, c.ok = 0, false
	case int64:
		c.v, c.ok = v, true
	default:
		return fmt.Errorf("want an integer or NULL, got %T", src)
	}
	return nil
}

// time returns the column as a time, or nil for NULL.
func (c nullIntCol) time() *time.Time {
	if !c.ok {
		return nil
	}
	t := fromNanos(c.v)
	return &t
}

// Times are stored as unix nanoseconds, which int64 can hold only for these years.
const minYear, maxYear = 1678, 2261

// nanos converts t for storage, refusing times the column cannot represent (a zero
// time.Time among them) rather than storing a wrapped-around value.
func nanos(t time.Time) (int64, error) {
	if y := t.Year(); y < minYear || y > maxYear {
		return 0, fmt.Errorf("time %s is outside %d..%d",
			t.Format(time.RFC3339), minYear, maxYear)
	}
	return t.UnixNano(), nil
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func optTime(t *time.Time) (any, error) {
	if t == nil {
		return nil, nil
	}
	return nanos(*t)
}

func optStr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func optInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
