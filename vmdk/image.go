package vmdk

import (
	"fmt"
	"io"
	"iter"
	"sort"

	"github.com/diskport/diskport/disk"
)

// DefaultMaxVirtualSize is the capacity limit when Options.MaxVirtualSize
// is 0: 64 TiB.
const DefaultMaxVirtualSize = 64 << 40

// Options control what an image may reference.
type Options struct {
	// OpenExtent resolves an extent file name from a text descriptor to
	// storage. Open has already refused names that are not bare file names
	// (with '/', '\\', NUL, "..", ':', or empty) with ErrUnsafe before
	// calling it; OpenExtent must still resolve the name only inside the
	// descriptor's directory and return regular files only. If the returned
	// Storage is an io.Closer, Image.Close closes it. nil: any descriptor
	// that references another file is refused with ErrUnsafe.
	OpenExtent func(name string) (disk.Storage, error)
	// Parent is the already-opened parent for a delta link (parentCID not
	// ffffffff); its CID must equal the child's parentCID. nil: delta
	// links are refused with ErrUnsafe naming parentFileNameHint. Open does
	// not take ownership: the caller closes the parent after the child.
	Parent *Image
	// MaxVirtualSize caps the capacity in bytes (0: DefaultMaxVirtualSize).
	MaxVirtualSize int64
}

// An Image is an opened VMDK: a sparse extent file (monolithicSparse,
// streamOptimized), a COWD file, or a text descriptor with its extents.
// It implements disk.Image.
type Image struct {
	src        disk.Storage
	desc       *descriptor // nil for a sparse file without an embedded descriptor
	createType string
	version    uint32 // header version (sparse) or descriptor version
	exts       []*imgExtent
	size       int64
	parent     *Image
	opened     []disk.Storage // storages from OpenExtent, closed by Close
	grains     grainCache
	tables     gtCache
}

// An imgExtent is one extent of the virtual disk.
type imgExtent struct {
	line  extentLine
	start int64 // virtual byte offset
	n     int64 // bytes
	s     disk.Storage
	flat  int64 // FLAT/VMFS: byte offset in s of the extent's first byte
	sp    *sparseExtent
	se    *seExtent
}

type runKind uint8

const (
	runHole runKind = iota // unallocated: the parent's bytes, or zeros
	runZero                // zeros, never the parent's bytes
	runData
)

// A run is a piece of an extent of uniform kind, extent-relative.
type run struct {
	off, n     int64
	kind       runKind
	compressed bool
	stored     int64         // byte offset in the extent file: data, or a compressed grain's marker
	ext        *sparseExtent // compressed grains: the extent
	grain      int64         // compressed grains: the grain index
}

func (e *imgExtent) runs(off, end int64, yield func(run) bool) error {
	switch {
	case e.sp != nil:
		return e.sp.runs(off, end, yield)
	case e.se != nil:
		return e.se.runs(off, end, yield)
	case e.s != nil:
		yield(run{off: off, n: end - off, kind: runData, stored: e.flat + off})
	default:
		yield(run{off: off, n: end - off, kind: runZero})
	}
	return nil
}

// Open parses s (a sparse extent file, a COWD file or a text descriptor)
// and returns the image. s stays the caller's to close, after the Image.
func Open(s disk.Storage, opts Options) (*Image, error) {
	if opts.MaxVirtualSize <= 0 {
		opts.MaxVirtualSize = DefaultMaxVirtualSize
	}
	var magic [4]byte
	if s.Size() >= 4 {
		if err := disk.ReadFull(s, formatName, "magic", magic[:], 0); err != nil {
			return nil, err
		}
	}
	var img *Image
	var err error
	switch string(magic[:]) {
	case magicKDMV:
		img, err = openSparseFile(s)
	case magicCOWD:
		img, err = openCOWDFile(s)
	case "\xbe\xba\xfe\xca":
		var b [8]byte
		if _, rerr := s.ReadAt(b[:], 0); rerr == nil && string(b[4:]) == "\x00\x00\x00\x00" {
			return nil, disk.Errorf(formatName, disk.ErrUnsupported, "%s: a seSparse extent (magic CAFEBABE) is read only through its descriptor, which names its parent", s.Name())
		}
		img, err = openDescriptorFile(s, opts)
	default:
		img, err = openDescriptorFile(s, opts)
	}
	if err != nil {
		return nil, err
	}
	img.src = s
	if img.size > opts.MaxVirtualSize {
		img.Close()
		return nil, disk.Errorf(formatName, disk.ErrTooLarge, "%s: virtual size %d bytes exceeds the limit of %d", s.Name(), img.size, opts.MaxVirtualSize)
	}
	if err := img.linkParent(opts.Parent); err != nil {
		img.Close()
		return nil, err
	}
	return img, nil
}

// linkParent checks the delta link against the parent the caller gave.
func (img *Image) linkParent(p *Image) error {
	name := img.src.Name()
	d := img.desc
	delta := d != nil && (d.ParentCID != noParentCID || d.hasParentHint)
	if !delta {
		if p != nil {
			return disk.Errorf(formatName, disk.ErrFormatMismatch, "%s: a parent was supplied but the image has no parent link (parentCID ffffffff)", name)
		}
		return nil
	}
	if p == nil {
		return disk.Errorf(formatName, disk.ErrUnsafe, "%s: delta image needs its parent %q (parentCID %08x), which must be supplied by the caller", name, d.ParentFileNameHint, d.ParentCID)
	}
	if p.CID() != d.ParentCID {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: parentCID %08x does not match the CID %08x of the supplied parent %s", name, d.ParentCID, p.CID(), p.src.Name())
	}
	img.parent = p
	return nil
}

// openSparseFile opens a monolithic sparse or stream-optimized file.
func openSparseFile(s disk.Storage) (*Image, error) {
	img := &Image{}
	sp, desc, err := openKDMV(s, &img.tables)
	if err != nil {
		return nil, err
	}
	img.desc, img.version, img.size = desc, sp.hdr.Version, sp.capacity
	switch {
	case sp.compressed:
		img.createType = "streamOptimized"
	case desc != nil && desc.CreateType != "":
		img.createType = desc.CreateType
	default:
		img.createType = "monolithicSparse"
	}
	line := extentLine{Access: "RW", Sectors: sp.capacity / disk.SectorSize, Type: "SPARSE", File: s.Name()}
	img.exts = []*imgExtent{{line: line, n: sp.capacity, s: s, sp: sp}}
	return img, nil
}

// openCOWDFile opens a stand-alone COWD (vmfsSparse) extent.
func openCOWDFile(s disk.Storage) (*Image, error) {
	img := &Image{createType: "vmfsSparse"}
	sp, err := openCOWD(s, &img.tables)
	if err != nil {
		return nil, err
	}
	img.version, img.size = sp.hdr.Version, sp.capacity
	line := extentLine{Access: "RW", Sectors: sp.capacity / disk.SectorSize, Type: "VMFSSPARSE", File: s.Name()}
	img.exts = []*imgExtent{{line: line, n: sp.capacity, s: s, sp: sp}}
	return img, nil
}

// openDescriptorFile opens a text descriptor and its extents.
func openDescriptorFile(s disk.Storage, opts Options) (*Image, error) {
	name := s.Name()
	if s.Size() > maxDescriptorBytes {
		head := make([]byte, 4096)
		n, _ := s.ReadAt(head, 0)
		if looksLikeDescriptor(head[:n]) {
			return nil, disk.Errorf(formatName, disk.ErrTooLarge, "%s: text descriptor of %d bytes exceeds %d", name, s.Size(), maxDescriptorBytes)
		}
		return nil, disk.Errorf(formatName, disk.ErrFormatMismatch, "%s: no KDMV or COWD magic, and at %d bytes too large for a text descriptor", name, s.Size())
	}
	buf := make([]byte, s.Size())
	if err := disk.ReadFull(s, formatName, "descriptor", buf, 0); err != nil {
		return nil, err
	}
	if !looksLikeDescriptor(buf) {
		return nil, disk.Errorf(formatName, disk.ErrFormatMismatch, "%s: no KDMV or COWD magic and not a text descriptor", name)
	}
	d, err := parseDescriptor(buf, false)
	if err != nil {
		return nil, err
	}
	ct, err := canonicalCreateType(d.CreateType)
	if err != nil {
		return nil, err
	}
	img := &Image{desc: d, createType: ct, version: uint32(d.Version)}
	if err := img.openExtents(opts); err != nil {
		img.Close()
		return nil, err
	}
	return img, nil
}

// openExtents opens the extents the descriptor lists, in order.
func (img *Image) openExtents(opts Options) error {
	if len(img.desc.Extents) == 0 {
		return disk.Errorf(formatName, disk.ErrCorrupt, "descriptor lists no extents")
	}
	var pos int64
	files := map[string]*imgExtent{} // extent files opened so far, by name and type
	for _, l := range img.desc.Extents {
		if l.Sectors == 0 {
			continue
		}
		n, ok := sectorBytes(uint64(l.Sectors))
		if !ok || n > opts.MaxVirtualSize-pos {
			return disk.Errorf(formatName, disk.ErrTooLarge, "descriptor line %d: extents add up to more than the limit of %d bytes", l.Line, opts.MaxVirtualSize)
		}
		e := &imgExtent{line: l, start: pos, n: n}
		if err := img.openExtent(e, opts, files); err != nil {
			return err
		}
		img.exts = append(img.exts, e)
		pos += n
	}
	if pos == 0 {
		return disk.Errorf(formatName, disk.ErrCorrupt, "descriptor's extents hold no sectors")
	}
	img.size = pos
	return nil
}

// openExtent opens the file of extent e, once per name: a file named by
// several lines (FLAT extents at different offsets) is opened once.
func (img *Image) openExtent(e *imgExtent, opts Options, files map[string]*imgExtent) error {
	l := e.line
	switch l.Type {
	case "ZERO":
		return nil
	case "VMFSRDM", "VMFSRAW":
		return disk.Errorf(formatName, disk.ErrUnsafe, "descriptor line %d: %s extent maps a raw device", l.Line, l.Type)
	}
	if l.Access == "NOACCESS" {
		return disk.Errorf(formatName, disk.ErrUnsupported, "descriptor line %d: NOACCESS %s extent %q cannot be read", l.Line, l.Type, l.File)
	}
	if err := checkExtentName(l.File, l.Line); err != nil {
		return err
	}
	if opts.OpenExtent == nil {
		return disk.Errorf(formatName, disk.ErrUnsafe, "descriptor line %d: extent file %q is another file, and no extent resolver was supplied", l.Line, l.File)
	}
	var s disk.Storage
	var prev *imgExtent
	var err error
	if p, ok := files[l.File]; ok {
		s, prev = p.s, p
	} else {
		s, err = opts.OpenExtent(l.File)
		if err != nil {
			return fmt.Errorf("vmdk: descriptor line %d: opening extent %q: %w", l.Line, l.File, err)
		}
		img.opened = append(img.opened, s)
		files[l.File] = e
	}
	e.s = s
	switch l.Type {
	case "FLAT", "VMFS":
		off, ok := sectorBytes(uint64(l.Offset))
		if !ok || off > s.Size() || e.n > s.Size()-off {
			return disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: flat extent of %d bytes at sector %d past end of %s (size %d bytes)", l.Line, e.n, l.Offset, l.File, s.Size())
		}
		e.flat = off
	case "SPARSE":
		sp, err := prev.sparse(magicKDMV)
		if sp == nil && err == nil {
			sp, _, err = openKDMV(s, &img.tables)
		}
		if err != nil {
			return err
		}
		if sp.capacity < e.n {
			return disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: sparse extent %q holds %d sectors, the descriptor says %d", l.Line, l.File, sp.capacity/disk.SectorSize, l.Sectors)
		}
		e.sp = sp
	case "SESPARSE":
		if prev != nil && prev.se != nil {
			e.se = prev.se
		} else if e.se, err = openSESparse(s); err != nil {
			return err
		}
		if e.se.capacity < e.n {
			return disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: seSparse extent %q holds %d sectors, the descriptor says %d", l.Line, l.File, e.se.capacity/disk.SectorSize, l.Sectors)
		}
	case "VMFSSPARSE":
		sp, err := prev.sparse(magicCOWD)
		if sp == nil && err == nil {
			sp, err = openCOWD(s, &img.tables)
		}
		if err != nil {
			return err
		}
		if sp.capacity < e.n {
			return disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: COWD extent %q holds %d sectors, the descriptor says %d", l.Line, l.File, sp.capacity/disk.SectorSize, l.Sectors)
		}
		e.sp = sp
	}
	return nil
}

// sparse returns the sparse extent e (opened earlier from the same file)
// already parsed as kind, nil if e is nil or was opened as another kind.
func (e *imgExtent) sparse(kind string) (*sparseExtent, error) {
	if e == nil || e.sp == nil {
		return nil, nil
	}
	if e.sp.kind != kind {
		return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: extent file %q named again as another extent type", e.line.Line, e.line.File)
	}
	return e.sp, nil
}

// Size returns the virtual size in bytes.
func (img *Image) Size() int64 { return img.size }

// CID returns the content ID from the descriptor (0 without one).
func (img *Image) CID() uint32 {
	if img.desc == nil {
		return 0
	}
	return img.desc.CID
}

// ParentCID returns the parent's content ID, ffffffff for no parent.
func (img *Image) ParentCID() uint32 {
	if img.desc == nil {
		return noParentCID
	}
	return img.desc.ParentCID
}

// ParentFileNameHint returns the descriptor's parentFileNameHint, as
// written. Open never opens it.
func (img *Image) ParentFileNameHint() string {
	if img.desc == nil {
		return ""
	}
	return img.desc.ParentFileNameHint
}

// CreateType returns the subformat: the descriptor's createType for text
// descriptors, "streamOptimized" for compressed sparse files, else the
// embedded descriptor's createType or "monolithicSparse".
func (img *Image) CreateType() string { return img.createType }

// Close closes the extent storages Open obtained from Options.OpenExtent.
// The storage passed to Open and the parent stay the caller's.
func (img *Image) Close() error {
	var first error
	for _, s := range img.opened {
		if c, ok := s.(io.Closer); ok {
			if err := c.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	img.opened = nil
	return first
}

// extentAt returns the index of the extent holding virtual offset off.
func (img *Image) extentAt(off int64) int {
	return sort.Search(len(img.exts), func(i int) bool { return img.exts[i].start+img.exts[i].n > off })
}

// walk calls fn with every run overlapping [off, end) in virtual order,
// with the run's virtual start.
func (img *Image) walk(off, end int64, fn func(e *imgExtent, r run) bool) error {
	for i := img.extentAt(off); i < len(img.exts) && off < end; i++ {
		e := img.exts[i]
		eEnd := min(end, e.start+e.n)
		stop := false
		err := e.runs(off-e.start, eEnd-e.start, func(r run) bool {
			if !fn(e, r) {
				stop = true
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
		off = eEnd
	}
	return nil
}

// ReadAt reads the virtual disk at off.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vmdk: ReadAt: negative offset %d", off)
	}
	if off >= img.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), img.size-off))
	var rerr error
	err := img.walk(off, off+int64(n), func(e *imgExtent, r run) bool {
		vs := e.start + r.off
		q := p[vs-off : vs-off+r.n]
		switch r.kind {
		case runZero:
			clear(q)
		case runHole:
			rerr = img.readParent(q, vs)
		case runData:
			if r.compressed {
				rerr = img.readCompressed(q, r)
			} else {
				rerr = disk.ReadFull(e.s, formatName, "grain data", q, r.stored)
			}
		}
		return rerr == nil
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readParent reads unallocated bytes: the parent's, zeros past its end.
func (img *Image) readParent(q []byte, off int64) error {
	if img.parent == nil || off >= img.parent.size {
		clear(q)
		return nil
	}
	k := min(int64(len(q)), img.parent.size-off)
	if _, err := img.parent.ReadAt(q[:k], off); err != nil && err != io.EOF {
		return err
	}
	clear(q[k:])
	return nil
}

// Extents yields the extent map of [off, off+n): unallocated and zeroed
// grains and ZERO extents as disk.Zero (unallocated ones as the parent's
// map in a delta), uncompressed grains and flat extents as disk.Data with
// their storage, compressed grains as disk.Data with Compressed set.
func (img *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	start, end := disk.ClipRange(off, n, img.size)
	seq := func(yield func(disk.Extent, error) bool) {
		stopped := false
		err := img.walk(start, end, func(e *imgExtent, r run) bool {
			vs := e.start + r.off
			var x disk.Extent
			switch {
			case r.kind == runHole && img.parent != nil:
				return img.parentExtents(vs, r.n, yield, &stopped)
			case r.kind != runData:
				x = disk.Extent{Offset: vs, Length: r.n, Kind: disk.Zero}
			case r.compressed:
				x = disk.Extent{Offset: vs, Length: r.n, Kind: disk.Data, Compressed: true}
			default:
				x = disk.Extent{Offset: vs, Length: r.n, Kind: disk.Data, Stored: e.s, StoredOffset: r.stored}
			}
			if !yield(x, nil) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil && !stopped {
			yield(disk.Extent{}, err)
		}
	}
	return disk.Coalesce(seq, start, end-start)
}

// parentExtents yields the parent's map over the hole [off, off+n), zero
// past the parent's end.
func (img *Image) parentExtents(off, n int64, yield func(disk.Extent, error) bool, stopped *bool) bool {
	p := img.parent
	pend := min(off+n, p.size)
	if off < pend {
		for x, err := range p.Extents(off, pend-off) {
			if !yield(x, err) || err != nil {
				*stopped = true
				return false
			}
		}
	}
	if rest := off + n - max(off, pend); rest > 0 {
		if !yield(disk.Extent{Offset: max(off, pend), Length: rest, Kind: disk.Zero}, nil) {
			*stopped = true
			return false
		}
	}
	return true
}
