package bundle

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/diskport/diskport/disk"
)

// streamSizes straddle the AES block, the CBC writer's chunk and the
// parallel gzip block.
var streamSizes = []int{0, 1, 15, 16, 17, 31, 32, 33, cbcChunk - 1, cbcChunk, cbcChunk + 1, gzipBlock - 1, gzipBlock, gzipBlock + 1, 3*gzipBlock + 12345}

func testData(n int, seed byte) []byte {
	b := make([]byte, n)
	src := mrand.NewChaCha8([32]byte{seed})
	r := mrand.New(src)
	for i := 0; i < n; {
		// Alternate random runs, text runs and zero runs.
		k := min(n-i, 1000+int(r.Uint32()%70000))
		switch r.Uint32() % 3 {
		case 0:
			src.Read(b[i : i+k])
		case 1:
			copy(b[i:i+k], bytes.Repeat([]byte("the bundle of the volume "), k/25+1))
		}
		i += k
	}
	return b
}

func TestCBC(t *testing.T) {
	key, iv := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	blk, _ := aes.NewCipher(key)
	for _, n := range streamSizes {
		pt := testData(n, 1)
		var ct bytes.Buffer
		w, err := newCBCWriter(&ct, key, iv)
		if err != nil {
			t.Fatal(err)
		}
		// Write in odd pieces.
		for rest := pt; len(rest) > 0; {
			k := min(len(rest), 1+len(rest)%7919)
			w.Write(rest[:k])
			rest = rest[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// The reference: CBC over PKCS#7-padded plaintext.
		pad := 16 - n%16
		ref := append(append([]byte(nil), pt...), bytes.Repeat([]byte{byte(pad)}, pad)...)
		cipher.NewCBCEncrypter(blk, iv).CryptBlocks(ref, ref)
		if !bytes.Equal(ct.Bytes(), ref) {
			t.Fatalf("size %d: ciphertext differs from the reference", n)
		}
		wraps := []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.HalfReader}
		if n < 100<<10 {
			wraps = append(wraps, iotest.OneByteReader)
		}
		for _, wrap := range wraps {
			r, _ := newCBCReader(wrap(bytes.NewReader(ct.Bytes())), key, iv)
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("size %d: decrypted %d bytes, err %v", n, len(got), err)
			}
		}
	}
	// Corrupt ciphertexts are errors, never panics.
	for _, ct := range [][]byte{nil, make([]byte, 15), make([]byte, 33), make([]byte, 32)} {
		r, _ := newCBCReader(bytes.NewReader(ct), key, iv)
		if _, err := io.ReadAll(r); !errors.Is(err, disk.ErrCorrupt) {
			t.Errorf("%d-byte ciphertext: err %v", len(ct), err)
		}
	}
}

func TestParallelGzip(t *testing.T) {
	for _, workers := range []int{1, 3} {
		for _, n := range streamSizes {
			if workers == 1 && n > gzipBlock+1 {
				continue
			}
			pt := testData(n, 2)
			var buf bytes.Buffer
			z, err := newPgzipWriter(&buf, 6, workers)
			if err != nil {
				t.Fatal(err)
			}
			for rest := pt; len(rest) > 0; {
				k := min(len(rest), 1+len(rest)%300007)
				z.Write(rest[:k])
				rest = rest[k:]
			}
			if err := z.Close(); err != nil {
				t.Fatal(err)
			}
			// Go's own gzip reader checks the CRC-32 and size trailer.
			zr, err := gzip.NewReader(&buf)
			if err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
			zr.Multistream(false)
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("workers %d size %d: gunzip gave %d bytes, err %v", workers, n, len(got), err)
			}
			if rest, _ := io.ReadAll(&buf); len(rest) != 0 {
				t.Fatalf("size %d: %d bytes after the gzip member", n, len(rest))
			}
		}
	}
	// A failing destination surfaces its error.
	z, _ := newPgzipWriter(&failWriter{n: 100}, 1, 2)
	b := testData(4*gzipBlock, 3)
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		_, err = z.Write(b[i*gzipBlock : (i+1)*gzipBlock])
	}
	if cerr := z.Close(); err == nil && cerr == nil {
		t.Error("no error from a failing destination")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("write failed")
	}
	return len(p), nil
}

func TestDirNames(t *testing.T) {
	d := Dir(t.TempDir())
	ctx := context.Background()
	for _, bad := range []string{"", "../x", "/etc/passwd", "a/../../x", "a\\b", "nul\x00"} {
		if err := d.Put(ctx, bad, []byte("x")); !errors.Is(err, disk.ErrUnsafe) {
			t.Errorf("Put(%q) = %v", bad, err)
		}
		if _, err := d.Get(ctx, bad, 10); !errors.Is(err, disk.ErrUnsafe) {
			t.Errorf("Get(%q) = %v", bad, err)
		}
	}
	if err := d.Put(ctx, "sub/dir/x.part.00", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Get(ctx, "sub/dir/x.part.00", 3); err != nil || string(b) != "abc" {
		t.Errorf("Get = %q, %v", b, err)
	}
	if _, err := d.Get(ctx, "sub/dir/x.part.00", 2); !errors.Is(err, disk.ErrTooLarge) {
		t.Errorf("Get over the limit = %v", err)
	}
	if err := d.Remove(ctx, "sub/dir/x.part.00"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, "sub/dir/x.part.00"); err != nil {
		t.Errorf("removing a missing object: %v", err)
	}
}
