package parts

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/internal/testimg"
)

// TestConvertStreamOnePass: converting a streamOptimized VMDK from its
// parts with two workers is one pass over the file. The cache holds about
// half the file's parts, and every 32 MiB of the disk the reader goes back
// to the grain tables in the first part (which stays cached because it is
// used that often); every part is fetched once, but the last, read at open
// and again at the end, and parts of zeros, never fetched.
func TestConvertStreamOnePass(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 96 << 20, Seed: 63})
	img := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	dir := t.TempDir()
	f := split(t, img, dir, 1<<20)
	if len(f.Parts) < 20 {
		t.Fatalf("only %d parts", len(f.Parts))
	}
	f, srv := served(t, f, dir)
	s, err := OpenStorage(context.Background(), f, fastStore(), StorageOptions{CacheChunks: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	remote, err := diskport.OpenStorage(s, diskport.Options{Format: "vmdk"})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "vol.raw")
	// Checking the whole file's SHA-256 (hashed in order as the parts
	// pass) fetches nothing more.
	if _, err := convert.Convert(context.Background(), remote, dst, convert.Options{ExactSize: true, NoSync: true, Workers: 2, Verify: s.Verify}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the volume converted from the parts differs from the image")
	}
	for i, p := range f.Parts {
		n := srv.count(p.Key)
		switch {
		case knownZero(&p):
			if n != 0 {
				t.Errorf("%s holds zeros and was fetched %d times", p.Key, n)
			}
		case i == len(f.Parts)-1:
			if n > 2 {
				t.Errorf("the last part, %s, fetched %d times", p.Key, n)
			}
		case n != 1:
			t.Errorf("%s (%d-%d) fetched %d times", p.Key, p.Offset, p.Offset+p.Length-1, n)
		}
	}
}
