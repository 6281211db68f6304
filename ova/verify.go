package ova

import (
	"cmp"
	"encoding/hex"
	"hash"
	"slices"
	"sync"

	"github.com/diskport/diskport/disk"
)

const (
	// maxPending bounds the copies kept of bytes read ahead of the hash
	// (by parallel workers, or a reader's metadata at the end of the
	// member); bytes beyond it are read again by Check.
	maxPending = 64 << 20
	// padFill is the longest gap the hash reads itself as soon as it
	// reaches it: the padding a reader skips between sectors (a
	// streamOptimized grain ends mid-sector) is never read otherwise.
	padFill = 4 << 10
	// stallBytes is how much the hash keeps before it reads a longer gap
	// itself (the start of a streamOptimized VMDK: the header and
	// descriptor are read, then nothing up to the first grain, 200 KB
	// on); waiting first keeps it from reading what a slower worker is
	// about to read anyway.
	stallBytes = 8 << 20
	// gapChunk is the most the hash reads of a gap at once.
	gapChunk = 512 << 10
)

// A hashedStorage is a member's storage that hashes the member's bytes,
// in order, as the reader reads them, in a goroutine of its own: each
// range read is copied (up to maxPending bytes waiting) and hashed when
// the hash reaches it; a gap the reader skips is read by the hash itself
// (padding at once, a longer gap once the hash has waited behind it for
// stallBytes of copies). [hashedStorage.Check] reads only what was never
// hashed on the way, so a conversion reads each byte about once.
//
// The readers only copy and go on: the hash runs beside the conversion,
// on what CPU time its workers leave (they wait for the volume's writes),
// instead of in their way. The goroutine runs while it has something to
// hash and exits when it has not, so nothing is left behind when a
// conversion stops early.
type hashedStorage struct {
	disk.Storage
	member string
	want   Digest
	h      hash.Hash // written only by the running hash goroutine

	mu      sync.Mutex
	idle    sync.Cond // signalled when the hash goroutine exits
	hashing bool      // the hash goroutine runs
	next    int64     // bytes [0, next) are hashed, or being hashed
	pending []pending // copies of ranges read ahead, by offset
	kept    int64     // bytes in pending
	read    int64     // bytes read from the underlying storage
}

// pending is a copy of a range read ahead of the hash.
type pending struct {
	off int64
	b   []byte // from bufPool
}

func (p pending) end() int64 { return p.off + int64(len(p.b)) }

func newHashedStorage(s disk.Storage, member string, want Digest) *hashedStorage {
	v := &hashedStorage{Storage: s, member: member, want: want, h: want.newHash()}
	v.idle.L = &v.mu
	return v
}

// ReadAt reads from the member and hands what it read to the hash.
func (v *hashedStorage) ReadAt(p []byte, off int64) (int, error) {
	n, err := v.Storage.ReadAt(p, off)
	if n > 0 {
		v.feed(p[:n], off)
	}
	return n, err
}

// feed keeps a copy of b, read at off, for the hash, and starts the hash
// goroutine when it is not running.
func (v *hashedStorage) feed(b []byte, off int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.read += int64(len(b))
	if off+int64(len(b)) <= v.next {
		return
	}
	v.keep(b, off)
	if !v.hashing {
		v.hashing = true
		go v.run()
	}
}

// run is the hash goroutine: it hashes until it can go no further.
func (v *hashedStorage) run() {
	v.mu.Lock()
	v.drain()
	v.hashing = false
	v.idle.Broadcast()
	v.mu.Unlock()
}

// wait waits for the hash goroutine to exit. v.mu is held.
func (v *hashedStorage) wait() {
	for v.hashing {
		v.idle.Wait()
	}
}

// keep inserts a copy of b, read at off, into pending, unless maxPending
// bytes are kept already and b does not continue the hash (which would
// then stall for good). v.mu is held.
func (v *hashedStorage) keep(b []byte, off int64) {
	if v.kept+int64(len(b)) > maxPending && off > v.next {
		return // read again by Check (what continues the hash is always kept)
	}
	c := getBuf(len(b))
	copy(c, b)
	i, _ := slices.BinarySearchFunc(v.pending, off, func(p pending, off int64) int { return cmp.Compare(p.off, off) })
	v.pending = slices.Insert(v.pending, i, pending{off, c})
	v.kept += int64(len(c))
}

// drain hashes the kept ranges the hash has reached, reading gaps before
// them itself. v.mu is held, by the hash goroutine; the lock is dropped
// while hashing.
func (v *hashedStorage) drain() {
	for len(v.pending) > 0 {
		p := v.pending[0]
		if p.end() <= v.next {
			v.pop()
			continue
		}
		if gap := p.off - v.next; gap > 0 {
			if gap > padFill && v.kept < stallBytes || !v.fillGap(min(p.off, v.next+gapChunk)) {
				break
			}
			continue
		}
		v.pop()
		skip := v.next - p.off
		v.next = p.end()
		v.mu.Unlock()
		v.h.Write(p.b[skip:])
		putBuf(p.b)
		v.mu.Lock()
	}
}

// pop drops the first pending range. v.mu is held.
func (v *hashedStorage) pop() {
	v.kept -= int64(len(v.pending[0].b))
	v.pending[0] = pending{}
	v.pending = v.pending[1:]
	if len(v.pending) == 0 {
		v.pending = v.pending[:0:0]
	}
}

// fillGap reads and hashes [v.next, to). v.mu is held, by the hash
// goroutine, the only one that moves v.next; the lock is dropped while
// reading.
func (v *hashedStorage) fillGap(to int64) bool {
	at := v.next
	b := getBuf(int(to - at))
	defer putBuf(b)
	v.mu.Unlock()
	n, _ := v.Storage.ReadAt(b, at)
	v.mu.Lock()
	v.read += int64(n)
	if n < len(b) {
		return false
	}
	v.next = to
	v.mu.Unlock()
	v.h.Write(b)
	v.mu.Lock()
	return true
}

// bufPool recycles the copies of ranges read ahead, by size class: a
// conversion keeps thousands of grain-sized copies on the way.
var bufPool [8]sync.Pool // 4 KiB << i

// getBuf returns a buffer of n bytes.
func getBuf(n int) []byte {
	for i := range bufPool {
		if size := 4096 << i; n <= size {
			if b, ok := bufPool[i].Get().(*[]byte); ok {
				return (*b)[:n]
			}
			return make([]byte, n, size)
		}
	}
	return make([]byte, n)
}

// putBuf returns a buffer from getBuf.
func putBuf(b []byte) {
	for i := range bufPool {
		if cap(b) == 4096<<i {
			b = b[:cap(b)]
			bufPool[i].Put(&b)
			return
		}
	}
}

// Check hashes what was never hashed on the way (reading it once), then
// compares the member's checksum with the .mf's: a mismatch is a
// disk.ErrCorrupt error naming the member.
func (v *hashedStorage) Check() error {
	buf := make([]byte, 1<<20)
	for {
		v.mu.Lock()
		v.wait()
		at, upTo := v.next, v.Size()
		if len(v.pending) > 0 && v.pending[0].off > at {
			upTo = v.pending[0].off // kept already: not read again
		}
		v.mu.Unlock()
		if at >= v.Size() {
			break
		}
		k := min(int64(len(buf)), upTo-at)
		if err := disk.ReadFull(v, "ova", "member "+v.member, buf[:k], at); err != nil {
			return err
		}
	}
	v.mu.Lock()
	v.wait()
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
