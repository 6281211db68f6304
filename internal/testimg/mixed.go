package testimg

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// MixedFile writes size bytes of mixed content drawn from seed (random
// runs, zero runs, repeated text) to disk.img in a temporary directory
// and returns its path and bytes: a plain file, no disk image format.
func MixedFile(t testing.TB, size int64, seed uint64) (string, []byte) {
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
