package store

import (
	"context"
	"maps"
	"testing"
	"time"
)

func TestBundlePartsAndSecret(t *testing.T) { forEach(t, testBundlePartsAndSecret) }

// testBundlePartsAndSecret: a bundle task keeps its secret and tar time
// across a reopen, and the record of its stored parts (replaced, forgotten)
// is its own.
func testBundlePartsAndSecret(t *testing.T, open func(*testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	addAccount(t, s, "000000000001", "alice", "AKIAALICE")
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, id := range []string{"bun-00000001", "bun-00000002"} {
		if err := s.CreateBundle(ctx, &BundleTask{ID: id, AccountID: "000000000001", InstanceID: "i-1", State: "pending",
			Started: now, Updated: now}); err != nil {
			t.Fatal(err)
		}
	}
	b := &BundleTask{ID: "bun-00000001", State: "bundling", Updated: now, Secret: "00112233", ModTime: now.Add(-time.Hour)}
	if err := s.UpdateBundle(ctx, b, []string{"pending"}); err != nil {
		t.Fatal(err)
	}
	for i, d := range []string{"aa", "bb", "cc"} {
		if err := s.StoreBundlePart(ctx, "bun-00000001", i, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.StoreBundlePart(ctx, "bun-00000001", 1, "dd"); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetBundlePart(ctx, "bun-00000001", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreBundlePart(ctx, "bun-00000002", 0, "ee"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t)
	got, err := s.Bundles(ctx, "000000000001", []string{"bun-00000001", "bun-00000002"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Secret != "00112233" || !got[0].ModTime.Equal(now.Add(-time.Hour)) {
		t.Fatalf("secret %q, tar time %v; want 00112233, %v", got[0].Secret, got[0].ModTime, now.Add(-time.Hour))
	}
	if got[1].Secret != "" || !got[1].ModTime.IsZero() {
		t.Fatalf("a task with no secret reads back %q, %v", got[1].Secret, got[1].ModTime)
	}
	parts, err := s.BundleParts(ctx, "bun-00000001")
	if want := map[int]string{0: "aa", 1: "dd"}; err != nil || !maps.Equal(parts, want) {
		t.Fatalf("BundleParts = %v, %v; want %v", parts, err, want)
	}
	if parts, err := s.BundleParts(ctx, "bun-00000003"); err != nil || len(parts) != 0 {
		t.Fatalf("BundleParts of an unknown task = %v, %v", parts, err)
	}
}
