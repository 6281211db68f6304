package vhdx

import (
	"bytes"
	"cmp"
	"compress/bzip2"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"unicode/utf16"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// A spec describes a VHDX for buildVHDX, the tests' own writer, laid out
// as qemu lays it out: header section, log at 1 MiB, metadata at 2 MiB,
// BAT at 3 MiB, then payload blocks in block order, then sector bitmaps.
type spec struct {
	size       uint64 // virtual size
	blockSize  uint32 // 0 → 1 MiB
	sectorSize uint32 // logical; 0 → 512
	fixed      bool   // LeaveBlocksAllocated
	diff       bool   // HasParent
	locator    map[string]string
	dataWrite  GUID
	blocks     map[int]specBlock
	logGUID    GUID
	log        []specEntry // written into the log region
}

// A specBlock is a payload block: its state, data (FULLY or PARTIALLY
// present; shorter is zero-padded) and for PARTIALLY present its sector
// bits (LSB first).
type specBlock struct {
	state uint64
	data  []byte
	bits  []byte
}

// A specEntry is a log entry: its sequence number and writes (4 KiB data
// sectors, or zero ranges when data is nil).
type specEntry struct {
	seq           uint64
	tail          uint32 // offset of the sequence's tail entry in the log
	writes        []logWrite
	flushed, last uint64 // FlushedFileOffset, LastFileOffset; 0: the file's size
}

// Layout constants of buildVHDX.
const (
	bLogAt  = 1 << 20
	bLogLen = 1 << 20
	bMetaAt = 2 << 20
	bBATAt  = 3 << 20
)

func (sp *spec) defaults() {
	if sp.blockSize == 0 {
		sp.blockSize = 1 << 20
	}
	if sp.sectorSize == 0 {
		sp.sectorSize = 512
	}
}

// buildVHDX writes the image sp describes.
func buildVHDX(sp spec) []byte {
	sp.defaults()
	bs := uint64(sp.blockSize)
	nblocks := (sp.size + bs - 1) / bs
	ratio := (1 << 23) * uint64(sp.sectorSize) / bs
	nchunks := (nblocks + ratio - 1) / ratio
	entries := nblocks + (max(nblocks, 1)-1)/ratio
	if sp.diff {
		entries = nchunks * (ratio + 1)
	}
	batLen := (entries*8 + mib - 1) / mib * mib
	batLen = max(batLen, mib)
	dataAt := bBATAt + batLen
	// Place blocks.
	bat := make([]uint64, entries)
	var order []int
	for i := range sp.blocks {
		order = append(order, i)
	}
	sort.Ints(order)
	type placed struct {
		at   uint64
		data []byte
	}
	var blobs []placed
	next := dataAt
	chunkBits := map[uint64][]byte{}
	for _, i := range order {
		b := sp.blocks[i]
		idx := uint64(i) + uint64(i)/ratio
		bat[idx] = b.state
		if b.state == stateFullyPresent || b.state == statePartiallyPresent {
			bat[idx] |= next
			blobs = append(blobs, placed{next, b.data})
			next += bs
		}
		if b.state == statePartiallyPresent {
			c := uint64(i) / ratio
			if chunkBits[c] == nil {
				chunkBits[c] = make([]byte, bitmapBlockSize)
			}
			spb := bs / uint64(sp.sectorSize)
			copy(chunkBits[c][(uint64(i)%ratio)*spb/8:], b.bits)
		}
	}
	for c := range nchunks {
		if bm := chunkBits[c]; bm != nil {
			bat[c*(ratio+1)+ratio] = bitmapPresent | next
			blobs = append(blobs, placed{next, bm})
			next += bitmapBlockSize
		}
	}
	img := make([]byte, next)
	copy(img, signature)
	copy(img[8:], utf16le("diskport test"))
	for _, at := range []int{header1At, header2At} {
		h := img[at : at+headerSize]
		copy(h, "head")
		le.PutUint64(h[8:], 1)
		copy(h[32:], sp.dataWrite[:])
		copy(h[48:], sp.logGUID[:])
		le.PutUint16(h[66:], 1)
		le.PutUint32(h[68:], bLogLen)
		le.PutUint64(h[72:], bLogAt)
		le.PutUint32(h[4:], checksum(h, 4))
	}
	for _, at := range []int{regionTable1At, regionTable2At} {
		r := img[at : at+regionTableSize]
		copy(r, "regi")
		le.PutUint32(r[8:], 2)
		e := r[16:]
		copy(e, regionBAT[:])
		le.PutUint64(e[16:], bBATAt)
		le.PutUint32(e[24:], uint32(batLen))
		le.PutUint32(e[28:], 1)
		e = r[48:]
		copy(e, regionMetadata[:])
		le.PutUint64(e[16:], bMetaAt)
		le.PutUint32(e[24:], mib)
		le.PutUint32(e[28:], 1)
		le.PutUint32(r[4:], checksum(r, 4))
	}
	writeMetadata(img[bMetaAt:bMetaAt+mib], sp)
	for i, e := range bat {
		le.PutUint64(img[bBATAt+8*i:], e)
	}
	for _, b := range blobs {
		copy(img[b.at:], b.data)
	}
	writeLog(img[bLogAt:bLogAt+bLogLen], sp.logGUID, sp.log, uint64(len(img)))
	return img
}

// writeMetadata writes the metadata table and items of sp into md.
func writeMetadata(md []byte, sp spec) {
	copy(md, "metadata")
	type item struct {
		id    GUID
		data  []byte
		flags uint32
	}
	fp := make([]byte, 8)
	le.PutUint32(fp, sp.blockSize)
	var flags uint32
	if sp.fixed {
		flags |= flagLeaveBlocksAllocated
	}
	if sp.diff {
		flags |= flagHasParent
	}
	le.PutUint32(fp[4:], flags)
	vs := make([]byte, 8)
	le.PutUint64(vs, sp.size)
	id := make([]byte, 16)
	id[0] = 0x42
	lss := make([]byte, 4)
	le.PutUint32(lss, sp.sectorSize)
	pss := make([]byte, 4)
	le.PutUint32(pss, 4096)
	items := []item{{itemFileParameters, fp, 4}, {itemVirtualDiskSize, vs, 6}, {itemVirtualDiskID, id, 6}, {itemLogicalSectorSize, lss, 6}, {itemPhysicalSectorSize, pss, 6}}
	if sp.locator != nil {
		items = append(items, item{itemParentLocator, locatorBytes(sp.locator), 4})
	}
	le.PutUint16(md[10:], uint16(len(items)))
	off := uint32(metadataTableSize)
	for i, it := range items {
		e := md[32+32*i:]
		copy(e, it.id[:])
		le.PutUint32(e[16:], off)
		le.PutUint32(e[20:], uint32(len(it.data)))
		le.PutUint32(e[24:], it.flags)
		copy(md[off:], it.data)
		off += uint32(len(it.data)+7) &^ 7
	}
}

// locatorBytes encodes a VHDX parent locator with the given entries.
func locatorBytes(kv map[string]string) []byte {
	var keys []string
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	hdr := make([]byte, 20+12*len(keys))
	copy(hdr, LocatorTypeVHDX[:])
	le.PutUint16(hdr[18:], uint16(len(keys)))
	var strs []byte
	for i, k := range keys {
		ks, vs := utf16le(k), utf16le(kv[k])
		e := hdr[20+12*i:]
		le.PutUint32(e, uint32(len(hdr)+len(strs)))
		strs = append(strs, ks...)
		le.PutUint32(e[4:], uint32(len(hdr)+len(strs)))
		strs = append(strs, vs...)
		le.PutUint16(e[8:], uint16(len(ks)))
		le.PutUint16(e[10:], uint16(len(vs)))
	}
	return append(hdr, strs...)
}

// writeLog writes entries one after another from the start of the log.
func writeLog(log []byte, guid GUID, entries []specEntry, fileSize uint64) {
	pos := 0
	for _, e := range entries {
		var data []logWrite
		for _, w := range e.writes {
			if w.data != nil {
				data = append(data, w)
			}
		}
		count := len(e.writes)
		descSectors := 1
		if count > 126 {
			descSectors += (count - 126 + 127) / 128
		}
		length := (descSectors + len(data)) * logSector
		ent := log[pos : pos+length]
		copy(ent, "loge")
		le.PutUint32(ent[8:], uint32(length))
		le.PutUint32(ent[12:], e.tail)
		le.PutUint64(ent[16:], e.seq)
		le.PutUint32(ent[24:], uint32(count))
		copy(ent[32:], guid[:])
		le.PutUint64(ent[48:], cmp.Or(e.flushed, fileSize))
		le.PutUint64(ent[56:], cmp.Or(e.last, fileSize))
		di := 0
		for i, w := range e.writes {
			var d []byte
			if i < 126 {
				d = ent[entryHeaderLen+descriptorLen*i:]
			} else {
				k := i - 126
				d = ent[logSector*(1+k/128)+descriptorLen*(k%128):]
			}
			le.PutUint64(d[24:], e.seq)
			le.PutUint64(d[16:], uint64(w.off))
			if w.data == nil {
				copy(d, "zero")
				le.PutUint64(d[8:], uint64(w.n))
				continue
			}
			copy(d, "desc")
			copy(d[4:8], w.data[logSector-4:])
			copy(d[8:16], w.data[:8])
			ds := ent[(descSectors+di)*logSector:][:logSector]
			di++
			copy(ds, "data")
			le.PutUint32(ds[4:], uint32(e.seq>>32))
			copy(ds[8:logSector-4], w.data[8:logSector-4])
			le.PutUint32(ds[logSector-4:], uint32(e.seq))
		}
		le.PutUint32(ent[4:], checksum(ent, 4))
		pos += length
	}
}

// utf16le encodes s as UTF-16 little-endian.
func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		le.PutUint16(b[2*i:], c)
	}
	return b
}

// fixHeader recomputes the checksum of the header at at.
func fixHeader(b []byte, at int) { le.PutUint32(b[at+4:], checksum(b[at:at+headerSize], 4)) }

// fixRegionTable recomputes the checksum of the region table at at.
func fixRegionTable(b []byte, at int) {
	le.PutUint32(b[at+4:], checksum(b[at:at+regionTableSize], 4))
}

// mustOpen opens b as a VHDX, failing the test on error.
func mustOpen(t testing.TB, name string, b []byte, opts Options) *Image {
	t.Helper()
	m, err := Open(disk.NewMemStorage(name, b), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	return m
}

// pattern returns n deterministic bytes for seed.
func pattern(seed uint64, n int) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// sample decompresses testdata/name.bz2 once into the test cache (keyed by
// the compressed file's hash) and returns the decompressed file's path.
// Zero chunks are left as holes.
func sample(t testing.TB, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name+".bz2"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	path := filepath.Join(testimg.CacheDir(t), "vhdx-sample-"+hex.EncodeToString(sum[:8])+"-"+name)
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

// firstDiff returns the first index where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// sha256Image hashes the first n bytes of img, 4 MiB at a time.
func sha256Image(t testing.TB, img io.ReaderAt, n int64) string {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < n; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), n-off)]
		if _, err := img.ReadAt(b, off); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sha256File hashes the file at path.
func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
