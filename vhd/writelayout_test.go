package vhd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// sourceBytes returns the n bytes of src at off, zeros past its end.
func sourceBytes(t testing.TB, src disk.Image, off, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := src.ReadAt(b, off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// checkFooterFields checks a footer the writers made for a disk of size
// bytes against every field's expected value.
func checkFooterFields(t *testing.T, b []byte, at int64, size int64, diskType uint32, dataOffset uint64) {
	t.Helper()
	f, err := parseFooter(b, at)
	if err != nil {
		t.Fatalf("footer at %d: %v", at, err)
	}
	c, h, s := chsGeometry(uint64(size) / 512)
	want := footer{
		features:       2,
		version:        0x00010000,
		dataOffset:     dataOffset,
		timestamp:      uint32(testWriteTime.Sub(timestampBase).Seconds()),
		creatorApp:     [4]byte{'w', 'i', 'n', ' '},
		creatorVersion: 0x000a0000,
		creatorOS:      [4]byte{'W', 'i', '2', 'k'},
		originalSize:   uint64(size),
		currentSize:    uint64(size),
		cylinders:      c,
		heads:          h,
		sectors:        s,
		diskType:       diskType,
		checksum:       f.checksum,
		uniqueID:       testUniqueID,
	}
	if *f != want {
		t.Errorf("footer at %d:\n got %+v\nwant %+v", at, *f, want)
	}
	if !isZero(b[85:]) {
		t.Errorf("footer at %d: reserved bytes not zero", at)
	}
}

// TestWriteDynamicLayout checks a dynamic disk byte by byte: the footer
// and its copy, the dynamic header, every BAT entry, every bitmap, every
// block and the padding between them.
func TestWriteDynamicLayout(t *testing.T) {
	const bs = 2 << 20
	for _, c := range writeCases() {
		if c.slow {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			src := c.src()
			size := roundSector(src.Size())
			var w memWriterAt
			n, err := WriteDynamic(context.Background(), &w, src, testOpts)
			if err != nil {
				t.Fatal(err)
			}
			b := w.Bytes()
			if int64(len(b)) != n {
				t.Fatalf("returned %d, wrote %d bytes", n, len(b))
			}
			if !bytes.Equal(b[:512], b[len(b)-512:]) {
				t.Fatal("footer copy at 0 differs from the footer at the end")
			}
			checkFooterFields(t, b[len(b)-512:], int64(len(b)-512), size, TypeDynamic, 512)

			nblocks := (size + bs - 1) / bs
			hb := b[512:1536]
			h, err := parseHeader(hb, 512)
			if err != nil {
				t.Fatal(err)
			}
			if h.tableOffset != 1536 || h.version != 0x00010000 || int64(h.maxTableEntries) != nblocks || h.blockSize != bs {
				t.Errorf("header %+v", h)
			}
			if binary.BigEndian.Uint64(hb[8:]) != 1<<64-1 || !isZero(hb[40:]) {
				t.Errorf("header: data offset %#x, or parent fields not zero", binary.BigEndian.Uint64(hb[8:]))
			}

			batBytes := (4*nblocks + 511) / 512 * 512
			batEnd := 1536 + batBytes
			next := (batEnd+512+4095)/4096*4096 - 512 // where the first block's bitmap goes
			prevEnd := batEnd
			for i := range batBytes / 4 {
				e := binary.BigEndian.Uint32(b[1536+4*i:])
				if i >= nblocks {
					if e != unallocated {
						t.Errorf("BAT padding entry %d = %#x", i, e)
					}
					continue
				}
				want := sourceBytes(t, src, i*bs, bs)
				if isZero(want) {
					if e != unallocated {
						t.Errorf("block %d of zeros allocated at sector %d", i, e)
					}
					continue
				}
				at := int64(e) * 512
				if at != next {
					t.Fatalf("block %d at byte %d, want %d (in block order, data 4 KiB aligned)", i, at, next)
				}
				if !isZero(b[prevEnd:at]) {
					t.Errorf("bytes %d-%d before block %d not zero", prevEnd, at, i)
				}
				if !bytes.Equal(b[at:at+512], bytes.Repeat([]byte{0xFF}, 512)) {
					t.Errorf("block %d: bitmap not all ones", i)
				}
				if (at+512)%4096 != 0 {
					t.Errorf("block %d: data at byte %d not 4 KiB aligned", i, at+512)
				}
				if j := firstDiff(b[at+512:at+512+bs], want); j >= 0 {
					t.Fatalf("block %d: byte %d differs", i, j)
				}
				prevEnd = at + 512 + bs
				next = prevEnd + 4096 - 512
			}
			if prevEnd != int64(len(b))-512 {
				t.Errorf("footer at byte %d, the last block ends at %d", len(b)-512, prevEnd)
			}
		})
	}
}

// TestWriteFixedLayout checks a fixed disk: the data, then the footer.
func TestWriteFixedLayout(t *testing.T) {
	for _, c := range writeCases() {
		if c.slow {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			src := c.src()
			size := roundSector(src.Size())
			var buf bytes.Buffer
			n, err := WriteFixed(context.Background(), &buf, src, testOpts)
			if err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()
			if n != int64(len(b)) || n != size+512 {
				t.Fatalf("returned %d, wrote %d bytes, want %d", n, len(b), size+512)
			}
			if i := firstDiff(b[:size], sourceBytes(t, src, 0, size)); i >= 0 {
				t.Fatalf("byte %d differs from the source", i)
			}
			checkFooterFields(t, b[size:], size, size, TypeFixed, 1<<64-1)
		})
	}
}

// recordingWriter fails the test on any write.
type recordingWriter struct{ t *testing.T }

func (r recordingWriter) Write(p []byte) (int, error) {
	r.t.Errorf("write of %d bytes", len(p))
	return len(p), nil
}

func (r recordingWriter) WriteAt(p []byte, off int64) (int, error) {
	r.t.Errorf("write of %d bytes at %d", len(p), off)
	return len(p), nil
}

// TestWriteTooLarge refuses a disk past 2040 GiB before writing or
// reading anything, and writes one of exactly 2040 GiB that qemu-img
// opens at that size.
func TestWriteTooLarge(t *testing.T) {
	big := newSparseSource(MaxWriteSize+512, segment{0, pattern(11, 4096)})
	if _, err := WriteDynamic(context.Background(), recordingWriter{t}, big, WriteOptions{}); !errors.Is(err, disk.ErrTooLarge) {
		t.Errorf("WriteDynamic: %v, want ErrTooLarge", err)
	}
	if _, err := WriteFixed(context.Background(), recordingWriter{t}, big, WriteOptions{}); !errors.Is(err, disk.ErrTooLarge) {
		t.Errorf("WriteFixed: %v, want ErrTooLarge", err)
	}
	if n := big.reads.Load(); n != 0 {
		t.Errorf("source read %d times", n)
	}

	edge := newSparseSource(MaxWriteSize, segment{MaxWriteSize - 3<<20, pattern(12, 3<<20)})
	for _, dynamic := range []bool{true, false} {
		path := writeVHDFile(t, edge, dynamic, testOpts)
		if vs, _ := qemuInfo(t, path); vs != MaxWriteSize {
			t.Errorf("dynamic %v: qemu-img info: virtual size %d, want %d", dynamic, vs, int64(MaxWriteSize))
		}
		m, err := Open(openFile(t, path), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Size() != MaxWriteSize {
			t.Errorf("size %d", m.Size())
		}
		compareSource(t, "tail", io.NewSectionReader(m, MaxWriteSize-4<<20, 4<<20), io.NewSectionReader(edge, MaxWriteSize-4<<20, 4<<20), 4<<20)
		m.Close()
	}
}

// TestCHSGeometry checks the geometry against known disks and against
// qemu, which writes the same algorithm's result for the CHS-rounded size
// when it creates a disk without force_size.
func TestCHSGeometry(t *testing.T) {
	for _, c := range []struct {
		sectors uint64
		c       uint16
		h, s    uint8
	}{
		{4212736 / 512, 121, 4, 17},          // dfvfs-ext2.vhd, made by qemu
		{136365211648 / 512, 65278, 16, 255}, // 127 GiB by Hyper-V
		{maxCHSSectors * 4, 65535, 16, 255},  // capped
		{65535 * 16 * 63, 16191, 16, 255},    // the 255-sector threshold
		{65535*16*63 - 1, 65534, 16, 63},     // just under it
		{0, 0, 4, 17},                        // empty
		{20480, 301, 4, 17},                  // 10 MiB
		{1 << 21, 2080, 16, 63},              // 1 GiB: 17 and 31 sectors too few
		{(64 << 30) / 512, 32896, 16, 255},   // 64 GiB
	} {
		cyl, h, s := chsGeometry(c.sectors)
		if cyl != c.c || h != c.h || s != c.s {
			t.Errorf("chsGeometry(%d) = %d/%d/%d, want %d/%d/%d", c.sectors, cyl, h, s, c.c, c.h, c.s)
		}
	}
	dir := t.TempDir()
	for _, size := range []int64{1 << 20, 5<<20 + 3*512, 100 << 20, 3<<30 + 12345*512, 40 << 30} {
		path := filepath.Join(dir, "q.vhd")
		os.Remove(path)
		if out, err := exec.Command(testimg.QemuImg(t), "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", path, strconv.FormatInt(size, 10)).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create: %v: %s", err, out)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseFooter(b[len(b)-512:], 0)
		if err != nil {
			t.Fatal(err)
		}
		cyl, h, s := chsGeometry(f.currentSize / 512)
		if cyl != f.cylinders || h != f.heads || s != f.sectors {
			t.Errorf("size %d: chsGeometry(%d) = %d/%d/%d, qemu wrote %d/%d/%d", size, f.currentSize/512, cyl, h, s, f.cylinders, f.heads, f.sectors)
		}
	}
}

// TestWriteDefaults checks the footer fields WriteOptions leaves to the
// writer: a random version 4 unique id for every disk, and the time now.
func TestWriteDefaults(t *testing.T) {
	src := newSparseSource(1<<20, segment{0, pattern(13, 4096)})
	var ids [][16]byte
	for range 2 {
		var buf bytes.Buffer
		before := time.Now()
		n, err := WriteFixed(context.Background(), &buf, src, WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseFooter(buf.Bytes()[n-512:], n-512)
		if err != nil {
			t.Fatal(err)
		}
		if f.uniqueID[6]>>4 != 4 || f.uniqueID[8]>>6 != 2 {
			t.Errorf("unique id %x is not a version 4 UUID", f.uniqueID)
		}
		if ts := vhdTime(f.timestamp); ts.Before(before.Truncate(time.Second)) || ts.After(time.Now()) {
			t.Errorf("time stamp %v, written at %v", ts, before)
		}
		ids = append(ids, f.uniqueID)
	}
	if ids[0] == ids[1] {
		t.Errorf("two disks share the unique id %x", ids[0])
	}
}
