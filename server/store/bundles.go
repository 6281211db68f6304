package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A BundleTask is BundleInstance's task: an instance's root volume
// bundled as an AMI bundle and stored in S3 under the caller's upload
// policy.
type BundleTask struct {
	ID, AccountID, InstanceID string
	// State is BundleInstance's (pending, bundling, storing, cancelling,
	// complete, failed); Progress a percentage.
	State    string
	Progress int
	// Bucket, Prefix, UploadAccessKey, UploadPolicy (base64) and
	// UploadPolicySignature are Storage.S3.*.
	Bucket, Prefix                                       string
	UploadAccessKey, UploadPolicy, UploadPolicySignature string
	// ErrorCode and ErrorMessage are set when the task failed.
	ErrorCode, ErrorMessage string
	Started, Updated        time.Time
	// Secret is the bundle's AES-128 key and IV (32 bytes, hex) and
	// ModTime its tar member's time: kept so that a restarted task
	// regenerates the same encrypted parts. Empty in tasks created before
	// schema version 3.
	Secret  string
	ModTime time.Time
}

const bundleColumns = `id, account_id, instance_id, state, progress, bucket, prefix, upload_access_key, upload_policy,
	upload_policy_signature, error_code, error_message, started, updated, secret, mod_time`

// CreateBundle stores a new bundle task.
func (s *DB) CreateBundle(ctx context.Context, b *BundleTask) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO bundle_tasks (`+bundleColumns+`) VALUES (`+placeholders(16)+`)`,
		b.ID, b.AccountID, b.InstanceID, b.State, b.Progress, b.Bucket, b.Prefix, b.UploadAccessKey, b.UploadPolicy,
		b.UploadPolicySignature, b.ErrorCode, b.ErrorMessage, unix(b.Started), unix(b.Updated), b.Secret, modTime(b.ModTime))
	if isUnique(err) {
		return fmt.Errorf("%w: bundle task %s", ErrExists, b.ID)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (s *DB) queryBundles(ctx context.Context, q string, args ...any) ([]*BundleTask, error) {
	return queryRows(ctx, s.rdb, q, scanBundle, args...)
}

// scanBundle reads one row of bundleColumns.
func scanBundle(r scanner) (*BundleTask, error) {
	b := &BundleTask{}
	var started, updated, mtime int64
	if err := r.Scan(&b.ID, &b.AccountID, &b.InstanceID, &b.State, &b.Progress, &b.Bucket, &b.Prefix, &b.UploadAccessKey,
		&b.UploadPolicy, &b.UploadPolicySignature, &b.ErrorCode, &b.ErrorMessage, &started, &updated, &b.Secret, &mtime); err != nil {
		return nil, err
	}
	b.Started, b.Updated = fromUnix(started), fromUnix(updated)
	if mtime != 0 {
		b.ModTime = fromUnix(mtime)
	}
	return b, nil
}

// Bundles returns the account's bundle tasks with these ids (all when ids
// is empty), oldest first. A missing id is ErrNotFound.
func (s *DB) Bundles(ctx context.Context, account string, ids []string) ([]*BundleTask, error) {
	return byIDs(ctx, `SELECT `+bundleColumns+` FROM bundle_tasks WHERE account_id = ?`, "started, id", account, ids,
		s.queryBundles, func(b *BundleTask) string { return b.ID })
}

// UnfinishedBundles returns every account's bundle tasks that are not
// complete or failed, oldest first.
func (s *DB) UnfinishedBundles(ctx context.Context) ([]*BundleTask, error) {
	return s.queryBundles(ctx, `SELECT `+bundleColumns+` FROM bundle_tasks WHERE state NOT IN ('complete', 'failed') ORDER BY started, id`)
}

// UpdateBundle records a bundle task's state, progress, error, secret and
// tar member time, when
// its state is one of from; else ErrState.
func (s *DB) UpdateBundle(ctx context.Context, b *BundleTask, from []string) error {
	return s.tx(ctx, func(tx *rtx) error {
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state FROM bundle_tasks WHERE id = ?`, b.ID).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: bundle task %s", ErrNotFound, b.ID)
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if !slices.Contains(from, state) {
			return fmt.Errorf("%w: bundle task %s is %s", ErrState, b.ID, state)
		}
		_, err = tx.ExecContext(ctx, `UPDATE bundle_tasks SET state = ?, progress = ?, error_code = ?, error_message = ?, updated = ?,
			secret = ?, mod_time = ? WHERE id = ?`,
			b.State, b.Progress, b.ErrorCode, b.ErrorMessage, unix(b.Updated), b.Secret, modTime(b.ModTime), b.ID)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

// modTime is t in Unix milliseconds, 0 for the zero time (not set).
func modTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return unix(t)
}

// StoreBundlePart records that part index of the bundle task was stored
// with this SHA-1 digest (hex), replacing an earlier record.
func (s *DB) StoreBundlePart(ctx context.Context, bundleID string, index int, digest string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO bundle_parts (bundle_id, idx, digest) VALUES (?, ?, ?)
		ON CONFLICT (bundle_id, idx) DO UPDATE SET digest = excluded.digest`, bundleID, index, digest)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// ForgetBundlePart removes the record of part index of the bundle task
// (the object was deleted).
func (s *DB) ForgetBundlePart(ctx context.Context, bundleID string, index int) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM bundle_parts WHERE bundle_id = ? AND idx = ?`, bundleID, index); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// BundleParts returns the SHA-1 digests (hex) of the bundle task's stored
// parts by index.
func (s *DB) BundleParts(ctx context.Context, bundleID string) (map[int]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT idx, digest FROM bundle_parts WHERE bundle_id = ?`, bundleID)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	parts := map[int]string{}
	for rows.Next() {
		var i int
		var d string
		if err := rows.Scan(&i, &d); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		parts[i] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return parts, nil
}
