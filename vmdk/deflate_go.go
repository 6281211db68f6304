//go:build !cgo || purego

package vmdk

import (
	"errors"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// Deflater names the zlib encoder the writers compress grains with: the
// pure-Go one, for a build without cgo or with the purego tag.
func Deflater() string { return "klauspost/compress/zlib (pure Go)" }

// DefaultLevel is the compression level WriteStream uses when
// WriteOptions.Level is 0. In this build grains are compressed by
// klauspost/compress/zlib, whose fast levels 1 to 3 leave a stream of real
// file-system content more than 5% larger than qemu-img's (zlib level 6);
// level 4 is the fastest that stays within 5%.
const DefaultLevel = 4

// deflateBound is the largest zlib stream deflateGrain makes of n bytes:
// stored blocks at worst (5 bytes per 64 KiB block less one byte, as
// zlib's compressBound reckons), plus the header and the Adler-32, with
// room to spare for the encoder's block boundaries.
func deflateBound(n int) int { return n + n>>12 + n>>14 + n>>25 + 13 + 64 }

// errDeflateShort is returned when the stream outgrows dst: never with a
// dst of deflateBound bytes.
var errDeflateShort = errors.New("compressed grain does not fit its buffer")

// A fixedWriter appends to a slice without growing it.
type fixedWriter struct {
	b   []byte
	n   int
	err error
}

func (f *fixedWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > len(f.b) {
		f.err = errDeflateShort
		return 0, f.err
	}
	f.n += copy(f.b[f.n:], p)
	return len(p), nil
}

// A goDeflater is a zlib writer bound to its output buffer, kept in a
// pool per level because an encoder is bound to its level and costly to
// set up.
type goDeflater struct {
	out fixedWriter
	zw  *zlib.Writer
}

var goDeflaters [MaxLevel + 1]sync.Pool

// deflateGrain compresses src into dst as one zlib stream at level
// (MinLevel to MaxLevel) and returns its length. dst holds at least
// deflateBound(len(src)) bytes. It is safe for concurrent use.
func deflateGrain(dst, src []byte, level int) (int, error) {
	d, _ := goDeflaters[level].Get().(*goDeflater)
	if d == nil {
		d = new(goDeflater)
		zw, err := zlib.NewWriterLevel(&d.out, level)
		if err != nil {
			return 0, err
		}
		d.zw = zw
	}
	d.out = fixedWriter{b: dst}
	d.zw.Reset(&d.out)
	_, err := d.zw.Write(src)
	if err == nil {
		err = d.zw.Close()
	}
	n := d.out.n
	d.out = fixedWriter{}
	goDeflaters[level].Put(d)
	if err != nil {
		return 0, err
	}
	return n, nil
}
