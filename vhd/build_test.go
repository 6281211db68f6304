package vhd

import (
	"bytes"
	"compress/bzip2"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"unicode/utf16"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// A spec describes a VHD for buildVHD: the tests' own writer, laid out
// like Windows and qemu do — footer copy, dynamic header, BAT, locator
// data, blocks in block order, footer.
type spec struct {
	diskType   uint32
	size       uint64 // current size
	creator    string // 4 bytes; "" → "test"
	cyl        uint16
	heads      uint8
	spt        uint8
	uniqueID   [16]byte
	blockSize  uint32 // 0 → 2 MiB
	maxEntries uint32 // 0 → as many as the size needs
	parentID   [16]byte
	parentName string
	locators   []specLocator
	blocks     map[int]specBlock
	fixedData  []byte // fixed disks: the data (padded with zeros to size)
}

// A specLocator is a parent locator and its data.
type specLocator struct {
	code uint32
	data []byte
}

// A specBlock is an allocated block: its data and bitmap (nil: all sectors
// present).
type specBlock struct {
	data   []byte // blockSize bytes (shorter: zero-padded)
	bitmap []byte
}

// utf16le encodes s as UTF-16 little-endian, as Windows writes W2ku/W2ru.
func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// footerBytes encodes the footer of sp with dataOffset.
func footerBytes(sp spec, dataOffset uint64) []byte {
	be := binary.BigEndian
	b := make([]byte, footerSize)
	copy(b, footerCookie)
	be.PutUint32(b[8:], 2)
	be.PutUint32(b[12:], 0x00010000)
	be.PutUint64(b[16:], dataOffset)
	be.PutUint32(b[24:], 0x2a000000)
	creator := sp.creator
	if creator == "" {
		creator = "test"
	}
	copy(b[28:32], creator)
	be.PutUint32(b[32:], 0x00010002)
	copy(b[36:40], "Wi2k")
	be.PutUint64(b[40:], sp.size)
	be.PutUint64(b[48:], sp.size)
	be.PutUint16(b[56:], sp.cyl)
	b[58], b[59] = sp.heads, sp.spt
	be.PutUint32(b[60:], sp.diskType)
	copy(b[68:84], sp.uniqueID[:])
	fixChecksum(b, 64)
	return b
}

// fixChecksum recomputes the checksum of structure b stored at at.
func fixChecksum(b []byte, at int) {
	binary.BigEndian.PutUint32(b[at:], checksum(b, at))
}

// buildVHD writes the VHD sp describes.
func buildVHD(sp spec) []byte {
	if sp.diskType == TypeFixed {
		data := make([]byte, sp.size)
		copy(data, sp.fixedData)
		return append(data, footerBytes(sp, ^uint64(0))...)
	}
	be := binary.BigEndian
	bs := uint64(sp.blockSize)
	if bs == 0 {
		bs = 2 << 20
	}
	nblocks := (sp.size + bs - 1) / bs
	entries := uint64(sp.maxEntries)
	if entries == 0 {
		entries = nblocks
	}
	const batAt = 1536
	batLen := (4*entries + 511) / 512 * 512
	pos := batAt + batLen
	hdr := make([]byte, headerSize)
	copy(hdr, headerCookie)
	be.PutUint64(hdr[8:], ^uint64(0))
	be.PutUint64(hdr[16:], batAt)
	be.PutUint32(hdr[24:], 0x00010000)
	be.PutUint32(hdr[28:], uint32(entries))
	be.PutUint32(hdr[32:], uint32(bs))
	copy(hdr[40:56], sp.parentID[:])
	for i, c := range utf16.Encode([]rune(sp.parentName)) {
		be.PutUint16(hdr[64+2*i:], c)
	}
	var locData []byte
	for i, l := range sp.locators {
		e := hdr[576+24*i:]
		space := (uint64(len(l.data)) + 511) / 512 * 512
		be.PutUint32(e[0:], l.code)
		be.PutUint32(e[4:], uint32(space))
		be.PutUint32(e[8:], uint32(len(l.data)))
		be.PutUint64(e[16:], pos+uint64(len(locData)))
		d := make([]byte, space)
		copy(d, l.data)
		locData = append(locData, d...)
	}
	fixChecksum(hdr, 36)
	pos += uint64(len(locData))
	bat := make([]byte, batLen)
	for i := range batLen / 4 {
		be.PutUint32(bat[4*i:], unallocated)
	}
	bitmapLen := ((bs/512+7)/8 + 511) / 512 * 512
	var blocks []byte
	for i := range int(nblocks) {
		blk, ok := sp.blocks[i]
		if !ok {
			continue
		}
		be.PutUint32(bat[4*i:], uint32((pos+uint64(len(blocks)))/512))
		bm := make([]byte, bitmapLen)
		if blk.bitmap == nil {
			for j := range bm {
				bm[j] = 0xFF
			}
		} else {
			copy(bm, blk.bitmap)
		}
		d := make([]byte, bs)
		copy(d, blk.data)
		blocks = append(append(blocks, bm...), d...)
	}
	foot := footerBytes(sp, 512)
	out := append([]byte{}, foot...)
	out = append(out, hdr...)
	out = append(out, bat...)
	out = append(out, locData...)
	out = append(out, blocks...)
	return append(out, foot...)
}

// mustOpen opens b as a VHD, failing the test on error.
func mustOpen(t testing.TB, name string, b []byte, opts Options) *Image {
	t.Helper()
	m, err := Open(disk.NewMemStorage(name, b), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	return m
}

// sample decompresses testdata/name.bz2 once into the test cache
// (testimg.CacheDir, keyed by the compressed file's hash) and returns the
// path of the decompressed file. Zero chunks are left as holes:
// d2v-zerofilled.vhd is 252 MiB of mostly zeros.
func sample(t testing.TB, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name+".bz2"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	path := filepath.Join(testimg.CacheDir(t), "vhd-sample-"+hex.EncodeToString(sum[:8])+"-"+name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	out, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(out.Name())
	var r io.Reader = bzip2.NewReader(bytes.NewReader(src))
	var cmd *exec.Cmd
	if bz, err := exec.LookPath("bzip2"); err == nil { // much faster than compress/bzip2 under -race
		cmd = exec.Command(bz, "-dc")
		cmd.Stdin = bytes.NewReader(src)
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r = pipe
	}
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 && !isZero(buf[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				t.Fatal(werr)
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("decompressing %s: %v", name, err)
		}
	}
	if cmd != nil {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("bzip2 -dc %s: %v", name, err)
		}
	}
	if err := out.Truncate(off); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(out.Name(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// openFile opens path as host storage, closed when the test ends.
func openFile(t testing.TB, path string) *disk.HostFile {
	t.Helper()
	s, err := disk.OpenHostFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// zeros is a chunk of zeros for isZero.
var zeros = make([]byte, 1<<20)

// isZero reports whether b is all zeros.
func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
