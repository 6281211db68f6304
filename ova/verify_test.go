package ova

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/diskport/diskport/disk"
)

// memStorage is a member's bytes in memory.
type memStorage struct{ *bytes.Reader }

func (memStorage) Name() string { return "mem" }

// TestHashedStorageParallel reads a member as parallel workers do: each
// takes the next 1 MiB segment and reads it in grain-sized pieces, some
// skipped (markers the reader never reads), some read twice. The hash
// comes out right, each byte is read about once (the skips are gaps the
// hash reads itself), and a flipped byte is caught with the member named.
func TestHashedStorageParallel(t *testing.T) {
	data := make([]byte, 24<<20+777)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, flip := range []bool{false, true} {
		sum := sha256.Sum256(data)
		member := data
		if flip {
			member = bytes.Clone(data)
			member[13<<20+5] ^= 1
		}
		v := newHashedStorage(memStorage{bytes.NewReader(member)}, "disk1.vmdk", Digest{"SHA256", hex.EncodeToString(sum[:])})
		const seg = 1 << 20
		var next int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(len(member)), 7))
				for {
					mu.Lock()
					s := next
					next += seg
					mu.Unlock()
					if s >= int64(len(member)) {
						return
					}
					for off := s; off < min(s+seg, int64(len(member))); {
						n := min(int64(padFill+1+r.IntN(65536-padFill)), s+seg-off, int64(len(member))-off)
						if r.IntN(50) != 0 { // 1 in 50 pieces skipped: a gap
							b := make([]byte, n)
							if _, err := v.ReadAt(b, off); err != nil {
								t.Error(err)
								return
							}
						}
						off += n
					}
				}
			})
		}
		wg.Wait()
		err := v.Check()
		switch {
		case flip && (!errors.Is(err, disk.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(`"disk1.vmdk"`))):
			t.Fatalf("a flipped byte: %v; want a corrupt error naming the member", err)
		case !flip && err != nil:
			t.Fatal(err)
		}
		// A gap the hash reads itself after stalling behind it may be a
		// piece a slower worker was about to read: at most gapChunk
		// twice per stallBytes kept.
		if got, size := v.bytesRead(), int64(len(member)); got < size || got > size+(size/stallBytes+1)*gapChunk {
			t.Errorf("read %d bytes of a %d-byte member", got, size)
		}
		if len(v.pending) != 0 || v.kept != 0 {
			t.Errorf("%d ranges (%d bytes) still kept after Check", len(v.pending), v.kept)
		}
	}
}
