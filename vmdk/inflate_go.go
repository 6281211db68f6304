//go:build !cgo || purego

package vmdk

// Inflater names the zlib decoder Inflate uses: the pure-Go one, for a
// build without cgo or with the purego tag.
func Inflater() string { return "klauspost/compress/flate (pure Go)" }

// inflate is inflateGo in this build.
func inflate(dst, src []byte) (int, error) { return inflateGo(dst, src) }
