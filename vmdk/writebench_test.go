package vmdk

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkWriteStream writes 16 MiB of text-like data as a stream to
// io.Discard at the default level and at zlib's default, 6, and reports
// the output's size relative to the input.
func BenchmarkWriteStream(b *testing.B) {
	src := newWriteSource(16<<20, chunk{0, textLike(16<<20, 42)})
	for _, level := range []int{DefaultLevel, 6} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			b.SetBytes(src.size)
			var n int64
			for b.Loop() {
				var err error
				n, err = WriteStream(context.Background(), io.Discard, src, WriteOptions{Level: level})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/float64(src.size), "out/in")
		})
	}
}

// BenchmarkWriteSparse writes the same source as a monolithicSparse file.
func BenchmarkWriteSparse(b *testing.B) {
	src := newWriteSource(16<<20, chunk{0, textLike(16<<20, 42)})
	b.SetBytes(src.size)
	for b.Loop() {
		if _, err := WriteSparse(context.Background(), discardAt{}, src, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

type discardAt struct{}

func (discardAt) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// The writers allocate per write, not per grain: four times the grains
// cost (almost) no more allocations.
func TestWriteAllocsPerGrain(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over several writes")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random: allocations are not the writers'")
	}
	small := newWriteSource(2<<20, chunk{0, textLike(2<<20, 43)})
	big := newWriteSource(8<<20, chunk{0, textLike(8<<20, 43)})
	for _, w := range []struct {
		name  string
		write func(src *writeSource)
	}{
		{"stream", func(src *writeSource) { WriteStream(context.Background(), io.Discard, src, WriteOptions{Workers: 2}) }},
		{"sparse", func(src *writeSource) { WriteSparse(context.Background(), discardAt{}, src, WriteOptions{Workers: 2}) }},
	} {
		a := testing.AllocsPerRun(3, func() { w.write(small) })
		b := testing.AllocsPerRun(3, func() { w.write(big) })
		if b-a > 16 {
			// Goroutine hand-offs may allocate a little; a grain buffer would be 96 more.
			t.Errorf("%s: %.0f allocations for 32 grains, %.0f for 128", w.name, a, b)
		}
	}
}
