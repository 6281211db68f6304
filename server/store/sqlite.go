package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// FileName is the database's file name inside the data directory.
const FileName = "diskport.db"

// DB is the Store on a database/sql database: SQLite (one database file
// in the data directory, WAL mode; [Open]) or PostgreSQL (one database
// several servers share; [OpenPostgres]). The SQL is the same; queries
// are written with ? placeholders, rewritten to $n for PostgreSQL.
//
// For SQLite one connection writes and a few others read (WAL lets
// readers run beside the writer, so a Describe call never waits for a
// progress update's fsync); for PostgreSQL both are one pool.
type DB struct {
	db  *rdb // the writer
	rdb *rdb // readers
	pg  bool
	// clock stamps leases and updates; nil means time.Now.
	clock func() time.Time
}

// SetClock makes the store read the time from now (nil: time.Now) when it
// stamps leases and updates: tests move it with the server's Clock. Call
// it before the store is used.
func (s *DB) SetClock(now func() time.Time) { s.clock = now }

func (s *DB) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// readers is how many connections read at once.
const readers = 4

var _ Store = (*DB)(nil)

// Open opens (creating it if needed) the database in dir and brings its
// schema up to date. The database runs in WAL mode with full
// synchronisation, so a committed change survives a crash of the machine.
func Open(dir string) (*DB, error) { return openSQLite(filepath.Join(dir, FileName), migrations) }

// OpenFile is Open for a database file named path.
func OpenFile(path string) (*DB, error) { return openSQLite(path, migrations) }

func openSQLite(path string, ms []string) (*DB, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	// The writer's transactions take the write lock when they begin: one
	// that read first and wrote second would fail at once with
	// SQLITE_BUSY_SNAPSHOT (no busy timeout applies) whenever another
	// process (a second server, `serve accounts`) wrote in between.
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// One writing connection: SQLite has one writer at a time anyway, and
	// a single writer never sees SQLITE_BUSY from its own transactions.
	db.SetMaxOpenConns(1)
	s := &DB{db: &rdb{db: db}}
	if err := s.migrateTo(context.Background(), ms); err != nil {
		db.Close()
		return nil, err
	}
	q.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	r.SetMaxOpenConns(readers)
	s.rdb = &rdb{db: r}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		s.Close()
		return nil, fmt.Errorf("store: %s: journal mode is %q, not WAL (%v)", path, mode, err)
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error {
	if s.rdb == s.db {
		return s.db.db.Close()
	}
	err := s.rdb.db.Close()
	if err2 := s.db.db.Close(); err == nil {
		err = err2
	}
	return err
}

// migrations are the schema's versions: migrations[i] takes the schema
// from version i to i+1. Append, never edit.
var migrations = []string{
	`CREATE TABLE accounts (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		created INTEGER NOT NULL
	);
	CREATE TABLE access_keys (
		id TEXT PRIMARY KEY,
		account_id TEXT NOT NULL REFERENCES accounts(id),
		secret TEXT NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE TABLE tasks (
		id TEXT PRIMARY KEY,
		account_id TEXT NOT NULL REFERENCES accounts(id),
		kind TEXT NOT NULL,
		state TEXT NOT NULL,
		status_message TEXT NOT NULL,
		description TEXT NOT NULL,
		availability_zone TEXT NOT NULL,
		platform TEXT NOT NULL,
		instance_id TEXT NOT NULL,
		expiration INTEGER NOT NULL,
		created INTEGER NOT NULL,
		updated INTEGER NOT NULL,
		seq INTEGER NOT NULL
	);
	CREATE INDEX tasks_account ON tasks(account_id, seq);
	CREATE INDEX tasks_state ON tasks(state, seq);
	CREATE TABLE volumes (
		id TEXT PRIMARY KEY,
		account_id TEXT NOT NULL REFERENCES accounts(id),
		task_id TEXT NOT NULL REFERENCES tasks(id),
		instance_id TEXT NOT NULL,
		idx INTEGER NOT NULL,
		size INTEGER NOT NULL,
		availability_zone TEXT NOT NULL,
		state TEXT NOT NULL,
		created INTEGER NOT NULL,
		description TEXT NOT NULL,
		format TEXT NOT NULL,
		bytes INTEGER NOT NULL,
		manifest_url TEXT NOT NULL,
		bytes_converted INTEGER NOT NULL,
		status TEXT NOT NULL,
		status_message TEXT NOT NULL
	);
	CREATE INDEX volumes_task ON volumes(task_id, idx);
	CREATE INDEX volumes_account ON volumes(account_id);
	CREATE TABLE instances (
		id TEXT PRIMARY KEY,
		account_id TEXT NOT NULL REFERENCES accounts(id),
		task_id TEXT NOT NULL,
		state TEXT NOT NULL,
		instance_type TEXT NOT NULL,
		platform TEXT NOT NULL,
		architecture TEXT NOT NULL,
		availability_zone TEXT NOT NULL,
		monitoring INTEGER NOT NULL,
		launched INTEGER NOT NULL
	);
	CREATE INDEX instances_account ON instances(account_id);
	CREATE TABLE bundle_tasks (
		id TEXT PRIMARY KEY,
		account_id TEXT NOT NULL REFERENCES accounts(id),
		instance_id TEXT NOT NULL,
		state TEXT NOT NULL,
		progress INTEGER NOT NULL,
		bucket TEXT NOT NULL,
		prefix TEXT NOT NULL,
		upload_access_key TEXT NOT NULL,
		upload_policy TEXT NOT NULL,
		upload_policy_signature TEXT NOT NULL,
		error_code TEXT NOT NULL,
		error_message TEXT NOT NULL,
		started INTEGER NOT NULL,
		updated INTEGER NOT NULL
	);
	CREATE INDEX bundle_tasks_account ON bundle_tasks(account_id);`,
	// 2: leases (which server runs a task, until when, under which
	// generation), the claim history, and which server holds a volume.
	`ALTER TABLE tasks ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN lease_generation INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE tasks ADD COLUMN lease_expires INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE volumes ADD COLUMN server TEXT NOT NULL DEFAULT '';
	CREATE TABLE task_claims (
		task_id TEXT NOT NULL REFERENCES tasks(id),
		generation INTEGER NOT NULL,
		server TEXT NOT NULL,
		claimed INTEGER NOT NULL,
		PRIMARY KEY (task_id, generation)
	);`,
	// 3: a bundle's AES key and IV and its tar member's time (so that a
	// restarted bundle regenerates the same bytes), and the parts stored.
	`ALTER TABLE bundle_tasks ADD COLUMN secret TEXT NOT NULL DEFAULT '';
	ALTER TABLE bundle_tasks ADD COLUMN mod_time INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE bundle_parts (
		bundle_id TEXT NOT NULL REFERENCES bundle_tasks(id),
		idx INTEGER NOT NULL,
		digest TEXT NOT NULL,
		PRIMARY KEY (bundle_id, idx)
	);`,
	// 4: which disk of an OVA a volume holds: ImportInstance with
	// Image.Format OVA adds a volume for each disk past the boot disk,
	// once (the unique index fences a second worker's attempt).
	`ALTER TABLE volumes ADD COLUMN origin TEXT NOT NULL DEFAULT '';
	ALTER TABLE volumes ADD COLUMN appliance_disk INTEGER NOT NULL DEFAULT 0;
	CREATE UNIQUE INDEX volumes_appliance_disk ON volumes(origin, appliance_disk) WHERE origin != '';`,
	// 5: the modern VM Import/Export API. ImportSnapshot and ImportImage
	// tasks live in tasks (kinds snapshot and image) with the client's
	// idempotency token and the image's attributes (an export task's:
	// what it writes where); their disks are rows
	// of volumes of kind snapshot, which are the snapshots once the task
	// completes; a volume made from a snapshot names it. Images (ami-)
	// with their block devices, and tags on any resource.
	`ALTER TABLE tasks ADD COLUMN client_token TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN params_hash TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN image_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN architecture TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN license_type TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN boot_mode TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN export_format TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN export_container TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN export_target TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN s3_bucket TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN s3_prefix TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN role_name TEXT NOT NULL DEFAULT '';
	CREATE UNIQUE INDEX tasks_client_token ON tasks(account_id, client_token) WHERE client_token != '';
	ALTER TABLE volumes ADD COLUMN kind TEXT NOT NULL DEFAULT 'volume';
	ALTER TABLE volumes ADD COLUMN device_name TEXT NOT NULL DEFAULT '';
	ALTER TABLE volumes ADD COLUMN source_snapshot TEXT NOT NULL DEFAULT '';
	ALTER TABLE volumes ADD COLUMN virtual_size INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX volumes_source ON volumes(source_snapshot) WHERE source_snapshot != '';
	CREATE TABLE images (
		id TEXT PRIMARY KEY,
		account_id TEXT NOT NULL REFERENCES accounts(id),
		task_id TEXT NOT NULL,
		name TEXT NOT NULL,
		description TEXT NOT NULL,
		state TEXT NOT NULL,
		architecture TEXT NOT NULL,
		platform TEXT NOT NULL,
		root_device_name TEXT NOT NULL,
		virtualization_type TEXT NOT NULL,
		ena_support INTEGER NOT NULL,
		boot_mode TEXT NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE INDEX images_account ON images(account_id);
	CREATE UNIQUE INDEX images_name ON images(account_id, name) WHERE state != 'deregistered';
	CREATE TABLE image_devices (
		image_id TEXT NOT NULL REFERENCES images(id),
		idx INTEGER NOT NULL,
		device_name TEXT NOT NULL,
		snapshot_id TEXT NOT NULL,
		volume_size INTEGER NOT NULL,
		volume_type TEXT NOT NULL,
		delete_on_termination INTEGER NOT NULL,
		PRIMARY KEY (image_id, idx)
	);
	CREATE INDEX image_devices_snapshot ON image_devices(snapshot_id);
	CREATE TABLE tags (
		account_id TEXT NOT NULL REFERENCES accounts(id),
		resource_id TEXT NOT NULL,
		key TEXT NOT NULL,
		value TEXT NOT NULL,
		PRIMARY KEY (resource_id, key)
	);
	CREATE INDEX tags_account ON tags(account_id);`,
}

// CreateAccount adds an account with its first key pair.
func (s *DB) CreateAccount(ctx context.Context, a *Account, key *AccessKey) error {
	return s.tx(ctx, func(tx *rtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts VALUES (?, ?, ?)`, a.ID, a.Name, unix(a.Created)); err != nil {
			if isUnique(err) {
				return fmt.Errorf("%w: account %q", ErrExists, a.Name)
			}
			return fmt.Errorf("store: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO access_keys VALUES (?, ?, ?, ?)`, key.ID, a.ID, key.Secret, unix(key.Created)); err != nil {
			if isUnique(err) {
				return fmt.Errorf("%w: access key %s", ErrExists, key.ID)
			}
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

// AccountCount says how many accounts exist.
func (s *DB) AccountCount(ctx context.Context) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return n, nil
}

// AccessKey returns the key pair with this id.
func (s *DB) AccessKey(ctx context.Context, id string) (*AccessKey, error) {
	k := &AccessKey{ID: id}
	var created int64
	err := s.rdb.QueryRowContext(ctx, `SELECT account_id, secret, created FROM access_keys WHERE id = ?`, id).Scan(&k.AccountID, &k.Secret, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	k.Created = fromUnix(created)
	return k, nil
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(account string, ids []string) []any {
	args := []any{account}
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}
