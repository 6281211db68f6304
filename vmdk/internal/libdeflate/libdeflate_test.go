//go:build cgo && !purego

package libdeflate

import (
	"bytes"
	"compress/zlib"
	"io"
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

func TestZlibCompress(t *testing.T) {
	in := []byte(strings.Repeat("libdeflate deflates whole buffers too; ", 2000))[:64<<10]
	for _, level := range []int{MinLevel, 6, MaxLevel} {
		dst := make([]byte, ZlibCompressBound(len(in)))
		n, err := ZlibCompress(dst, in, level)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		r, err := zlib.NewReader(bytes.NewReader(dst[:n]))
		if err != nil {
			t.Fatalf("level %d: compress/zlib refuses the stream: %v", level, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("level %d: compress/zlib reads %d bytes, %v; want the input back", level, len(got), err)
		}
		if _, err := ZlibCompress(dst[:n/2], in, level); err != ErrShortBuffer {
			t.Fatalf("level %d: half-sized buffer: err %v, want ErrShortBuffer", level, err)
		}
	}
	if _, err := ZlibCompress(make([]byte, 100), in, MaxLevel+1); err == nil {
		t.Fatal("ZlibCompress accepted level 13")
	}
}
