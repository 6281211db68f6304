package vmdk

import (
	"fmt"
	"io"
	"iter"
	"sort"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
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
	// ffffffff, or a parentFileNameHint). When it is a *vmdk.Image its CID
	// must equal the child's parentCID, else Open fails with
	// disk.ErrCorrupt; another disk.Image (a parent converted to raw, say)
	// is taken on the caller's word. nil: delta links are refused with
	// disk.ErrUnsafe naming parentFileNameHint. A parent given to an image
	// without a parent link is refused with disk.ErrUnsafe. Open does not
	// take ownership: the caller closes the parent after the child.
	Parent disk.Image
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
	parent     disk.Image
	opened     []disk.Storage // storages from OpenExtent, closed by Close
	tables     *gtCache
	core       *mapped.Image // ReadAt, Extents and Close over runMap
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

// runs yields the runs of the extent overlapping [off, end), virtual
// offsets inside the extent, and reports whether yield wants more.
func (e *imgExtent) runs(off, end int64, yield func(mapped.Run) bool) (bool, error) {
	switch {
	case e.sp != nil:
		return walkGrains[uint32](e.sp, e.start, off-e.start, end-e.start, yield)
	case e.se != nil:
		return walkGrains[uint64](e.se, e.start, off-e.start, end-e.start, yield)
	case e.s != nil:
		return yield(mapped.Run{Off: off, Len: end - off, Kind: mapped.Stored, Storage: e.s, At: e.flat + off - e.start}), nil
	default:
		return yield(mapped.Run{Off: off, Len: end - off, Kind: mapped.Zero}), nil
	}
}

// Probe reports whether s looks like a VMDK: KDMV or COWD magic at offset
// 0, or a text descriptor by qemu's rule (comment and blank lines, then
// version=1, 2 or 3 alone on a line).
func Probe(s disk.Storage) bool {
	var b [4]byte
	if n, _ := s.ReadAt(b[:], 0); n == 4 && (string(b[:]) == magicKDMV || string(b[:]) == magicCOWD) {
		return true
	}
	buf := make([]byte, min(s.Size(), 4096))
	n, _ := s.ReadAt(buf, 0)
	return looksLikeDescriptor(buf[:n])
}

// looksLikeDescriptor applies qemu's vmdk_probe text rule.
func looksLikeDescriptor(b []byte) bool {
	for len(b) > 0 {
		var line []byte
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i == len(b) {
			return false // no complete line
		}
		line, b = b[:i], b[i+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) > 0 && line[0] == '#' {
			continue
		}
		blank := true
		for _, c := range line {
			blank = blank && c == ' '
		}
		if blank {
			continue
		}
		s := string(line)
		return s == "version=1" || s == "version=2" || s == "version=3"
	}
	return false
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
	img.core = mapped.New(mapped.Config{Format: formatName, Name: s.Name(), Size: img.size, Mapper: (*runMap)(img), Parent: img.parent, DataName: "grain data"})
	return img, nil
}

// linkParent checks the delta link against the parent the caller gave.
func (img *Image) linkParent(p disk.Image) error {
	if v, ok := p.(*Image); ok && v == nil {
		p = nil // a nil *Image is no parent
	}
	name := img.src.Name()
	d := img.desc
	delta := d != nil && (d.ParentCID != noParentCID || d.hasParentHint)
	if !delta {
		if p != nil {
			return disk.Errorf(formatName, disk.ErrUnsafe, "%s: a parent was supplied but the image has no parent link (parentCID ffffffff)", name)
		}
		return nil
	}
	if p == nil {
		return disk.Errorf(formatName, disk.ErrUnsafe, "%s: delta image needs its parent %q (parentCID %08x), which must be supplied by the caller", name, d.ParentFileNameHint, d.ParentCID)
	}
	if v, ok := p.(*Image); ok && v.CID() != d.ParentCID {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: parentCID %08x does not match the CID %08x of the supplied parent %s", name, d.ParentCID, v.CID(), v.src.Name())
	}
	img.parent = p
	return nil
}

// openSparseFile opens a monolithic sparse or stream-optimized file.
func openSparseFile(s disk.Storage) (*Image, error) {
	img := &Image{tables: newGTCache()}
	sp, desc, err := openKDMV(s, img.tables)
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
	img := &Image{createType: "vmfsSparse", tables: newGTCache()}
	sp, err := openCOWD(s, img.tables)
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
	img := &Image{desc: d, createType: ct, version: uint32(d.Version), tables: newGTCache()}
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
			sp, _, err = openKDMV(s, img.tables)
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
			sp, err = openCOWD(s, img.tables)
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
	if img.core != nil {
		img.core.Close()
	}
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

// A runMap is an Image seen as the mapped.Mapper of its virtual disk.
type runMap Image

// Runs yields the runs of the extents overlapping [off, end) in virtual
// order: grains (holes, zeroed, stored or compressed) of sparse extents,
// stored bytes of flat extents, zeros of ZERO extents.
func (rm *runMap) Runs(off, end int64, yield func(mapped.Run) bool) error {
	exts := rm.exts
	i := sort.Search(len(exts), func(i int) bool { return exts[i].start+exts[i].n > off })
	for ; i < len(exts) && off < end; i++ {
		e := exts[i]
		eEnd := min(end, e.start+e.n)
		if more, err := e.runs(off, eEnd, yield); !more || err != nil {
			return err
		}
		off = eEnd
	}
	return nil
}

// ReadAt reads the virtual disk at off: unallocated grains from the
// parent of a delta link (zeros past its end or without one), zeroed
// grains and ZERO extents as zeros.
func (img *Image) ReadAt(p []byte, off int64) (int, error) { return img.core.ReadAt(p, off) }

// Extents yields the extent map of [off, off+n): unallocated and zeroed
// grains and ZERO extents as disk.Zero (unallocated ones as the parent's
// map in a delta), uncompressed grains and flat extents as disk.Data with
// their storage, compressed grains as disk.Data with Compressed set.
func (img *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	return img.core.Extents(off, n)
}
