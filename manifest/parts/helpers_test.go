package parts

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
)

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
	img, data := testimg.MixedFile(t, size, uint64(size))
	dir := t.TempDir()
	return split(t, img, dir, partSize), dir, data
}
