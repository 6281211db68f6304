package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

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
