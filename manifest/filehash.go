package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"

	"github.com/diskport/diskport/disk"
)

// A fileHash is the whole file's SHA-256 as a [Storage] reads it: the
// chunks are hashed in file order, each when it is fetched if every chunk
// before it has been hashed, else when its turn comes while it is still
// in the cache. Nothing is kept for the hash's sake: a chunk evicted
// before its turn is hashed when it is fetched again (by a reader, or by
// [Storage.CheckFile]), and a chunk fetched twice is hashed once.
type fileHash struct {
	mu   sync.Mutex // held while hashing, so that chunks go in order
	h    hash.Hash
	next int // the chunks before next are hashed
}

func newFileHash(m *Manifest) *fileHash {
	if m.SHA256 == "" {
		return nil // nothing to check against
	}
	return &fileHash{h: sha256.New()}
}

// hashAhead hashes the chunks from the next one due, in order, while they
// are in the cache with their bytes.
func (s *Storage) hashAhead() {
	if s.fh == nil {
		return
	}
	s.fh.mu.Lock()
	defer s.fh.mu.Unlock()
	for s.fh.next < len(s.chunks) {
		s.mu.Lock()
		c, ok := s.cache[s.fh.next]
		if ok {
			select {
			case <-c.done:
				ok = c.err == nil && (c.zero || c.data != nil)
			default:
				ok = false // in flight: its fetch hashes it
			}
		}
		if ok {
			c.refs++ // keep its buffer while hashing
		}
		s.mu.Unlock()
		if !ok {
			return
		}
		s.hashChunk(c)
		s.release(c)
	}
}

// hashChunk adds chunk s.fh.next to the hash. s.fh.mu is held and the
// caller holds a reference to c.
func (s *Storage) hashChunk(c *chunk) {
	if c.zero {
		hashZeros(s.fh.h, s.chunks[s.fh.next].n)
	} else {
		s.fh.h.Write(c.data)
	}
	s.fh.next++
}

// CheckFile checks the whole file's SHA-256, as the storage has read it,
// against the manifest's (when it has one): the check that the parts,
// each matching its own checksum, are also the right parts in the right
// places. Call it once the reader is done. The chunks were hashed as they
// were fetched; CheckFile fetches only those not hashed on the way (fetched
// ahead of their turn and evicted before it, or never read, as after a
// resumed conversion). The error names the storage (the manifest) and
// matches disk.ErrCorrupt.
func (s *Storage) CheckFile() error {
	if s.fh == nil {
		return nil
	}
	for {
		s.fh.mu.Lock()
		i := s.fh.next
		s.fh.mu.Unlock()
		if i >= len(s.chunks) {
			break
		}
		c, err := s.getChunk(i)
		if err != nil {
			return err
		}
		s.fh.mu.Lock()
		if s.fh.next == i {
			s.hashChunk(c)
		}
		s.fh.mu.Unlock()
		s.release(c)
		s.hashAhead()
	}
	s.fh.mu.Lock()
	got := hex.EncodeToString(s.fh.h.Sum(nil))
	s.fh.mu.Unlock()
	if got != s.m.SHA256 {
		return errorf(disk.ErrCorrupt, "%s: file checksum mismatch: sha256 %s, manifest says %s (parts are missing, swapped or replaced)", s.opts.Name, got, s.m.SHA256)
	}
	return nil
}

// zeroBuf is a source of zeros to hash.
var zeroBuf [64 << 10]byte

// hashZeros writes n zero bytes to h.
func hashZeros(h hash.Hash, n int64) {
	for n > 0 {
		k := min(n, int64(len(zeroBuf)))
		h.Write(zeroBuf[:k])
		n -= k
	}
}
