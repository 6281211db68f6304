//go:build cgo && !purego

package vmdk

import (
	"errors"

	"github.com/diskport/diskport/vmdk/internal/libdeflate"
)

// Inflater names the zlib decoder Inflate uses: libdeflate, through cgo.
func Inflater() string { return "libdeflate " + libdeflate.Version() + " (cgo)" }

// inflate decodes src into dst with libdeflate, which checks the header
// and the Adler-32 and never writes past len(dst). A stream libdeflate
// refuses, one followed by more bytes, and one too short to bother with go
// to inflateGo, which says why in the same words as the pure-Go build.
func inflate(dst, src []byte) (int, error) {
	if len(src) < 6 || len(dst) == 0 {
		return inflateGo(dst, src)
	}
	n, used, ok, err := libdeflate.ZlibDecompress(dst, src)
	if err != nil {
		return 0, err
	}
	if ok && used == len(src) {
		return n, nil
	}
	n, err = inflateGo(dst, src)
	if err == nil {
		// The default build accepts no more than libdeflate does.
		return n, errors.New("corrupt compressed stream (refused by libdeflate)")
	}
	return n, err
}
