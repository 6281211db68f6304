package disk

import (
	"fmt"
	"iter"
)

// Kind says what an extent holds.
type Kind uint8

const (
	// Data marks a run whose bytes are stored (verbatim or compressed) and
	// must be read. It may still contain zeros.
	Data Kind = iota + 1
	// Zero marks a run known to read as zeros without being read:
	// unallocated grains or blocks, zeroed grains, holes in a sparse file.
	Zero
)

// String returns "data" or "zero".
func (k Kind) String() string {
	switch k {
	case Data:
		return "data"
	case Zero:
		return "zero"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// An Extent is a run of the virtual disk [Offset, Offset+Length) of uniform
// kind.
type Extent struct {
	// Offset and Length locate the run in the virtual disk, in bytes.
	Offset, Length int64
	// Kind is Data or Zero.
	Kind Kind
	// Compressed is set on Data runs whose bytes are stored compressed
	// (streamOptimized grains): reading them costs CPU.
	Compressed bool
	// Stored, when non-nil on a Data run, is the storage holding the run's
	// bytes verbatim and contiguously starting at StoredOffset, so they can
	// be copied without decoding (copy_file_range, an mmap).
	Stored Storage
	// StoredOffset is the offset in Stored of the run's first byte.
	StoredOffset int64
	// Depth is the layer of a delta chain the run comes from: 0 the image
	// itself, 1 its parent, and so on.
	Depth int
	// Unallocated is set on Zero runs no layer allocates: unallocated
	// grains or blocks at the bottom of the chain, and the range past a
	// smaller parent's end, as opposed to zeroed grains, zero blocks and
	// holes in a raw file, which the image itself defines as zeros.
	Unallocated bool
}

// End returns Offset+Length.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Mergeable reports whether next, which must start where e ends, continues
// e as one uniform run: same kind and compression, and for stored runs the
// same storage at the contiguous offset, from the same layer of the chain.
func (e Extent) Mergeable(next Extent) bool {
	if e.Kind != next.Kind || e.Compressed != next.Compressed || e.End() != next.Offset || e.Depth != next.Depth || e.Unallocated != next.Unallocated {
		return false
	}
	if e.Kind == Zero {
		return true
	}
	if (e.Stored == nil) != (next.Stored == nil) {
		return false
	}
	return e.Stored == nil || (e.Stored == next.Stored && e.StoredOffset+e.Length == next.StoredOffset)
}

// Clip returns the part of e inside [off, end), adjusting StoredOffset, and
// whether it is non-empty.
func (e Extent) Clip(off, end int64) (Extent, bool) {
	if off > e.Offset {
		d := off - e.Offset
		e.Offset += d
		e.Length -= d
		if e.Stored != nil {
			e.StoredOffset += d
		}
	}
	if e.End() > end {
		e.Length = end - e.Offset
	}
	return e, e.Length > 0
}

// Coalesce merges adjacent mergeable extents of seq into the longest runs
// and clips them to [off, off+n). Readers build their extent maps from
// per-grain or per-block runs and return them through Coalesce.
func Coalesce(seq iter.Seq2[Extent, error], off, n int64) iter.Seq2[Extent, error] {
	end := off + n
	return func(yield func(Extent, error) bool) {
		var cur Extent
		have := false
		for e, err := range seq {
			if err != nil {
				if have && !yield(cur, nil) {
					return
				}
				yield(Extent{}, err)
				return
			}
			e, ok := e.Clip(off, end)
			if !ok {
				continue
			}
			if have && cur.Mergeable(e) {
				cur.Length += e.Length
				continue
			}
			if have && !yield(cur, nil) {
				return
			}
			cur, have = e, true
		}
		if have {
			yield(cur, nil)
		}
	}
}

// ClipRange clips the request [off, off+n) to [0, size), returning the
// clipped bounds. A request wholly outside yields an empty range.
func ClipRange(off, n, size int64) (start, end int64) {
	start, end = off, off+n
	if n < 0 || end < off { // overflow
		end = size
	}
	if start < 0 {
		start = 0
	}
	if end > size {
		end = size
	}
	if start > end {
		start = end
	}
	return start, end
}
