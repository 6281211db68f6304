package testimg

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// A Spec describes a deterministic golden raw disk.
//
// The disk is cut into cells of 64 KiB; each cell is, chosen by the seed,
// random bytes (incompressible), text (compressible), all zeros (left as a
// hole in the file), or data with whole zero sectors inside it. The last
// cell is cut short when Size is not a multiple of 64 KiB, and Size need
// not be a multiple of 512.
type Spec struct {
	// Size is the disk's length in bytes.
	Size int64
	// Seed picks the layout and the bytes.
	Seed uint64
	// ZeroPercent is the share of zero cells (default 25).
	ZeroPercent int
}

// CellSize is the unit of a golden disk's layout.
const CellSize = 64 << 10

// Golden returns the path of the golden disk for spec, building it once.
func Golden(t testing.TB, spec Spec) string {
	t.Helper()
	if spec.ZeroPercent == 0 {
		spec.ZeroPercent = 25
	}
	k := key(genVersion, fmt.Sprint(spec.Size, spec.Seed, spec.ZeroPercent))
	return cached(t, k, "golden.raw", func(tmp string) error {
		return WriteGolden(filepath.Join(tmp, "golden.raw"), spec)
	})
}

// WriteGolden writes the golden disk for spec to path, leaving zero cells
// as holes.
func WriteGolden(path string, spec Spec) error {
	if spec.ZeroPercent == 0 {
		spec.ZeroPercent = 25
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, CellSize)
	for off := int64(0); off < spec.Size; off += CellSize {
		n := min(CellSize, spec.Size-off)
		if !FillCell(buf[:n], spec, off/CellSize) {
			continue
		}
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Truncate(spec.Size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var words = []string{"sector ", "grain ", "volume ", "extent ", "descriptor ", "footer ", "import ", "bundle ", "the ", "of ", "disk\n"}

// FillCell writes cell i of the golden disk into b and reports whether it
// holds any data (false: all zeros). It works in bulk (ChaCha8 blocks,
// copies), so it stays quick under the race detector.
func FillCell(b []byte, spec Spec, i int64) bool {
	rng := rand.New(rand.NewPCG(spec.Seed, uint64(i)))
	kind := rng.IntN(100)
	switch {
	case kind < spec.ZeroPercent:
		clear(b)
		return false
	case kind < spec.ZeroPercent+(100-spec.ZeroPercent)*2/5:
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], spec.Seed)
		binary.LittleEndian.PutUint64(seed[8:], uint64(i))
		rand.NewChaCha8(seed).Read(b)
	case kind < spec.ZeroPercent+(100-spec.ZeroPercent)*4/5:
		// A few KiB of words, tiled: compressible, as text is.
		var text [3000]byte
		p := text[:0]
		for len(p) < len(text) {
			w := words[rng.IntN(len(words))]
			p = append(p, w[:min(len(w), len(text)-len(p))]...)
		}
		for j := 0; j < len(b); j += len(text) {
			copy(b[j:], text[:])
		}
	default:
		var pat [256]byte
		for j := range pat {
			pat[j] = byte(j*7) ^ byte(i)
		}
		for j := 0; j < len(b); j += len(pat) {
			copy(b[j:], pat[:])
		}
		for s := 0; s < len(b); s += 512 {
			if rng.IntN(3) == 0 {
				clear(b[s:min(s+512, len(b))])
			}
		}
		b[0] = 1 // the cell holds data
	}
	return true
}
