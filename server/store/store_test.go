package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *SQLite {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
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

func TestAccountsAndIsolation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
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
	s = open(t, dir)
	if _, err := s.Task(ctx, "000000000001", "import-vol-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Transition(ctx, "import-vol-a", []string{TaskActive}, TaskCompleted, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Transition(ctx, "import-vol-a", []string{TaskActive}, TaskCancelling, "no"); !errors.Is(err, ErrState) {
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

func TestCancelDeletesVolumes(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
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
	if err := s.Transition(ctx, "import-vol-1", []string{TaskActive}, TaskCancelled, "user said so"); err != nil {
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
	dir := t.TempDir()
	s := open(t, dir)
	var v int
	if err := s.db.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion)
	}
	if _, err := s.db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir); err == nil {
		t.Fatal("a database from a newer diskport opened")
	}
	// The file header's read and write versions are 2 in WAL mode.
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil || len(b) < 20 || b[18] != 2 || b[19] != 2 {
		t.Fatalf("database file is not in WAL mode (%v)", err)
	}
}
