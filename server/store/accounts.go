package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// removedPrefix starts the name a removed account that still owns records
// keeps: account names never hold a slash, so it frees the name for a new
// account and never collides with one.
const removedPrefix = "removed/"

// Accounts returns the accounts, by name; removed ones are left out.
func (s *DB) Accounts(ctx context.Context) ([]*Account, error) {
	return queryRows(ctx, s.rdb, `SELECT id, name, created FROM accounts WHERE name NOT LIKE '`+removedPrefix+`%' ORDER BY name`,
		func(r scanner) (*Account, error) {
			a := &Account{}
			var created int64
			if err := r.Scan(&a.ID, &a.Name, &created); err != nil {
				return nil, err
			}
			a.Created = fromUnix(created)
			return a, nil
		})
}

// AccessKeys returns the account's key pairs, oldest first, without their
// secrets: a listing never shows one.
func (s *DB) AccessKeys(ctx context.Context, account string) ([]*AccessKey, error) {
	return queryRows(ctx, s.rdb, `SELECT id, created FROM access_keys WHERE account_id = ? ORDER BY created, id`,
		func(r scanner) (*AccessKey, error) {
			k := &AccessKey{AccountID: account}
			var created int64
			if err := r.Scan(&k.ID, &created); err != nil {
				return nil, err
			}
			k.Created = fromUnix(created)
			return k, nil
		}, account)
}

// accountByName reads the account named name in tx, or ErrNotFound.
func accountByName(ctx context.Context, tx *rtx, name string) (*Account, error) {
	if strings.HasPrefix(name, removedPrefix) {
		return nil, fmt.Errorf("%w: account %q", ErrNotFound, name)
	}
	a := &Account{Name: name}
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT id, created FROM accounts WHERE name = ?`, name).Scan(&a.ID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: account %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	a.Created = fromUnix(created)
	return a, nil
}

// revokeKeys reads the account named name in tx and deletes its every key
// pair.
func revokeKeys(ctx context.Context, tx *rtx, name string) (*Account, error) {
	a, err := accountByName(ctx, tx, name)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM access_keys WHERE account_id = ?`, a.ID); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return a, nil
}

// RemoveAccount deletes the account named name with its key pairs, so
// that no request signed by one of them is accepted any more. An account
// that owns conversion or bundle tasks (or images, or tags) keeps them,
// with their volumes, snapshots and instances, under the name
// "removed/ID"; its name is free again.
func (s *DB) RemoveAccount(ctx context.Context, name string) (*Account, error) {
	var a *Account
	err := s.tx(ctx, func(tx *rtx) error {
		var err error
		if a, err = revokeKeys(ctx, tx, name); err != nil {
			return err
		}
		var owned int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM tasks WHERE account_id = ?) + (SELECT count(*) FROM bundle_tasks WHERE account_id = ?)
			+ (SELECT count(*) FROM images WHERE account_id = ?) + (SELECT count(*) FROM tags WHERE account_id = ?)`,
			a.ID, a.ID, a.ID, a.ID).Scan(&owned); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		q, args := `DELETE FROM accounts WHERE id = ?`, []any{a.ID}
		if owned > 0 {
			q, args = `UPDATE accounts SET name = ? WHERE id = ?`, []any{removedPrefix + a.ID, a.ID}
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
	return a, err
}

// RotateKey replaces every key pair of the account named name with key,
// at once: a request signed with an old one is refused from then on.
func (s *DB) RotateKey(ctx context.Context, name string, key *AccessKey) (*Account, error) {
	var a *Account
	err := s.tx(ctx, func(tx *rtx) error {
		var err error
		if a, err = revokeKeys(ctx, tx, name); err != nil {
			return err
		}
		key.AccountID = a.ID
		if _, err := tx.ExecContext(ctx, `INSERT INTO access_keys VALUES (?, ?, ?, ?)`, key.ID, a.ID, key.Secret, unix(key.Created)); err != nil {
			if isUnique(err) {
				return fmt.Errorf("%w: access key %s", ErrExists, key.ID)
			}
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
	return a, err
}
