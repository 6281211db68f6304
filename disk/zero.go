package disk

import "encoding/binary"

// IsZero reports whether every byte of b is zero.
//
// It reads b a 64-bit word at a time and returns at the first word that is
// not zero. A block of real data almost always has one in its first few
// words, so the common answer costs one load, and only a zero block is
// read to its end (a cache line of eight words an iteration).
// It never compares b against a buffer of zeros: that reads twice the
// bytes, and a zero buffer big enough to matter pushes b out of the
// cache (BenchmarkIsZero compares the two).
func IsZero(b []byte) bool {
	// The head, a byte at a time, until the rest is whole words.
	for len(b)%8 != 0 {
		if b[0] != 0 {
			return false
		}
		b = b[1:]
	}
	if len(b) == 0 {
		return true
	}
	// The first word alone: the usual answer for data.
	if binary.LittleEndian.Uint64(b) != 0 {
		return false
	}
	b = b[8:]
	for len(b) >= 64 {
		if binary.LittleEndian.Uint64(b)|binary.LittleEndian.Uint64(b[8:])|
			binary.LittleEndian.Uint64(b[16:])|binary.LittleEndian.Uint64(b[24:])|
			binary.LittleEndian.Uint64(b[32:])|binary.LittleEndian.Uint64(b[40:])|
			binary.LittleEndian.Uint64(b[48:])|binary.LittleEndian.Uint64(b[56:]) != 0 {
			return false
		}
		b = b[64:]
	}
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	return true
}
