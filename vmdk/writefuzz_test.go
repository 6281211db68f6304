package vmdk

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/diskport/diskport/disk"
)

// fuzzWriteSource builds a small sparse source from b: a size of up to
// 128 MiB (any byte count, so partial sectors and grains occur), then up
// to 16 chunks of up to 2 KiB each, at offsets spread over the disk,
// holding zeros, text, random bytes or a repeated byte.
func fuzzWriteSource(b []byte) *writeSource {
	if len(b) < 3 {
		return newWriteSource(1 + int64(len(b)))
	}
	size := int64(binary.LittleEndian.Uint16(b))*2048 + int64(b[2]) + 1
	var chunks []chunk
	end := int64(0)
	for b = b[3:]; len(b) >= 4 && len(chunks) < 16; b = b[4:] {
		off := max(int64(binary.LittleEndian.Uint16(b))*size/65536, end)
		n := min(1+int64(b[2])*8, size-off)
		if n <= 0 {
			break
		}
		var data []byte
		switch b[3] % 4 {
		case 0:
			data = make([]byte, n)
		case 1:
			data = textLike(int(n), uint64(off))
		case 2:
			data = randomBytes(int(n), uint64(off))
		default:
			data = bytes.Repeat([]byte{b[3]}, int(n))
		}
		chunks = append(chunks, chunk{off, data})
		end = off + n
	}
	return newWriteSource(size, chunks...)
}

// FuzzWriteStream writes a random sparse layout as a stream and reads it
// back, randomly and sequentially, byte for byte.
func FuzzWriteStream(f *testing.F) {
	f.Add([]byte{1, 0, 7, 0, 0, 200, 1})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0, 0, 255, 2, 0, 0x80, 10, 1, 0xff, 0xff, 255, 3})
	f.Add([]byte{0x40, 0x00, 0x10, 0x10, 0x00, 0x40, 0x00, 0x30, 0x00, 0x10, 0x02, 0xff, 0xff, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 80 {
			return
		}
		src := fuzzWriteSource(b)
		var out bytes.Buffer
		n, err := WriteStream(context.Background(), &out, src, WriteOptions{Workers: 2})
		if err != nil {
			t.Fatalf("WriteStream: %v", err)
		}
		if n != int64(out.Len()) {
			t.Fatalf("WriteStream returned %d, wrote %d bytes", n, out.Len())
		}
		checkReadBack(t, disk.NewMemStorage("fuzz.vmdk", out.Bytes()), src, "streamOptimized")
		if err := checkStreamWalk(out.Bytes(), src); err != nil {
			t.Fatalf("WalkStream: %v", err)
		}
	})
}

// bufWriterAt is an io.WriterAt over a growing slice.
type bufWriterAt struct{ b []byte }

func (w *bufWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if need := off + int64(len(p)); need > int64(len(w.b)) {
		w.b = append(w.b, make([]byte, need-int64(len(w.b)))...)
	}
	return copy(w.b[off:], p), nil
}

// FuzzWriteSparse writes a random sparse layout as a monolithicSparse
// extent and checks its layout (both directories agreeing, grains only
// for data, in order) and that it reads back byte for byte.
func FuzzWriteSparse(f *testing.F) {
	f.Add([]byte{1, 0, 7, 0, 0, 200, 1})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0, 0, 255, 2, 0, 0x80, 10, 1, 0xff, 0xff, 255, 3})
	f.Add([]byte{0x40, 0x00, 0x10, 0x10, 0x00, 0x40, 0x00, 0x30, 0x00, 0x10, 0x02, 0xff, 0xff, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 80 {
			return
		}
		src := fuzzWriteSource(b)
		var w bufWriterAt
		n, err := WriteSparse(context.Background(), &w, src, WriteOptions{Workers: 1 + len(b)%3, AdapterType: "ide"})
		if err != nil {
			t.Fatalf("WriteSparse: %v", err)
		}
		if n != int64(len(w.b)) {
			t.Fatalf("WriteSparse returned %d, wrote %d bytes", n, len(w.b))
		}
		checkSparseLayout(t, w.b, src)
		checkReadBack(t, disk.NewMemStorage("fuzz.vmdk", w.b), src, "monolithicSparse")
	})
}
