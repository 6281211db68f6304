package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenPostgres connects to the PostgreSQL database at url (postgres://…)
// and brings its schema up to date. Several servers share one database:
// each claims tasks with leases (see [Store.Claim]).
func OpenPostgres(ctx context.Context, url string) (*DB, error) {
	return openPostgres(ctx, url, migrations)
}

func openPostgres(ctx context.Context, url string, ms []string) (*DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db.SetMaxOpenConns(10)
	db.SetConnMaxIdleTime(time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connecting to PostgreSQL: %w", err)
	}
	r := &rdb{db: db, pg: true}
	s := &DB{db: r, rdb: r, pg: true}
	if err := s.migrateTo(pctx, ms); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// The pgx driver registers itself as "pgx" with database/sql.
var _ = stdlib.GetDefaultDriver

// Unavailable says whether err means the database could not be reached
// (refused, cut, shutting down or starting up), as opposed to a refusal
// of the request: the server answers ServiceUnavailable and its workers
// try again.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: shutting down,
		// crash shutdown, cannot connect now.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
