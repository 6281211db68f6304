package diskport_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// A parityRow is one image whose diskport conversion must equal qemu-img's.
type parityRow struct {
	name  string
	image func(t *testing.T) string // path of the image
	opts  diskport.Options
	// qemuArgs are the extra arguments for `qemu-img convert` (e.g. -f vpc).
	qemuArgs []string
	// wantErr, when set, means diskport must refuse the image with an
	// error matching it (errors.Is).
	wantErr error
}

// golden returns a function making the golden disk of size bytes in the
// given qemu format and options ("raw" returns the golden itself).
func golden(size int64, seed uint64, format, opts string) func(t *testing.T) string {
	return func(t *testing.T) string {
		g := testimg.Golden(t, testimg.Spec{Size: size, Seed: seed})
		if format == "raw" {
			return g
		}
		return testimg.Make(t, g, format, opts)
	}
}

// runParity converts each row's image with diskport and checks the volume:
// qemu-img's raw output over the virtual size (over the shorter of the two
// sizes when they differ, as they do for VHD's CHS sizes), zeros after it,
// a whole number of GiB, and sparse. The rows run one at a time: the
// allocated bytes compared are the file system's, and with the rows in
// parallel the two volumes of a row were seen to differ by 4 KiB (files
// written side by side fragment, and ext4 may then need an extent-tree
// block for one and not the other).
func runParity(t *testing.T, rows []parityRow) {
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			path := r.image(t)
			img, err := diskport.Open(path, r.opts)
			if r.wantErr != nil {
				if err == nil {
					img.Close()
					t.Fatalf("Open(%s) succeeded, want an error matching %v", path, r.wantErr)
				}
				if !isErr(err, r.wantErr) {
					t.Fatalf("Open(%s) = %v, want an error matching %v", path, err, r.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%s): %v", path, err)
			}
			defer img.Close()
			want := testimg.QemuRaw(t, path, r.qemuArgs...)
			wf, err := os.Open(want)
			if err != nil {
				t.Fatal(err)
			}
			defer wf.Close()
			st, _ := wf.Stat()
			if st.Size() >= img.Size() {
				disktest.Check(t, img, wf)
			}
			dst := filepath.Join(t.TempDir(), "volume.raw")
			res, err := convert.Convert(context.Background(), img, dst, convert.Options{NoSync: true})
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if res.VolumeSize%convert.GiB != 0 || res.VolumeSize < img.Size() {
				t.Fatalf("volume size %d for virtual size %d: want whole GiB", res.VolumeSize, img.Size())
			}
			CompareVolume(t, dst, want, img.Size(), res.VolumeSize)
			// With a checksum, bytes stored verbatim are read into the
			// process instead of copied by the kernel: the same volume,
			// as sparse, and never less sparse than qemu-img's.
			sum := filepath.Join(t.TempDir(), "volume.raw")
			if res, err = convert.Convert(context.Background(), img, sum, convert.Options{NoSync: true, Checksum: true}); err != nil {
				t.Fatalf("Convert with a checksum: %v", err)
			}
			CompareVolume(t, sum, want, img.Size(), res.VolumeSize)
			if a, b, q := allocated(t, dst), allocated(t, sum), allocated(t, want); a != b || a > q {
				t.Errorf("allocated bytes: %d copied by the kernel, %d read with a checksum, %d by qemu-img; want the first two equal and no more than qemu-img's", a, b, q)
			}
		})
	}
}

// CompareVolume checks the volume at dst: its first min(virtual, qemu's
// size) bytes equal qemu-img's output, everything after reads as zeros, its
// size is volumeSize, and it is sparse (fewer bytes allocated than its
// size, when qemu-img's output has holes too).
func CompareVolume(t *testing.T, dst, want string, virtual, volumeSize int64) {
	t.Helper()
	got, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	wf, err := os.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	gst, _ := got.Stat()
	wst, _ := wf.Stat()
	if gst.Size() != volumeSize {
		t.Fatalf("volume is %d bytes, want %d", gst.Size(), volumeSize)
	}
	common := min(virtual, wst.Size())
	gb, wb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < volumeSize; off += int64(len(gb)) {
		n := min(int64(len(gb)), volumeSize-off)
		if _, err := got.ReadAt(gb[:n], off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		clear(wb[:n])
		if off < common {
			k := min(n, common-off)
			if _, err := wf.ReadAt(wb[:k], off); err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(gb[:n], wb[:n]) {
			for i := range n {
				if gb[i] != wb[i] {
					t.Fatalf("volume differs from qemu-img's output (then zeros) at byte %d: got %#x want %#x", off+i, gb[i], wb[i])
				}
			}
		}
		if off+n >= common {
			// Past qemu's data: check the holes without reading GiBs of zeros.
			checkHoles(t, got, off+n, volumeSize)
			break
		}
	}
	if a, ok := disk.AllocatedBytes(gst); ok && a >= volumeSize {
		t.Errorf("volume is not sparse: %d bytes allocated of %d", a, volumeSize)
	}
}

// allocated returns the bytes the file at path has on disk.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := disk.AllocatedBytes(st)
	if !ok {
		t.Skip("the OS does not report the space a file takes")
	}
	return n
}

// checkHoles checks that [from, to) of f is holes only (no data), which
// reads as zeros.
func checkHoles(t *testing.T, f *os.File, from, to int64) {
	t.Helper()
	if from >= to {
		return
	}
	d, err := f.Seek(from, 3) // SEEK_DATA
	if err == nil && d < to {
		// Data present: it must be zeros.
		b := make([]byte, min(1<<20, to-d))
		if _, err := f.ReadAt(b, d); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatalf("volume holds non-zero data at %d, past the virtual disk", d)
		}
	}
}
