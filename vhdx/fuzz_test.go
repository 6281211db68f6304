package vhdx

import (
	"bytes"
	"encoding/binary"
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

// A VHDX is megabytes even when empty (headers at 64 KiB, the log and
// metadata on 1 MiB boundaries), and Go's fuzzer mutates and minimises an
// input whole: FuzzOpen's input is therefore a sparse file, the runs of
// bytes that are not zero, which the target lays over zeros.
//
// The encoding: uvarint file size in 4 KiB units (at most maxFuzzFile),
// then runs of [uvarint gap after the previous run, uvarint length,
// bytes]. A run past the end of the input or the file is cut short.
const maxFuzzFile = 64 << 20

// decodeSparse lays the runs in encoded over a file of zeros.
func decodeSparse(in []byte) disk.Storage {
	units, k := binary.Uvarint(in)
	if k <= 0 {
		return disk.NewMemStorage("fuzz.vhdx", nil)
	}
	size := int64(min(units, maxFuzzFile/logSector)) * logSector
	in = in[k:]
	var writes []logWrite
	var pos int64
	for len(in) > 0 && len(writes) < 64 {
		gap, k1 := binary.Uvarint(in)
		if k1 <= 0 {
			break
		}
		n, k2 := binary.Uvarint(in[k1:])
		if k2 <= 0 {
			break
		}
		in = in[k1+k2:]
		n = min(n, uint64(len(in)))
		if gap > uint64(size) || pos+int64(gap) >= size {
			break
		}
		pos += int64(gap)
		n = min(n, uint64(size-pos))
		writes = append(writes, logWrite{off: pos, n: int64(n), data: in[:n]})
		pos += int64(n)
		in = in[n:]
	}
	return newOverlay(zeroStorage{size}, size, writes)
}

// encodeSparse encodes b for decodeSparse: the non-zero 512-byte sectors, merged into runs, until the encoding reaches
// budget bytes or limit bytes of b (the rest reads as zeros).
func encodeSparse(b []byte, limit, budget int) []byte {
	out := binary.AppendUvarint(nil, uint64((len(b)+logSector-1)/logSector))
	b = b[:min(len(b), limit)]
	prev := 0
	for i := 0; i < len(b); {
		if isZero(b[i:min(i+512, len(b))]) {
			i += 512
			continue
		}
		j := i
		for j < len(b) && !isZero(b[j:min(j+512, len(b))]) {
			j += 512
		}
		j = min(j, len(b))
		if len(out)+(j-i)+20 > budget {
			break
		}
		out = binary.AppendUvarint(out, uint64(i-prev))
		out = binary.AppendUvarint(out, uint64(j-i))
		out = append(out, b[i:j]...)
		prev, i = j, j
	}
	return out
}

// FuzzOpen opens fuzzed sparse files (see decodeSparse) as VHDXs, with
// and without a parent, and walks and reads what opens: no panic, only
// typed errors, extents inside their storage, zero runs reading as zeros.
// The seeds are the built images and the samples' first 4 MiB, each
// encoded in under 64 KiB.
func FuzzOpen(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(encodeSparse(b, 8<<20, 60<<10))
	}
	parent := &memImage{pattern(7, 3<<20)}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 256<<10 {
			return
		}
		s := decodeSparse(in)
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

// TestSparseEncoding checks FuzzOpen's seeds decode to the images they
// encode (the part that fit) and that the built ones still open.
func TestSparseEncoding(t *testing.T) {
	for i, b := range fuzzSeeds(nil) {
		enc := encodeSparse(b, 8<<20, 60<<10)
		if len(enc) >= 64<<10 {
			t.Fatalf("seed %d: %d bytes encoded", i, len(enc))
		}
		s := decodeSparse(enc)
		if s.Size() != int64(len(b)+logSector-1)/logSector*logSector {
			t.Fatalf("seed %d: %d bytes decoded from %d", i, s.Size(), len(b))
		}
		got := make([]byte, len(b))
		s.ReadAt(got, 0)
		// The headers, log, metadata and BAT (below 4 MiB) fit.
		if n := min(len(b), 4<<20); !bytes.Equal(got[:n], b[:n]) {
			t.Fatalf("seed %d decodes to other bytes", i)
		}
	}
}

// exerciseImage walks m's extents and reads around them, checking the
// contract cheaply: the first 16 KiB of the first 32 extents.
func exerciseImage(t *testing.T, m *Image) {
	_ = m.Info()
	size := m.Size()
	if size < 0 || size%disk.SectorSize != 0 {
		t.Fatalf("Size %d", size)
	}
	var pos int64
	buf := make([]byte, 16<<10)
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
		if n++; n > 32 {
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
