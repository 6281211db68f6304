package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAccountAdmin(t *testing.T) { forEach(t, testAccountAdmin) }

// testAccountAdmin lists accounts and key ids, rotates a key (the old one
// is gone, the new one found) and removes accounts: one that owns nothing
// entirely, one that owns a task keeping its task out of the listing.
func testAccountAdmin(t *testing.T, open func(*testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	addAccount(t, s, "000000000002", "bob", "AKIABOB")
	addAccount(t, s, "000000000001", "alice", "AKIAALICE")
	as, err := s.Accounts(ctx)
	if err != nil || len(as) != 2 || as[0].Name != "alice" || as[1].Name != "bob" || as[0].ID != "000000000001" {
		t.Fatalf("Accounts = %v, %v", as, err)
	}
	ks, err := s.AccessKeys(ctx, "000000000001")
	if err != nil || len(ks) != 1 || ks[0].ID != "AKIAALICE" || ks[0].Secret != "" || ks[0].Created.IsZero() {
		t.Fatalf("AccessKeys = %+v, %v (want the id, no secret)", ks, err)
	}

	nk := &AccessKey{ID: "AKIAALICE2", Secret: "secret-2", Created: time.Now()}
	a, err := s.RotateKey(ctx, "alice", nk)
	if err != nil || a.ID != "000000000001" || nk.AccountID != a.ID {
		t.Fatalf("RotateKey = %+v, %v", a, err)
	}
	if _, err := s.AccessKey(ctx, "AKIAALICE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the rotated-out key: %v, want ErrNotFound", err)
	}
	if k, err := s.AccessKey(ctx, "AKIAALICE2"); err != nil || k.Secret != "secret-2" || k.AccountID != a.ID {
		t.Fatalf("the new key: %+v, %v", k, err)
	}
	if _, err := s.RotateKey(ctx, "carol", &AccessKey{ID: "AKIAC", Secret: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rotating an unknown account: %v", err)
	}
	if _, err := s.RotateKey(ctx, "bob", &AccessKey{ID: "AKIAALICE2", Secret: "x"}); !errors.Is(err, ErrExists) {
		t.Fatalf("rotating to another account's key id: %v", err)
	}
	if _, err := s.AccessKey(ctx, "AKIABOB"); err != nil {
		t.Fatalf("a refused rotation changed bob's key: %v", err)
	}

	// alice owns a task: removed, her key refused, the task kept.
	if err := s.CreateTask(ctx, volumeTask("import-vol-a", "000000000001", "vol-a"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveAccount(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccessKey(ctx, "AKIAALICE2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a removed account's key: %v", err)
	}
	if _, err := s.Task(ctx, "000000000001", "import-vol-a"); err != nil {
		t.Fatalf("the removed account's task: %v", err)
	}
	// bob owns nothing: gone.
	if _, err := s.RemoveAccount(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveAccount(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing bob twice: %v", err)
	}
	if _, err := s.RemoveAccount(ctx, "removed/000000000001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing a removed account by its kept name: %v", err)
	}
	if as, err := s.Accounts(ctx); err != nil || len(as) != 0 {
		t.Fatalf("Accounts after removing both = %v, %v", as, err)
	}
	// The name is free again.
	addAccount(t, s, "000000000003", "alice", "AKIAALICE3")
	as, err = s.Accounts(ctx)
	if err != nil || !slices.EqualFunc(as, []string{"alice"}, func(a *Account, n string) bool { return a.Name == n && a.ID == "000000000003" }) {
		t.Fatalf("Accounts after re-adding alice = %v, %v", as, err)
	}
}
