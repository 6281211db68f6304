// Package disktest checks that a disk.Image keeps the contract documented
// on disk.Image. Every reader's tests call Check on the images they open.
package disktest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/diskport/diskport/disk"
)

// fullLimit is the largest image whose bytes Check compares in full; larger
// images are sampled.
const fullLimit = 256 << 20

// Check runs the conformance checks on img. want, when non-nil, holds the
// expected virtual-disk bytes (for instance qemu-img's raw output) and must
// be at least img.Size() long; bytes of want past img.Size() are ignored.
func Check(t testing.TB, img disk.Image, want io.ReaderAt) {
	t.Helper()
	size := img.Size()
	if size < 0 || size%disk.SectorSize != 0 {
		t.Fatalf("Size() = %d, want a non-negative multiple of %d", size, disk.SectorSize)
	}
	exts := CheckExtents(t, img)
	ref := reference(img, want)
	checkZeroRuns(t, img, exts)
	checkContent(t, img, ref)
	rng := rand.New(rand.NewPCG(uint64(size), 0x6469736b))
	checkOddReads(t, img, ref, rng)
	checkBoundaries(t, img, ref, exts)
	checkPastEnd(t, img)
	checkSubranges(t, img, exts, rng)
	checkConcurrent(t, img, ref)
}

// CheckExtents checks the full extent map of img and returns it: runs cover
// [0, Size) exactly once, in order, each non-empty, of a valid kind, and no
// two neighbours mergeable.
func CheckExtents(t testing.TB, img disk.Image) []disk.Extent {
	t.Helper()
	exts, err := Collect(img, 0, img.Size())
	if err != nil {
		t.Fatalf("Extents(0, %d): %v", img.Size(), err)
	}
	var pos int64
	for i, e := range exts {
		if e.Offset != pos {
			t.Fatalf("extent %d %+v starts at %d, want %d (gap or overlap)", i, e, e.Offset, pos)
		}
		if e.Length <= 0 {
			t.Fatalf("extent %d %+v is empty", i, e)
		}
		if e.Kind != disk.Data && e.Kind != disk.Zero {
			t.Fatalf("extent %d %+v has kind %v", i, e, e.Kind)
		}
		if e.Kind == disk.Zero && (e.Stored != nil || e.Compressed) {
			t.Fatalf("extent %d %+v: zero run with storage or compression", i, e)
		}
		if e.Stored != nil && (e.StoredOffset < 0 || e.StoredOffset+e.Length > e.Stored.Size()) {
			t.Fatalf("extent %d %+v: stored range past end of %s (size %d)", i, e, e.Stored.Name(), e.Stored.Size())
		}
		if i > 0 && exts[i-1].Mergeable(e) {
			t.Fatalf("extents %d %+v and %d %+v are not coalesced", i-1, exts[i-1], i, e)
		}
		pos = e.End()
	}
	if pos != img.Size() {
		t.Fatalf("extents end at %d, want Size() %d", pos, img.Size())
	}
	return exts
}

// Collect gathers img.Extents(off, n) into a slice.
func Collect(img disk.Image, off, n int64) ([]disk.Extent, error) {
	var exts []disk.Extent
	for e, err := range img.Extents(off, n) {
		if err != nil {
			return exts, err
		}
		exts = append(exts, e)
	}
	return exts, nil
}

// reference returns the function giving the expected bytes [off, off+n):
// from want, or else from aligned 1 MiB reads of img (the byte-for-byte
// walk that odd reads are compared with).
func reference(img disk.Image, want io.ReaderAt) func(off, n int64) []byte {
	if want != nil {
		return func(off, n int64) []byte {
			b := make([]byte, n)
			if _, err := want.ReadAt(b, off); err != nil && err != io.EOF {
				panic(fmt.Sprintf("disktest: reading want at %d: %v", off, err))
			}
			return b
		}
	}
	const chunk = 1 << 20
	var mu sync.Mutex
	cache := map[int64][]byte{}
	return func(off, n int64) []byte {
		b := make([]byte, 0, n)
		for pos := off; pos < off+n; {
			base := pos / chunk * chunk
			mu.Lock()
			c, ok := cache[base]
			mu.Unlock()
			if !ok {
				c = make([]byte, min(chunk, img.Size()-base))
				if _, err := img.ReadAt(c, base); err != nil && err != io.EOF {
					panic(fmt.Sprintf("disktest: aligned read at %d: %v", base, err))
				}
				mu.Lock()
				if len(cache) > 64 {
					clear(cache)
				}
				cache[base] = c
				mu.Unlock()
			}
			k := min(int64(len(c))-(pos-base), off+n-pos)
			b = append(b, c[pos-base:pos-base+k]...)
			pos += k
		}
		return b
	}
}

// windows returns the ranges of [off, off+n) to check: all of it when
// small, else its start, middle and end.
func windows(off, n, budget int64) [][2]int64 {
	if n <= budget {
		return [][2]int64{{off, n}}
	}
	w := budget / 3
	return [][2]int64{{off, w}, {off + n/2 - w/2, w}, {off + n - w, w}}
}

func checkZeroRuns(t testing.TB, img disk.Image, exts []disk.Extent) {
	t.Helper()
	budget := int64(fullLimit)
	for _, e := range exts {
		if e.Kind != disk.Zero {
			continue
		}
		for _, w := range windows(e.Offset, e.Length, max(budget, 3<<20)) {
			b := make([]byte, w[1])
			if _, err := img.ReadAt(b, w[0]); err != nil && err != io.EOF {
				t.Fatalf("ReadAt(zero run %+v at %d): %v", e, w[0], err)
			}
			if i := firstDiff(b, make([]byte, len(b))); i >= 0 {
				t.Fatalf("zero run %+v holds non-zero byte at %d", e, w[0]+int64(i))
			}
			budget -= w[1]
		}
	}
}

func checkContent(t testing.TB, img disk.Image, ref func(off, n int64) []byte) {
	t.Helper()
	const chunk = 4 << 20
	for _, w := range windows(0, img.Size(), fullLimit) {
		for off := w[0]; off < w[0]+w[1]; off += chunk {
			n := min(chunk, w[0]+w[1]-off)
			got := make([]byte, n)
			if _, err := img.ReadAt(got, off); err != nil && err != io.EOF {
				t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
			}
			if i := firstDiff(got, ref(off, n)); i >= 0 {
				t.Fatalf("ReadAt(%d, %d): byte %d differs from the expected bytes", off, n, off+int64(i))
			}
		}
	}
}

func checkOddReads(t testing.TB, img disk.Image, ref func(off, n int64) []byte, rng *rand.Rand) {
	t.Helper()
	size := img.Size()
	if size == 0 {
		return
	}
	for range 200 {
		off := rng.Int64N(size)
		n := 1 + rng.Int64N(min(size-off, 3*65536+1))
		got := make([]byte, n)
		if _, err := img.ReadAt(got, off); err != nil && !(err == io.EOF && off+n == size) {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		if i := firstDiff(got, ref(off, n)); i >= 0 {
			t.Fatalf("ReadAt(%d, %d): byte %d differs from an aligned read", off, n, off+int64(i))
		}
	}
}

func checkBoundaries(t testing.TB, img disk.Image, ref func(off, n int64) []byte, exts []disk.Extent) {
	t.Helper()
	step := max(1, len(exts)/500)
	for i := 1; i < len(exts); i += step {
		b := exts[i].Offset
		off := max(0, b-4097)
		n := min(img.Size(), b+8191) - off
		got := make([]byte, n)
		if _, err := img.ReadAt(got, off); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d) across extent boundary %d: %v", off, n, b, err)
		}
		if j := firstDiff(got, ref(off, n)); j >= 0 {
			t.Fatalf("ReadAt(%d, %d) across extent boundary %d: byte %d differs", off, n, b, off+int64(j))
		}
	}
}

func checkPastEnd(t testing.TB, img disk.Image) {
	t.Helper()
	size := img.Size()
	p := make([]byte, 1024)
	if n, err := img.ReadAt(p, size); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(Size()=%d) = %d, %v; want 0, io.EOF", size, n, err)
	}
	if n, err := img.ReadAt(p, size+1<<20); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(Size()+1MiB) = %d, %v; want 0, io.EOF", n, err)
	}
	if size >= 100 {
		if n, err := img.ReadAt(p, size-100); n != 100 || err != io.EOF {
			t.Fatalf("ReadAt(Size()-100, 1024) = %d, %v; want 100, io.EOF", n, err)
		}
	}
	if _, err := img.ReadAt(p, -1); err == nil {
		t.Fatalf("ReadAt(-1) succeeded")
	}
	if exts, err := Collect(img, size, 4096); err != nil || len(exts) != 0 {
		t.Fatalf("Extents(Size(), 4096) = %v, %v; want nothing", exts, err)
	}
	if _, err := img.ReadAt(nil, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
		t.Fatalf("ReadAt(nil, 0): %v", err)
	}
}

// checkSubranges checks that Extents of a sub-range is the full map clipped
// to it and coalesced.
func checkSubranges(t testing.TB, img disk.Image, full []disk.Extent, rng *rand.Rand) {
	t.Helper()
	size := img.Size()
	if size == 0 {
		return
	}
	for range 50 {
		off := rng.Int64N(size)
		n := 1 + rng.Int64N(size-off)
		got, err := Collect(img, off, n)
		if err != nil {
			t.Fatalf("Extents(%d, %d): %v", off, n, err)
		}
		var want []disk.Extent
		for _, e := range full {
			if c, ok := e.Clip(off, off+n); ok {
				want = append(want, c)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("Extents(%d, %d) has %d runs, want %d (the full map clipped)", off, n, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("Extents(%d, %d)[%d] = %+v, want %+v", off, n, i, got[i], want[i])
			}
		}
	}
}

func checkConcurrent(t testing.TB, img disk.Image, ref func(off, n int64) []byte) {
	t.Helper()
	size := img.Size()
	if size == 0 {
		return
	}
	var g errgroup.Group
	for w := range 4 {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(size)))
			for range 50 {
				off := rng.Int64N(size)
				n := 1 + rng.Int64N(min(size-off, 256<<10))
				got := make([]byte, n)
				if _, err := img.ReadAt(got, off); err != nil && err != io.EOF {
					return fmt.Errorf("concurrent ReadAt(%d, %d): %v", off, n, err)
				}
				if i := firstDiff(got, ref(off, n)); i >= 0 {
					return fmt.Errorf("concurrent ReadAt(%d, %d): byte %d differs", off, n, off+int64(i))
				}
				for _, err := range img.Extents(off, n) {
					if err != nil {
						return fmt.Errorf("concurrent Extents(%d, %d): %v", off, n, err)
					}
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func firstDiff(a, b []byte) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := 0; i < len(a); i += 4096 {
		j := min(i+4096, len(a))
		if !bytes.Equal(a[i:j], b[i:j]) {
			for k := i; k < j; k++ {
				if a[k] != b[k] {
					return k
				}
			}
		}
	}
	return -1
}
