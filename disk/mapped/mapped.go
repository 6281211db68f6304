// Package mapped is the core shared by diskport's mapped-image readers
// (vmdk, vhd and vhdx): formats whose virtual disk is a map of
// grains or blocks, each unallocated, zeroed, stored verbatim in a file, or
// stored compressed.
//
// A format reader parses its metadata and describes the virtual disk as
// [Run] values through a [Mapper]; [New] wraps the Mapper in an [Image],
// which implements, once for every format, the parts of the [disk.Image]
// contract that do not depend on the format: ReadAt (bounds, holes read
// from the parent or as zeros, verbatim runs read in one call per
// contiguous stretch, compressed units decoded through the format's
// [Decoder] and cached), Extents (coalesced and clipped, with the parent's
// map in the holes) and Close. The reader keeps its own Info and wraps the
// Image's methods in its exported type.
//
// [Cache] is the small LRU table readers keep their metadata tables in.
//
// How a format maps its blocks, for example VHDX: a block fully present is
// one Stored run at its file offset; a block in the zero state a Zero run;
// an unmapped or not-present block a Hole (the parent's bytes for a
// differencing disk, zeros otherwise); a partially present block one run
// per stretch of equal bits of its sector bitmap (the reader decodes the
// bit order, LSB-first for VHDX, MSB-first for VHD), Stored where set and
// Hole where clear. Its BAT pages or bitmaps can live in a Cache. The
// Mapper validates every offset it puts in a run against its storage; the
// Image checks only that the runs tile what was asked.
//
// Package mapped imports only package disk and the standard library.
package mapped

import (
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/diskport/diskport/disk"
)

// Kind says where the bytes of a run come from.
type Kind uint8

const (
	// Hole is unallocated space: the parent's bytes at the same offset,
	// zeros past the parent's end or without a parent.
	Hole Kind = iota
	// Zero reads as zeros, whatever the parent holds (a zeroed grain, a
	// block in the zero state, the bytes past a VHD's current size).
	Zero
	// Stored bytes are verbatim in Run.Storage at Run.At.
	Stored
	// Compressed bytes are part of a unit the format decodes with
	// Run.Decoder (a streamOptimized grain).
	Compressed
)

var kindNames = [...]string{Hole: "hole", Zero: "zero", Stored: "stored", Compressed: "compressed"}

// String returns the kind's name: "hole", "zero", "stored", "compressed".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// A Run is a piece [Off, Off+Len) of the virtual disk whose bytes come
// from one place.
type Run struct {
	// Off and Len locate the run in the virtual disk, in bytes.
	Off, Len int64
	// Kind says where the bytes come from.
	Kind Kind
	// Storage holds a Stored run's bytes, contiguously from offset At.
	Storage disk.Storage
	// At is, for a Stored run, the offset in Storage of the run's first
	// byte; for a Compressed run, whatever locates the unit for the
	// Decoder (a grain marker's offset), passed to Decode.
	At int64
	// Decoder decodes a Compressed run's unit. With Unit it identifies
	// the unit in the cache of decoded units, so it must be comparable
	// (a pointer).
	Decoder Decoder
	// Unit identifies a Compressed run's unit to its Decoder (a grain
	// index).
	Unit int64
	// UnitLen is the decoded size of a Compressed run's unit, and UnitOff
	// the offset of the run's first byte in it: the run is bytes
	// [UnitOff, UnitOff+Len) of the decoded unit.
	UnitLen, UnitOff int64
}

// A Decoder decodes the compressed units of a format.
type Decoder interface {
	// Decode fills dst, UnitLen bytes, with the decoded unit of a
	// Compressed run, given the run's Unit and At. It must be safe for
	// concurrent use and must not keep dst.
	Decode(dst []byte, unit, at int64) error
}

// A Mapper describes a format's virtual disk.
type Mapper interface {
	// Runs calls yield with the runs covering [off, end), a non-empty
	// range inside [0, Size), in order: the first starts at off, each
	// starts where the one before ended, the last ends at end, none is
	// empty. It stops when yield returns false (returning nil) and
	// returns the error of reading or validating metadata. Neighbouring
	// runs may be of the same kind: the Image merges them. Runs must be
	// safe for concurrent use.
	Runs(off, end int64, yield func(Run) bool) error
}

// Config describes the image New builds.
type Config struct {
	// Format prefixes errors: "vmdk", "vhd".
	Format string
	// Name names the image in errors (its storage's name).
	Name string
	// Size is the virtual size in bytes, a multiple of disk.SectorSize.
	Size int64
	// Mapper maps the virtual disk.
	Mapper Mapper
	// Parent, if not nil, supplies the bytes and extents of Hole runs
	// inside its size. The Image does not own it.
	Parent disk.Image
	// DataName names stored bytes in errors ("grain data", "block data";
	// "" is "data").
	DataName string
	// Units is how many decoded units the Image caches for reads smaller
	// than a unit (0: 32, so that a few concurrent sequential readers do
	// not evict each other's units).
	Units int
}

// defaultUnits is the decoded-unit cache size when Config.Units is 0.
const defaultUnits = 32

// An Image is a mapped virtual disk: it implements ReadAt, Extents, Size
// and Close of disk.Image from a Mapper. It is safe for concurrent use.
type Image struct {
	format, name, dataName string
	size                   int64
	mapper                 Mapper
	parent                 disk.Image
	units                  *Cache[unitKey, []byte]
	closed                 atomic.Bool
}

// A unitKey names a decoded unit in the cache.
type unitKey struct {
	d    Decoder
	unit int64
}

// New returns the image c describes.
func New(c Config) *Image {
	if c.Units <= 0 {
		c.Units = defaultUnits
	}
	if c.DataName == "" {
		c.DataName = "data"
	}
	return &Image{
		format: c.Format, name: c.Name, dataName: c.DataName,
		size: c.Size, mapper: c.Mapper, parent: c.Parent,
		units: NewCache[unitKey, []byte](c.Units),
	}
}

// Size returns the virtual size in bytes.
func (m *Image) Size() int64 { return m.size }

// Parent returns the parent given to New, nil without one.
func (m *Image) Parent() disk.Image { return m.parent }

// Close marks the image closed: later reads fail. It closes neither the
// storages nor the parent.
func (m *Image) Close() error {
	m.closed.Store(true)
	return nil
}

// errorf returns an error about the image.
func (m *Image) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %s", m.format, m.name, fmt.Sprintf(format, args...))
}

// checkRun refuses a run that does not start at pos or does not end inside
// (pos, end]: a reader's bug or a map the reader failed to validate, never
// a reason to index out of range.
func (m *Image) checkRun(r Run, pos, end int64) error {
	if r.Off != pos || r.Len <= 0 || r.Len > end-pos {
		return disk.Errorf(m.format, disk.ErrCorrupt, "%s: map yields bytes %d+%d where bytes %d to %d were asked for", m.name, r.Off, r.Len, pos, end)
	}
	if r.Kind == Compressed && (r.Decoder == nil || r.UnitOff < 0 || r.UnitOff > r.UnitLen || r.Len > r.UnitLen-r.UnitOff) {
		return disk.Errorf(m.format, disk.ErrCorrupt, "%s: compressed run at byte %d: bytes %d+%d of a unit of %d", m.name, r.Off, r.UnitOff, r.Len, r.UnitLen)
	}
	if r.Kind == Stored && r.Storage == nil {
		return disk.Errorf(m.format, disk.ErrCorrupt, "%s: stored run at byte %d has no storage", m.name, r.Off)
	}
	return nil
}

// mergeable reports whether b, which starts where a ends, continues a as
// one read: holes and zeros, or verbatim bytes contiguous in one storage.
func mergeable(a, b Run) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case Hole, Zero:
		return true
	case Stored:
		return a.Storage == b.Storage && a.At+a.Len == b.At
	}
	return false
}

// ReadAt reads len(p) bytes of the virtual disk at off, following
// io.ReaderAt: a read reaching past Size returns the bytes before Size and
// io.EOF. Holes read from the parent (zeros past its end or without one),
// Zero runs as zeros, Stored runs from their storage (one read per stretch
// contiguous in the virtual disk and the storage), Compressed runs through
// their Decoder.
func (m *Image) ReadAt(p []byte, off int64) (int, error) {
	if m.closed.Load() {
		return 0, m.errorf("read after Close")
	}
	if off < 0 {
		return 0, m.errorf("ReadAt: negative offset %d", off)
	}
	if off >= m.size {
		return 0, io.EOF
	}
	end := off + min(int64(len(p)), m.size-off)
	st := m.state(off, end)
	st.p, st.off = p, off
	err := m.mapper.Runs(off, end, st.readNext)
	if err == nil && st.err == nil && st.pend.Len > 0 {
		st.err = st.flush()
	}
	if err == nil {
		err = st.err
	}
	if err == nil && st.pos != end {
		err = disk.Errorf(m.format, disk.ErrCorrupt, "%s: map ends at byte %d, reading to byte %d", m.name, st.pos, end)
	}
	st.release()
	if err != nil {
		return 0, err
	}
	if n := end - off; n < int64(len(p)) {
		return int(n), io.EOF
	}
	return len(p), nil
}

// A walkState is one ReadAt or Extents walk in progress: where the runs
// have come to, and for ReadAt the buffer and the run pending (merged from
// neighbours), for Extents the consumer. States are pooled with their
// method values, so that a walk allocates nothing.
type walkState struct {
	m        *Image
	pos, end int64
	err      error

	p    []byte // ReadAt: the buffer, for virtual bytes from off
	off  int64
	pend Run

	yield   func(disk.Extent, error) bool // Extents
	stopped bool                          // yield returned false

	readNext, extentNext func(Run) bool // the method values, made once
}

var walkStates = sync.Pool{New: func() any {
	st := &walkState{}
	st.readNext, st.extentNext = st.read, st.extent
	return st
}}

// state returns a walk of [pos, end) of m from the pool.
func (m *Image) state(pos, end int64) *walkState {
	st := walkStates.Get().(*walkState)
	*st = walkState{m: m, pos: pos, end: end, readNext: st.readNext, extentNext: st.extentNext}
	return st
}

// release returns st to the pool, dropping its references.
func (st *walkState) release() {
	*st = walkState{readNext: st.readNext, extentNext: st.extentNext}
	walkStates.Put(st)
}

// take checks run r against the walk and advances past it.
func (st *walkState) take(r Run) bool {
	if st.err = st.m.checkRun(r, st.pos, st.end); st.err != nil {
		return false
	}
	st.pos += r.Len
	return true
}

// read takes the next run of a ReadAt from the Mapper: it merges it into
// the pending run or reads the pending run and makes r pending.
func (st *walkState) read(r Run) bool {
	if !st.take(r) {
		return false
	}
	if st.pend.Len > 0 && mergeable(st.pend, r) {
		st.pend.Len += r.Len
		return true
	}
	if st.pend.Len > 0 {
		if st.err = st.flush(); st.err != nil {
			return false
		}
	}
	st.pend = r
	return true
}

// flush reads the pending run.
func (st *walkState) flush() error {
	q := st.p[st.pend.Off-st.off : st.pend.Off-st.off+st.pend.Len]
	return st.m.read(q, st.pend)
}

// read fills q with the bytes of run r.
func (m *Image) read(q []byte, r Run) error {
	switch r.Kind {
	case Zero:
		clear(q)
	case Hole:
		return m.readParent(q, r.Off)
	case Stored:
		return disk.ReadFull(r.Storage, m.format, m.dataName, q, r.At)
	case Compressed:
		return m.readUnit(q, r)
	default:
		return m.errorf("run of %v at byte %d", r.Kind, r.Off)
	}
	return nil
}

// readParent reads len(q) bytes at off from the parent; bytes past the
// parent's size (a child may be larger than its parent), or all of them
// without a parent, read as zeros.
func (m *Image) readParent(q []byte, off int64) error {
	k := int64(0)
	if p := m.parent; p != nil && off < p.Size() {
		k = min(int64(len(q)), p.Size()-off)
		n, err := p.ReadAt(q[:k], off)
		if int64(n) < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%s: %s: reading parent at byte %d: %w", m.format, m.name, off, err)
		}
	}
	clear(q[k:])
	return nil
}

// readUnit copies the part of a compressed unit run r covers into q. A run
// covering its whole unit is decoded in place; a smaller one from the
// cached decoded unit, decoding and caching it on a miss.
func (m *Image) readUnit(q []byte, r Run) error {
	key := unitKey{r.Decoder, r.Unit}
	data, ok := m.units.Get(key)
	switch {
	case ok:
	case r.UnitOff == 0 && r.Len == r.UnitLen:
		// A cached copy would serve only reads smaller than a unit.
		return r.Decoder.Decode(q, r.Unit, r.At)
	default:
		data = make([]byte, r.UnitLen)
		if err := r.Decoder.Decode(data, r.Unit, r.At); err != nil {
			return err
		}
		m.units.Put(key, data)
	}
	copy(q, data[r.UnitOff:r.UnitOff+r.Len])
	return nil
}

// Extents yields the extent map of [off, off+n) clipped to [0, Size),
// coalesced: Zero runs as disk.Zero; holes as the parent's extents inside
// its size and disk.Zero past it (or all disk.Zero without a parent);
// Stored runs as disk.Data with Stored and StoredOffset set; Compressed
// runs as disk.Data with Compressed set.
func (m *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	start, end := disk.ClipRange(off, n, m.size)
	seq := func(yield func(disk.Extent, error) bool) {
		if start >= end {
			return
		}
		if m.closed.Load() {
			yield(disk.Extent{}, m.errorf("Extents after Close"))
			return
		}
		st := m.state(start, end)
		st.yield = yield
		err := m.mapper.Runs(start, end, st.extentNext)
		if err == nil {
			err = st.err
		}
		if err == nil && st.pos != end && !st.stopped {
			err = disk.Errorf(m.format, disk.ErrCorrupt, "%s: map ends at byte %d, mapping to byte %d", m.name, st.pos, end)
		}
		stopped := st.stopped
		st.release()
		if err != nil && !stopped {
			yield(disk.Extent{}, err)
		}
	}
	return disk.Coalesce(seq, start, end-start)
}

// extent yields the extents of run r of an Extents walk.
func (st *walkState) extent(r Run) bool {
	if !st.take(r) {
		return false
	}
	m := st.m
	x := disk.Extent{Offset: r.Off, Length: r.Len, Kind: disk.Data}
	switch r.Kind {
	case Hole:
		if m.parent != nil {
			st.stopped = !m.parentExtents(r.Off, r.Off+r.Len, st.yield)
			return !st.stopped
		}
		x.Kind, x.Unallocated = disk.Zero, true
	case Zero:
		x.Kind = disk.Zero
	case Stored:
		x.Stored, x.StoredOffset = r.Storage, r.At
	case Compressed:
		x.Compressed = true
	}
	st.stopped = !st.yield(x, nil)
	return !st.stopped
}

// parentExtents yields the parent's extents over the hole [off, end), one
// layer deeper, and unallocated disk.Zero past the parent's size (a range
// of the image itself, as qemu-img map counts it). It reports whether to
// go on.
func (m *Image) parentExtents(off, end int64, yield func(disk.Extent, error) bool) bool {
	pe := min(end, m.parent.Size())
	if off < pe {
		for x, err := range m.parent.Extents(off, pe-off) {
			if err != nil {
				yield(disk.Extent{}, err)
				return false
			}
			x.Depth++
			if !yield(x, nil) {
				return false
			}
		}
	}
	if z := max(off, pe); z < end {
		return yield(disk.Extent{Offset: z, Length: end - z, Kind: disk.Zero, Unallocated: true}, nil)
	}
	return true
}
