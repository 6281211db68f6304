package parts

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"

	"github.com/diskport/diskport/disk"
)

// An orderedHash is what a [Storage] checks once every byte has passed:
// the whole file's SHA-256, and the SHA-256 of each part too large to be
// fetched whole (a part of at most MaxChunk bytes is checked as it is
// fetched; a larger one is fetched in chunks and never held whole). The
// chunks are hashed in file order, each when it is fetched if every chunk
// before it has been hashed, else when its turn comes while it is still
// in the cache. Nothing is kept for the hash's sake: a chunk evicted
// before its turn is hashed when it is fetched again (by a reader, or by
// [Storage.Verify]), and a chunk fetched twice is hashed once.
type orderedHash struct {
	mu   sync.Mutex // held while hashing, so that chunks go in order
	file hash.Hash  // nil when the file has no whole-file sum
	part hash.Hash  // the split part being hashed; nil between them
	next int        // the chunks before next are hashed
	// bad is the first split part whose sum did not match.
	bad error
}

// newOrderedHash returns the hash of what f's chunks must add up to, or
// nil when there is nothing to check at the end.
func newOrderedHash(f *File, split func(p *Part) bool) *orderedHash {
	h := &orderedHash{}
	if f.SHA256 != "" {
		h.file = sha256.New()
	}
	for i := range f.Parts {
		if p := &f.Parts[i]; p.SHA256 != "" && split(p) {
			return h
		}
	}
	if h.file == nil {
		return nil // nothing to check against
	}
	return h
}

// hashAhead hashes the chunks from the next one due, in order, while they
// are in the cache with their bytes.
func (s *Storage) hashAhead() {
	if s.oh == nil {
		return
	}
	s.oh.mu.Lock()
	defer s.oh.mu.Unlock()
	for s.oh.next < len(s.chunks) {
		s.mu.Lock()
		c, ok := s.cache[s.oh.next]
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

// hashChunk adds chunk s.oh.next to the hashes it belongs to, and checks
// a split part's sum at its last chunk. s.oh.mu is held and the caller
// holds a reference to c.
func (s *Storage) hashChunk(c *chunk) {
	h := s.oh
	ref := s.chunks[h.next]
	p := &s.file.Parts[ref.part]
	if ref.off == 0 && ref.n < p.Length && p.SHA256 != "" {
		h.part = sha256.New() // the first chunk of a split part
	}
	for _, w := range []hash.Hash{h.file, h.part} {
		if w == nil {
			continue
		}
		if c.zero {
			hashZeros(w, ref.n)
		} else {
			w.Write(c.data)
		}
	}
	if h.part != nil && ref.off+ref.n == p.Length {
		if got := hex.EncodeToString(h.part.Sum(nil)); got != p.SHA256 && h.bad == nil {
			h.bad = &PartError{Part: *p, Where: s.store.Where(p),
				Err: errorf(disk.ErrCorrupt, "checksum mismatch: sha256 %s, manifest says %s", got, p.SHA256)}
		}
		h.part = nil
	}
	h.next++
}

// Verify checks what can be checked only once every byte has passed,
// against the file's sums: the SHA-256 of each part larger than MaxChunk,
// then that of the whole file (the check that the parts, each matching
// its own checksum, are also the right parts in the right places). Parts
// fetched whole were checked as they came. Call it once the reader is
// done. The chunks were hashed as they were fetched; Verify fetches only
// those not hashed on the way (fetched ahead of their turn and evicted
// before it, or never read, as after a resumed conversion). The error
// names the part (a [*PartError]) or the storage (by its Name: the
// manifest), and matches disk.ErrCorrupt. A file without sums passes.
func (s *Storage) Verify() error {
	if s.oh == nil {
		return nil
	}
	for {
		s.oh.mu.Lock()
		i := s.oh.next
		s.oh.mu.Unlock()
		if i >= len(s.chunks) {
			break
		}
		c, err := s.getChunk(i)
		if err != nil {
			return err
		}
		s.oh.mu.Lock()
		if s.oh.next == i {
			s.hashChunk(c)
		}
		s.oh.mu.Unlock()
		s.release(c)
		s.hashAhead()
	}
	s.oh.mu.Lock()
	defer s.oh.mu.Unlock()
	if s.oh.bad != nil {
		return s.oh.bad
	}
	if s.oh.file == nil {
		return nil
	}
	if got := hex.EncodeToString(s.oh.file.Sum(nil)); got != s.file.SHA256 {
		return errorf(disk.ErrCorrupt, "%s: file checksum mismatch: sha256 %s, manifest says %s (parts are missing, swapped or replaced)", s.opts.Name, got, s.file.SHA256)
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
