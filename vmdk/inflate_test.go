package vmdk

import (
	"bytes"
	"compress/zlib"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// zlibOf compresses p with compress/zlib at level.
func zlibOf(t testing.TB, p []byte, level int) []byte {
	var b bytes.Buffer
	w, err := zlib.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(p)
	w.Close()
	return b.Bytes()
}

// stdInflate is the reference: compress/zlib, at most limit bytes.
func stdInflate(src []byte, limit int) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	return out, err
}

func TestInflate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	text := []byte(strings.Repeat("diskport converts virtual disks; ", 2000))[:64<<10]
	mixed := append(append([]byte{}, random[:20000]...), make([]byte, 64<<10-20000)...)
	for _, in := range [][]byte{random, text, mixed, make([]byte, 64<<10), random[:100], nil} {
		for _, level := range []int{0, 1, 6, 9} {
			z := zlibOf(t, in, level)
			for _, inf := range inflaters {
				dst := make([]byte, 64<<10)
				n, err := inf.fn(dst, z)
				if err != nil || !bytes.Equal(dst[:n], in) {
					t.Fatalf("%d bytes at level %d: %s = %d, %v; want the input back", len(in), level, inf.name, n, err)
				}
			}
		}
	}

	good := zlibOf(t, text, 6)
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	for _, c := range []struct {
		name string
		src  []byte
		dst  int
		want string
	}{
		{"too long", good, 64<<10 - 1, "more bytes than a grain"},
		{"bad adler", flip(len(good) - 1), 64 << 10, "Adler-32"},
		{"no adler", good[:len(good)-4], 64 << 10, "truncated"},
		{"short adler", good[:len(good)-2], 64 << 10, "truncated"},
		{"truncated", good[:len(good)/2], 64 << 10, "truncated"},
		{"trailing", append(bytes.Clone(good), 0), 64 << 10, "trailing"},
		{"header", flip(0), 64 << 10, "not a zlib stream"},
		{"check bits", flip(1), 64 << 10, "not a zlib stream"},
		{"raw deflate", good[2:], 64 << 10, ""},
		{"dictionary", []byte{0x78, 0xbb, 0, 0, 0, 1}, 64 << 10, "preset dictionary"},
		{"empty", nil, 64 << 10, "truncated"},
	} {
		for _, inf := range inflaters {
			_, err := inf.fn(make([]byte, c.dst), c.src)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %s error %v, want one containing %q", c.name, inf.name, err, c.want)
			}
		}
	}
}

// inflaters are the decoders FuzzInflate and TestInflate check: Inflate
// (libdeflate where the build has cgo) and the pure-Go path it falls back
// to, called directly.
var inflaters = []struct {
	name string
	fn   func(dst, src []byte) (int, error)
}{
	{"Inflate", Inflate},
	{"inflateGo", inflateGo},
}

// FuzzInflate checks Inflate, and the pure-Go inflateGo directly, against
// compress/zlib: all accept the same streams with the same output, within
// a grain, and Inflate refuses a stream with inflateGo's words.
func FuzzInflate(f *testing.F) {
	for _, level := range []int{0, 1, 9} {
		f.Add(zlibOf(f, []byte(strings.Repeat("grain ", 3000)), level))
		f.Add(zlibOf(f, bytes.Repeat([]byte{7}, 70000), level))
		exact := zlibOf(f, bytes.Repeat([]byte("exactly one grain"), 4000)[:64<<10], level)
		f.Add(exact)
		f.Add(append(bytes.Clone(exact), 0)) // a trailing byte
		f.Add(exact[:len(exact)-1])          // a byte of the Adler-32 short
	}
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, src []byte) {
		const grain = 64 << 10
		want, werr := stdInflate(src, grain)
		var errs [2]error
		for i, inf := range inflaters {
			dst := make([]byte, grain)
			n, err := inf.fn(dst, src)
			errs[i] = err
			if werr == nil && len(want) <= grain {
				// compress/zlib ignores trailing bytes; Inflate refuses them.
				if err != nil && !strings.Contains(err.Error(), "trailing") {
					t.Fatalf("%s refused a stream compress/zlib reads: %v", inf.name, err)
				}
				if err == nil && !bytes.Equal(dst[:n], want) {
					t.Fatalf("%s gave %d bytes, compress/zlib %d, not equal", inf.name, n, len(want))
				}
				continue
			}
			if err == nil {
				t.Fatalf("%s accepted a stream compress/zlib refuses (%v, %d bytes)", inf.name, werr, len(want))
			}
		}
		if (errs[0] == nil) != (errs[1] == nil) || errs[0] != nil && errs[0].Error() != errs[1].Error() {
			t.Fatalf("Inflate says %v, inflateGo %v", errs[0], errs[1])
		}
	})
}
