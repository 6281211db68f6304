package mapped

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/diskport/diskport/disk"
)

// A listMap is a Mapper over a fixed list of runs tiling [0, size).
type listMap struct {
	runs []Run
	err  error // returned after the runs, if set
}

func (l *listMap) Runs(off, end int64, yield func(Run) bool) error {
	for _, r := range l.runs {
		if r.Off+r.Len <= off || r.Off >= end {
			continue
		}
		if d := off - r.Off; d > 0 {
			r.Off, r.Len, r.At, r.UnitOff = off, r.Len-d, r.At+d*b2i(r.Kind == Stored), r.UnitOff+d
		}
		if r.Off+r.Len > end {
			r.Len = end - r.Off
		}
		if !yield(r) {
			return nil
		}
	}
	return l.err
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// An xorDecoder "decodes" a unit by inverting the stored bytes at at.
type xorDecoder struct {
	s     disk.Storage
	calls atomic.Int64
}

func (d *xorDecoder) Decode(dst []byte, unit, at int64) error {
	d.calls.Add(1)
	if err := disk.ReadFull(d.s, "test", "unit", dst, at); err != nil {
		return err
	}
	for i := range dst {
		dst[i] ^= 0xff
	}
	return nil
}

// pattern returns n bytes that differ from offset to offset.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>9) ^ seed
	}
	return b
}

// A fixture is an image over a storage of 64 KiB, with its expected bytes.
type fixture struct {
	img  *Image
	want []byte
	dec  *xorDecoder
	st   disk.Storage
}

const unit = 4096

// newFixture builds a 64 KiB image of: stored 0-8K (storage 0-8K), stored
// 8K-12K (storage 8K-12K: contiguous), hole 12K-20K, zero 20K-24K,
// compressed units 24K-32K (two units), stored 32K-36K (storage 40K: not
// contiguous), hole 36K-64K. The parent, if any, is parentSize bytes.
func newFixture(t testing.TB, parentSize int) *fixture {
	st := disk.NewMemStorage("store", pattern(1, 64<<10))
	dec := &xorDecoder{s: st}
	runs := []Run{
		{Off: 0, Len: 8 << 10, Kind: Stored, Storage: st, At: 0},
		{Off: 8 << 10, Len: 4 << 10, Kind: Stored, Storage: st, At: 8 << 10},
		{Off: 12 << 10, Len: 8 << 10, Kind: Hole},
		{Off: 20 << 10, Len: 4 << 10, Kind: Zero},
		{Off: 24 << 10, Len: unit, Kind: Compressed, Decoder: dec, Unit: 6, At: 16 << 10, UnitLen: unit},
		{Off: 28 << 10, Len: unit, Kind: Compressed, Decoder: dec, Unit: 7, At: 20 << 10, UnitLen: unit},
		{Off: 32 << 10, Len: 4 << 10, Kind: Stored, Storage: st, At: 40 << 10},
		{Off: 36 << 10, Len: 28 << 10, Kind: Hole},
	}
	want := make([]byte, 64<<10)
	raw := pattern(1, 64<<10)
	copy(want, raw[:12<<10])
	for i := 24 << 10; i < 32<<10; i++ {
		want[i] = raw[i-(8<<10)] ^ 0xff
	}
	copy(want[32<<10:], raw[40<<10:44<<10])
	var parent disk.Image
	if parentSize > 0 {
		pb := pattern(9, parentSize)
		parent = newParent(Config{Format: "test", Name: "parent", Size: int64(parentSize), Mapper: &listMap{runs: []Run{
			{Off: 0, Len: int64(parentSize), Kind: Stored, Storage: disk.NewMemStorage("parent", pb)},
		}}})
		for i := 12 << 10; i < 20<<10 && i < parentSize; i++ {
			want[i] = pb[i]
		}
		for i := 36 << 10; i < 64<<10 && i < parentSize; i++ {
			want[i] = pb[i]
		}
	}
	img := New(Config{Format: "test", Name: "img", Size: 64 << 10, Mapper: &listMap{runs: runs}, Parent: parent})
	return &fixture{img: img, want: want, dec: dec, st: st}
}

// newParent returns an Image with an Info method, so that it can be a
// parent.
func newParent(c Config) disk.Image { return withInfo{New(c)} }

type withInfo struct{ *Image }

func (withInfo) Info() disk.Info { return disk.Info{Format: "test"} }

func TestReadAt(t *testing.T) {
	for _, parentSize := range []int{0, 16 << 10, 40 << 10, 64 << 10} {
		f := newFixture(t, parentSize)
		for _, c := range []struct{ off, n int }{
			{0, 64 << 10}, {0, 1}, {100, 9000}, {12<<10 - 1, 2}, {16 << 10, 16 << 10},
			{24<<10 + 100, 200}, {25 << 10, 8 << 10}, {63 << 10, 1 << 10}, {36<<10 + 3, 10},
		} {
			t.Run(fmt.Sprintf("parent%d/%d+%d", parentSize, c.off, c.n), func(t *testing.T) {
				got := make([]byte, c.n)
				n, err := f.img.ReadAt(got, int64(c.off))
				if err != nil || n != c.n {
					t.Fatalf("ReadAt = %d, %v", n, err)
				}
				if !bytes.Equal(got, f.want[c.off:c.off+c.n]) {
					t.Fatalf("bytes differ")
				}
			})
		}
	}
}

// TestConcurrent reads and maps one image from several goroutines (run
// with -race): the pooled walk states and the unit cache are shared.
func TestConcurrent(t *testing.T) {
	f := newFixture(t, 40<<10)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 3000)
			for i := range 200 {
				off := int64((i*7919 + g*104729) % (64<<10 - len(buf)))
				if _, err := f.img.ReadAt(buf, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, f.want[off:off+int64(len(buf))]) {
					errs <- fmt.Errorf("goroutine %d: bytes at %d differ", g, off)
					return
				}
				for _, err := range f.img.Extents(off, int64(len(buf))) {
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReadAtBounds(t *testing.T) {
	f := newFixture(t, 0)
	buf := make([]byte, 2048)
	cases := []struct {
		name  string
		off   int64
		n     int
		err   error
		isErr bool
	}{
		{"negative", -1, 0, nil, true},
		{"at end", 64 << 10, 0, io.EOF, false},
		{"past end", 1 << 40, 0, io.EOF, false},
		{"across end", 64<<10 - 1024, 1024, io.EOF, false},
		{"last byte", 64<<10 - 2048, 2048, nil, false},
	}
	for _, c := range cases {
		n, err := f.img.ReadAt(buf, c.off)
		if n != c.n || (c.isErr && (err == nil || err == io.EOF)) || (!c.isErr && err != c.err) {
			t.Errorf("%s: ReadAt = %d, %v; want %d, %v", c.name, n, err, c.n, c.err)
		}
		if n > 0 && !bytes.Equal(buf[:n], f.want[c.off:c.off+int64(n)]) {
			t.Errorf("%s: bytes differ", c.name)
		}
	}
	if err := f.img.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.img.ReadAt(buf, 0); err == nil {
		t.Error("ReadAt after Close succeeded")
	}
	for _, err := range f.img.Extents(0, 1) {
		if err == nil {
			t.Error("Extents after Close yields no error")
		}
	}
}

// collect returns the extents of img over [off, off+n), failing on error.
func collect(t *testing.T, img *Image, off, n int64) []disk.Extent {
	t.Helper()
	var xs []disk.Extent
	for x, err := range img.Extents(off, n) {
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	return xs
}

func TestExtents(t *testing.T) {
	st := disk.NewMemStorage("stands for the fixture's storage", nil)
	data := func(off, n, at int64) disk.Extent {
		return disk.Extent{Offset: off, Length: n, Kind: disk.Data, Stored: st, StoredOffset: at}
	}
	zero := func(off, n int64) disk.Extent { return disk.Extent{Offset: off, Length: n, Kind: disk.Zero} }
	// A hole no layer fills is a Zero run marked unallocated, apart from
	// the zeros the image defines.
	hole := func(off, n int64) disk.Extent {
		return disk.Extent{Offset: off, Length: n, Kind: disk.Zero, Unallocated: true}
	}
	comp := disk.Extent{Offset: 24 << 10, Length: 8 << 10, Kind: disk.Data, Compressed: true}
	cases := []struct {
		name       string
		parentSize int
		off, n     int64
		want       []disk.Extent
	}{
		{"all", 0, 0, -1, []disk.Extent{data(0, 12<<10, 0), hole(12<<10, 8<<10), zero(20<<10, 4<<10), comp, data(32<<10, 4<<10, 40<<10), hole(36<<10, 28<<10)}},
		{"clipped", 0, 100, 24<<10 - 100 + 10, []disk.Extent{data(100, 12<<10-100, 100), hole(12<<10, 8<<10), zero(20<<10, 4<<10), {Offset: 24 << 10, Length: 10, Kind: disk.Data, Compressed: true}}},
		{"before start", 0, -5, 10, []disk.Extent{data(0, 5, 0)}},
		{"past end", 0, 64 << 10, 10, nil},
		// The parent's data is one layer down; past the parent's end the
		// hole is the image's own, unallocated.
		{"parent in holes", 16 << 10, 12 << 10, 12 << 10, []disk.Extent{{Offset: 12 << 10, Length: 4 << 10, Kind: disk.Data, Depth: 1}, hole(16<<10, 4<<10), zero(20<<10, 4<<10)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.parentSize)
			got := collect(t, f.img, c.off, c.n)
			for i := range got {
				switch {
				case got[i].Stored == f.st:
					got[i].Stored = st
				case c.parentSize > 0: // the parent's storage is its own
					got[i].Stored, got[i].StoredOffset = nil, 0
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("extents\n%v\nwant\n%v", got, c.want)
			}
		})
	}
}

func TestUnitCache(t *testing.T) {
	f := newFixture(t, 0)
	buf := make([]byte, 512)
	for off := int64(24 << 10); off < 32<<10; off += 512 {
		if _, err := f.img.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, f.want[off:off+512]) {
			t.Fatalf("bytes differ at %d", off)
		}
	}
	if got := f.dec.calls.Load(); got != 2 {
		t.Fatalf("%d decodes for 16 small reads of 2 units, want 2", got)
	}
	// A read of a whole unit uses the cached copy too.
	whole := make([]byte, unit)
	if _, err := f.img.ReadAt(whole, 24<<10); err != nil || f.dec.calls.Load() != 2 {
		t.Fatalf("whole-unit read: %v, %d decodes", err, f.dec.calls.Load())
	}
}

func TestBadMaps(t *testing.T) {
	st := disk.NewMemStorage("s", make([]byte, 4096))
	dec := &xorDecoder{s: st}
	boom := errors.New("boom")
	cases := []struct {
		name string
		m    *listMap
		err  error
	}{
		{"gap", &listMap{runs: []Run{{Off: 0, Len: 1024, Kind: Zero}, {Off: 2048, Len: 2048, Kind: Zero}}}, disk.ErrCorrupt},
		{"short", &listMap{runs: []Run{{Off: 0, Len: 1024, Kind: Zero}}}, disk.ErrCorrupt},
		{"overlap", &listMap{runs: []Run{{Off: 0, Len: 4096, Kind: Zero}, {Off: 0, Len: 4096, Kind: Zero}}}, disk.ErrCorrupt},
		{"unit overrun", &listMap{runs: []Run{{Off: 0, Len: 4096, Kind: Compressed, Decoder: dec, UnitLen: 1024}}}, disk.ErrCorrupt},
		{"no storage", &listMap{runs: []Run{{Off: 0, Len: 4096, Kind: Stored}}}, disk.ErrCorrupt},
		{"stored past end", &listMap{runs: []Run{{Off: 0, Len: 4096, Kind: Stored, Storage: st, At: 512}}}, disk.ErrCorrupt},
		{"mapper error", &listMap{runs: []Run{{Off: 0, Len: 1024, Kind: Zero}}, err: boom}, boom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := New(Config{Format: "test", Name: "bad", Size: 4096, Mapper: c.m})
			if _, err := img.ReadAt(make([]byte, 4096), 0); !errors.Is(err, c.err) {
				t.Errorf("ReadAt error %v, want %v", err, c.err)
			}
			var last error
			for _, err := range img.Extents(0, 4096) {
				last = err
			}
			if c.name != "stored past end" && !errors.Is(last, c.err) {
				t.Errorf("Extents error %v, want %v", last, c.err)
			}
		})
	}
}

func TestParentShortRead(t *testing.T) {
	// A parent whose map ends early fails the child's read instead of
	// reading zeros.
	parent := newParent(Config{Format: "test", Name: "p", Size: 4096, Mapper: &listMap{runs: []Run{{Off: 0, Len: 1024, Kind: Zero}}}})
	img := New(Config{Format: "test", Name: "c", Size: 8192, Mapper: &listMap{runs: []Run{{Off: 0, Len: 8192, Kind: Hole}}}, Parent: parent})
	if _, err := img.ReadAt(make([]byte, 8192), 0); err == nil {
		t.Fatal("short parent read accepted")
	}
}

func TestCache(t *testing.T) {
	c := NewCache[int, string](2)
	c.Put(1, "a")
	c.Put(2, "b")
	if v, ok := c.Get(1); !ok || v != "a" { // 1 is now more recent than 2
		t.Fatalf("Get(1) = %q, %v", v, ok)
	}
	c.Put(3, "c") // evicts 2
	if _, ok := c.Get(2); ok {
		t.Fatal("2 not evicted")
	}
	c.Put(1, "A") // replaces 1 in place, keeps 3
	if v, _ := c.Get(1); v != "A" {
		t.Fatalf("Get(1) = %q after replacing", v)
	}
	if v, _ := c.Get(3); v != "c" {
		t.Fatalf("Get(3) = %q", v)
	}
	calls := 0
	load := func() (string, error) { calls++; return "d", nil }
	for range 3 {
		if v, err := c.Load(4, load); err != nil || v != "d" {
			t.Fatalf("Load = %q, %v", v, err)
		}
	}
	if calls != 1 {
		t.Fatalf("load called %d times", calls)
	}
	if _, err := c.Load(5, func() (string, error) { return "", errors.New("no") }); err == nil {
		t.Fatal("load error lost")
	}
	if _, ok := c.Get(5); ok {
		t.Fatal("failed load cached")
	}
}

// benchImage is a 64 MiB image of 64 KiB grains: stored, contiguous in
// pairs, with every fourth grain a hole.
func benchImage() *Image {
	const grain = 64 << 10
	const size = 64 << 20
	st := disk.NewMemStorage("bench", make([]byte, size))
	var runs []Run
	for off := int64(0); off < size; off += grain {
		r := Run{Off: off, Len: grain, Kind: Stored, Storage: st, At: off + (off/grain%2)*grain}
		if off/grain%4 == 3 {
			r = Run{Off: off, Len: grain, Kind: Hole}
		}
		runs = append(runs, r)
	}
	return New(Config{Format: "bench", Name: "bench", Size: size, Mapper: &listMap{runs: runs}})
}

func BenchmarkReadAt(b *testing.B) {
	img := benchImage()
	buf := make([]byte, 8<<20)
	b.SetBytes(img.Size())
	b.ReportAllocs()
	for b.Loop() {
		for off := int64(0); off < img.Size(); off += int64(len(buf)) {
			if _, err := img.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkExtents(b *testing.B) {
	img := benchImage()
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range img.Extents(0, img.Size()) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
