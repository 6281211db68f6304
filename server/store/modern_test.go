package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// snapshotTask is an ImportSnapshot task (or, with kind KindImage, an
// ImportImage task of n disks) with a client token.
func snapshotTask(id, account, token string, kind TaskKind, snaps ...string) *Task {
	now := time.Now()
	t := &Task{ID: id, AccountID: account, Kind: kind, State: TaskActive, StatusMessage: "pending", Description: "d",
		Expiration: now.Add(time.Hour), Created: now, Updated: now, ClientToken: token, ParamsHash: "h1",
		Tags: []Tag{{ResourceID: id, Key: "Name", Value: id}}}
	if kind == KindImage {
		t.ImageID, t.Architecture, t.Platform, t.BootMode = "ami-"+id, "x86_64", "Linux", "uefi"
	}
	for i, s := range snaps {
		t.Volumes = append(t.Volumes, &Volume{ID: s, Index: i, State: VolumeCreating, Created: now, Kind: KindSnapshotDisk,
			ManifestURL: "s3://b/k", Status: ConversionActive})
	}
	return t
}

func TestModern(t *testing.T) { forEach(t, testModern) }

func testModern(t *testing.T, open func(*testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	addAccount(t, s, "000000000001", "alice", "AKIA1")
	addAccount(t, s, "000000000002", "bob", "AKIA2")
	if err := s.CreateTask(ctx, volumeTask("import-vol-1", "000000000001", "vol-1"), nil); err != nil {
		t.Fatal(err)
	}
	st := snapshotTask("import-snap-1", "000000000001", "tok", KindSnapshot, "snap-1")
	if err := s.CreateTask(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	// The same token again is refused; another account may use it.
	if err := s.CreateTask(ctx, snapshotTask("import-snap-2", "000000000001", "tok", KindSnapshot, "snap-2"), nil); !errors.Is(err, ErrExists) {
		t.Fatalf("a second task with the token: %v", err)
	}
	if err := s.CreateTask(ctx, snapshotTask("import-snap-3", "000000000002", "tok", KindSnapshot, "snap-3"), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TaskByToken(ctx, "000000000001", "tok"); err != nil || got.ID != "import-snap-1" || got.ParamsHash != "h1" || len(got.Volumes) != 1 {
		t.Fatalf("TaskByToken: %+v, %v", got, err)
	}
	if ts, err := s.TasksOf(ctx, "000000000001", LegacyKinds, nil); err != nil || len(ts) != 1 || ts[0].ID != "import-vol-1" {
		t.Fatalf("legacy tasks: %v, %v", ts, err)
	}
	if _, err := s.TasksOf(ctx, "000000000001", []TaskKind{KindSnapshot}, []string{"import-vol-1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a volume task as a snapshot task: %v", err)
	}
	if _, err := s.TasksOf(ctx, "000000000002", []TaskKind{KindSnapshot}, []string{"import-snap-1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another account's task: %v", err)
	}
	// Claim the oldest: the volume task, then the snapshot task.
	for _, want := range []string{"import-vol-1", "import-snap-1"} {
		c, err := s.Claim(ctx, "srv", time.Minute)
		if err != nil || c == nil || c.ID != want {
			t.Fatalf("Claim: %+v, %v; want %s", c, err, want)
		}
		if want == "import-snap-1" {
			if err := s.SetSource(ctx, "snap-1", c.LeaseGeneration+1, "RAW", 10, 10, 1); !errors.Is(err, ErrState) {
				t.Fatalf("SetSource under an old lease: %v", err)
			}
			if err := s.SetSource(ctx, "snap-1", c.LeaseGeneration, "VMDK", 1000, 1<<31, 2); err != nil {
				t.Fatal(err)
			}
			if err := s.Progress(ctx, "snap-1", c.LeaseGeneration, "srv", 5, ConversionCompleted, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sn, err := s.Snapshots(ctx, "000000000001", nil); err != nil || len(sn) != 0 {
		t.Fatalf("snapshots before completion: %v, %v", sn, err)
	}
	if err := s.Transition(ctx, "import-snap-1", []TaskState{TaskActive}, TaskCompleted, ""); err != nil {
		t.Fatal(err)
	}
	sn, err := s.Snapshots(ctx, "000000000001", []string{"snap-1"})
	if err != nil || len(sn) != 1 || sn[0].Size != 2 || sn[0].State != SnapshotCompleted || sn[0].Server != "srv" || sn[0].TaskID != "import-snap-1" {
		t.Fatalf("Snapshots: %+v, %v", sn, err)
	}
	if _, err := s.Snapshots(ctx, "000000000002", []string{"snap-1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another account's snapshot: %v", err)
	}
	if vs, err := s.Volumes(ctx, "000000000001", nil); err != nil || len(vs) != 1 || vs[0].ID != "vol-1" {
		t.Fatalf("Volumes lists a snapshot: %v, %v", vs, err)
	}
	// An image task registers its image as it completes.
	it := snapshotTask("import-ami-1", "000000000001", "", KindImage, "snap-10", "snap-11")
	it.Volumes[1].DeviceName = "/dev/sdf"
	if err := s.CreateTask(ctx, it, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Transition(ctx, "import-ami-1", []TaskState{TaskActive}, TaskCompleted, ""); err != nil {
		t.Fatal(err)
	}
	imgs, err := s.Images(ctx, "000000000001", []string{"ami-import-ami-1"})
	if err != nil || len(imgs) != 1 || imgs[0].RootDeviceName != "/dev/sda1" || len(imgs[0].Devices) != 2 ||
		imgs[0].Devices[1].DeviceName != "/dev/sdf" || imgs[0].Devices[1].SnapshotID != "snap-11" || imgs[0].BootMode != "uefi" || imgs[0].Name != "import-ami-1" {
		t.Fatalf("the imported image: %+v, %v", imgs, err)
	}
	// RegisterImage of another account's snapshot, of a name in use.
	img := &Image{ID: "ami-2", AccountID: "000000000002", Name: "n", State: ImageAvailable, Devices: []BlockDevice{{DeviceName: "/dev/sda1", SnapshotID: "snap-1"}}}
	if err := s.CreateImage(ctx, img); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an image of another account's snapshot: %v", err)
	}
	img.AccountID = "000000000001"
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	img.ID = "ami-3"
	if err := s.CreateImage(ctx, img); !errors.Is(err, ErrExists) {
		t.Fatalf("a second image named n: %v", err)
	}
	if err := s.DeleteSnapshot(ctx, "000000000001", "snap-1"); !errors.Is(err, ErrInUse) {
		t.Fatalf("deleting a snapshot in use: %v", err)
	}
	if err := s.DeregisterImage(ctx, "000000000002", "ami-2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deregistering another account's image: %v", err)
	}
	if err := s.DeregisterImage(ctx, "000000000001", "ami-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSnapshot(ctx, "000000000001", "snap-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshots(ctx, "000000000001", []string{"snap-1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted snapshot: %v", err)
	}
	if ids, err := s.OrphanedVolumes(ctx, "srv"); err != nil || fmt.Sprint(ids) != "[snap-1]" {
		t.Fatalf("orphaned files: %v, %v", ids, err)
	}
	// Tags: the task's from CreateTask, replaced and deleted.
	if err := s.CreateTags(ctx, "000000000001", []Tag{{"snap-10", "Name", "a"}, {"snap-10", "Name", "b"}, {"snap-10", "k", "v"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTags(ctx, "000000000001", []Tag{{"snap-10", "k", ""}}); err != nil {
		t.Fatal(err)
	}
	tags, err := s.Tags(ctx, "000000000001", []string{"snap-10", "import-snap-1"})
	if err != nil || fmt.Sprint(tags) != "[{import-snap-1 Name import-snap-1} {snap-10 Name b}]" {
		t.Fatalf("Tags: %v, %v", tags, err)
	}
	if tags, err := s.Tags(ctx, "000000000002", nil); err != nil || len(tags) != 1 || tags[0].ResourceID != "import-snap-3" {
		t.Fatalf("bob's tags: %v, %v", tags, err)
	}
}

// TestSchemaVersion5: a version 4 database with a task in it upgrades,
// and its task is a volume task with volumes of kind volume.
func TestSchemaVersion5(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			o := b.fresh(t)
			s, err := o(t, 4)
			if err != nil {
				t.Fatal(err)
			}
			now := unix(time.Now())
			for _, q := range []string{
				`INSERT INTO accounts VALUES ('000000000001', 'alice', 1)`,
				fmt.Sprintf(`INSERT INTO tasks VALUES ('import-vol-old', '000000000001', 'volume', 'active', 'Pending', '', 'us-east-1a', '', '', %d, %d, %d, 1, '', 0, 0)`, now+3600000, now, now),
				fmt.Sprintf(`INSERT INTO volumes VALUES ('vol-old', '000000000001', 'import-vol-old', '', 0, 1, 'us-east-1a', 'creating', %d, '', 'RAW', 512, 'http://127.0.0.1:9/b/m.xml', 0, 'active', '', '', '', 0)`, now),
			} {
				if _, err := s.db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s, err = o(t, -1)
			if err != nil {
				t.Fatalf("upgrading a version 4 schema: %v", err)
			}
			defer s.Close()
			ts, err := s.TasksOf(ctx, "000000000001", LegacyKinds, nil)
			if err != nil || len(ts) != 1 || ts[0].ClientToken != "" || len(ts[0].Volumes) != 1 || ts[0].Volumes[0].Kind != KindVolumeDisk {
				t.Fatalf("the old task after the upgrade: %+v, %v", ts, err)
			}
			if err := s.Transition(ctx, "import-vol-old", []TaskState{TaskActive}, TaskCompleted, ""); err != nil {
				t.Fatal(err)
			}
			if vs, err := s.Volumes(ctx, "000000000001", []string{"vol-old"}); err != nil || vs[0].State != VolumeAvailable {
				t.Fatalf("the old volume: %+v, %v", vs, err)
			}
		})
	}
}
