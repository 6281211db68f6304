package vmdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// A chunk is a run of bytes at an offset of a writeSource.
type chunk struct {
	off int64
	b   []byte
}

// A writeSource is a disk.Image for the writers' tests: data chunks
// (reported as Data extents, whatever they hold) and holes (Zero extents)
// everywhere else. Its size need not be a multiple of 512, so the
// writers' rounding can be tested. A read reaching failAt fails.
type writeSource struct {
	size   int64
	chunks []chunk // ascending, not overlapping
	failAt int64   // -1: never
}

func newWriteSource(size int64, chunks ...chunk) *writeSource {
	slices.SortFunc(chunks, func(a, b chunk) int { return int(a.off - b.off) })
	return &writeSource{size: size, chunks: chunks, failAt: -1}
}

var errInjected = errors.New("injected read error")

func (s *writeSource) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	if s.failAt >= 0 && off <= s.failAt && s.failAt < off+int64(n) {
		return 0, errInjected
	}
	clear(p[:n])
	for _, c := range s.chunks {
		lo, hi := max(c.off, off), min(c.off+int64(len(c.b)), off+int64(n))
		if lo < hi {
			copy(p[lo-off:hi-off], c.b[lo-c.off:hi-c.off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *writeSource) Size() int64 { return s.size }

func (s *writeSource) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	runs := func(yield func(disk.Extent, error) bool) {
		at := int64(0)
		for _, c := range s.chunks {
			if c.off > at && !yield(disk.Extent{Offset: at, Length: c.off - at, Kind: disk.Zero}, nil) {
				return
			}
			if !yield(disk.Extent{Offset: c.off, Length: int64(len(c.b)), Kind: disk.Data}, nil) {
				return
			}
			at = c.off + int64(len(c.b))
		}
		if at < s.size {
			yield(disk.Extent{Offset: at, Length: s.size - at, Kind: disk.Zero}, nil)
		}
	}
	return disk.Coalesce(runs, off, n)
}

func (s *writeSource) Info() disk.Info { return disk.Info{Format: "test", VirtualSize: s.size} }
func (s *writeSource) Close() error    { return nil }

// bytesAt returns the source's bytes [off, off+n), zeros past its end.
func (s *writeSource) bytesAt(off, n int64) []byte {
	b := make([]byte, n)
	s.ReadAt(b, off)
	return b
}

// hasData reports whether any byte of [off, off+n) is not zero, looking
// only at the chunks.
func (s *writeSource) hasData(off, n int64) bool {
	for _, c := range s.chunks {
		lo, hi := max(c.off, off), min(c.off+int64(len(c.b)), off+n)
		if lo < hi && !disk.IsZero(c.b[lo-c.off:hi-c.off]) {
			return true
		}
	}
	return false
}

// rawFile writes the source, rounded up to whole sectors, as a sparse raw
// file for qemu-img compare.
func (s *writeSource) rawFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "source.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range s.chunks {
		if _, err := f.WriteAt(c.b, c.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate((s.size + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize); err != nil {
		t.Fatal(err)
	}
	return p
}

// textLike returns n bytes that compress like text: words of a small
// vocabulary, in a seeded random order.
func textLike(n int, seed uint64) []byte {
	words := strings.Fields("the grain table of a sparse extent maps virtual sectors to the file; " +
		"qemu reads streamOptimized disks, VMware writes them with markers, footer and EOS. " +
		"func main() { fmt.Println(\"hello\") } /usr/lib/x86_64-linux-gnu libc.so.6 0x7f3a 1024 4096")
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

// randomBytes returns n incompressible bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// checkWithOwnReader opens the VMDK at path with this package's reader and
// compares every byte with the source (zeros past its end, up to the
// sector-rounded size), reading only the data runs of big disks.
func checkWithOwnReader(t *testing.T, path string, src *writeSource, wantSubformat string) {
	t.Helper()
	checkReadBack(t, hostFile(t, path), src, wantSubformat)
}

// checkReadBack is checkWithOwnReader on any storage.
func checkReadBack(t *testing.T, s disk.Storage, src *writeSource, wantSubformat string) {
	t.Helper()
	img, err := Open(s, Options{})
	if err != nil {
		t.Fatalf("vmdk.Open: %v", err)
	}
	defer img.Close()
	want := (src.size + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize
	if img.Size() != want {
		t.Fatalf("read back %d bytes, want %d", img.Size(), want)
	}
	if got := img.CreateType(); got != wantSubformat {
		t.Fatalf("createType %q, want %q", got, wantSubformat)
	}
	for e, err := range img.Extents(0, img.Size()) {
		if err != nil {
			t.Fatalf("Extents: %v", err)
		}
		if e.Kind == disk.Zero {
			if src.hasData(e.Offset, e.Length) {
				t.Fatalf("bytes %d-%d map as zeros, the source has data there", e.Offset, e.End())
			}
			continue
		}
		for off := e.Offset; off < e.End(); off += 8 << 20 {
			n := min(8<<20, e.End()-off)
			got := make([]byte, n)
			if _, err := img.ReadAt(got, off); err != nil && err != io.EOF {
				t.Fatalf("ReadAt %d: %v", off, err)
			}
			if w := src.bytesAt(off, n); !bytes.Equal(got, w) {
				i := 0
				for got[i] == w[i] {
					i++
				}
				t.Fatalf("byte %d reads %#x, the source has %#x", off+int64(i), got[i], w[i])
			}
		}
	}
}

// checkWithQemu checks the VMDK at path with qemu-img: check is clean,
// info reports the subformat and the size, and its raw conversion equals
// the source (compare, which skips holes, against a raw copy).
func checkWithQemu(t *testing.T, path string, src *writeSource, wantSubformat string) {
	t.Helper()
	qemu := testimg.QemuImg(t)
	if out, err := exec.Command(qemu, "check", path).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	out, err := exec.Command(qemu, "info", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info: %v", err)
	}
	var info struct {
		VirtualSize    int64 `json:"virtual-size"`
		FormatSpecific struct {
			Data struct {
				CreateType string `json:"create-type"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	want := (src.size + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize
	if info.FormatSpecific.Data.CreateType != wantSubformat || info.VirtualSize != want {
		t.Fatalf("qemu-img info: create-type %q, virtual size %d; want %q, %d", info.FormatSpecific.Data.CreateType, info.VirtualSize, wantSubformat, want)
	}
	raw := filepath.Join(t.TempDir(), "qemu.raw")
	if out, err := exec.Command(qemu, "convert", "-O", "raw", path, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert -O raw: %v\n%s", err, out)
	}
	if out, err := exec.Command(qemu, "compare", "-q", "-f", "raw", "-F", "raw", raw, src.rawFile(t)).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img's raw conversion differs from the source: %v\n%s", err, out)
	}
}

// checkWithVmdkinfo runs libvmdk's vmdkinfo on path and checks the disk
// type and media size it reports.
func checkWithVmdkinfo(t *testing.T, path string, size int64, wantType string) {
	t.Helper()
	tool, err := exec.LookPath("vmdkinfo")
	if err != nil {
		t.Fatalf("vmdkinfo is needed and was not found (%v): install Debian's libvmdk-utils (scripts/install-deps.sh --test)", err)
	}
	out, err := exec.Command(tool, path).CombinedOutput()
	if err != nil {
		t.Fatalf("vmdkinfo: %v\n%s", err, out)
	}
	want := (size + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize
	if !strings.Contains(string(out), "Disk type:\t\t\t"+wantType) || !strings.Contains(string(out), fmt.Sprintf("(%d bytes)", want)) {
		t.Fatalf("vmdkinfo does not report a %s disk of %d bytes:\n%s", wantType, want, out)
	}
}
