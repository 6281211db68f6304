package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the schema version this build writes.
var SchemaVersion = len(migrations)

// rdb and rtx run queries written with ? placeholders on a database or in
// a transaction, rewriting them to $1, $2, … for PostgreSQL.
type rdb struct {
	db *sql.DB
	pg bool
}

type rtx struct {
	tx *sql.Tx
	pg bool
}

// rebind rewrites ? placeholders to $n when pg is set. The queries here
// never hold a ? inside a literal.
func rebind(pg bool, q string) string {
	if !pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (d *rdb) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.db.ExecContext(ctx, rebind(d.pg, q), args...)
}

func (d *rdb) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.db.QueryContext(ctx, rebind(d.pg, q), args...)
}

func (d *rdb) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, rebind(d.pg, q), args...)
}

func (t *rtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, rebind(t.pg, q), args...)
}

func (t *rtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, rebind(t.pg, q), args...)
}

func (t *rtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, rebind(t.pg, q), args...)
}

// migrationLock is the PostgreSQL advisory lock that serialises the
// migrations of servers starting at once.
const migrationLock = 0x6469736b // "disk"

// migrateTo brings the schema up to date (migrations, or a prefix of
// them in tests) in one transaction: every missing
// migration applies, or none. A schema newer than this build's is
// refused.
func (s *DB) migrateTo(ctx context.Context, migrations []string) error {
	return s.tx(ctx, func(tx *rtx) error {
		if s.pg {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, migrationLock); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version VALUES (0)`); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("store: the database has schema version %d, newer than this diskport's %d: run a newer diskport", v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			m := migrations[v]
			if s.pg {
				// Times are milliseconds since 1970: 64 bits.
				m = strings.ReplaceAll(m, "INTEGER", "BIGINT")
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return fmt.Errorf("store: migrating the schema to version %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

func (s *DB) tx(ctx context.Context, f func(*rtx) error) error {
	tx, err := s.db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := f(&rtx{tx: tx, pg: s.pg}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func unix(t time.Time) int64 { return t.UnixMilli() }

func fromUnix(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// isUnique says whether err is a unique-constraint violation: SQLite's
// message or PostgreSQL's (SQLSTATE 23505).
func isUnique(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint failed") || strings.Contains(err.Error(), "SQLSTATE 23505"))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
