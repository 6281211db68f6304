package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestLeases: claims hand each task to one server; a lease that expires
// passes the task to another under a new generation, and the old
// generation's progress, status, renewal and rename check are refused.
func TestLeases(t *testing.T) { forEach(t, testLeases) }

func testLeases(t *testing.T, open func(*testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	addAccount(t, s, "000000000001", "alice", "AKIAALICE")
	const n = 12
	for i := range n {
		if err := s.CreateTask(ctx, volumeTask(fmt.Sprintf("import-vol-%02d", i), "000000000001", fmt.Sprintf("vol-%02d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Four servers claim concurrently: every task once.
	var mu sync.Mutex
	got := map[string]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				tk, err := s.Claim(ctx, fmt.Sprintf("server-%d", w), time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if tk == nil {
					return
				}
				mu.Lock()
				if prev, dup := got[tk.ID]; dup {
					t.Errorf("%s claimed by %s and server-%d", tk.ID, prev, w)
				}
				got[tk.ID] = tk.LeaseOwner
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("claimed %d tasks, want %d", len(got), n)
	}
	if tk, err := s.Claim(ctx, "server-9", time.Minute); tk != nil || err != nil {
		t.Fatalf("a leased task claimed again: %v, %v", tk, err)
	}

	// One task's lease expires and another server takes it over.
	const id, vol = "import-vol-00", "vol-00"
	owner := got[id]
	if err := s.Renew(ctx, id, 1, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	tk, err := s.Claim(ctx, "server-new", time.Minute)
	if err != nil || tk == nil || tk.ID != id || tk.LeaseGeneration != 2 || tk.TakenOverFrom != owner {
		t.Fatalf("takeover: %+v, %v", tk, err)
	}
	if err := s.Progress(ctx, vol, 2, "server-new", 100, "active", "Progress: 10%"); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"progress":    s.Progress(ctx, vol, 1, owner, 512, "completed", ""),
		"status":      s.SetStatus(ctx, id, 1, "Progress: 100%"),
		"renew":       s.Renew(ctx, id, 1, time.Minute),
		"check lease": s.CheckLease(ctx, id, 1),
	} {
		if !errors.Is(err, ErrState) {
			t.Errorf("the old generation's %s: %v, want ErrState", what, err)
		}
	}
	if err := s.CheckLease(ctx, id, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Progress(ctx, vol, 2, "server-new", 512, "completed", ""); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Volumes(ctx, "000000000001", []string{vol})
	if err != nil || vs[0].BytesConverted != 512 || vs[0].Server != "server-new" {
		t.Fatalf("volume: %+v, %v", vs[0], err)
	}
	if err := s.Transition(ctx, id, []TaskState{TaskActive}, TaskCompleted, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVolumeState(ctx, vol, []VolumeState{VolumeAvailable}, VolumeDeleted); err != nil {
		t.Fatal(err)
	}
	if o, err := s.OrphanedVolumes(ctx, "server-new"); err != nil || len(o) != 1 || o[0] != vol {
		t.Fatalf("orphaned volumes: %v, %v", o, err)
	}
	if err := s.ForgetVolume(ctx, vol, "server-new"); err != nil {
		t.Fatal(err)
	}
	if o, err := s.OrphanedVolumes(ctx, "server-new"); err != nil || len(o) != 0 {
		t.Fatalf("orphaned volumes after ForgetVolume: %v, %v", o, err)
	}
	cl, err := s.Claims(ctx, id)
	if err != nil || len(cl) != 2 || cl[0].Server != owner || cl[1].Server != "server-new" || cl[1].Generation != 2 {
		t.Fatalf("claims: %+v, %v", cl, err)
	}
	// Release frees a restarted server's leases at once.
	const id1 = "import-vol-01"
	if err := s.Release(ctx, got[id1]); err != nil {
		t.Fatal(err)
	}
	if tk, err := s.Claim(ctx, got[id1], time.Minute); err != nil || tk == nil || tk.ID != id1 || tk.TakenOverFrom != "" {
		t.Fatalf("claim after release: %+v, %v", tk, err)
	}
}
