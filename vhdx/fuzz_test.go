package vhdx

import (
	"errors"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/diskport/diskport/disk"
)

// fuzzSeeds returns small VHDXs to start fuzzing from: the tests' dynamic,
// fixed, differencing and dirty images, and each sample's first 4 MiB (its
// header section, log, metadata and BAT; the whole samples, 30-260 MiB,
// would make every fuzzing step crawl).
func fuzzSeeds(t testing.TB) [][]byte {
	fixed := hostileSpec()
	fixed.fixed = true
	fixed.blocks = map[int]specBlock{}
	for i := range 6 {
		fixed.blocks[i] = specBlock{state: stateFullyPresent, data: pattern(uint64(i), 4096)}
	}
	_, csp := chainSpecs(4096)
	csp.size = 3 << 20
	delete(csp.blocks, 5)
	delete(csp.blocks, 6)
	delete(csp.blocks, 7)
	_, dirty := dirtyPair()
	seeds := [][]byte{hostileBase(), buildVHDX(fixed), buildVHDX(csp), dirty}
	for _, name := range []string{"iotest-dynamic-1G.vhdx", "iotest-dirtylog-10G-4M.vhdx", "test-disk2vhd.vhdx"} {
		if t == nil {
			break // FuzzPatch's bases only
		}
		f, err := os.Open(sample(t, name))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 4<<20)
		n, err := io.ReadFull(f, b)
		f.Close()
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatal(err)
		}
		seeds = append(seeds, b[:n])
	}
	return seeds
}

// FuzzOpen opens arbitrary bytes as a VHDX, with and without a parent, and
// walks and reads what opens: no panic, only typed errors, extents inside
// their storage, zero runs reading as zeros.
func FuzzOpen(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	parent := &memImage{pattern(7, 3<<20)}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := disk.NewMemStorage("fuzz.vhdx", b)
		if ok, err := Probe(s); ok && err != nil {
			t.Fatalf("Probe: %v, %v", ok, err)
		}
		for _, opts := range []Options{{}, {Parent: parent}} {
			m, err := Open(s, opts)
			if err != nil {
				var de *disk.Error
				if !errors.As(err, &de) {
					t.Fatalf("untyped error %T: %v", err, err)
				}
				continue
			}
			exerciseImage(t, m)
		}
	})
}

// exerciseImage walks m's extents and reads around them, checking the
// contract cheaply: a bounded number of reads.
func exerciseImage(t *testing.T, m *Image) {
	_ = m.Info()
	size := m.Size()
	if size < 0 || size%disk.SectorSize != 0 {
		t.Fatalf("Size %d", size)
	}
	var pos int64
	buf := make([]byte, 64<<10)
	n := 0
	for e, err := range m.Extents(0, size) {
		if err != nil {
			var de *disk.Error
			if !errors.As(err, &de) {
				t.Fatalf("Extents: untyped error %v", err)
			}
			return
		}
		if e.Offset != pos || e.Length <= 0 {
			t.Fatalf("extent %+v at %d", e, pos)
		}
		pos = e.End()
		if e.Stored != nil && (e.StoredOffset < 0 || e.StoredOffset+e.Length > e.Stored.Size()) {
			t.Fatalf("extent %+v past its storage (%d bytes)", e, e.Stored.Size())
		}
		if n++; n > 100 {
			continue // keep walking, stop reading
		}
		p := buf[:min(int64(len(buf)), e.Length)]
		if _, err := m.ReadAt(p, e.Offset); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d): %v", e.Offset, err)
		}
		if e.Kind == disk.Zero && !isZero(p) {
			t.Fatalf("zero extent %+v reads data", e)
		}
	}
	if pos != size {
		t.Fatalf("extents end at %d, size %d", pos, size)
	}
	m.Close()
}

// fuzzBases are the valid images FuzzPatch damages: dynamic, dirty (a log
// to replay), differencing (opened over a 3 MiB parent) and fixed.
var fuzzBases = sync.OnceValue(func() [][]byte {
	seeds := fuzzSeeds(nil)
	return seeds[:4]
})

// fuzzTargets are where FuzzPatch's patches land: the headers, region
// tables, metadata table and items, BAT, log and first block.
var fuzzTargets = []int64{header1At, header2At, regionTable1At, regionTable2At, bMetaAt, bMetaAt + metadataTableSize, bBATAt, bLogAt, bLogAt + logSector, 4 << 20}

// FuzzPatch damages valid images with small patches at their structures
// and recomputes the checksums the patches broke (unless told not to), so
// the fuzzer reaches past the CRC-32C checks; the input stays small while
// the images are megabytes. Input: a base selector and flags byte, then
// patches of [target, offset (2 bytes), length, bytes].
func FuzzPatch(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{1})
	f.Add([]byte{2})
	f.Add([]byte{3})
	f.Add([]byte{0, 6, 0, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0})                 // block 1 fully present at offset 0
	f.Add([]byte{0, 5, 0, 0, 4, 0, 0, 0, 0x10})                          // block size 1 MiB → 256 MiB
	f.Add([]byte{1, 7, 0, 16, 8, 0, 0, 0, 0, 0, 0, 0, 0})                // log entry sequence 0
	f.Add([]byte{2, 5, 0, 0, 8, 0, 0, 0x10, 0, 2, 0, 0, 0})              // file parameters
	f.Add([]byte{0x80, 0, 0, 48, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) // a log GUID, checksum kept wrong
	parent := &memImage{pattern(7, 3<<20)}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		bases := fuzzBases()
		base := bases[int(in[0]&3)]
		keepCRC := in[0]&0x80 != 0
		var writes []logWrite
		for p := in[1:]; len(p) >= 4; {
			tgt, off, n := int(p[0])%len(fuzzTargets), int64(le.Uint16(p[1:])), int(p[3])
			p = p[4:]
			n = min(n, len(p))
			writes = append(writes, logWrite{off: fuzzTargets[tgt] + off, n: int64(n), data: p[:n]})
			p = p[n:]
		}
		s := disk.Storage(disk.NewMemStorage("fuzz.vhdx", base))
		if len(writes) > 0 {
			s = newOverlay(s, s.Size(), writes)
			if !keepCRC {
				s = newOverlay(s, s.Size(), fixChecksums(s))
			}
		}
		var opts Options
		if in[0]&3 == 2 {
			opts.Parent = parent
		}
		m, err := Open(s, opts)
		if err != nil {
			var de *disk.Error
			if !errors.As(err, &de) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		exerciseImage(t, m)
	})
}

// fixChecksums returns the writes that make the headers', region tables'
// and first log entry's checksums right again.
func fixChecksums(s disk.Storage) []logWrite {
	var out []logWrite
	fix := func(at, n int64) {
		b := make([]byte, n)
		if _, err := s.ReadAt(b, at); err != nil {
			return
		}
		c := make([]byte, 4)
		le.PutUint32(c, checksum(b, 4))
		out = append(out, logWrite{off: at + 4, n: 4, data: c})
	}
	fix(header1At, headerSize)
	fix(header2At, headerSize)
	fix(regionTable1At, regionTableSize)
	fix(regionTable2At, regionTableSize)
	var h [12]byte
	if _, err := s.ReadAt(h[:], bLogAt); err == nil && string(h[:4]) == "loge" {
		if n := int64(le.Uint32(h[8:])); n > 0 && n <= bLogLen && n%logSector == 0 {
			fix(bLogAt, n)
		}
	}
	return out
}
