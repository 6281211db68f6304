package disk

import "bytes"

// zeroChunk is what IsZero compares against: big enough that the
// comparison loop runs a few times per megabyte, small enough to stay in
// the cache.
var zeroChunk [64 << 10]byte

// IsZero reports whether every byte of b is zero. It compares b against a
// block of zeros with bytes.Equal, which the runtime does a vector at a
// time, many times faster than a loop over the bytes (BenchmarkIsZero
// compares the two).
func IsZero(b []byte) bool {
	for len(b) > len(zeroChunk) {
		if !bytes.Equal(b[:len(zeroChunk)], zeroChunk[:]) {
			return false
		}
		b = b[len(zeroChunk):]
	}
	return bytes.Equal(b, zeroChunk[:len(b)])
}
