package vhd

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/diskport/diskport/disk"
)

// fuzzSource builds a small sparse source from fuzz bytes: two bytes of
// size (up to about 448 KiB, any byte count: inside one 2 MiB block, so
// an input costs a block's write at most), then five bytes per segment
// (sector offset, length in 4-byte units, fill), the fill 0 making a
// data run of zeros.
func fuzzSource(data []byte) *sparseSource {
	if len(data) < 2 {
		return newSparseSource(int64(len(data)))
	}
	size := int64(binary.BigEndian.Uint16(data)) * 7
	var segs []segment
	for rest := data[2:]; len(rest) >= 5 && len(segs) < 16; rest = rest[5:] {
		off := int64(binary.BigEndian.Uint16(rest)) * 512 % (size + 1)
		n := int64(binary.BigEndian.Uint16(rest[2:])) * 4 % (size + 1)
		b := make([]byte, n)
		if fill := rest[4]; fill != 0 {
			copy(b, pattern(uint64(fill), int(n)))
		}
		segs = append(segs, segment{off, b})
	}
	return newSparseSource(size, segs...)
}

// FuzzWriteDynamic writes random small sparse sources with WriteDynamic
// and WriteFixed and reads them back equal with the package's reader.
func FuzzWriteDynamic(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x10, 0x00})
	f.Add([]byte{0xff, 0xff, 0x00, 0x10, 0x20, 0x00, 0x07, 0x10, 0x00, 0x00, 0x10, 0x00})
	f.Add([]byte{0x48, 0x00, 0x00, 0x00, 0x40, 0x00, 0x01, 0x0f, 0xff, 0x00, 0x02, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := fuzzSource(data)
		size := roundSector(src.Size())
		want := sourceBytes(t, src, 0, size)
		opts := testOpts
		opts.Workers = 1 + len(data)%3

		var w memWriterAt
		n, err := WriteDynamic(context.Background(), &w, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(w.Bytes())) {
			t.Fatalf("returned %d, wrote %d bytes", n, len(w.Bytes()))
		}
		checkReadBack(t, "dynamic", w.Bytes(), want)

		var buf bytes.Buffer
		if _, err := WriteFixed(context.Background(), &buf, src, opts); err != nil {
			t.Fatal(err)
		}
		checkReadBack(t, "fixed", buf.Bytes(), want)
	})
}

// checkReadBack opens a written VHD and checks it reads as want.
func checkReadBack(t *testing.T, what string, file, want []byte) {
	t.Helper()
	m, err := Open(disk.NewMemStorage(what, file), Options{})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer m.Close()
	if m.Size() != int64(len(want)) {
		t.Fatalf("%s: size %d, want %d", what, m.Size(), len(want))
	}
	got := make([]byte, len(want))
	if _, err := m.ReadAt(got, 0); err != nil && len(got) > 0 {
		t.Fatalf("%s: %v", what, err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("%s: byte %d is %#x, want %#x", what, i, got[i], want[i])
	}
}
