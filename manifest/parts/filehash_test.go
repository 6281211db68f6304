package parts

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// TestVerifySequential: a sequential reader has every chunk hashed on
// the way, so Verify fetches nothing again.
func TestVerifySequential(t *testing.T) {
	f, dir, data := created(t, 4<<20, 256<<10)
	f, srv := served(t, f, dir)
	s, _ := OpenStorage(context.Background(), f, fastStore(), StorageOptions{})
	if !bytes.Equal(testimg.ReadAll(t, s), data) {
		t.Fatal("read differs")
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Parts {
		if n := srv.count(p.Key); n != 1 {
			t.Errorf("%s fetched %d times", p.Key, n)
		}
	}
}

// TestVerifyOutOfOrder reads a file's chunks in random orders through a
// tiny cache, so that chunks are fetched ahead of their turn, evicted and
// fetched again: each is hashed once, in order, and the file checks.
func TestVerifyOutOfOrder(t *testing.T) {
	f, dir, data := created(t, 4<<20+1000, 256<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 5; round++ {
		s, _ := OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{Parallel: 1, CacheChunks: 1})
		b := make([]byte, 1000)
		for range 60 {
			off := rng.Int64N(s.Size() - int64(len(b)))
			if _, err := s.ReadAt(b, off); err != nil || !bytes.Equal(b, data[off:off+int64(len(b))]) {
				t.Fatalf("read at %d: %v", off, err)
			}
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("round %d, second Verify: %v", round, err)
		}
	}
}

// TestVerifySwappedParts swaps two parts' files and their checksum
// entries: every part verifies on its own, the file does not.
func TestVerifySwappedParts(t *testing.T) {
	f, dir, data := created(t, 2<<20, 256<<10)
	a, b := filepath.Join(dir, "disk.img.part1"), filepath.Join(dir, "disk.img.part5")
	if bytes.Equal(data[256<<10:512<<10], data[5*256<<10:6*256<<10]) {
		t.Fatal("parts 1 and 5 are the same")
	}
	os.Rename(a, a+".tmp")
	os.Rename(b, a)
	os.Rename(a+".tmp", b)
	f.Parts[1].SHA256, f.Parts[5].SHA256 = f.Parts[5].SHA256, f.Parts[1].SHA256
	s, _ := OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{Name: "swapped.manifest.xml"})
	testimg.ReadAll(t, s) // every part matches its checksum
	err := s.Verify()
	if !errors.Is(err, disk.ErrCorrupt) || !strings.Contains(err.Error(), "swapped.manifest.xml: file checksum mismatch") || !strings.Contains(err.Error(), f.SHA256) {
		t.Fatalf("Verify = %v", err)
	}
	// Without reading first, Verify fetches the parts itself.
	s, _ = OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{})
	if err := s.Verify(); !errors.Is(err, disk.ErrCorrupt) {
		t.Fatalf("Verify without reads = %v", err)
	}
	// A manifest without a file checksum has nothing to check.
	f.SHA256 = ""
	s, _ = OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{})
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyZeroAndBigParts covers the chunks that are not fetched
// (parts known to hold zeros) and the chunks of parts too big to verify
// on their own: a byte changed in a big part is caught by Verify only.
func TestVerifyZeroAndBigParts(t *testing.T) {
	img, data := testimg.MixedFile(t, 3<<20, 9)
	clear(data[1<<20 : 2<<20]) // parts 4-7 of 256 KiB hold zeros
	os.WriteFile(img, data, 0o644)
	dir := t.TempDir()
	f := split(t, img, dir, 256<<10)
	if !knownZero(&f.Parts[5]) {
		t.Fatal("part 5 is not known to be zeros")
	}
	s, _ := OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{})
	if !bytes.Equal(testimg.ReadAll(t, s), data) {
		t.Fatal("read differs")
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}

	defer func(v int64) { chunkLimit = v }(chunkLimit)
	chunkLimit = 100 << 10
	f, dir, data = created(t, 1<<20+3, 600<<10)
	s, _ = OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{})
	if !bytes.Equal(testimg.ReadAll(t, s), data) {
		t.Fatal("read differs")
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "disk.img.part1")
	b, _ := os.ReadFile(part)
	b[5] ^= 1
	os.WriteFile(part, b, 0o644)
	s, _ = OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{})
	testimg.ReadAll(t, s) // big parts are read in ranges, hashed as they pass
	var pe *PartError
	if err := s.Verify(); !errors.Is(err, disk.ErrCorrupt) || !errors.As(err, &pe) || pe.Part.Index != 1 {
		t.Fatalf("Verify of a changed big part = %v", err)
	}

	// Without a whole-file sum, a big part's own sum still holds, read
	// or not.
	f.SHA256 = ""
	for _, read := range []bool{true, false} {
		s, _ = OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{})
		if read {
			testimg.ReadAll(t, s)
		}
		if err := s.Verify(); !errors.As(err, &pe) || pe.Part.Index != 1 || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("Verify of a changed big part, no file sum, read %v = %v", read, err)
		}
	}
}
