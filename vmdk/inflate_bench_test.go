package vmdk

import "testing"

// BenchmarkInflateGo is BenchmarkInflate with the pure-Go path called
// directly, so one run compares it with the build's Inflate (libdeflate
// with cgo) on the same grains.
func BenchmarkInflateGo(b *testing.B) {
	grains, total := benchGrains(b)
	dst := make([]byte, 64<<10)
	b.SetBytes(total)
	for b.Loop() {
		for _, g := range grains {
			if _, err := inflateGo(dst, g); err != nil {
				b.Fatal(err)
			}
		}
	}
}
