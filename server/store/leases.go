package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Claim gives server the oldest active, unexpired task without a live
// lease, under a new lease generation; nil when there is none.
func (s *DB) Claim(ctx context.Context, server string, lease time.Duration) (*Task, error) {
	var id, prev string
	now := s.now()
	err := s.tx(ctx, func(tx *rtx) error {
		q := `SELECT id, lease_owner FROM tasks WHERE state = ? AND lease_expires < ? AND expiration > ? ORDER BY seq LIMIT 1`
		if s.pg {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		err := tx.QueryRowContext(ctx, q, string(TaskActive), unix(now), unix(now)).Scan(&id, &prev)
		if errors.Is(err, sql.ErrNoRows) {
			id = ""
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		var gen int64
		if err := tx.QueryRowContext(ctx, `UPDATE tasks SET lease_owner = ?, lease_generation = lease_generation + 1, lease_expires = ?
			WHERE id = ? RETURNING lease_generation`, server, unix(now.Add(lease)), id).Scan(&gen); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO task_claims VALUES (?, ?, ?, ?)`, id, gen, server, unix(now)); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
	if err != nil || id == "" {
		return nil, err
	}
	tasks, err := s.queryTasks(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("%w: task %s", ErrNotFound, id)
	}
	t := tasks[0]
	if prev != "" && prev != server {
		t.TakenOverFrom = prev
	}
	return t, nil
}

// Renew extends the lease of generation gen on an active task.
func (s *DB) Renew(ctx context.Context, id string, gen int64, lease time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE tasks SET lease_expires = ? WHERE id = ? AND lease_generation = ? AND state = ?`,
		unix(s.now().Add(lease)), id, gen, string(TaskActive))
	return fenced(res, err, "task "+id)
}

// CheckLease returns ErrState unless the task is active under gen.
func (s *DB) CheckLease(ctx context.Context, id string, gen int64) error {
	var state TaskState
	var g int64
	err := s.db.QueryRowContext(ctx, `SELECT state, lease_generation FROM tasks WHERE id = ?`, id).Scan(&state, &g)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: task %s", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if state != TaskActive || g != gen {
		return fmt.Errorf("%w: task %s is %s under lease generation %d, not %d", ErrState, id, state, g, gen)
	}
	return nil
}

// Release ends every lease server holds.
func (s *DB) Release(ctx context.Context, server string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE tasks SET lease_expires = 0 WHERE lease_owner = ?`, server); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Claims returns a task's claim history, oldest first.
func (s *DB) Claims(ctx context.Context, id string) ([]Claim, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT generation, server, claimed FROM task_claims WHERE task_id = ? ORDER BY generation`, id)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []Claim
	for rows.Next() {
		var c Claim
		var at int64
		if err := rows.Scan(&c.Generation, &c.Server, &at); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		c.Claimed = fromUnix(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// OrphanedVolumes lists the deleted volumes whose files server holds.
func (s *DB) OrphanedVolumes(ctx context.Context, server string) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM volumes WHERE server = ? AND state = ? ORDER BY id`, server, string(VolumeDeleted))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ForgetVolume records that server removed a deleted volume's file.
func (s *DB) ForgetVolume(ctx context.Context, id, server string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE volumes SET server = '' WHERE id = ? AND server = ? AND state = ?`, id, server, string(VolumeDeleted)); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
