package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"qmd/daemon/job"
)

// Change is one job's part of a batch: a state move with its event when To differs from
// From, or a fields-only update (To == From, no event) otherwise.
type Change struct {
	ID       string
	From, To job.State
	Reason   string
	Update   Update
}

// Apply writes many changes in ONE transaction, so a poll cycle that sees a hundred jobs
// change costs one commit (one fsync) instead of a hundred. Each move is the same
// compare-and-set as Transition; a change that is illegal or lost its race gets its own
// error in the returned slice (nil where it was written) and does not stop the others.
// The returned error is for the batch as a whole: when it is set, nothing was written.
func (s *Store) Apply(ctx context.Context, changes []Change) ([]error, error) {
	errs := make([]error, len(changes))
	if len(changes) == 0 {
		return errs, nil
	}
	at, err := nanos(s.now())
	if err != nil {
		return nil, fmt.Errorf("apply changes: clock: %w", err)
	}

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("apply changes: begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed

	move, err := tx.PrepareContext(ctx, `UPDATE jobs SET state = ?, updated_at = ?, `+
		setFields+` WHERE id = ? AND state = ?`)
	if err != nil {
		return nil, fmt.Errorf("apply changes: prepare: %w", err)
	}
	defer move.Close()
	update, err := tx.PrepareContext(ctx, updateSQL)
	if err != nil {
		return nil, fmt.Errorf("apply changes: prepare: %w", err)
	}
	defer update.Close()
	event, err := tx.PrepareContext(ctx, insertEventSQL)
	if err != nil {
		return nil, fmt.Errorf("apply changes: prepare: %w", err)
	}
	defer event.Close()

	for i, c := range changes {
		fields, err := c.Update.args()
		if err != nil {
			errs[i] = fmt.Errorf("job %s: %w", c.ID, err)
			continue
		}
		if c.From == c.To {
			args := append([]any{at}, fields...)
			res, err := update.ExecContext(ctx, append(args, c.ID)...)
			if err != nil {
				return nil, fmt.Errorf("apply changes: update job %s: %w", c.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				errs[i] = fmt.Errorf("update job %s: %w", c.ID, ErrJobNotFound)
			}
			continue
		}
		if err := job.CheckMove(c.From, c.To); err != nil {
			errs[i] = fmt.Errorf("transition job %s: %w", c.ID, err)
			continue
		}
		args := make([]any, 0, len(fields)+4)
		args = append(args, string(c.To), at)
		args = append(args, fields...)
		args = append(args, c.ID, string(c.From))
		res, err := move.ExecContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("apply changes: transition job %s: %w", c.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			errs[i] = s.whyNot(ctx, tx, c)
			continue
		}
		if _, err := event.ExecContext(ctx, c.ID, at, string(c.From), string(c.To),
			c.Reason); err != nil {
			return nil, fmt.Errorf("apply changes: insert event for %s: %w", c.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("apply changes: commit: %w", err)
	}
	if s.OnMove != nil {
		for i, c := range changes {
			if errs[i] == nil && c.From != c.To {
				s.OnMove(c.From, c.To)
			}
		}
	}
	return errs, nil
}

// whyNot explains a move that matched no row: the job is gone, or in another state.
func (s *Store) whyNot(ctx context.Context, tx *sql.Tx, c Change) error {
	var cur string
	err := tx.QueryRowContext(ctx, "SELECT state FROM jobs WHERE id = ?", c.ID).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("transition job %s: %w", c.ID, ErrJobNotFound)
	}
	if err != nil {
		return fmt.Errorf("transition job %s: read current state: %w", c.ID, err)
	}
	return fmt.Errorf("transition job %s %s → %s: %w: it is %s", c.ID, c.From, c.To,
		ErrConflict, cur)
}
