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
}

const bundleColumns = `id, account_id, instance_id, state, progress, bucket, prefix, upload_access_key, upload_policy,
	upload_policy_signature, error_code, error_message, started, updated`

// CreateBundle stores a new bundle task.
func (s *DB) CreateBundle(ctx context.Context, b *BundleTask) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO bundle_tasks (`+bundleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.AccountID, b.InstanceID, b.State, b.Progress, b.Bucket, b.Prefix, b.UploadAccessKey, b.UploadPolicy,
		b.UploadPolicySignature, b.ErrorCode, b.ErrorMessage, unix(b.Started), unix(b.Updated))
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
	var started, updated int64
	if err := r.Scan(&b.ID, &b.AccountID, &b.InstanceID, &b.State, &b.Progress, &b.Bucket, &b.Prefix, &b.UploadAccessKey,
		&b.UploadPolicy, &b.UploadPolicySignature, &b.ErrorCode, &b.ErrorMessage, &started, &updated); err != nil {
		return nil, err
	}
	b.Started, b.Updated = fromUnix(started), fromUnix(updated)
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

// UpdateBundle records a bundle task's state, progress and error, when
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
		_, err = tx.ExecContext(ctx, `UPDATE bundle_tasks SET state = ?, progress = ?, error_code = ?, error_message = ?, updated = ? WHERE id = ?`,
			b.State, b.Progress, b.ErrorCode, b.ErrorMessage, unix(b.Updated), b.ID)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}
