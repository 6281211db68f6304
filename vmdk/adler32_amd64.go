//go:build amd64 && !purego

package vmdk

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2

// adlerSumsAVX2 sums p (a positive multiple of 32 bytes, at most
// adlerChunk) into lanes: lanes[:8] add up to the sum of its bytes, and
// lanes[8:] to the sum of p[i]·(len(p)-i). Implemented in adler32_amd64.s.
//
//go:noescape
func adlerSumsAVX2(p []byte, lanes *[16]uint32)
