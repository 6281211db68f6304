package disk

import (
	"bytes"
	"testing"
)

func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 31, 33, 40, 4095, 4096, 64 << 10, 64<<10 + 1, 3<<16 + 5} {
		b := make([]byte, n)
		if !IsZero(b) {
			t.Fatalf("IsZero(%d zeros) = false", n)
		}
		for _, at := range positions(n) {
			b[at] = 1
			if IsZero(b) {
				t.Fatalf("IsZero(%d bytes, byte %d set) = true", n, at)
			}
			b[at] = 0
		}
	}
}

// positions returns where TestIsZero sets a byte in n: everywhere in a
// block, at the word and cache-line edges and the end in a longer one.
func positions(n int) []int {
	var at []int
	for i := range n {
		if n <= 4096 || i < 130 || i%4096 == 0 || i > n-130 {
			at = append(at, i)
		}
	}
	return at
}

// zeroBuf is the zero buffer the comparison IsZero replaced used.
var zeroBuf [64 << 10]byte

// isZeroEqual is that comparison: bytes.Equal against zeroBuf.
func isZeroEqual(b []byte) bool {
	for len(b) > len(zeroBuf) {
		if !bytes.Equal(b[:len(zeroBuf)], zeroBuf[:]) {
			return false
		}
		b = b[len(zeroBuf):]
	}
	return bytes.Equal(b, zeroBuf[:len(b)])
}

// BenchmarkIsZero measures IsZero against bytes.Equal with a zero buffer
// and a byte loop: on a 1 MiB block of zeros (the worst case: every byte
// is looked at), and on 4 KiB blocks of data whose first byte is not zero
// (the usual case: the answer is in the first word).
func BenchmarkIsZero(b *testing.B) {
	zero := make([]byte, 1<<20)
	data := make([]byte, 1<<20)
	for i := 0; i < len(data); i += 4096 {
		data[i] = 1
	}
	for _, f := range []struct {
		name string
		fn   func([]byte) bool
	}{
		{"IsZero", IsZero},
		{"bytes.Equal", isZeroEqual},
		{"loop", func(b []byte) bool {
			for _, c := range b {
				if c != 0 {
					return false
				}
			}
			return true
		}},
	} {
		b.Run(f.name+"/zeros", func(b *testing.B) {
			b.SetBytes(int64(len(zero)))
			for b.Loop() {
				if !f.fn(zero) {
					b.Fatal("not zero")
				}
			}
		})
		b.Run(f.name+"/data", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				for i := 0; i < len(data); i += 4096 {
					if f.fn(data[i : i+4096]) {
						b.Fatal("zero")
					}
				}
			}
		})
	}
}
