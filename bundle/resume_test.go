package bundle

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteDeterministic: with the same key and IV (Options.Rand) and tar
// time, Write cuts the same encrypted parts, whatever the number of
// compressors: what lets a restarted bundle task skip the parts it stored
// before (the manifest, stored last, may differ: its RSA-encrypted key is
// padded at random).
func TestWriteDeterministic(t *testing.T) {
	vol := randomImage(t, 6<<20)
	copy(vol[1<<20:], make([]byte, 2<<20)) // a zero run
	for i := 4 << 20; i < len(vol); i++ {
		vol[i] = byte(i / 3000) // compressible
	}
	secret := bytes.Repeat([]byte{0x5a, 0xc3}, 16)
	var parts [][][]byte
	for _, workers := range []int{1, 4} {
		opt := testOptions("img")
		opt.Rand, opt.Workers, opt.PartSize = bytes.NewReader(secret), workers, 512<<10
		dir, m := bundleToDir(t, memImage(t, vol), opt)
		var ps [][]byte
		for _, p := range m.Image.Parts.Part {
			b, err := os.ReadFile(filepath.Join(string(dir), p.Filename))
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, b)
		}
		parts = append(parts, ps)
	}
	if len(parts[0]) < 3 || len(parts[0]) != len(parts[1]) {
		t.Fatalf("%d and %d parts", len(parts[0]), len(parts[1]))
	}
	for i := range parts[0] {
		if !bytes.Equal(parts[0][i], parts[1][i]) {
			t.Fatalf("part %d differs between two bundles with the same key, IV and tar time", i)
		}
	}
}
