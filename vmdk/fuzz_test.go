package vmdk

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
)

// maxSeed is the largest seed the opener targets start from: Go's fuzzer
// copies, mutates and minimises an input whole, so megabyte seeds starve
// it. Samples are cut to their first maxSeed bytes (header, descriptor,
// directories and tables), which is what the parsers read.
const maxSeed = 64 << 10

// fuzzSeeds returns the seed corpus, every seed under maxSeed: the
// samples' heads and built extents of every kind, small enough whole.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, f := range []string{"iotest-version3.vmdk.bz2", "iotest-version3-2013.vmdk.bz2", "dfvfs-ext2.vmdk.bz2", "afl9.vmdk.bz2", "vmdkstream-tail.vmdk.bz2"} {
		b := sample(t, f)
		seeds = append(seeds, b[:min(len(b), maxSeed-1)])
	}
	plain, _ := buildSparse(tinySpec(false))
	s := tinySpec(true)
	stream, L := buildSparse(s)
	zs := tinySpec(false)
	zs.version, zs.flags, zs.zeroed = 2, flagZeroedGTE, []int64{5, 6}
	zeroed, _ := buildSparse(zs)
	seeds = append(seeds, plain, stream, toStreamAtEnd(stream, L, s), zeroed,
		buildCOWD(10000, 1, map[int64][]byte{0: {1}, 4096: {2}}),
		[]byte("# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"f.vmdk\" 0\nRW 10 ZERO\n"),
		[]byte("version=1\ncreateType=\"twoGbMaxExtentSparse\"\nRW 2048 SPARSE \"s.vmdk\"\nRDONLY 1024 FLAT \"f.vmdk\" 8\n"),
		[]byte("version=1\ncreateType=\"vmfsSparse\"\nRW 10000 VMFSSPARSE \"c.vmdk\"\n"),
		[]byte("version=1\ncreateType=\"seSparse\"\nRW 40000 SESPARSE \"e.vmdk\"\n"),
	)
	for _, b := range seeds {
		if len(b) >= maxSeed {
			t.Fatalf("a %d-byte seed", len(b))
		}
	}
	return seeds
}

// fuzzFiles are the extent files a fuzzed descriptor may name.
func fuzzFiles() map[string][]byte {
	plain, _ := buildSparse(smallSpec(false))
	return map[string][]byte{
		"f.vmdk": pattern(1<<20, 3),
		"s.vmdk": plain,
		"c.vmdk": buildCOWD(10000, 1, map[int64][]byte{0: {1}}),
		"e.vmdk": buildSESparse(40000, map[int64][]byte{0: {1}, 4096: {2}}, []int64{5}, nil),
	}
}

// FuzzOpen opens arbitrary bytes and, when they open, checks the
// invariants: extents cover the size in order, zero runs read as zeros,
// data reads succeed or fail with an error (never a panic), and opening
// allocates in proportion to the input, not to header claims.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	files := fuzzFiles()
	f.Fuzz(func(t *testing.T, b []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, err := Open(disk.NewMemStorage("fuzz.vmdk", b), Options{OpenExtent: memOpener(files)})
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(64*len(b))+16<<20 {
			t.Fatalf("Open of %d bytes allocated %d bytes", len(b), alloc)
		}
		if err != nil {
			checkOpenError(t, err)
			return
		}
		checkImage(t, img)
	})
}

// checkOpenError fails on an error Open should not return: anything but
// a *disk.Error, io.EOF or a failure to open a named extent (wrapped as
// it came from OpenExtent).
func checkOpenError(t *testing.T, err error) {
	var de *disk.Error
	if !errors.As(err, &de) && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "opening extent") {
		t.Fatalf("untyped error %v", err)
	}
}

// checkImage checks an opened image's invariants cheaply: extents cover
// the size in order, the first 64 read (64 KiB at most each), zero runs
// read as zeros, reads at the end answer as io.ReaderAt says.
func checkImage(t *testing.T, img *Image) {
	defer img.Close()
	size := img.Size()
	if size <= 0 || size%disk.SectorSize != 0 || size > DefaultMaxVirtualSize {
		t.Fatalf("Size() = %d", size)
	}
	_ = img.Info()
	var pos int64
	var reads int
	buf := make([]byte, 64<<10)
	for e, err := range img.Extents(0, size) {
		if err != nil {
			return // a corrupt table found while mapping
		}
		if e.Offset != pos || e.Length <= 0 {
			t.Fatalf("extent %+v at %d", e, pos)
		}
		pos = e.End()
		if reads >= 64 {
			continue
		}
		reads++
		n := min(int64(len(buf)), e.Length)
		_, rerr := img.ReadAt(buf[:n], e.Offset)
		if rerr != nil && rerr != io.EOF {
			continue
		}
		if e.Kind == disk.Zero && !disk.IsZero(buf[:n]) {
			t.Fatalf("zero extent %+v reads non-zero", e)
		}
	}
	if pos != size {
		t.Fatalf("extents end at %d, size %d", pos, size)
	}
	if n, err := img.ReadAt(buf[:1], size-1); err == nil && n != 1 {
		t.Fatalf("ReadAt(size-1) = %d", n)
	}
	if n, err := img.ReadAt(buf[:1], size); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(size) = %d, %v", n, err)
	}
}

// FuzzWalkStream walks arbitrary bytes as a stream: grains ascend, lie
// inside the capacity and have the grain's length; nothing panics.
func FuzzWalkStream(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sr, err := NewStreamReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		next := int64(-1)
		buf := make([]byte, sr.GrainSize())
		for range 1 << 16 {
			g, err := sr.Next()
			if err != nil {
				return
			}
			if g.Offset <= next || g.Offset+g.Length > sr.Size() || g.Offset%sr.GrainSize() != 0 {
				t.Fatalf("grain at %d (%d bytes) after %d, size %d", g.Offset, g.Length, next, sr.Size())
			}
			next = g.Offset
			_ = InflateGrain(buf, g.Data, g)
		}
		t.Fatal("more than 65536 grains from a fuzz input")
	})
}

// FuzzDescriptor parses arbitrary descriptor text.
func FuzzDescriptor(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if len(s) < 4096 {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDescriptor(b, false)
		if err != nil {
			return
		}
		for _, e := range d.Extents {
			// A quoted empty name parses; checkExtentName refuses it.
			if e.Sectors < 0 || e.Offset < 0 || e.Type == "ZERO" && e.File != "" {
				t.Fatalf("extent %+v", e)
			}
			if checkExtentName(e.File, e.Line) == nil && e.File != "" {
				for _, c := range []byte(e.File) {
					if c == '/' || c == '\\' || c == 0 || c == ':' {
						t.Fatalf("unsafe name %q accepted", e.File)
					}
				}
			}
		}
	})
}
