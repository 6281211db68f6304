package diskport

import (
	"io"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/vmdk"
)

// A Stream is a disk image read in one pass from an io.Reader (a
// gzip-compressed OVA member, say), its data served in ascending order.
type Stream struct {
	// Size is the disk's virtual size in bytes.
	Size int64
	// Next returns the next run of data: its offset in the disk and its
	// bytes, valid until the next call. It returns io.EOF after the last.
	// Ranges no run covers read as zeros.
	Next func() (off int64, data []byte, err error)
	// Trailer bounds the bytes that may follow the image in the stream: a
	// VMDK stream's padding; none after a RAW disk, which ends at Size.
	// A reader that finds more is looking at something else (or a
	// decompression bomb).
	Trailer int64
}

// OpenStream reads the image of format f from r in one pass, as a
// [Stream]. Only formats whose data can come in ascending order stream: a
// streamOptimized VMDK (the only VMDK a stream can hold) and RAW, whose
// size the stream does not record and the caller gives as size. name
// names r in errors. Other formats ([Format.Streams] reports which) are
// disk.ErrUnsupported.
func OpenStream(f Format, name string, r io.Reader, size int64) (*Stream, error) {
	e := entry(f)
	if e == nil || e.stream == nil {
		return nil, disk.Errorf(string(f), disk.ErrUnsupported, "%s: %s is read only in place, not as a stream", name, describe(f))
	}
	return e.stream(name, r, size)
}

// Streams reports whether [OpenStream] reads images of the format.
func (f Format) Streams() bool {
	e := entry(f)
	return e != nil && e.stream != nil
}

// maxVMDKTrailer bounds the bytes after a VMDK stream's end-of-stream
// marker: padding to a sector or a block, never a second image.
const maxVMDKTrailer = 1 << 20

func streamVMDK(_ string, r io.Reader, _ int64) (*Stream, error) {
	sr, err := vmdk.NewStreamReader(r)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sr.GrainSize())
	next := func() (int64, []byte, error) {
		g, err := sr.Next()
		if err != nil {
			return 0, nil, err
		}
		if err := vmdk.InflateGrain(buf, g.Data, g); err != nil {
			return 0, nil, err
		}
		return g.Offset, buf[:g.Length], nil
	}
	return &Stream{Size: sr.Size(), Next: next, Trailer: maxVMDKTrailer}, nil
}

func streamRaw(name string, r io.Reader, size int64) (*Stream, error) {
	buf := make([]byte, 1<<20)
	var off int64
	next := func() (int64, []byte, error) {
		if off >= size {
			return 0, nil, io.EOF
		}
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-off)])
		if err != nil {
			return 0, nil, disk.Errorf("raw", disk.ErrCorrupt, "%s: the inflated disk ends at byte %d, before its capacity of %d bytes", name, off+int64(n), size)
		}
		at := off
		off += int64(n)
		return at, buf[:n], nil
	}
	return &Stream{Size: size, Next: next}, nil
}
