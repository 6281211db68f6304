package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AddVolumes adds vols, each with Origin set, to the active task id and
// its instance in one transaction, when the task's lease generation is
// gen (ErrState otherwise); a volume whose Origin and ApplianceDisk the
// task has already is skipped. Each added volume takes the task's next
// Index. It returns the task's volumes after, in Index order.
func (s *DB) AddVolumes(ctx context.Context, id string, gen int64, vols []*Volume) ([]*Volume, error) {
	var out []*Volume
	err := s.tx(ctx, func(tx *rtx) error {
		q := `SELECT account_id, state, lease_generation FROM tasks WHERE id = ?`
		if s.pg {
			q += ` FOR UPDATE` // a Claim of the task waits for this transaction
		}
		var account string
		var state TaskState
		var g int64
		err := tx.QueryRowContext(ctx, q, id).Scan(&account, &state, &g)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: task %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if state != TaskActive || g != gen {
			return fmt.Errorf("%w: task %s is %s under lease generation %d, not %d", ErrState, id, state, g, gen)
		}
		for _, v := range vols {
			if v.Origin == "" {
				return fmt.Errorf("store: volume %s added to task %s has no Origin", v.ID, id)
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM volumes WHERE task_id = ? AND origin = ? AND appliance_disk = ?`,
				id, v.Origin, v.ApplianceDisk).Scan(&n); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if n > 0 {
				continue // added by an earlier run of the task
			}
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(idx), -1) + 1 FROM volumes WHERE task_id = ?`, id).Scan(&v.Index); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if err := insertVolume(ctx, tx, account, id, v); err != nil {
				return err
			}
		}
		out, err = queryRows(ctx, tx, `SELECT `+volumeColumns+` FROM volumes WHERE task_id = ? ORDER BY idx`, scanVolume, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
