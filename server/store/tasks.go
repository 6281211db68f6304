package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

const taskColumns = `id, account_id, kind, state, status_message, description, availability_zone, platform, instance_id, expiration, created, updated, lease_owner, lease_generation, lease_expires, client_token, params_hash, image_id, architecture, license_type, boot_mode, export_format, export_container, export_target, s3_bucket, s3_prefix, role_name`

const volumeColumns = `id, account_id, task_id, instance_id, idx, size, availability_zone, state, created, description, format, bytes, manifest_url, bytes_converted, status, status_message, server, origin, appliance_disk, kind, device_name, source_snapshot, virtual_size`

// CreateTask stores a new task with its volumes and, for ImportInstance,
// its instance, atomically.
func (s *DB) CreateTask(ctx context.Context, t *Task, inst *Instance) error {
	return s.tx(ctx, func(tx *rtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tasks (`+taskColumns+`, seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM tasks))`,
			t.ID, t.AccountID, string(t.Kind), string(t.State), t.StatusMessage, t.Description, t.AvailabilityZone,
			t.Platform, t.InstanceID, unix(t.Expiration), unix(t.Created), unix(t.Updated), t.LeaseOwner, t.LeaseGeneration, unix(t.LeaseExpires),
			t.ClientToken, t.ParamsHash, t.ImageID, t.Architecture, t.LicenseType, t.BootMode,
			t.ExportFormat, t.ExportContainer, t.ExportTarget, t.S3Bucket, t.S3Prefix, t.RoleName)
		if isUnique(err) {
			if t.ClientToken != "" {
				return fmt.Errorf("%w: task %s or client token %s", ErrExists, t.ID, t.ClientToken)
			}
			return fmt.Errorf("%w: task %s", ErrExists, t.ID)
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		for _, v := range t.Volumes {
			if err := insertVolume(ctx, tx, t.AccountID, t.ID, v); err != nil {
				return err
			}
		}
		if err := insertTags(ctx, tx, t.AccountID, t.Tags); err != nil {
			return err
		}
		if inst != nil {
			_, err := tx.ExecContext(ctx, `INSERT INTO instances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				inst.ID, t.AccountID, t.ID, string(inst.State), inst.InstanceType, inst.Platform, inst.Architecture,
				inst.AvailabilityZone, b2i(inst.Monitoring), unix(inst.Launched))
			if isUnique(err) {
				return fmt.Errorf("%w: instance %s", ErrExists, inst.ID)
			}
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
		return nil
	})
}

// insertVolume adds v to task of account.
func insertVolume(ctx context.Context, tx *rtx, account, task string, v *Volume) error {
	kind := v.Kind
	if kind == "" {
		kind = KindVolumeDisk
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO volumes (`+volumeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, account, task, v.InstanceID, v.Index, v.Size, v.AvailabilityZone, string(v.State), unix(v.Created),
		v.Description, v.Format, v.Bytes, v.ManifestURL, v.BytesConverted, string(v.Status), v.StatusMessage, v.Server, v.Origin, v.ApplianceDisk,
		string(kind), v.DeviceName, v.SourceSnapshot, v.VirtualSize)
	if isUnique(err) {
		return fmt.Errorf("%w: volume %s", ErrExists, v.ID)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func scanTask(r scanner) (*Task, error) {
	t := &Task{}
	var exp, created, updated, lease int64
	if err := r.Scan(&t.ID, &t.AccountID, &t.Kind, &t.State, &t.StatusMessage, &t.Description, &t.AvailabilityZone,
		&t.Platform, &t.InstanceID, &exp, &created, &updated, &t.LeaseOwner, &t.LeaseGeneration, &lease,
		&t.ClientToken, &t.ParamsHash, &t.ImageID, &t.Architecture, &t.LicenseType, &t.BootMode,
		&t.ExportFormat, &t.ExportContainer, &t.ExportTarget, &t.S3Bucket, &t.S3Prefix, &t.RoleName); err != nil {
		return nil, err
	}
	t.Expiration, t.Created, t.Updated, t.LeaseExpires = fromUnix(exp), fromUnix(created), fromUnix(updated), fromUnix(lease)
	return t, nil
}

func scanVolume(r scanner) (*Volume, error) {
	v := &Volume{}
	var created int64
	if err := r.Scan(&v.ID, &v.AccountID, &v.TaskID, &v.InstanceID, &v.Index, &v.Size, &v.AvailabilityZone, &v.State, &created,
		&v.Description, &v.Format, &v.Bytes, &v.ManifestURL, &v.BytesConverted, &v.Status, &v.StatusMessage, &v.Server,
		&v.Origin, &v.ApplianceDisk, &v.Kind, &v.DeviceName, &v.SourceSnapshot, &v.VirtualSize); err != nil {
		return nil, err
	}
	v.Created = fromUnix(created)
	return v, nil
}

// queryTasks runs a task query and fills in each task's volumes.
func (s *DB) queryTasks(ctx context.Context, query string, args ...any) ([]*Task, error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var tasks []*Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: %w", err)
		}
		tasks = append(tasks, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// The volumes of all the tasks in one query per 500 tasks.
	byID := map[string]*Task{}
	for _, t := range tasks {
		byID[t.ID] = t
	}
	for i := 0; i < len(tasks); i += 500 {
		chunk := tasks[i:min(i+500, len(tasks))]
		ids := make([]any, len(chunk))
		for j, t := range chunk {
			ids[j] = t.ID
		}
		vols, err := s.queryVolumes(ctx, `SELECT `+volumeColumns+` FROM volumes WHERE task_id IN (`+placeholders(len(ids))+`) ORDER BY task_id, idx`, ids...)
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			byID[v.TaskID].Volumes = append(byID[v.TaskID].Volumes, v)
		}
	}
	return tasks, nil
}

func (s *DB) queryVolumes(ctx context.Context, query string, args ...any) ([]*Volume, error) {
	return queryRows(ctx, s.rdb, query, scanVolume, args...)
}

// querier is a database (*rdb) or a transaction (*rtx).
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// queryRows runs q on db and reads each row with scan.
func queryRows[T any](ctx context.Context, db querier, q string, scan func(scanner) (*T, error), args ...any) ([]*T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		x, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// Task returns one of the account's tasks.
func (s *DB) Task(ctx context.Context, account, id string) (*Task, error) {
	tasks, err := s.Tasks(ctx, account, []string{id})
	if err != nil {
		return nil, err
	}
	return tasks[0], nil
}

// Tasks returns the account's tasks with these ids (all of them when ids
// is empty), oldest first. A missing id is ErrNotFound.
func (s *DB) Tasks(ctx context.Context, account string, ids []string) ([]*Task, error) {
	return byIDs(ctx, `SELECT `+taskColumns+` FROM tasks WHERE account_id = ?`, "seq", account, ids,
		s.queryTasks, func(t *Task) string { return t.ID })
}

// byIDs runs q, a selection of one table's rows of account ("WHERE
// account_id = ?" and any other condition), narrowed to ids when ids is
// not empty and ordered by order, through query; an id asked for and not
// found is ErrNotFound.
func byIDs[T any](ctx context.Context, q, order, account string, ids []string,
	query func(context.Context, string, ...any) ([]*T, error), id func(*T) string) ([]*T, error) {
	if len(ids) > 0 {
		q += ` AND id IN (` + placeholders(len(ids)) + `)`
	}
	out, err := query(ctx, q+` ORDER BY `+order, anys(account, ids)...)
	if err != nil {
		return nil, err
	}
	if err := allFound(ids, len(out), func(i int) string { return id(out[i]) }); err != nil {
		return nil, err
	}
	return out, nil
}

// allFound checks that every id in ids is among the n records found.
func allFound(ids []string, n int, id func(int) string) error {
	for _, want := range ids {
		found := false
		for i := range n {
			if id(i) == want {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: %s", ErrNotFound, want)
		}
	}
	return nil
}

// Unfinished returns every account's tasks that are active or cancelling,
// oldest first.
func (s *DB) Unfinished(ctx context.Context) ([]*Task, error) {
	return s.queryTasks(ctx, `SELECT `+taskColumns+` FROM tasks WHERE state IN (?, ?) ORDER BY seq`, string(TaskActive), string(TaskCancelling))
}

// Transition moves a task from one of the states in from to state to with
// the status message, or returns ErrState (ErrNotFound for no such task).
// Moving to TaskCompleted makes the task's volumes available (in-use for
// an instance's) and marks their conversion completed, and registers an
// ImportImage task's image (completeImageTask); moving to
// TaskCancelled deletes them and terminates the task's instance. The task and its volumes change together.
func (s *DB) Transition(ctx context.Context, id string, from []TaskState, to TaskState, message string) error {
	return s.tx(ctx, func(tx *rtx) error {
		var state TaskState
		var kind TaskKind
		err := tx.QueryRowContext(ctx, `SELECT state, kind FROM tasks WHERE id = ?`, id).Scan(&state, &kind)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: task %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if !slices.Contains(from, state) {
			return fmt.Errorf("%w: task %s is %s", ErrState, id, state)
		}
		now := unix(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET state = ?, status_message = ?, updated = ? WHERE id = ?`, string(to), message, now, id); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		switch to {
		case TaskCompleted:
			_, err = tx.ExecContext(ctx, `UPDATE volumes SET status = ?, status_message = '',
				state = CASE WHEN instance_id = '' THEN ? ELSE ? END WHERE task_id = ?`,
				string(ConversionCompleted), string(VolumeAvailable), string(VolumeInUse), id)
			if err == nil && kind == KindImage {
				return completeImageTask(ctx, tx, id, s.now())
			}
		case TaskCancelled:
			_, err = tx.ExecContext(ctx, `UPDATE volumes SET status = ?, status_message = ?, state = ? WHERE task_id = ?`,
				string(ConversionCancelled), message, string(VolumeDeleted), id)
			if err == nil {
				_, err = tx.ExecContext(ctx, `UPDATE instances SET state = ? WHERE task_id = ?`, string(InstanceTerminated), id)
			}
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

// SetStatus sets an active task's status message (a task in another
// state keeps its message: a cancellation's reason stays) when its lease
// generation is gen; else ErrState (fenced: another server claimed it).
func (s *DB) SetStatus(ctx context.Context, id string, gen int64, message string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE tasks SET status_message = ?, updated = ? WHERE id = ? AND state = ? AND lease_generation = ?`,
		message, unix(s.now()), id, string(TaskActive), gen)
	return fenced(res, err, "task "+id)
}

// Progress records one volume's conversion progress, when its task's
// lease generation is gen; else ErrState. A volume whose status becomes
// completed is recorded as held by server.
func (s *DB) Progress(ctx context.Context, volumeID string, gen int64, server string, bytes int64, status ConversionStatus, message string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE volumes SET bytes_converted = ?, status = ?, status_message = ?,
		server = CASE WHEN ? = 'completed' THEN ? ELSE server END
		WHERE id = ? AND (SELECT lease_generation FROM tasks WHERE tasks.id = volumes.task_id) = ?`,
		bytes, string(status), message, string(status), server, volumeID, gen)
	return fenced(res, err, "volume "+volumeID)
}

// fenced turns an update that changed no row into ErrState.
func fenced(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: %w", err)
	} else if n == 0 {
		return fmt.Errorf("%w: %s is not active under this lease", ErrState, what)
	}
	return nil
}

// Volumes returns the account's volumes with these ids (all not deleted
// when ids is empty). A missing or deleted id is ErrNotFound.
func (s *DB) Volumes(ctx context.Context, account string, ids []string) ([]*Volume, error) {
	return byIDs(ctx, `SELECT `+volumeColumns+` FROM volumes WHERE account_id = ? AND kind = '`+string(KindVolumeDisk)+`' AND state != '`+string(VolumeDeleted)+`'`, "created, id", account, ids,
		s.queryVolumes, func(v *Volume) string { return v.ID })
}

// SetVolumeState moves a volume from one of the states in from to state
// to, or returns ErrState.
func (s *DB) SetVolumeState(ctx context.Context, id string, from []VolumeState, to VolumeState) error {
	return s.tx(ctx, func(tx *rtx) error {
		var state VolumeState
		err := tx.QueryRowContext(ctx, `SELECT state FROM volumes WHERE id = ?`, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: volume %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if !slices.Contains(from, state) {
			return fmt.Errorf("%w: volume %s is %s", ErrState, id, state)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE volumes SET state = ? WHERE id = ?`, string(to), id); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

// Instances returns the account's instances with these ids (all when ids
// is empty), with their volumes.
func (s *DB) Instances(ctx context.Context, account string, ids []string) ([]*Instance, error) {
	q := `SELECT id, account_id, task_id, state, instance_type, platform, architecture, availability_zone, monitoring, launched
		FROM instances WHERE account_id = ?`
	if len(ids) > 0 {
		q += ` AND id IN (` + placeholders(len(ids)) + `)`
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY launched, id`, anys(account, ids)...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var insts []*Instance
	for rows.Next() {
		in := &Instance{}
		var launched int64
		if err := rows.Scan(&in.ID, &in.AccountID, &in.TaskID, &in.State, &in.InstanceType, &in.Platform, &in.Architecture,
			&in.AvailabilityZone, &in.Monitoring, &launched); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: %w", err)
		}
		in.Launched = fromUnix(launched)
		insts = append(insts, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := allFound(ids, len(insts), func(i int) string { return insts[i].ID }); err != nil {
		return nil, err
	}
	for _, in := range insts {
		vols, err := s.queryVolumes(ctx, `SELECT `+volumeColumns+` FROM volumes WHERE instance_id = ? AND state != ? ORDER BY idx`, in.ID, string(VolumeDeleted))
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			in.VolumeIDs = append(in.VolumeIDs, v.ID)
		}
	}
	return insts, nil
}
