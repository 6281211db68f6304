package vhdx

import (
	"container/heap"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/diskport/diskport/disk"
)

// An overlay is a file as it reads after its log was replayed: the log's
// writes laid over the file's bytes, and zeros past the file's end up to
// the size the log gives it. It implements disk.Storage; the file itself is
// never written.
type overlay struct {
	base   disk.Storage
	size   int64
	pieces []piece // sorted, non-overlapping
}

// A piece is a range of the file the log wrote: data, or zeros.
type piece struct {
	start, end int64
	data       []byte // nil: zeros; else data[dataOff:] holds byte start
	dataOff    int64
}

// newOverlay lays writes, applied in order (a later one wins where two
// overlap), over base, with the file extended to size.
func newOverlay(base disk.Storage, size int64, writes []logWrite) *overlay {
	return &overlay{base: base, size: size, pieces: flatten(writes)}
}

// flatten turns ordered, possibly overlapping writes into sorted,
// non-overlapping pieces, each from the last write covering it: a sweep
// over the writes' ends with a heap of the writes covering the current
// point, ordered newest first (O(n log n) for n writes).
func flatten(writes []logWrite) []piece {
	if len(writes) == 0 {
		return nil
	}
	order := make([]int, len(writes))
	var points []int64
	for i, w := range writes {
		order[i] = i
		points = append(points, w.off, w.off+w.n)
	}
	sort.SliceStable(order, func(a, b int) bool { return writes[order[a]].off < writes[order[b]].off })
	slices.Sort(points)
	points = slices.Compact(points)
	var out []piece
	h := &newest{}
	next := 0
	for k := 0; k+1 < len(points); k++ {
		p, q := points[k], points[k+1]
		for next < len(order) && writes[order[next]].off <= p {
			heap.Push(h, order[next])
			next++
		}
		for h.Len() > 0 && writes[(*h)[0]].off+writes[(*h)[0]].n <= p {
			heap.Pop(h)
		}
		if h.Len() == 0 {
			continue
		}
		w := writes[(*h)[0]]
		pc := piece{start: p, end: q, data: w.data, dataOff: p - w.off}
		if n := len(out); n > 0 && out[n-1].end == p && out[n-1].data == nil && pc.data == nil {
			out[n-1].end = q
			continue
		}
		out = append(out, pc)
	}
	return out
}

// newest is a max-heap of write indexes: the newest write on top.
type newest []int

func (h newest) Len() int           { return len(h) }
func (h newest) Less(i, j int) bool { return h[i] > h[j] }
func (h newest) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *newest) Push(x any)        { *h = append(*h, x.(int)) }
func (h *newest) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Size returns the file's size after replay.
func (o *overlay) Size() int64 { return o.size }

// Name returns the file's name.
func (o *overlay) Name() string { return o.base.Name() }

// touches reports whether any byte of [off, off+n) reads differently from
// the file itself: written by the log, or past the file's end.
func (o *overlay) touches(off, n int64) bool {
	if off+n > o.base.Size() {
		return true
	}
	i := sort.Search(len(o.pieces), func(i int) bool { return o.pieces[i].end > off })
	return i < len(o.pieces) && o.pieces[i].start < off+n
}

// ReadAt reads the replayed file.
func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vhdx: %s: negative offset %d", o.Name(), off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), o.size-off)
	end := off + n
	i := sort.Search(len(o.pieces), func(i int) bool { return o.pieces[i].end > off })
	for pos := off; pos < end; {
		var stop int64
		if i < len(o.pieces) && o.pieces[i].start <= pos {
			pc := o.pieces[i]
			stop = min(pc.end, end)
			q := p[pos-off : stop-off]
			if pc.data == nil {
				clear(q)
			} else {
				copy(q, pc.data[pc.dataOff+pos-pc.start:])
			}
			i++
		} else {
			stop = end
			if i < len(o.pieces) {
				stop = min(stop, o.pieces[i].start)
			}
			if err := o.readBase(p[pos-off:stop-off], pos); err != nil {
				return 0, err
			}
		}
		pos = stop
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// readBase reads q at off from the file, zeros past its end.
func (o *overlay) readBase(q []byte, off int64) error {
	bs := o.base.Size()
	k := int64(0)
	if off < bs {
		k = min(int64(len(q)), bs-off)
		if err := disk.ReadFull(o.base, "vhdx", "replayed file", q[:k], off); err != nil {
			return err
		}
	}
	clear(q[k:])
	return nil
}
