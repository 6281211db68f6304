package parts

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// testFile writes size bytes of mixed content (random runs, zero runs,
// text) to a temporary file and returns its path and bytes.
func testFile(t testing.TB, size int64, seed uint64) (string, []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, size)
	for off := int64(0); off < size; {
		n := min(int64(rng.IntN(100000)+1), size-off)
		switch rng.IntN(3) {
		case 0:
			for i := off; i < off+n; i++ {
				b[i] = byte(rng.Uint32())
			}
		case 1: // zeros
		case 2:
			copy(b[off:off+n], bytes.Repeat([]byte("import manifest part "), int(n/21)+1))
		}
		off += n
	}
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, b
}

// split cuts the file at img into parts of partSize bytes named
// disk.img.partN, as the AWS tools name them, and writes them to dir with
// their checksums.
func split(t testing.TB, img, dir string, partSize int64) File {
	t.Helper()
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var f File
	for off, i := int64(0), 0; off < st.Size(); off, i = off+partSize, i+1 {
		f.Parts = append(f.Parts, Part{Index: i, Offset: off, Length: min(partSize, st.Size()-off), Key: fmt.Sprintf("disk.img.part%d", i)})
	}
	if err := (DirStore{Dir: dir}).Write(context.Background(), r, &f, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// created splits a fresh test file into a directory and returns the
// file's parts, the directory and the file's bytes.
func created(t testing.TB, size, partSize int64) (File, string, []byte) {
	t.Helper()
	img, data := testFile(t, size, uint64(size))
	dir := t.TempDir()
	return split(t, img, dir, partSize), dir, data
}
