package manifest

import (
	"context"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
)

// created splits a fresh test file into a directory and returns the
// manifest, the directory and the file's bytes.
func created(t testing.TB, size, partSize int64) (*Manifest, string, []byte) {
	t.Helper()
	img, data := testimg.MixedFile(t, size, uint64(size))
	dir := t.TempDir()
	m, _, err := Create(context.Background(), img, dir, SplitOptions{PartSize: partSize})
	if err != nil {
		t.Fatal(err)
	}
	return m, dir, data
}
