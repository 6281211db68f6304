package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// ovaInstanceTask is an ImportInstance task of one OVA disk image and a
// VMDK one, with its instance.
func ovaInstanceTask(id, account string) (*Task, *Instance) {
	now := time.Now()
	inst := &Instance{ID: "i-" + id, AccountID: account, TaskID: id, State: InstanceStopped, InstanceType: "m1.small",
		Platform: "Linux", Architecture: "x86_64", AvailabilityZone: "us-east-1a", Launched: now}
	t := &Task{ID: id, AccountID: account, Kind: KindInstance, State: TaskActive, StatusMessage: "Pending: queued",
		AvailabilityZone: "us-east-1a", Platform: "Linux", InstanceID: inst.ID, Expiration: now.Add(time.Hour), Created: now, Updated: now}
	for i, f := range []string{"OVA", "VMDK"} {
		t.Volumes = append(t.Volumes, &Volume{ID: fmt.Sprintf("vol-%s-%d", id, i), InstanceID: inst.ID, Index: i, Size: 1,
			AvailabilityZone: "us-east-1a", State: VolumeCreating, Created: now, Format: f, Bytes: 10240,
			ManifestURL: "http://127.0.0.1:9000/b/m.xml", Status: "active"})
	}
	return t, inst
}

// added is what a worker adds for an appliance's disks 1..n-1, with new
// volume ids on each call, as a resumed worker makes them.
func added(origin *Volume, n int, call int) []*Volume {
	var vs []*Volume
	for k := 1; k < n; k++ {
		vs = append(vs, &Volume{ID: fmt.Sprintf("vol-added-%d-%d", call, k), InstanceID: origin.InstanceID, Size: 2,
			AvailabilityZone: origin.AvailabilityZone, State: VolumeCreating, Created: time.Now(), Format: origin.Format,
			Bytes: origin.Bytes, ManifestURL: origin.ManifestURL, Status: "active", Origin: origin.ID, ApplianceDisk: k})
	}
	return vs
}

// TestAddVolumes: an appliance's volumes are added once, whatever how
// many times the expansion runs (a resumed worker, a takeover under a
// new generation), after the task's own; a fenced generation adds
// nothing; the instance lists them; a cancellation deletes them with the
// task's.
func TestAddVolumes(t *testing.T) { forEach(t, testAddVolumes) }

func testAddVolumes(t *testing.T, open func(*testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	addAccount(t, s, "000000000001", "alice", "AKIAALICE")
	tk, inst := ovaInstanceTask("import-i-ova", "000000000001")
	if err := s.CreateTask(ctx, tk, inst); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, "server-1", time.Minute)
	if err != nil || c == nil {
		t.Fatalf("Claim: %v, %v", c, err)
	}
	origin := c.Volumes[0]
	if origin.Origin != "" || origin.ApplianceDisk != 0 {
		t.Fatalf("the request's own volume: %+v", origin)
	}
	if _, err := s.AddVolumes(ctx, c.ID, c.LeaseGeneration+1, added(origin, 3, 0)); !errors.Is(err, ErrState) {
		t.Fatalf("AddVolumes under another generation: %v, want ErrState", err)
	}
	check := func(vs []*Volume) {
		t.Helper()
		if len(vs) != 4 {
			t.Fatalf("%d volumes, want 4", len(vs))
		}
		for i, v := range vs {
			if v.Index != i || v.TaskID != c.ID || v.AccountID != "000000000001" || v.InstanceID != inst.ID {
				t.Errorf("volume %d: %+v", i, v)
			}
		}
		if vs[2].Origin != origin.ID || vs[2].ApplianceDisk != 1 || vs[3].ApplianceDisk != 2 || vs[3].Size != 2 || vs[1].Format != "VMDK" {
			t.Errorf("added volumes: %+v, %+v", vs[2], vs[3])
		}
	}
	vs, err := s.AddVolumes(ctx, c.ID, c.LeaseGeneration, added(origin, 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	check(vs)
	first := vs[2].ID
	// The same worker again, and another after a takeover.
	if vs, err = s.AddVolumes(ctx, c.ID, c.LeaseGeneration, added(origin, 3, 2)); err != nil {
		t.Fatal(err)
	}
	check(vs)
	if err := s.Release(ctx, "server-1"); err != nil {
		t.Fatal(err)
	}
	c2, err := s.Claim(ctx, "server-2", time.Minute)
	if err != nil || c2 == nil || len(c2.Volumes) != 4 {
		t.Fatalf("the task claimed again: %+v, %v", c2, err)
	}
	if vs, err = s.AddVolumes(ctx, c2.ID, c2.LeaseGeneration, added(origin, 3, 3)); err != nil {
		t.Fatal(err)
	}
	check(vs)
	if vs[2].ID != first {
		t.Errorf("the added volume is %s, was %s", vs[2].ID, first)
	}
	if _, err := s.AddVolumes(ctx, c2.ID, c.LeaseGeneration, added(origin, 4, 4)); !errors.Is(err, ErrState) {
		t.Fatalf("AddVolumes under the old generation: %v, want ErrState", err)
	}
	insts, err := s.Instances(ctx, "000000000001", []string{inst.ID})
	if err != nil || len(insts[0].VolumeIDs) != 4 || insts[0].VolumeIDs[3] != vs[3].ID {
		t.Fatalf("the instance's volumes: %+v, %v", insts, err)
	}
	if err := s.Transition(ctx, c.ID, []TaskState{TaskActive}, TaskCancelled, "no"); err != nil {
		t.Fatal(err)
	}
	if left, err := s.Volumes(ctx, "000000000001", nil); err != nil || len(left) != 0 {
		t.Fatalf("volumes after the cancellation: %d, %v", len(left), err)
	}
	if _, err := s.AddVolumes(ctx, c2.ID, c2.LeaseGeneration, added(origin, 4, 5)); !errors.Is(err, ErrState) {
		t.Fatalf("AddVolumes to a cancelled task: %v, want ErrState", err)
	}
}

// TestSchemaVersion4: a database of schema version 3 with a task and its
// volume opens and migrates; the old volume holds no appliance disk, and
// an appliance's volumes can be added to its task.
func TestSchemaVersion4(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			o := b.fresh(t)
			s, err := o(t, 3)
			if err != nil {
				t.Fatal(err)
			}
			now := unix(time.Now())
			for _, q := range []string{
				`INSERT INTO accounts VALUES ('000000000001', 'alice', 1)`,
				fmt.Sprintf(`INSERT INTO tasks VALUES ('import-i-old', '000000000001', 'instance', 'active', 'Pending', '', 'us-east-1a', 'Linux', 'i-old', %d, %d, %d, 1, '', 0, 0)`, now+3600000, now, now),
				fmt.Sprintf(`INSERT INTO volumes VALUES ('vol-old', '000000000001', 'import-i-old', 'i-old', 0, 1, 'us-east-1a', 'creating', %d, '', 'OVA', 10240, 'http://127.0.0.1:9/b/m.xml', 0, 'active', '', '')`, now),
			} {
				if _, err := s.db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s, err = o(t, -1)
			if err != nil {
				t.Fatalf("upgrading a version 3 schema: %v", err)
			}
			defer s.Close()
			var v int
			if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion || v < 4 {
				t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion)
			}
			tk, err := s.Task(ctx, "000000000001", "import-i-old")
			if err != nil || len(tk.Volumes) != 1 || tk.Volumes[0].Origin != "" || tk.Volumes[0].ApplianceDisk != 0 || tk.Volumes[0].Format != "OVA" {
				t.Fatalf("the old task after the upgrade: %+v, %v", tk, err)
			}
			c, err := s.Claim(ctx, "server-1", time.Minute)
			if err != nil || c == nil {
				t.Fatalf("Claim: %v, %v", c, err)
			}
			vs, err := s.AddVolumes(ctx, c.ID, c.LeaseGeneration, added(c.Volumes[0], 2, 0))
			if err != nil || len(vs) != 2 || vs[1].Index != 1 || vs[1].Origin != "vol-old" {
				t.Fatalf("AddVolumes after the upgrade: %+v, %v", vs, err)
			}
		})
	}
}
