//go:build cgo && !purego

package libdeflate

// #cgo LDFLAGS: -ldeflate
// #include <libdeflate.h>
//
// static const char *diskport_libdeflate_version(void) { return LIBDEFLATE_VERSION_STRING; }
import "C"

import (
	"errors"
	"runtime"
	"sync"
	"unsafe"
)

// Version is the version of the libdeflate headers this package was built
// with, such as "1.14".
func Version() string { return C.GoString(C.diskport_libdeflate_version()) }

// ErrNoMemory is returned when libdeflate cannot allocate a compressor or
// decompressor.
var ErrNoMemory = errors.New("libdeflate: cannot allocate a compressor or decompressor")

// A decompressor is one libdeflate decompressor (C memory, allocated by
// libdeflate). They are kept in pool, one per concurrent caller: an
// allocation and free per grain costs little beside inflating the grain
// (BenchmarkAllocFree, BenchmarkZlibDecompress), but the pool keeps malloc
// out of the per-grain path.
// The C memory is freed when the pool drops one and the collector finds
// it.
type decompressor struct {
	d *C.struct_libdeflate_decompressor
}

var pool = sync.Pool{New: func() any {
	d := C.libdeflate_alloc_decompressor()
	if d == nil {
		return nil
	}
	w := &decompressor{d: d}
	runtime.AddCleanup(w, func(d *C.struct_libdeflate_decompressor) { C.libdeflate_free_decompressor(d) }, d)
	return w
}}

// ZlibDecompress decodes the zlib (RFC 1950) stream at the start of src
// into dst with libdeflate_zlib_decompress_ex, which checks the header and
// the Adler-32 and never writes past len(dst). It returns the bytes
// written and the bytes of src the stream took, and ok false when the
// stream is corrupt, truncated or would inflate to more than len(dst)
// bytes (libdeflate does not say which). src and dst must not be empty.
func ZlibDecompress(dst, src []byte) (n, used int, ok bool, err error) {
	if len(src) == 0 || len(dst) == 0 {
		return 0, 0, false, nil
	}
	w, _ := pool.Get().(*decompressor)
	if w == nil {
		return 0, 0, false, ErrNoMemory
	}
	var in, out C.size_t
	res := C.libdeflate_zlib_decompress_ex(w.d,
		unsafe.Pointer(unsafe.SliceData(src)), C.size_t(len(src)),
		unsafe.Pointer(unsafe.SliceData(dst)), C.size_t(len(dst)), &in, &out)
	pool.Put(w)
	if res != C.LIBDEFLATE_SUCCESS {
		return 0, 0, false, nil
	}
	return int(out), int(in), true, nil
}

// allocFree allocates a decompressor and frees it: what the pool saves
// per call (BenchmarkAllocFree).
func allocFree() { C.libdeflate_free_decompressor(C.libdeflate_alloc_decompressor()) }
