package vmdk

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
)

// Metadata marker types of streamOptimized extents.
const (
	markerEOS      = 0
	markerGT       = 1
	markerGD       = 2
	markerFooter   = 3
	markerProgress = 4 // VMware's GRAIN_MARKER_PROGRESS; skipped
)

// A marker is the first 16 bytes of a stream sector: a grain marker (size
// > 0: val is the grain's LBA) or a metadata marker (size 0: val is the
// number of metadata sectors that follow, typ its type).
type marker struct {
	val  uint64
	size uint32
	typ  uint32
}

func parseMarker(b []byte) marker {
	le := binary.LittleEndian
	return marker{val: le.Uint64(b), size: le.Uint32(b[8:]), typ: le.Uint32(b[12:])}
}

// A Grain is one compressed grain of a streamOptimized image, as listed by
// Image.Grains (random access) or StreamReader.Next (sequential).
type Grain struct {
	// Offset is the virtual byte offset of the grain's first byte.
	Offset int64
	// Length is how many bytes of the virtual disk the grain covers: the
	// grain size, less for a grain holding the end of the disk.
	Length int64
	// Size is the grain size in bytes: the length of the buffer to inflate
	// into.
	Size int64
	// Storage and StoredOffset locate the compressed bytes (after the
	// 12-byte marker) for Image.Grains; Storage is nil for StreamReader.
	Storage      disk.Storage
	StoredOffset int64
	// CompressedSize is the number of compressed bytes.
	CompressedSize int
	// Data holds the compressed bytes for StreamReader.Next, valid until
	// the next call to Next; nil for Image.Grains.
	Data []byte
}

// InflateGrain inflates src, the compressed bytes of g, into dst, which
// must hold at least g.Size bytes, and zero-fills the rest of the grain.
// The grain must inflate to exactly g.Size bytes, except that the grain
// holding the end of the disk may stop inside its last sector (see the
// package documentation). It is safe to call from several goroutines.
func InflateGrain(dst, src []byte, g Grain) error {
	if int64(len(dst)) < g.Size {
		return fmt.Errorf("vmdk: InflateGrain: buffer of %d bytes for a grain of %d", len(dst), g.Size)
	}
	dst = dst[:g.Size]
	n, err := Inflate(dst, src)
	if err != nil {
		return disk.Errorf(formatName, disk.ErrCorrupt, "compressed grain at virtual byte %d: %v", g.Offset, err)
	}
	if !grainLengthOK(n, g.Length, g.Size) {
		return disk.Errorf(formatName, disk.ErrCorrupt, "compressed grain at virtual byte %d inflates to %d bytes, want %s", g.Offset, n, grainLengthWant(g.Length, g.Size))
	}
	clear(dst[n:])
	return nil
}

// Grains yields the compressed grains of a streamOptimized image in
// virtual order, each with its marker checked (LBA, size, bounds), so a
// converter can read and inflate them in parallel with InflateGrain. It
// yields nothing for images without compressed grains.
func (img *Image) Grains() iter.Seq2[Grain, error] {
	return func(yield func(Grain, error) bool) {
		for _, e := range img.exts {
			x := e.sp
			if x == nil || !x.compressed {
				continue
			}
			var gerr error
			more, err := walkGrains[uint32](x, e.start, 0, e.n, func(r mapped.Run) bool {
				if r.Kind != mapped.Compressed {
					return true
				}
				off, size, err := x.grainLocation(r.Unit, r.At)
				if err != nil {
					gerr = err
					return false
				}
				g := Grain{Offset: r.Off, Length: r.Len, Size: x.grainBytes,
					Storage: x.s, StoredOffset: off, CompressedSize: size}
				return yield(g, nil)
			})
			if err == nil {
				err = gerr
			}
			if err != nil {
				yield(Grain{}, err)
				return
			}
			if !more {
				return
			}
		}
	}
}

// maxStreamOverhead bounds the metadata a StreamReader skips before the
// first grain.
const maxStreamOverhead = 1 << 30

// A StreamReader walks a streamOptimized extent sequentially, without
// seeking: the header, the metadata before the first grain, then grain and
// metadata markers up to the end of the stream. It detects truncation:
// a stream whose header puts the grain directory at the end must finish
// with a footer and an end-of-stream marker; a stream with its tables in
// front (qemu, govmomi) must deliver every grain those tables list.
// Grains must come in strictly ascending order inside the capacity.
type StreamReader struct {
	r          *bufio.Reader
	pos        int64 // bytes consumed
	hdr        sparseHeader
	capacity   int64
	grainBytes int64
	atEnd      bool  // the header says GD_AT_END
	expect     int64 // front-loaded: allocated grains the GTs list (-1: unknown)
	listed     int64 // GD_AT_END: allocated entries in GT metadata seen
	grains     int64 // grains delivered
	nextLBA    uint64
	footer     bool
	done       bool
	buf        []byte
}

// NewStreamReader reads the header of a streamOptimized extent from r and
// the metadata up to its first grain.
func NewStreamReader(r io.Reader) (*StreamReader, error) {
	s := &StreamReader{r: bufio.NewReaderSize(r, 1<<20), expect: -1}
	var b [headerSize]byte
	if err := s.read(b[:], "header"); err != nil {
		return nil, err
	}
	if string(b[:4]) != magicKDMV {
		return nil, disk.Errorf(formatName, disk.ErrFormatMismatch, "stream: no KDMV magic at offset 0")
	}
	h := parseSparseHeader(b[:])
	if err := h.validate("stream", 1<<54); err != nil {
		return nil, err
	}
	if !h.compressed() {
		return nil, disk.Errorf(formatName, disk.ErrUnsupported, "stream: header flags %#x: not a streamOptimized extent (grains not compressed)", h.Flags)
	}
	s.hdr = h
	s.capacity = int64(h.Capacity) * disk.SectorSize
	s.grainBytes = int64(h.GrainSize) * disk.SectorSize
	s.atEnd = h.GDOffset == gdAtEnd
	over, ok := sectorBytes(h.OverHead)
	if !ok || over > maxStreamOverhead || over < headerSize {
		return nil, disk.Errorf(formatName, disk.ErrCorrupt, "stream: overhead of %d sectors (want 1 to %d)", h.OverHead, maxStreamOverhead/disk.SectorSize)
	}
	if s.atEnd {
		if err := s.skip(over-s.pos, "metadata before the first grain"); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.frontTables(over); err != nil {
		return nil, err
	}
	return s, nil
}

// frontTables reads the grain directory and the grain tables lying in
// [pos, over) and counts the grains they list.
func (s *StreamReader) frontTables(over int64) error {
	h := &s.hdr
	entries := h.gdEntries()
	if entries > maxGDEntries {
		return disk.Errorf(formatName, disk.ErrTooLarge, "stream: grain directory of %d entries exceeds %d", entries, maxGDEntries)
	}
	gdOff, ok := sectorBytes(h.GDOffset)
	if !ok || gdOff < s.pos || gdOff+int64(entries)*4 > over {
		return disk.Errorf(formatName, disk.ErrUnsupported, "stream: grain directory at sector %d is not in the metadata before the grains (sectors 1-%d), so it cannot be read in one pass", h.GDOffset, h.OverHead)
	}
	if err := s.skip(gdOff-s.pos, "metadata before the grain directory"); err != nil {
		return err
	}
	gdb := make([]byte, entries*4)
	if err := s.read(gdb, "grain directory"); err != nil {
		return err
	}
	gtBytes := int64(h.NumGTEsPerGT) * 4
	var gts []int64
	for i := range entries {
		if e := binary.LittleEndian.Uint32(gdb[4*i:]); e != 0 {
			gts = append(gts, int64(e)*disk.SectorSize)
		}
	}
	slices.Sort(gts)
	gt := make([]byte, gtBytes)
	s.expect = 0
	for i, off := range gts {
		if off < s.pos || off+gtBytes > over || (i > 0 && off < gts[i-1]+gtBytes) {
			return disk.Errorf(formatName, disk.ErrUnsupported, "stream: grain table at sector %d is not in order after the grain directory and before the grains, so it cannot be read in one pass", off/disk.SectorSize)
		}
		if err := s.skip(off-s.pos, "metadata before a grain table"); err != nil {
			return err
		}
		if err := s.read(gt, "grain table"); err != nil {
			return err
		}
		for j := range h.NumGTEsPerGT {
			if binary.LittleEndian.Uint32(gt[4*j:]) > gteZeroed {
				s.expect++
			}
		}
	}
	return s.skip(over-s.pos, "metadata before the first grain")
}

// Size returns the capacity in bytes.
func (s *StreamReader) Size() int64 { return s.capacity }

// GrainSize returns the grain size in bytes.
func (s *StreamReader) GrainSize() int64 { return s.grainBytes }

func (s *StreamReader) read(p []byte, what string) error {
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return disk.Errorf(formatName, disk.ErrCorrupt, "stream: truncated in the %s at byte %d", what, s.pos)
	}
	if err != nil {
		return fmt.Errorf("vmdk: stream: reading the %s at byte %d: %w", what, s.pos, err)
	}
	return nil
}

func (s *StreamReader) skip(n int64, what string) error {
	if n < 0 {
		return disk.Errorf(formatName, disk.ErrCorrupt, "stream: %s lies behind the current position %d", what, s.pos)
	}
	k, err := s.r.Discard(int(min(n, 1<<62)))
	s.pos += int64(k)
	if err == io.EOF {
		return disk.Errorf(formatName, disk.ErrCorrupt, "stream: truncated in the %s at byte %d", what, s.pos)
	}
	return err
}

// errStreamEnd is returned by Next at the verified end of the stream.
var errStreamEnd = io.EOF

// Next returns the next grain, its compressed bytes in Grain.Data (valid
// until the next call). It returns io.EOF at the verified end of the
// stream, and a disk.ErrCorrupt error for a truncated or malformed one.
func (s *StreamReader) Next() (Grain, error) {
	if s.done {
		return Grain{}, errStreamEnd
	}
	var sec [disk.SectorSize]byte
	for {
		n, err := io.ReadFull(s.r, sec[:])
		s.pos += int64(n)
		if err == io.EOF {
			return Grain{}, s.end()
		}
		if err == io.ErrUnexpectedEOF {
			return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: truncated inside a sector at byte %d", s.pos)
		}
		if err != nil {
			return Grain{}, fmt.Errorf("vmdk: stream: reading at byte %d: %w", s.pos, err)
		}
		at := s.pos - disk.SectorSize
		m := parseMarker(sec[:])
		if m.size > 0 {
			return s.grain(m, sec[:], at)
		}
		switch m.typ {
		case markerEOS:
			if m.val != 0 {
				return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: end-of-stream marker at byte %d with %d following sectors", at, m.val)
			}
			return Grain{}, s.finish(at)
		case markerFooter:
			if m.val != 1 {
				return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: footer marker at byte %d with %d sectors (want 1)", at, m.val)
			}
			if err := s.read(sec[:], "footer"); err != nil {
				return Grain{}, err
			}
			if string(sec[:4]) != magicKDMV || parseSparseHeader(sec[:]).GDOffset == gdAtEnd {
				return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: bad footer at byte %d", at+disk.SectorSize)
			}
			s.footer = true
		case markerGT:
			if err := s.gtMetadata(m, at); err != nil {
				return Grain{}, err
			}
		case markerGD, markerProgress:
			if err := s.skip(int64(min(m.val, 1<<40))*disk.SectorSize, "metadata"); err != nil {
				return Grain{}, err
			}
		default:
			return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: unknown metadata marker type %d at byte %d", m.typ, at)
		}
	}
}

// gtMetadata reads an in-stream grain table and counts its grains.
func (s *StreamReader) gtMetadata(m marker, at int64) error {
	gtBytes := int64(s.hdr.NumGTEsPerGT) * 4
	secs := (gtBytes + disk.SectorSize - 1) / disk.SectorSize
	if m.val != uint64(secs) {
		return disk.Errorf(formatName, disk.ErrCorrupt, "stream: grain table marker at byte %d with %d sectors (want %d)", at, m.val, secs)
	}
	if cap(s.buf) < int(secs*disk.SectorSize) {
		s.buf = make([]byte, secs*disk.SectorSize)
	}
	b := s.buf[:secs*disk.SectorSize]
	if err := s.read(b, "grain table"); err != nil {
		return err
	}
	for j := range s.hdr.NumGTEsPerGT {
		if binary.LittleEndian.Uint32(b[4*j:]) > gteZeroed {
			s.listed++
		}
	}
	return nil
}

// grain reads the grain whose marker sector is sec at byte at.
func (s *StreamReader) grain(m marker, sec []byte, at int64) (Grain, error) {
	lba := m.val
	switch {
	case lba%s.hdr.GrainSize != 0:
		return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: grain at byte %d: LBA %d is not a multiple of the grain size %d", at, lba, s.hdr.GrainSize)
	case lba >= s.hdr.Capacity:
		return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: grain at byte %d: LBA %d past the capacity of %d sectors", at, lba, s.hdr.Capacity)
	case s.grains > 0 && lba < s.nextLBA:
		return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: grain at byte %d: LBA %d is not after the previous grain's (grains must ascend)", at, lba)
	case int64(m.size) > 2*s.grainBytes:
		return Grain{}, disk.Errorf(formatName, disk.ErrCorrupt, "stream: grain at byte %d: compressed size %d bytes (want 1 to %d)", at, m.size, 2*s.grainBytes)
	}
	size := int(m.size)
	padded := (grainMarkerSize + size + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize
	if cap(s.buf) < padded {
		s.buf = make([]byte, padded)
	}
	b := s.buf[:padded]
	copy(b, sec)
	if padded > disk.SectorSize {
		if err := s.read(b[disk.SectorSize:], "compressed grain"); err != nil {
			return Grain{}, err
		}
	}
	s.grains++
	s.nextLBA = lba + s.hdr.GrainSize
	off := int64(lba) * disk.SectorSize
	return Grain{Offset: off, Length: min(s.grainBytes, s.capacity-off), Size: s.grainBytes,
		CompressedSize: size, Data: b[grainMarkerSize : grainMarkerSize+size]}, nil
}

// end handles the end of input at a sector boundary.
func (s *StreamReader) end() error {
	if s.atEnd {
		return disk.Errorf(formatName, disk.ErrCorrupt, "stream: truncated at byte %d: no end-of-stream marker (the header puts the grain directory in a footer)", s.pos)
	}
	return s.finish(s.pos)
}

// finish checks the stream's grains against its tables at the end.
func (s *StreamReader) finish(at int64) error {
	if s.atEnd && !s.footer {
		return disk.Errorf(formatName, disk.ErrCorrupt, "stream: end-of-stream marker at byte %d without the footer the header announces", at)
	}
	want := s.expect
	if s.atEnd {
		want = s.listed
	}
	if want >= 0 && s.grains != want {
		return disk.Errorf(formatName, disk.ErrCorrupt, "stream: truncated or corrupt: %d grains delivered, the grain tables list %d", s.grains, want)
	}
	s.done = true
	return errStreamEnd
}

// WalkStream reads a streamOptimized extent from r sequentially and calls
// fn with the virtual byte offset and the inflated bytes of each grain, in
// ascending order (grain is only valid during the call; the grain holding
// the end of the disk is clipped to it). Ranges without a grain read as
// zeros. WalkStream returns nil only after a verified end of stream. Use
// a StreamReader to learn the capacity before the first grain.
func WalkStream(r io.Reader, fn func(off int64, grain []byte) error) error {
	s, err := NewStreamReader(r)
	if err != nil {
		return err
	}
	buf := make([]byte, s.grainBytes)
	for {
		g, err := s.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := InflateGrain(buf, g.Data, g); err != nil {
			return err
		}
		if err := fn(g.Offset, buf[:g.Length]); err != nil {
			return err
		}
	}
}
