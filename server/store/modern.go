package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrInUse is returned when a record cannot be deleted because another
// uses it (a snapshot an image's block device names).
var ErrInUse = errors.New("store: in use")

// LegacyKinds are the kinds of conversion task DescribeConversionTasks
// lists.
var LegacyKinds = []TaskKind{KindVolume, KindInstance}

// A SnapshotState is a snapshot's state, as EC2 names it.
type SnapshotState string

// Snapshot states: a snapshot is listed once its import completed.
const (
	SnapshotPending   SnapshotState = "pending"
	SnapshotCompleted SnapshotState = "completed"
)

// A Snapshot is an imported disk: a sparse raw file of Size GiB, made by
// an ImportSnapshot or ImportImage task (the row of volumes of kind
// snapshot its task converted).
type Snapshot struct {
	ID, AccountID, TaskID string
	// Size is the snapshot's volume size in GiB.
	Size        int64
	State       SnapshotState
	Description string
	Created     time.Time
	// Server is the server whose data directory holds the file.
	Server string
}

// An ImageState is an image's state, as EC2 names it.
type ImageState string

// Image states.
const (
	ImageAvailable    ImageState = "available"
	ImageDeregistered ImageState = "deregistered"
)

// An Image is a registered machine image (ami-): RegisterImage's, or the
// one an ImportImage task registers as it completes.
type Image struct {
	ID, AccountID string
	// TaskID is the ImportImage task that registered it ("" for
	// RegisterImage's).
	TaskID, Name, Description string
	State                     ImageState
	Architecture, Platform    string
	RootDeviceName            string
	VirtualizationType        string
	EnaSupport                bool
	BootMode                  string
	Created                   time.Time
	// Devices are the image's block devices, each naming a snapshot.
	Devices []BlockDevice
}

// A BlockDevice is one of an image's EBS block devices.
type BlockDevice struct {
	DeviceName, SnapshotID string
	// VolumeSize is in GiB.
	VolumeSize          int64
	VolumeType          string
	DeleteOnTermination bool
}

// A Tag is a key and value on one of an account's resources (a task, a
// snapshot, an image, a volume, an instance).
type Tag struct {
	ResourceID, Key, Value string
}

// Modern is the part of [Store] the modern VM Import/Export API adds:
// its tasks (CreateTask with KindSnapshot, KindImage, KindCopy), the
// snapshots and images they make, and tags.
type Modern interface {
	// TasksOf returns the account's tasks of these kinds with these ids
	// (all of them when ids is empty), oldest first. A missing id, or one
	// of another kind, is ErrNotFound.
	TasksOf(ctx context.Context, account string, kinds []TaskKind, ids []string) ([]*Task, error)
	// TaskByToken returns the account's task created with this
	// ClientToken, or ErrNotFound.
	TaskByToken(ctx context.Context, account, token string) (*Task, error)
	// SetSource records what a snapshot disk's bytes turned out to be
	// (its format, its size in bytes, its virtual size in bytes and its
	// volume size in GiB) when its task's lease generation is gen, or
	// returns ErrState.
	SetSource(ctx context.Context, volumeID string, gen int64, format string, bytes, virtualSize, sizeGiB int64) error

	// Snapshots returns the account's completed snapshots with these ids
	// (all of them when ids is empty). A missing id is ErrNotFound.
	Snapshots(ctx context.Context, account string, ids []string) ([]*Snapshot, error)
	// DeleteSnapshot deletes one of the account's completed snapshots:
	// ErrNotFound when there is none, ErrInUse when an image's block
	// device or a volume being made names it.
	DeleteSnapshot(ctx context.Context, account, id string) error

	// CreateImage registers an image whose devices name the account's
	// completed snapshots (ErrNotFound naming one that is not); an image
	// of the same name is ErrExists.
	CreateImage(ctx context.Context, img *Image) error
	// Images returns the account's registered images with these ids (all
	// of them when ids is empty). A missing id is ErrNotFound.
	Images(ctx context.Context, account string, ids []string) ([]*Image, error)
	// DeregisterImage deregisters one of the account's images.
	DeregisterImage(ctx context.Context, account, id string) error

	// CreateTags adds tags to the account's resources, replacing the
	// values of keys they have.
	CreateTags(ctx context.Context, account string, tags []Tag) error
	// DeleteTags removes tags; as in EC2's DeleteTags, a tag whose Value
	// is empty matches any value.
	DeleteTags(ctx context.Context, account string, tags []Tag) error
	// Tags returns the account's tags on these resources (all of its
	// tags when ids is empty), by resource and key.
	Tags(ctx context.Context, account string, ids []string) ([]Tag, error)
}

// TasksOf returns the account's tasks of these kinds with these ids.
func (s *DB) TasksOf(ctx context.Context, account string, kinds []TaskKind, ids []string) ([]*Task, error) {
	q := `SELECT ` + taskColumns + ` FROM tasks WHERE account_id = ? AND kind IN (` + placeholders(len(kinds)) + `)`
	args := []any{account}
	for _, k := range kinds {
		args = append(args, string(k))
	}
	if len(ids) > 0 {
		q += ` AND id IN (` + placeholders(len(ids)) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	out, err := s.queryTasks(ctx, q+` ORDER BY seq`, args...)
	if err != nil {
		return nil, err
	}
	if err := allFound(ids, len(out), func(i int) string { return out[i].ID }); err != nil {
		return nil, err
	}
	return out, nil
}

// TaskByToken returns the account's task created with this ClientToken.
func (s *DB) TaskByToken(ctx context.Context, account, token string) (*Task, error) {
	tasks, err := s.queryTasks(ctx, `SELECT `+taskColumns+` FROM tasks WHERE account_id = ? AND client_token = ?`, account, token)
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("%w: client token %s", ErrNotFound, token)
	}
	return tasks[0], nil
}

// SetSource records a snapshot disk's format, bytes and volume size.
func (s *DB) SetSource(ctx context.Context, volumeID string, gen int64, format string, bytes, virtualSize, sizeGiB int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE volumes SET format = ?, bytes = ?, virtual_size = ?, size = ?
		WHERE id = ? AND (SELECT lease_generation FROM tasks WHERE tasks.id = volumes.task_id) = ?`,
		format, bytes, virtualSize, sizeGiB, volumeID, gen)
	return fenced(res, err, "volume "+volumeID)
}

// Snapshots returns the account's completed snapshots with these ids.
func (s *DB) Snapshots(ctx context.Context, account string, ids []string) ([]*Snapshot, error) {
	q := `SELECT id, account_id, task_id, size, description, created, server FROM volumes
		WHERE account_id = ? AND kind = '` + string(KindSnapshotDisk) + `' AND state = '` + string(VolumeAvailable) + `'`
	return byIDs(ctx, q, "created, id", account, ids, func(ctx context.Context, q string, args ...any) ([]*Snapshot, error) {
		return queryRows(ctx, s.rdb, q, func(r scanner) (*Snapshot, error) {
			sn := &Snapshot{State: SnapshotCompleted}
			var created int64
			if err := r.Scan(&sn.ID, &sn.AccountID, &sn.TaskID, &sn.Size, &sn.Description, &created, &sn.Server); err != nil {
				return nil, err
			}
			sn.Created = fromUnix(created)
			return sn, nil
		}, args...)
	}, func(sn *Snapshot) string { return sn.ID })
}

// DeleteSnapshot deletes one of the account's completed snapshots.
func (s *DB) DeleteSnapshot(ctx context.Context, account, id string) error {
	return s.tx(ctx, func(tx *rtx) error {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM volumes WHERE id = ? AND account_id = ? AND kind = ? AND state = ?`,
			id, account, string(KindSnapshotDisk), string(VolumeAvailable)).Scan(&n)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		var user string
		err = tx.QueryRowContext(ctx, `SELECT d.image_id FROM image_devices d JOIN images i ON i.id = d.image_id
			WHERE d.snapshot_id = ? AND i.state != ? ORDER BY d.image_id LIMIT 1`, id, string(ImageDeregistered)).Scan(&user)
		if err == nil {
			return fmt.Errorf("%w: the snapshot %s is in use by %s", ErrInUse, id, user)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: %w", err)
		}
		err = tx.QueryRowContext(ctx, `SELECT id FROM volumes WHERE source_snapshot = ? AND state = ? LIMIT 1`,
			id, string(VolumeCreating)).Scan(&user)
		if err == nil {
			return fmt.Errorf("%w: the snapshot %s is being copied into %s", ErrInUse, id, user)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE volumes SET state = ? WHERE id = ?`, string(VolumeDeleted), id); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

// CreateTags adds tags to the account's resources.
func (s *DB) CreateTags(ctx context.Context, account string, tags []Tag) error {
	return s.tx(ctx, func(tx *rtx) error { return insertTags(ctx, tx, account, tags) })
}

// insertTags adds or replaces tags in a transaction.
func insertTags(ctx context.Context, tx *rtx, account string, tags []Tag) error {
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags VALUES (?, ?, ?, ?)
			ON CONFLICT (resource_id, key) DO UPDATE SET value = excluded.value`, account, t.ResourceID, t.Key, t.Value); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// DeleteTags removes tags; an empty Value matches any.
func (s *DB) DeleteTags(ctx context.Context, account string, tags []Tag) error {
	return s.tx(ctx, func(tx *rtx) error {
		for _, t := range tags {
			q, args := `DELETE FROM tags WHERE account_id = ? AND resource_id = ? AND key = ?`, []any{account, t.ResourceID, t.Key}
			if t.Value != "" {
				q, args = q+` AND value = ?`, append(args, t.Value)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
		return nil
	})
}

// Tags returns the account's tags on these resources.
func (s *DB) Tags(ctx context.Context, account string, ids []string) ([]Tag, error) {
	q := `SELECT resource_id, key, value FROM tags WHERE account_id = ?`
	if len(ids) > 0 {
		q += ` AND resource_id IN (` + placeholders(len(ids)) + `)`
	}
	rows, err := queryRows(ctx, s.rdb, q+` ORDER BY resource_id, key`, func(r scanner) (*Tag, error) {
		t := &Tag{}
		return t, r.Scan(&t.ResourceID, &t.Key, &t.Value)
	}, anys(account, ids)...)
	if err != nil {
		return nil, err
	}
	out := make([]Tag, len(rows))
	for i, t := range rows {
		out[i] = *t
	}
	return out, nil
}
