package vmdk

import (
	"bytes"
	stdadler "hash/adler32"
	"math/rand/v2"
	"testing"
)

func TestAdler32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 3*adlerChunk+77)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	ff := bytes.Repeat([]byte{0xff}, 70000)
	lengths := []int{0, 1, 7, 31, 32, 33, 63, 64, 65, 5552, 5553, adlerChunk - 1, adlerChunk, adlerChunk + 1, adlerChunk + 32, 2 * adlerChunk, len(big)}
	for _, n := range lengths {
		for _, p := range [][]byte{big[:n], big[len(big)-n:], ff[:n], ff[:min(len(ff), n+65536)]} {
			if got, want := adlerSum(p), stdadler.Checksum(p); got != want {
				t.Errorf("adlerSum of %d bytes = %#08x, want %#08x", len(p), got, want)
			}
		}
	}
	for range 2000 {
		a := r.IntN(len(big))
		b := a + r.IntN(len(big)-a+1)
		if got, want := adlerSum(big[a:b]), stdadler.Checksum(big[a:b]); got != want {
			t.Fatalf("adlerSum of bytes %d-%d = %#08x, want %#08x", a, b, got, want)
		}
	}
}

func benchAdler(b *testing.B, sum func([]byte) uint32) {
	p := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		sum(p)
	}
}

// BenchmarkAdler32 times adlerSum on a 64 KiB grain; BenchmarkAdler32Std
// times hash/adler32 on the same bytes.
func BenchmarkAdler32(b *testing.B)    { benchAdler(b, adlerSum) }
func BenchmarkAdler32Std(b *testing.B) { benchAdler(b, stdadler.Checksum) }
