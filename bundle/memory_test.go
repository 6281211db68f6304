package bundle

import (
	"context"
	"encoding/binary"
	"io"
	"iter"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
)

// noiseImage is a disk.Image of incompressible bytes made on the fly, so a
// test can bundle more data than it holds in memory.
type noiseImage struct{ size int64 }

func (n noiseImage) Size() int64     { return n.size }
func (n noiseImage) Info() disk.Info { return disk.Info{Format: "raw", VirtualSize: n.size} }
func (n noiseImage) Close() error    { return nil }
func (n noiseImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= n.size {
		return 0, io.EOF
	}
	k := len(p)
	if int64(k) > n.size-off {
		k = int(n.size - off)
	}
	for i := 0; i < k; {
		// xorshift64* of the 8-byte word index: cheap, incompressible.
		w := uint64(off+int64(i)) / 8
		x := w*0x9E3779B97F4A7C15 + 1
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], x*0x2545F4914F6CDD1D)
		j := int((off + int64(i)) % 8)
		i += copy(p[i:k], b[j:])
	}
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}
func (n noiseImage) Extents(off, l int64) iter.Seq2[disk.Extent, error] {
	return func(yield func(disk.Extent, error) bool) {
		s, e := disk.ClipRange(off, l, n.size)
		if e > s {
			yield(disk.Extent{Offset: s, Length: e - s, Kind: disk.Data}, nil)
		}
	}
}

// TestWriteMemoryBounded bundles 64 MiB without ever holding much of it:
// the heap in use stays within a few parts and gzip blocks.
func TestWriteMemoryBounded(t *testing.T) {
	const volume = 64 << 20
	opt := testOptions("mem")
	opt.PartSize, opt.Level = 1<<20, 1
	// Collect eagerly so the heap in use tracks what is live.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	}()
	m, err := Write(context.Background(), noiseImage{volume}, discardSink{}, opt)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if m.Image.BundledSize < volume {
		t.Fatalf("bundled %d bytes of noise, want at least %d", m.Image.BundledSize, volume)
	}
	grown := int64(peak) - int64(base.HeapInuse)
	t.Logf("heap in use grew by at most %.1f MiB while bundling %d MiB", float64(grown)/(1<<20), volume>>20)
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MiB bundling a %d MiB volume: not streaming", grown>>20, volume>>20)
	}
}
