//go:build cgo && !purego

package libdeflate

// #include <libdeflate.h>
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// MinLevel and MaxLevel bound the compression levels libdeflate offers:
// 1 is the fastest; 6 is its default; 10 to 12 search hard for the
// smallest output.
const (
	MinLevel = 1
	MaxLevel = 12
)

// ErrShortBuffer is returned by ZlibCompress when dst cannot hold the
// compressed stream.
var ErrShortBuffer = errors.New("libdeflate: compressed stream does not fit the buffer")

// A compressor is one libdeflate compressor for one level (C memory,
// allocated by libdeflate), freed when the collector drops it from its
// pool.
type compressor struct {
	c *C.struct_libdeflate_compressor
}

// compressors holds a pool of compressors per level: a compressor is
// bound to its level, and allocating one per grain would put malloc and
// the compressor's large tables on every call.
var compressors [MaxLevel + 1]sync.Pool

func getCompressor(level int) *compressor {
	if w, _ := compressors[level].Get().(*compressor); w != nil {
		return w
	}
	c := C.libdeflate_alloc_compressor(C.int(level))
	if c == nil {
		return nil
	}
	w := &compressor{c: c}
	runtime.AddCleanup(w, func(c *C.struct_libdeflate_compressor) { C.libdeflate_free_compressor(c) }, c)
	return w
}

// ZlibCompressBound returns the largest zlib stream ZlibCompress can
// produce from n bytes at any level.
func ZlibCompressBound(n int) int {
	return int(C.libdeflate_zlib_compress_bound(nil, C.size_t(n)))
}

// ZlibCompress compresses src into dst as one zlib (RFC 1950) stream at
// the given level (MinLevel to MaxLevel) with libdeflate_zlib_compress and
// returns the stream's length. A dst of ZlibCompressBound(len(src)) bytes
// always suffices; a shorter one may give ErrShortBuffer. It is safe for
// concurrent use: each call takes a compressor of that level from a pool.
func ZlibCompress(dst, src []byte, level int) (int, error) {
	if level < MinLevel || level > MaxLevel {
		return 0, fmt.Errorf("libdeflate: compression level %d (want %d to %d)", level, MinLevel, MaxLevel)
	}
	if len(dst) == 0 {
		return 0, ErrShortBuffer
	}
	w := getCompressor(level)
	if w == nil {
		return 0, ErrNoMemory
	}
	n := C.libdeflate_zlib_compress(w.c,
		unsafe.Pointer(unsafe.SliceData(src)), C.size_t(len(src)),
		unsafe.Pointer(unsafe.SliceData(dst)), C.size_t(len(dst)))
	compressors[level].Put(w)
	if n == 0 {
		return 0, ErrShortBuffer
	}
	return int(n), nil
}
