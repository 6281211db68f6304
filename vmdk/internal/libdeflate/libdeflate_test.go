//go:build cgo && !purego

package libdeflate

import (
	"bytes"
	"compress/zlib"
	"strings"
	"testing"
)

func zlibOf(p []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(p)
	w.Close()
	return b.Bytes()
}

func TestZlibDecompress(t *testing.T) {
	in := []byte(strings.Repeat("libdeflate inflates whole buffers; ", 2000))[:64<<10]
	z := zlibOf(in)
	dst := make([]byte, 64<<10)
	n, used, ok, err := ZlibDecompress(dst, append(bytes.Clone(z), 1, 2, 3))
	if err != nil || !ok || n != len(in) || used != len(z) || !bytes.Equal(dst[:n], in) {
		t.Fatalf("ZlibDecompress = %d, %d, %v, %v; want %d, %d, true and the input", n, used, ok, err, len(in), len(z))
	}
	if _, _, ok, _ := ZlibDecompress(dst[:len(in)-1], z); ok {
		t.Fatal("ZlibDecompress accepted a stream longer than dst")
	}
	if _, _, ok, _ := ZlibDecompress(dst, z[:len(z)-1]); ok {
		t.Fatal("ZlibDecompress accepted a truncated stream")
	}
	if _, _, ok, _ := ZlibDecompress(dst, nil); ok {
		t.Fatal("ZlibDecompress accepted an empty stream")
	}
}

// BenchmarkZlibDecompress inflates one 64 KiB grain of text from the pool;
// BenchmarkAllocFree is what allocating a decompressor per call would add.
func BenchmarkZlibDecompress(b *testing.B) {
	in := []byte(strings.Repeat("libdeflate inflates whole buffers; ", 2000))[:64<<10]
	z := zlibOf(in)
	dst := make([]byte, 64<<10)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, _, ok, _ := ZlibDecompress(dst, z); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkAllocFree(b *testing.B) {
	for b.Loop() {
		allocFree()
	}
}
