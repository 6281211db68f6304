package disk

import "testing"

func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 7, 4096, len(zeroChunk), len(zeroChunk) + 1, 3*len(zeroChunk) + 5} {
		b := make([]byte, n)
		if !IsZero(b) {
			t.Fatalf("IsZero(%d zeros) = false", n)
		}
		for _, at := range []int{0, n / 2, n - 1} {
			if n == 0 {
				continue
			}
			b[at] = 1
			if IsZero(b) {
				t.Fatalf("IsZero(%d bytes, byte %d set) = true", n, at)
			}
			b[at] = 0
		}
	}
}

// BenchmarkIsZero measures IsZero against the byte loop it replaces, on a
// 1 MiB block of zeros (the worst case: every byte is looked at).
func BenchmarkIsZero(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.Run("IsZero", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if !IsZero(buf) {
				b.Fatal("not zero")
			}
		}
	})
	b.Run("loop", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			for _, c := range buf {
				if c != 0 {
					b.Fatal("not zero")
				}
			}
		}
	})
}
