package ova

import (
	"encoding/hex"
	"hash"
	"sync"

	"github.com/diskport/diskport/disk"
)

const (
	// maxPending bounds the copies kept of bytes read ahead of the hash
	// (by parallel workers, or a reader's metadata at the end of the
	// member); bytes beyond it are read again by Check.
	maxPending = 64 << 20
	// gapFill is the longest stretch the hash reads itself when a reader
	// skips it (markers, padding) so that the hash never stalls behind it.
	gapFill = 64 << 10
)

// A hashedStorage is a member's storage that hashes the member's bytes,
// in order, as the reader reads them: a range read at the point the hash
// has reached is hashed at once; a range read ahead of it is kept (up to
// maxPending) and hashed when the hash reaches it; a short gap the reader
// skips is read by the hash itself. [hashedStorage.Check] reads only what
// was never hashed on the way, so a conversion reads each byte once.
type hashedStorage struct {
	disk.Storage
	member string
	want   Digest

	mu      sync.Mutex
	h       hash.Hash
	next    int64            // bytes [0, next) are hashed
	pending map[int64][]byte // copies of ranges read ahead, by offset
	kept    int64            // bytes in pending
	read    int64            // bytes read from the underlying storage
}

func newHashedStorage(s disk.Storage, member string, want Digest) *hashedStorage {
	return &hashedStorage{Storage: s, member: member, want: want, h: want.newHash(), pending: map[int64][]byte{}}
}

// ReadAt reads from the member and hashes what it can.
func (v *hashedStorage) ReadAt(p []byte, off int64) (int, error) {
	n, err := v.Storage.ReadAt(p, off)
	if n > 0 {
		v.mu.Lock()
		v.read += int64(n)
		v.feed(p[:n], off)
		v.mu.Unlock()
	}
	return n, err
}

// feed hashes b, read at off, or keeps it for later. v.mu is held.
func (v *hashedStorage) feed(b []byte, off int64) {
	end := off + int64(len(b))
	switch {
	case end <= v.next:
		return
	case off <= v.next:
		v.h.Write(b[v.next-off:])
		v.next = end
		v.drain()
	case v.kept+int64(len(b)) <= maxPending:
		if old, ok := v.pending[off]; !ok || len(old) < len(b) {
			v.kept += int64(len(b) - len(old))
			v.pending[off] = append([]byte(nil), b...)
		}
		v.drain()
	}
}

// drain hashes the kept ranges the hash has reached, reading short gaps
// before them itself. v.mu is held.
func (v *hashedStorage) drain() {
	for len(v.pending) > 0 {
		first := int64(-1)
		for off, b := range v.pending {
			if off+int64(len(b)) <= v.next {
				delete(v.pending, off)
				v.kept -= int64(len(b))
				continue
			}
			if first < 0 || off < first {
				first = off
			}
		}
		if first < 0 {
			return
		}
		if first > v.next {
			if first-v.next > gapFill || !v.fillGap(first) {
				return
			}
		}
		b := v.pending[first]
		delete(v.pending, first)
		v.kept -= int64(len(b))
		v.h.Write(b[v.next-first:])
		v.next = first + int64(len(b))
	}
}

// fillGap reads and hashes [v.next, to). v.mu is held.
func (v *hashedStorage) fillGap(to int64) bool {
	b := make([]byte, to-v.next)
	n, _ := v.Storage.ReadAt(b, v.next)
	v.read += int64(n)
	if n < len(b) {
		return false
	}
	v.h.Write(b)
	v.next = to
	return true
}

// Check hashes what was never hashed on the way (reading it once), then
// compares the member's checksum with the .mf's: a mismatch is a
// disk.ErrCorrupt error naming the member.
func (v *hashedStorage) Check() error {
	buf := make([]byte, 1<<20)
	for {
		v.mu.Lock()
		at := v.next
		v.mu.Unlock()
		if at >= v.Size() {
			break
		}
		k := min(int64(len(buf)), v.Size()-at)
		if err := disk.ReadFull(v, "ova", "member "+v.member, buf[:k], at); err != nil {
			return err
		}
	}
	v.mu.Lock()
	got := hex.EncodeToString(v.h.Sum(nil))
	v.mu.Unlock()
	if got != v.want.Sum {
		return disk.Errorf("ova", disk.ErrCorrupt, "member %q: %s checksum mismatch: the bytes hash to %s, the .mf says %s", v.member, v.want.Algorithm, got, v.want.Sum)
	}
	return nil
}

// bytesRead is how many bytes were read from the member so far.
func (v *hashedStorage) bytesRead() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.read
}
