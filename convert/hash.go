package convert

import (
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"
	"io"
	"sync"
)

// orderedHash computes the SHA-256 of the volume while segments finish out
// of order: a finished segment's pieces wait until every earlier segment is
// hashed. Workers may run at most window segments ahead of the hash, which
// bounds the memory the waiting pieces hold.
type orderedHash struct {
	c      *converter
	window int
	bufs   bufList

	mu      sync.Mutex
	cond    *sync.Cond
	next    int // the next segment to hash
	pending map[int]*[]piece
	busy    bool // a worker is hashing
	err     error

	hmu    sync.Mutex // held while h changes
	h      hash.Hash
	hashed int // segments in h; guarded by hmu
}

func newOrderedHash(c *converter) *orderedHash {
	window := c.workers + 2
	o := &orderedHash{c: c, window: window, pending: map[int]*[]piece{}, h: sha256.New(),
		bufs: make(bufList, window*segmentSize/bufferSize)}
	o.cond = sync.NewCond(&o.mu)
	if c.journal != nil {
		if next, state, ok := parseHashState(c.journal.State()); ok {
			if err := o.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err == nil {
				o.next, o.hashed = next, next
			}
		}
	}
	return o
}

// admit waits until segment i is within the window of the hash.
func (o *orderedHash) admit(i int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i >= o.next+o.window && o.err == nil {
		o.cond.Wait()
	}
	return o.err
}

// abort wakes every waiter with err.
func (o *orderedHash) abort(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.cond.Broadcast()
	o.mu.Unlock()
}

// submit hands in segment i's pieces; nil pieces mean the segment was
// converted by an earlier run and is read back from the output. The
// segments now in order are hashed by the calling worker.
func (o *orderedHash) submit(i int, ps []piece) error {
	o.mu.Lock()
	if i < o.next {
		o.mu.Unlock() // hashed by an earlier run (resume)
		return nil
	}
	o.pending[i] = &ps
	if o.busy {
		o.mu.Unlock()
		return nil
	}
	o.busy = true
	for o.err == nil {
		p, ok := o.pending[o.next]
		if !ok {
			break
		}
		delete(o.pending, o.next)
		seg := o.next
		o.mu.Unlock()
		err := o.consume(seg, *p)
		o.mu.Lock()
		if err != nil && o.err == nil {
			o.err = err
		}
		o.next++
		o.cond.Broadcast()
	}
	o.busy = false
	err := o.err
	o.mu.Unlock()
	return err
}

// consume hashes segment seg.
func (o *orderedHash) consume(seg int, ps []piece) error {
	o.hmu.Lock()
	defer o.hmu.Unlock()
	o.hashed = seg + 1
	if ps == nil {
		return o.readBack(seg)
	}
	for _, p := range ps {
		if p.data == nil {
			o.zerosLocked(p.n)
			continue
		}
		o.h.Write(p.data)
		if p.pooled {
			o.bufs.put(p.data)
		}
	}
	return nil
}

// readBack hashes a segment an earlier run wrote, reading it from the
// output.
func (o *orderedHash) readBack(seg int) error {
	start := int64(seg) * segmentSize
	n := min(segmentSize, o.c.total-start)
	r := io.NewSectionReader(o.c.out, start, n)
	if _, err := io.CopyBuffer(o.h, r, make([]byte, bufferSize)); err != nil {
		return fmt.Errorf("convert: reading back %s at %d for the checksum: %w", o.c.dst, start, err)
	}
	return nil
}

// zeros hashes n zero bytes (the volume's tail).
func (o *orderedHash) zeros(n int64) error {
	o.hmu.Lock()
	defer o.hmu.Unlock()
	o.zerosLocked(n)
	return nil
}

func (o *orderedHash) zerosLocked(n int64) {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		o.h.Write(zeros[:k])
		n -= k
	}
}

// snapshot returns the number of segments hashed and the hash state.
func (o *orderedHash) snapshot() (int, []byte) {
	o.hmu.Lock()
	defer o.hmu.Unlock()
	next := o.hashed
	state, err := o.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return 0, nil
	}
	return next, state
}
