//go:build cgo && !purego

package vmdk

import (
	"github.com/diskport/diskport/vmdk/internal/libdeflate"
)

// Deflater names the zlib encoder the writers compress grains with:
// libdeflate, through cgo.
func Deflater() string { return "libdeflate " + libdeflate.Version() + " (cgo)" }

// DefaultLevel is the compression level WriteStream uses when
// WriteOptions.Level is 0. In this build grains are compressed by
// libdeflate: level 1 leaves a stream of real file-system content more
// than 5% larger than qemu-img's (zlib level 6), and levels 2 to 4 cost
// about the same time, so 4, the smallest of them, keeps the output within
// a few percent of qemu-img's at a fraction of its CPU time.
const DefaultLevel = 4

// deflateBound is the largest zlib stream deflateGrain makes of n bytes.
func deflateBound(n int) int { return libdeflate.ZlibCompressBound(n) }

// deflateGrain compresses src into dst as one zlib stream at level
// (MinLevel to MaxLevel) and returns its length. dst holds at least
// deflateBound(len(src)) bytes. It is safe for concurrent use.
func deflateGrain(dst, src []byte, level int) (int, error) {
	return libdeflate.ZlibCompress(dst, src, level)
}
