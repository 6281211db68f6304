package vhd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// Expected results from /work/shared/samples/README.md (qemu-img 7.2).
const (
	size127G      = 136365211648 // current size of the Hyper-V and Virtual PC samples
	chs127G       = 136363130880 // their CHS size, 65278×16×255×512
	shaExt2       = "870be7ae16c1fa8faab05c6eb9205dc9a7ae35c5f552c5cf8a267c0bc6a5cb99"
	shaD2V        = "1ba076be94a8a64541c25aae8d5a5f8b0da758c3797af597e03acb431ff8d143"
	shaFatQemu    = "9e96fac774e2e3606e0e3d5f1152844ca3c6a45ed45e61f36586b2cd60b19d3f"
	fatParentUUID = "5fa21a55-f394-aa4d-9958-1951a67d5540"
)

// sha256Image hashes the first n bytes of img, reading 4 MiB at a time.
func sha256Image(t testing.TB, img io.ReaderAt, n int64) string {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < n; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), n-off)]
		if _, err := img.ReadAt(b, off); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// openSample opens testdata/name.bz2.
func openSample(t testing.TB, name string, opts Options) (*Image, string, error) {
	t.Helper()
	path := sample(t, name)
	s := openFile(t, path)
	if ok, err := Probe(s); !ok {
		t.Errorf("Probe(%s) = false, %v", name, err)
	}
	m, err := Open(s, opts)
	return m, path, err
}

// TestSample127G opens the Hyper-V and Virtual PC samples: 127 GiB, no
// block allocated. Both read as the current size; qemu uses the CHS size
// for the Virtual PC one (README: 136363130880, all zeros).
func TestSample127G(t *testing.T) {
	if testing.Short() {
		t.Skip("long: two 127 GiB samples, read whole")
	}
	for _, c := range []struct {
		name, creator string
		qemuSize      int64
	}{
		{"hyperv2012r2-dynamic.vhd", "win ", size127G},
		{"virtualpc-dynamic.vhd", "vpc ", chs127G},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _, err := openSample(t, c.name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Size() != size127G || m.CurrentSize() != size127G || m.CHSSize() != chs127G || m.QemuSize() != c.qemuSize {
				t.Errorf("Size %d CurrentSize %d CHSSize %d QemuSize %d; want %d %d %d %d", m.Size(), m.CurrentSize(), m.CHSSize(), m.QemuSize(), int64(size127G), int64(size127G), int64(chs127G), c.qemuSize)
			}
			if m.CreatorApp() != c.creator || m.DiskType() != TypeDynamic || m.BlockSize() != 2<<20 {
				t.Errorf("creator %q type %d block %d", m.CreatorApp(), m.DiskType(), m.BlockSize())
			}
			exts := disktest.CheckExtents(t, m)
			if len(exts) != 1 || exts[0].Kind != disk.Zero {
				t.Fatalf("extents %+v, want one zero run", exts)
			}
			// The extent map says all zeros (so qemu's all-zero output over
			// its size matches, and the rest is zero); sample the reads.
			// disktest reads 256 MiB windows byte by byte, far too
			// slow under -race: there, sample the reads instead.
			if !raceEnabled {
				disktest.Check(t, m, zeroReader{})
			} else {
				for _, off := range []int64{0, chs127G - 1<<20, size127G - 1<<20} {
					b := make([]byte, 1<<20)
					if _, err := m.ReadAt(b, off); err != nil || !isZero(b) {
						t.Fatalf("ReadAt(%d): %v, zero %v", off, err, isZero(b))
					}
				}
			}
			info := m.Info()
			if info.Format != "vhd" || info.Subformat != "dynamic" || info.VirtualSize != size127G || info.ClusterSize != 2<<20 {
				t.Errorf("Info %+v", info)
			}
			if info.Specific["chs_size"] != int64(chs127G) || info.Specific["creator_app"] != strings.TrimSpace(c.creator) {
				t.Errorf("Info.Specific %v", info.Specific)
			}
		})
	}
}

// TestSampleD2V: Disk2vhd, creator "d2v\0", every block allocated with a
// full bitmap, all zeros; size = current size (qemu agrees).
func TestSampleD2V(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a 252 MiB sample, hashed and read whole")
	}
	m, _, err := openSample(t, "d2v-zerofilled.vhd", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Size() != 263454720 || m.QemuSize() != 263454720 || m.CreatorApp() != "d2v\x00" {
		t.Fatalf("Size %d QemuSize %d creator %q", m.Size(), m.QemuSize(), m.CreatorApp())
	}
	exts := disktest.CheckExtents(t, m)
	var data int64
	for _, e := range exts {
		if e.Kind == disk.Data {
			data += e.Length
		}
	}
	if data != m.Size() {
		t.Errorf("data extents cover %d bytes, want all %d (every block is allocated)", data, m.Size())
	}
	// disktest compares all 252 MiB with zeros, which is what the README's
	// hash says; under -race, where each pass is slow, that is enough.
	if !raceEnabled {
		if got := sha256Image(t, m, m.Size()); got != shaD2V {
			t.Errorf("sha256 %s, want %s", got, shaD2V)
		}
	}
	disktest.Check(t, m, zeroReader{})
	if sp := m.Info().Specific; sp["allocated_blocks"] != int64(126) || sp["creator_app"] != "d2v" || sp["creator_os"] != "Wi2k" {
		t.Errorf("Info.Specific %v, want 126 allocated blocks, creator d2v on Wi2k", sp)
	}
}

// TestSampleExt2 compares the qemu-made dfvfs ext2 disk with qemu-img's
// own conversion and the README's hash.
func TestSampleExt2(t *testing.T) {
	m, path, err := openSample(t, "dfvfs-ext2.vhd", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Size() != 4212736 || m.QemuSize() != 4212736 {
		t.Fatalf("Size %d QemuSize %d, want 4212736", m.Size(), m.QemuSize())
	}
	if got := sha256Image(t, m, m.Size()); got != shaExt2 {
		t.Errorf("sha256 %s, want %s", got, shaExt2)
	}
	want, err := os.ReadFile(testimg.QemuRaw(t, path, "-f", "vpc"))
	if err != nil {
		t.Fatal(err)
	}
	disktest.Check(t, m, bytes.NewReader(want))
}

// TestSampleRefused: files qemu also refuses, and the Windows
// differencing disk without its parent.
func TestSampleRefused(t *testing.T) {
	for _, c := range []struct {
		name  string
		class error
		msg   []string
	}{
		// afl: BAT of 1073741825 entries in a 1028-byte file.
		{"afl5.img", disk.ErrCorrupt, []string{"past end of file"}},
		// Both footers carry the same wrong checksum: qemu "Incorrect header checksum".
		{"dfvfs-image.vhd", disk.ErrCorrupt, []string{"checksum fffff683, computed ffffef25", "copy at offset 0"}},
		// Hand-made differencing disk with wrong checksums.
		{"dfvfs-image-differential.vhd", disk.ErrCorrupt, []string{"checksum"}},
		{"dfvfs-fat-differential.vhd", disk.ErrUnsafe, []string{`fat-parent.vhd`, `W2ku locator "C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd"`, `W2ru locator ".\\fat-parent.vhd"`, fatParentUUID}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _, err := openSample(t, c.name, Options{})
			if err == nil {
				m.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, c.class) {
				t.Errorf("error %v, want class %v", err, c.class)
			}
			for _, s := range c.msg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			t.Log(err)
		})
	}
}

// readQemuRaw returns qemu-img's raw conversion of the VHD at path.
func readQemuRaw(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(testimg.QemuRaw(t, path, "-f", "vpc"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sha256Bytes returns the hex sha256 of b.
func sha256Bytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// zeroReader reads as endless zeros: the expected bytes of the all-zero
// samples.
type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}
