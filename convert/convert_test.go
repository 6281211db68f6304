package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/raw"
	"github.com/diskport/diskport/volume"
)

func openGolden(t *testing.T, size int64, seed uint64) (*raw.Image, []byte) {
	t.Helper()
	g := testimg.Golden(t, testimg.Spec{Size: size, Seed: seed})
	img, err := raw.OpenFile(g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	b, err := os.ReadFile(g)
	if err != nil {
		t.Fatal(err)
	}
	return img, b
}

func checkVolume(t *testing.T, path string, want []byte, size int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := f.Stat(); st.Size() != size {
		t.Fatalf("volume is %d bytes, want %d", st.Size(), size)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("volume does not start with the virtual disk")
	}
	// Past the virtual disk: any data the file holds must be zeros.
	for off := int64(len(want)); off < size; {
		d, err := f.Seek(off, 3) // SEEK_DATA
		if err != nil || d >= size {
			break
		}
		b := make([]byte, min(1<<20, size-d))
		if _, err := f.ReadAt(b, d); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatalf("volume is not zero past the virtual disk, near %d", d)
		}
		off = d + int64(len(b))
	}
}

func TestVolumeSize(t *testing.T) {
	cases := []struct {
		virtual int64
		opts    Options
		want    int64
		err     bool
	}{
		{0, Options{}, GiB, false},
		{512, Options{}, GiB, false},
		{GiB, Options{}, GiB, false},
		{GiB + 512, Options{}, 2 * GiB, false},
		{GiB + 512, Options{ExactSize: true}, GiB + 512, false},
		{GiB + 512, Options{VolumeSize: 8 * GiB}, 8 * GiB, false},
		{3 * GiB, Options{VolumeSize: 2 * GiB}, 0, true},
		{512, Options{VolumeSize: GiB, ExactSize: true}, 0, true},
	}
	for _, c := range cases {
		got, err := VolumeSize(c.virtual, c.opts)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("VolumeSize(%d, %+v) = %d, %v; want %d (error %v)", c.virtual, c.opts, got, err, c.want, c.err)
		}
	}
	_, err := VolumeSize(3*GiB+1, Options{VolumeSize: 2 * GiB})
	if !errors.Is(err, disk.ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(3*GiB+1)) || !strings.Contains(err.Error(), fmt.Sprint(2*GiB)) {
		t.Errorf("too-small volume error %q does not name both sizes", err)
	}
}

func TestConvertFile(t *testing.T) {
	img, want := openGolden(t, 5<<20+512, 1)
	dst := filepath.Join(t.TempDir(), "vol.raw")
	var last, total int64
	res, err := Convert(context.Background(), img, dst, Options{Workers: 3, Progress: func(d, tot int64) {
		if d < last {
			t.Errorf("progress went back from %d to %d", last, d)
		}
		last, total = d, tot
	}})
	if err != nil {
		t.Fatal(err)
	}
	if last != img.Size() || total != img.Size() {
		t.Errorf("progress ended at %d of %d, want %d", last, total, img.Size())
	}
	if res.VolumeSize != GiB {
		t.Fatalf("volume size %d", res.VolumeSize)
	}
	checkVolume(t, dst, want, GiB)
	if _, err := os.Stat(volume.PartialName(dst)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	// An existing destination is not overwritten without Force.
	if _, err := Convert(context.Background(), img, dst, Options{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("overwrote an existing volume: %v", err)
	}
	if _, err := Convert(context.Background(), img, dst, Options{Force: true, ExactSize: true}); err != nil {
		t.Fatal(err)
	}
	checkVolume(t, dst, want, img.Size())
}

func TestTooSmallVolumeLeavesNothing(t *testing.T) {
	img, _ := openGolden(t, 1<<20, 2)
	dir := t.TempDir()
	_, err := Convert(context.Background(), img, filepath.Join(dir, "vol"), Options{VolumeSize: 512 << 10})
	if !errors.Is(err, disk.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}

// failing is an image whose reads of [at, at+4MiB) fail.
type failing struct {
	disk.Image
	at int64
}

func (f failing) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.at && off < f.at+4<<20 {
		return 0, errors.New("injected read error")
	}
	return f.Image.ReadAt(p, off)
}

func (f failing) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	return func(yield func(disk.Extent, error) bool) {
		for e, err := range f.Image.Extents(off, n) {
			e.Stored = nil // force reads through ReadAt
			if !yield(e, err) {
				return
			}
		}
	}
}

func TestFailedRunLeavesNothing(t *testing.T) {
	img, _ := openGolden(t, 70<<20, 3)
	dir := t.TempDir()
	dst := filepath.Join(dir, "vol")
	_, err := Convert(context.Background(), failing{img, 40 << 20}, dst, Options{})
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("err = %v, want the injected error", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}

// TestVerifyFailureLeavesNothing: Options.Verify runs once every byte has
// been converted, and its error fails the conversion before the rename.
func TestVerifyFailureLeavesNothing(t *testing.T) {
	img, _ := openGolden(t, 20<<20, 6)
	dir := t.TempDir()
	var done, total int64
	_, err := Convert(context.Background(), img, filepath.Join(dir, "vol"), Options{
		Progress: func(d, t int64) { done, total = d, t },
		Verify: func() error {
			if done != total {
				return fmt.Errorf("Verify called at %d of %d bytes", done, total)
			}
			return errors.New("source checksum mismatch")
		},
	})
	if err == nil || err.Error() != "source checksum mismatch" {
		t.Fatalf("err = %v, want Verify's error", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}

func TestCancel(t *testing.T) {
	img, _ := openGolden(t, 70<<20, 4)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := Convert(ctx, failing{img, 1 << 62}, filepath.Join(dir, "vol"), Options{Progress: func(d, _ int64) {
		if n++; n == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}

func TestReadOnlyDestination(t *testing.T) {
	img, _ := openGolden(t, 1<<20, 5)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	_, err := Convert(context.Background(), img, filepath.Join(dir, "vol"), Options{})
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a read-only mount
		// instead if there is one.
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil {
		t.Fatal("wrote into a read-only directory")
	}
}

// TestFullDestination converts into a tiny tmpfs: the error is clear and
// the temporary file removed.
func TestFullDestination(t *testing.T) {
	img, _ := openGolden(t, 8<<20, 6)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs (tests run as root): %v: %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	_, err := Convert(context.Background(), img, filepath.Join(dir, "vol"), Options{NoSync: true})
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("err = %v, want no space left", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}
