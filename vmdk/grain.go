package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/diskport/diskport/disk"
)

// grainMarkerSize is the size of a compressed grain's marker: lba u64,
// size u32.
const grainMarkerSize = 12

// Decode inflates compressed grain unit, whose marker is at byte offset
// at, into dst (grainBytes long): the mapped core's decoder for the
// extent's compressed runs, which it caches for reads smaller than a
// grain.
func (x *sparseExtent) Decode(dst []byte, unit, at int64) error {
	return x.inflateGrain(dst, unit, at)
}

// grainLocation reads and checks the marker of compressed grain gi at byte
// offset off and returns where its compressed bytes are.
func (x *sparseExtent) grainLocation(gi, off int64) (dataOff int64, size int, err error) {
	name := x.s.Name()
	var m [grainMarkerSize]byte
	if err := disk.ReadFull(x.s, formatName, "grain marker", m[:], off); err != nil {
		return 0, 0, err
	}
	lba := binary.LittleEndian.Uint64(m[0:])
	sz := binary.LittleEndian.Uint32(m[8:])
	if want := uint64(gi) * x.grainSecs; lba != want {
		return 0, 0, disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain marker at sector %d has LBA %d, the grain table wants sector %d", name, off/disk.SectorSize, lba, want)
	}
	if sz == 0 || int64(sz) > 2*x.grainBytes {
		return 0, 0, disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain marker at sector %d: compressed size %d bytes (want 1 to %d)", name, off/disk.SectorSize, sz, 2*x.grainBytes)
	}
	end := off + grainMarkerSize + int64(sz)
	if end > x.s.Size() {
		return 0, 0, disk.Errorf(formatName, disk.ErrCorrupt, "%s: compressed grain at sector %d (%d bytes) past end of file (size %d)", name, off/disk.SectorSize, sz, x.s.Size())
	}
	first, last := uint64(off/disk.SectorSize), uint64((end+disk.SectorSize-1)/disk.SectorSize)
	for _, m := range x.meta {
		if m.overlaps(first, last) {
			return 0, 0, disk.Errorf(formatName, disk.ErrCorrupt, "%s: compressed grain at sectors %d-%d overlaps the %s", name, first, last, m.what)
		}
	}
	if gt, ok := x.gtAt(first, last); ok {
		return 0, 0, disk.Errorf(formatName, disk.ErrCorrupt, "%s: compressed grain at sectors %d-%d overlaps the grain table at sector %d", name, first, last, gt)
	}
	return off + grainMarkerSize, int(sz), nil
}

// inflateGrain reads compressed grain gi whose marker is at byte off and
// inflates it into dst (grainBytes long).
func (x *sparseExtent) inflateGrain(dst []byte, gi, off int64) error {
	dataOff, size, err := x.grainLocation(gi, off)
	if err != nil {
		return err
	}
	// The compressed bytes are read (pread for a host file) rather than
	// inflated from a mapping: first-touch page faults on a mapping
	// measured slower than pread here.
	bp := srcPool.Get().(*[]byte)
	defer srcPool.Put(bp)
	if cap(*bp) < size {
		*bp = make([]byte, size)
	}
	src := (*bp)[:size]
	if err := disk.ReadFull(x.s, formatName, "compressed grain", src, dataOff); err != nil {
		return err
	}
	n, err := Inflate(dst, src)
	if err != nil {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: compressed grain at sector %d (virtual byte %d): %v", x.s.Name(), off/disk.SectorSize, gi*x.grainBytes, err)
	}
	need := min(x.grainBytes, x.capacity-gi*x.grainBytes)
	if !grainLengthOK(n, need, x.grainBytes) {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: compressed grain at sector %d (virtual byte %d) inflates to %d bytes, want %s", x.s.Name(), off/disk.SectorSize, gi*x.grainBytes, n, grainLengthWant(need, x.grainBytes))
	}
	clear(dst[n:])
	return nil
}

// grainLengthOK reports whether a grain that inflated to n bytes is
// acceptable when the disk needs the first need bytes of a grain of
// grainBytes: a full grain always; the grain holding the end of the disk
// may also stop inside its last needed sector (VMDKstream compresses the
// unpadded tail of its input). The missing bytes read as zeros.
func grainLengthOK(n int, need, grainBytes int64) bool {
	if int64(n) == grainBytes {
		return true
	}
	return need < grainBytes && int64(n) > need-disk.SectorSize && int64(n) <= need
}

// grainLengthWant describes the acceptable inflated lengths.
func grainLengthWant(need, grainBytes int64) string {
	if need < grainBytes {
		return fmt.Sprintf("%d, or %d to %d for the grain holding the end of the disk", grainBytes, need-disk.SectorSize+1, need)
	}
	return fmt.Sprint(grainBytes)
}

var srcPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

var flatePool sync.Pool // of io.ReadCloser that are also flate.Resetter

// errGrainTooLong is returned by Inflate for output beyond dst.
var errGrainTooLong = errors.New("inflates to more bytes than a grain holds")

// Inflate decompresses the zlib (RFC 1950) stream src into dst and returns
// the number of bytes written. It never writes past len(dst) and never
// allocates in proportion to the output: a stream producing more than
// len(dst) bytes, a truncated or corrupt stream (including a bad Adler-32),
// a preset dictionary, and bytes left in src after the end of the stream
// are errors. Inflate is what the reader uses for every compressed grain;
// converters inflating grains in parallel call it with a grain-sized dst.
//
// Where the build has cgo (and not the purego tag) the stream is decoded
// by libdeflate, which decodes a whole buffer at once and is several times
// faster than inflateGo and compress/zlib on the grains of a real-content
// disk (bench's BenchmarkInflateDecoders compares the three). Otherwise
// it is decoded by inflateGo. Inflater names the one in use. A cgo build needs libdeflate's
// headers and library (Debian's libdeflate-dev, which
// scripts/install-deps.sh installs); build with -tags purego or
// CGO_ENABLED=0 where they are missing. FuzzInflate checks that both
// accept the streams compress/zlib accepts, with the same output; a stream
// libdeflate refuses is explained by inflateGo, so the errors are the same
// in both builds.
func Inflate(dst, src []byte) (int, error) {
	return inflate(dst, src)
}

// inflateGo is Inflate in pure Go. The deflate data is decoded by
// github.com/klauspost/compress/flate, which is faster than compress/flate
// on qemu-made grains, more so on a busy machine (BenchmarkInflateStd,
// BenchmarkInflateKlauspost compare them); the
// two-byte header and the Adler-32 trailer are checked here, the checksum
// with the vector code of adlerSum.
func inflateGo(dst, src []byte) (int, error) {
	if len(src) < 2 {
		return 0, errors.New("truncated compressed stream")
	}
	cmf, flg := src[0], src[1]
	switch {
	case cmf&0x0f != 8 || cmf>>4 > 7 || (uint(cmf)<<8|uint(flg))%31 != 0:
		return 0, fmt.Errorf("not a zlib stream (header %#02x %#02x)", cmf, flg)
	case flg&0x20 != 0:
		return 0, errors.New("zlib stream needs a preset dictionary")
	}
	br := bytes.NewReader(src[2:])
	var fr io.ReadCloser
	if v := flatePool.Get(); v != nil {
		fr = v.(io.ReadCloser)
		fr.(flate.Resetter).Reset(br, nil)
	} else {
		fr = flate.NewReader(br)
	}
	defer flatePool.Put(fr)
	n, err := 0, error(nil)
	for n < len(dst) && err == nil {
		var k int
		k, err = fr.Read(dst[n:])
		n += k
	}
	if err == nil {
		// dst is full: the stream must end here.
		var probe [1]byte
		k := 0
		for k == 0 && err == nil {
			k, err = fr.Read(probe[:])
		}
		if k > 0 {
			return n, errGrainTooLong
		}
	}
	switch err {
	case io.EOF: // the deflate stream ended
	case io.ErrUnexpectedEOF:
		return n, errors.New("truncated compressed stream")
	default:
		return n, err
	}
	// The reader consumed exactly the deflate data (bytes.Reader is an
	// io.ByteReader), so the trailer follows.
	var sum [4]byte
	if k, _ := br.Read(sum[:]); k < 4 {
		return n, errors.New("truncated compressed stream: no Adler-32")
	}
	if br.Len() != 0 {
		return n, errors.New("trailing bytes after the compressed stream")
	}
	if got, want := adlerSum(dst[:n]), binary.BigEndian.Uint32(sum[:]); got != want {
		return n, fmt.Errorf("Adler-32 %#08x, the stream says %#08x", got, want)
	}
	return n, nil
}
