package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskport/diskport/internal/pgtest"
)

// A backend opens (and reopens) one fresh database of one kind, with the
// first n migrations (all when n < 0).
type backend struct {
	name string
	// fresh returns an opener of one new, empty database.
	fresh func(t *testing.T) func(t *testing.T, n int) (*DB, error)
}

var (
	pgSrv *pgtest.Server
	pgN   int
	pgMu  sync.Mutex
)

var backends = []backend{
	{"sqlite", func(t *testing.T) func(*testing.T, int) (*DB, error) {
		dir := t.TempDir()
		return func(t *testing.T, n int) (*DB, error) { return openSQLite(filepath.Join(dir, FileName), prefix(n)) }
	}},
	{"postgres", func(t *testing.T) func(*testing.T, int) (*DB, error) {
		pgMu.Lock()
		defer pgMu.Unlock()
		if pgSrv == nil {
			// One server for the package's tests, a database for each.
			pgSrv = pgtest.Start(&pkgTB{T: t})
		}
		pgN++
		name := fmt.Sprintf("t%d", pgN)
		admin, err := OpenPostgres(context.Background(), pgSrv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.db.ExecContext(context.Background(), `CREATE DATABASE `+name); err != nil {
			t.Fatal(err)
		}
		admin.Close()
		url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pgSrv.Port, name)
		return func(t *testing.T, n int) (*DB, error) { return openPostgres(context.Background(), url, prefix(n)) }
	}},
}

// pkgTB keeps the package's PostgreSQL running past the first test that
// starts it: its cleanups run in TestMain.
type pkgTB struct{ *testing.T }

var pkgCleanups []func()

func (p *pkgTB) Cleanup(f func()) { pkgCleanups = append(pkgCleanups, f) }

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(pkgCleanups) - 1; i >= 0; i-- {
		pkgCleanups[i]()
	}
	os.Exit(code)
}

func prefix(n int) []string {
	if n < 0 {
		return migrations
	}
	return migrations[:n]
}

// forEach runs f against each backend; open opens the backend's one
// database (again).
func forEach(t *testing.T, f func(t *testing.T, open func(t *testing.T) *DB)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			o := b.fresh(t)
			f(t, func(t *testing.T) *DB {
				t.Helper()
				s, err := o(t, -1)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

func addAccount(t *testing.T, s Store, id, name, key string) {
	t.Helper()
	now := time.Now()
	if err := s.CreateAccount(context.Background(), &Account{ID: id, Name: name, Created: now},
		&AccessKey{ID: key, Secret: "secret-" + key, Created: now}); err != nil {
		t.Fatal(err)
	}
}

func volumeTask(id, account, vol string) *Task {
	now := time.Now()
	return &Task{ID: id, AccountID: account, Kind: KindVolume, State: TaskActive, StatusMessage: "Pending: queued",
		AvailabilityZone: "us-east-1a", Expiration: now.Add(time.Hour), Created: now, Updated: now,
		Volumes: []*Volume{{ID: vol, Size: 1, AvailabilityZone: "us-east-1a", State: VolumeCreating, Created: now,
			Format: "RAW", Bytes: 512, ManifestURL: "http://127.0.0.1:9000/b/m.xml", Status: "active"}}}
}

func TestAccountsAndIsolation(t *testing.T) { forEach(t, testAccountsAndIsolation) }

func testAccountsAndIsolation(t *testing.T, open func(*testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	addAccount(t, s, "000000000001", "alice", "AKIAALICE")
	addAccount(t, s, "000000000002", "bob", "AKIABOB")
	err := s.CreateAccount(ctx, &Account{ID: "000000000003", Name: "alice"}, &AccessKey{ID: "AKIAX", Secret: "x"})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate account name: %v, want ErrExists", err)
	}
	if n, err := s.AccountCount(ctx); err != nil || n != 2 {
		t.Fatalf("AccountCount = %d, %v; want 2", n, err)
	}
	k, err := s.AccessKey(ctx, "AKIABOB")
	if err != nil || k.AccountID != "000000000002" || k.Secret != "secret-AKIABOB" {
		t.Fatalf("AccessKey = %+v, %v", k, err)
	}
	if _, err := s.AccessKey(ctx, "AKIANONE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := s.CreateTask(ctx, volumeTask("import-vol-a", "000000000001", "vol-a"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Task(ctx, "000000000002", "import-vol-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob reads alice's task: %v", err)
	}
	if ts, err := s.Tasks(ctx, "000000000002", nil); err != nil || len(ts) != 0 {
		t.Fatalf("bob lists %d tasks, %v", len(ts), err)
	}
	if vs, err := s.Volumes(ctx, "000000000002", nil); err != nil || len(vs) != 0 {
		t.Fatalf("bob lists %d volumes, %v", len(vs), err)
	}
	if _, err := s.Volumes(ctx, "000000000002", []string{"vol-a"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob reads alice's volume: %v", err)
	}
	got, err := s.Task(ctx, "000000000001", "import-vol-a")
	if err != nil || len(got.Volumes) != 1 || got.Volumes[0].ManifestURL == "" {
		t.Fatalf("alice's task: %+v, %v", got, err)
	}

	// Durable: a reopened store has everything.
	s.Close()
	s = open(t)
	if _, err := s.Task(ctx, "000000000001", "import-vol-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Transition(ctx, "import-vol-a", []TaskState{TaskActive}, TaskCompleted, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Transition(ctx, "import-vol-a", []TaskState{TaskActive}, TaskCancelling, "no"); !errors.Is(err, ErrState) {
		t.Fatalf("cancelling a completed task: %v, want ErrState", err)
	}
	vs, err := s.Volumes(ctx, "000000000001", []string{"vol-a"})
	if err != nil || vs[0].State != VolumeAvailable || vs[0].Status != "completed" {
		t.Fatalf("completed task's volume: %+v, %v", vs, err)
	}
	if u, err := s.Unfinished(ctx); err != nil || len(u) != 0 {
		t.Fatalf("Unfinished = %d, %v", len(u), err)
	}
}

func TestCancelDeletesVolumes(t *testing.T) { forEach(t, testCancelDeletesVolumes) }

func testCancelDeletesVolumes(t *testing.T, open func(*testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	addAccount(t, s, "000000000001", "alice", "AKIAALICE")
	for _, id := range []string{"1", "2"} {
		if err := s.CreateTask(ctx, volumeTask("import-vol-"+id, "000000000001", "vol-"+id), nil); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.Unfinished(ctx)
	if err != nil || len(u) != 2 || u[0].ID != "import-vol-1" {
		t.Fatalf("Unfinished: %v, %v", u, err)
	}
	if err := s.Transition(ctx, "import-vol-1", []TaskState{TaskActive}, TaskCancelled, "user said so"); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Volumes(ctx, "000000000001", nil)
	if err != nil || len(vs) != 1 || vs[0].ID != "vol-2" {
		t.Fatalf("volumes after cancel: %v, %v", vs, err)
	}
	tk, err := s.Task(ctx, "000000000001", "import-vol-1")
	if err != nil || tk.StatusMessage != "user said so" || tk.Volumes[0].State != VolumeDeleted {
		t.Fatalf("cancelled task: %+v, %v", tk, err)
	}
}

func TestSchemaVersion(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			o := b.fresh(t)
			// A database at schema version 1 with a task in it.
			s, err := o(t, 1)
			if err != nil {
				t.Fatal(err)
			}
			now := unix(time.Now())
			for _, q := range []string{
				`INSERT INTO accounts VALUES ('000000000001', 'alice', 1)`,
				fmt.Sprintf(`INSERT INTO tasks VALUES ('import-vol-old', '000000000001', 'volume', 'active', 'Pending', '', 'us-east-1a', '', '', %d, %d, %d, 1)`, now+3600000, now, now),
			} {
				if _, err := s.db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s, err = o(t, -1)
			if err != nil {
				t.Fatalf("upgrading a version 1 schema: %v", err)
			}
			var v int
			if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion {
				t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion)
			}
			tk, err := s.Task(ctx, "000000000001", "import-vol-old")
			if err != nil || tk.LeaseGeneration != 0 || tk.LeaseOwner != "" {
				t.Fatalf("the old task after the upgrade: %+v, %v", tk, err)
			}
			if _, err := s.db.ExecContext(ctx, `UPDATE schema_version SET version = 99`); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if s, err := o(t, -1); err == nil {
				s.Close()
				t.Fatal("a database from a newer diskport opened")
			} else if want := "schema version 99, newer than this diskport's"; !strings.Contains(err.Error(), want) {
				t.Fatalf("newer schema: %v, want %q", err, want)
			}
		})
	}
}

// TestWAL: the SQLite file's header's read and write versions are 2 in
// WAL mode.
func TestWAL(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil || len(b) < 20 || b[18] != 2 || b[19] != 2 {
		t.Fatalf("database file is not in WAL mode (%v)", err)
	}
}
