package vmdk

import "hash/adler32"

// Adler-32 (RFC 1950 §8.2) ends every compressed grain. Grains of random
// data are stored, not compressed, so inflating them is a copy and the
// checksum is most of the work: hash/adler32 (a chain of dependent
// additions, about one byte per cycle) was a large share of a
// streamOptimized conversion's CPU. On amd64 with AVX2, adlerSum sums 32 bytes per step in
// vector registers instead (BenchmarkAdler32 compares the two).

const adlerMod = 65521

// adlerChunk is the most bytes summed by the vector code between
// reductions, a multiple of 32: the weighted sum of a chunk starting from
// s1 = 0, at most 255·n(n+1)/2, must stay below 2³².
const adlerChunk = 5536

// adlerSum returns the Adler-32 checksum of p.
func adlerSum(p []byte) uint32 {
	if !useAVX2 {
		return adler32.Checksum(p)
	}
	s1, s2 := uint64(1), uint64(0)
	for len(p) >= 32 {
		n := min(len(p), adlerChunk) &^ 31
		// lanes[:8] sum to the chunk's bytes, lanes[8:] to the sum of
		// each byte times the number of bytes from it to the chunk's
		// end: the chunk's s1 and s2 when started from zero.
		var lanes [16]uint32
		adlerSumsAVX2(p[:n], &lanes)
		var a, b uint64
		for i := range 8 {
			a += uint64(lanes[i])
			b += uint64(lanes[8+i])
		}
		s2 = (s2 + uint64(n)*s1 + b) % adlerMod
		s1 = (s1 + a) % adlerMod
		p = p[n:]
	}
	for _, c := range p {
		s1 += uint64(c)
		s2 += s1
	}
	return uint32(s2%adlerMod<<16 | s1%adlerMod)
}
