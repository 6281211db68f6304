package vhd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/raw"
)

// The footer fields the tests pin so outputs are reproducible.
var (
	testWriteTime = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	testUniqueID  = [16]byte{0x6b, 0x1f, 0x2a, 0x90, 0x33, 0x41, 0x4c, 0x0d, 0x9e, 0x21, 0x55, 0x10, 0xaa, 0xbb, 0xcc, 0xdd}
	testOpts      = WriteOptions{UniqueID: testUniqueID, Time: testWriteTime}
)

// A writeCase is a source the writers are tested on.
type writeCase struct {
	name string
	src  func() *sparseSource
	slow bool // multi-second: skipped in -short
}

// writeCases are the sources: sparse, full, empty, zeros stored as data,
// sizes that are not multiples of 2 MiB, of 512 or of the CHS geometry,
// and a multi-GiB disk that is mostly holes.
func writeCases() []writeCase {
	return []writeCase{
		{name: "sparse", src: func() *sparseSource {
			return newSparseSource(9<<20+7*512,
				segment{100 << 10, pattern(1, 64<<10)},
				segment{2 << 20, pattern(2, 2<<20)},
				segment{6 << 20, make([]byte, 2<<20)}, // data, all zeros
				segment{9 << 20, pattern(3, 3<<10)})
		}},
		{name: "full", src: func() *sparseSource {
			return newSparseSource(6<<20, segment{0, pattern(4, 6<<20)})
		}},
		{name: "empty", src: func() *sparseSource { return newSparseSource(5 << 20) }},
		{name: "zerodata", src: func() *sparseSource {
			return newSparseSource(4<<20+512, segment{0, make([]byte, 4<<20+512)})
		}},
		{name: "odd512", src: func() *sparseSource {
			return newSparseSource(3000001, segment{0, pattern(5, 3000001)})
		}},
		{name: "oddchs", src: func() *sparseSource {
			return newSparseSource(5<<20+3*512, segment{512, pattern(6, 5<<20+2*512)})
		}},
		{name: "multigib", slow: true, src: func() *sparseSource {
			const size = 3<<30 + 7*512
			return newSparseSource(size,
				segment{0, pattern(7, 1<<20)},
				segment{1<<30 + 12345*512, pattern(8, 300<<10)},
				segment{2 << 30, pattern(9, 2<<20)},
				segment{size - 4096, pattern(10, 4096)})
		}},
	}
}

// roundSector rounds n up to a multiple of 512.
func roundSector(n int64) int64 { return (n + 511) / 512 * 512 }

// writeVHDFile writes src with WriteDynamic (dynamic) or WriteFixed to a
// new file and returns its path.
func writeVHDFile(t testing.TB, src disk.Image, dynamic bool, opts WriteOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.vhd")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	if dynamic {
		n, err = WriteDynamic(context.Background(), f, src, opts)
	} else {
		n, err = WriteFixed(context.Background(), f, src, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != n {
		t.Fatalf("writer returned %d, file has %d bytes", n, st.Size())
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); !dynamic && pos != n {
		t.Errorf("file offset after WriteFixed %d, want %d", pos, n)
	}
	return path
}

// compareSource checks that got holds the bytes of src over size bytes
// (zeros past src's end), reading 4 MiB at a time.
func compareSource(t testing.TB, what string, got, src io.ReaderAt, size int64) {
	t.Helper()
	a := make([]byte, 4<<20)
	b := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(a)) {
		n := int(min(int64(len(a)), size-off))
		if k, err := got.ReadAt(a[:n], off); k != n {
			t.Fatalf("%s: reading %d bytes at %d: got %d, %v", what, n, off, k, err)
		}
		clear(b[:n])
		if _, err := src.ReadAt(b[:n], off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if i := firstDiff(a[:n], b[:n]); i >= 0 {
			t.Fatalf("%s: byte %d is %#x, source has %#x", what, off+int64(i), a[i], b[i])
		}
	}
}

// qemuInfo returns `qemu-img info --output=json -f vpc path`.
func qemuInfo(t testing.TB, path string) (virtualSize int64, format string) {
	t.Helper()
	out, err := exec.Command(testimg.QemuImg(t), "info", "--output=json", "-f", "vpc", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var info struct {
		VirtualSize int64  `json:"virtual-size"`
		Format      string `json:"format"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("qemu-img info: %v in %s", err, out)
	}
	return info.VirtualSize, info.Format
}

// qemuCheck runs `qemu-img check -f vpc`. qemu-img 7.2 has no checker for
// vpc and says so (exit 63); any other outcome must be a clean check.
func qemuCheck(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command(testimg.QemuImg(t), "check", "-f", "vpc", path).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		if !strings.Contains(string(out), "No errors") {
			t.Errorf("qemu-img check: %s", out)
		}
	case errors.As(err, &ee) && ee.ExitCode() == 63 && strings.Contains(string(out), "does not support checks"):
	default:
		t.Errorf("qemu-img check: %v: %s", err, out)
	}
}

// qemuToRaw converts path with `qemu-img convert -f vpc -O raw`.
func qemuToRaw(t testing.TB, path string) *os.File {
	t.Helper()
	out := filepath.Join(t.TempDir(), "qemu.raw")
	if b, err := exec.Command(testimg.QemuImg(t), "convert", "-q", "-f", "vpc", "-O", "raw", path, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// vhdiInfo runs libvhdi's vhdiinfo on path and checks the disk type, the
// media size and the identifier it reports.
func vhdiInfo(t testing.TB, path, diskType string, size int64, id [16]byte) {
	t.Helper()
	tool, err := exec.LookPath("vhdiinfo")
	if err != nil {
		t.Fatalf("vhdiinfo is needed (apt-get install libvhdi-utils): %v", err)
	}
	out, err := exec.Command(tool, path).CombinedOutput()
	if err != nil {
		t.Fatalf("vhdiinfo %s: %v: %s", path, err, out)
	}
	s := string(out)
	for _, want := range []string{
		"Disk type\t\t: " + diskType,
		fmt.Sprintf("(%d bytes)", size),
		"Identifier\t\t: " + formatUUID(id),
	} {
		if !strings.Contains(s, want) {
			t.Errorf("vhdiinfo output lacks %q:\n%s", want, s)
		}
	}
}

// TestWriteRoundTrip writes every case with both writers and reads the
// result back with diskport's reader, qemu-img and vhdiinfo.
func TestWriteRoundTrip(t *testing.T) {
	for _, c := range writeCases() {
		for _, dynamic := range []bool{true, false} {
			kind := map[bool]string{true: "dynamic", false: "fixed"}[dynamic]
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				if c.slow && testing.Short() {
					t.Skip("multi-second: skipped in -short")
				}
				src := c.src()
				size := roundSector(src.Size())
				path := writeVHDFile(t, src, dynamic, testOpts)

				m, err := Open(openFile(t, path), Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				wantType := map[bool]uint32{true: TypeDynamic, false: TypeFixed}[dynamic]
				if m.DiskType() != wantType || m.Size() != size || m.CurrentSize() != size || m.QemuSize() != size {
					t.Fatalf("read back: type %d size %d current %d qemu %d; want type %d, all %d", m.DiskType(), m.Size(), m.CurrentSize(), m.QemuSize(), wantType, size)
				}
				if m.CreatorApp() != "win " || m.UniqueID() != testUniqueID {
					t.Errorf("creator %q, unique id %x", m.CreatorApp(), m.UniqueID())
				}
				if size <= 64<<20 {
					disktest.Check(t, m, src)
				} else {
					compareSource(t, "diskport reader", m, src, size)
				}

				if vs, format := qemuInfo(t, path); vs != size || format != "vpc" {
					t.Errorf("qemu-img info: virtual size %d, format %q; want %d, vpc", vs, format, size)
				}
				if dynamic {
					qemuCheck(t, path)
				}
				raw := qemuToRaw(t, path)
				if st, err := raw.Stat(); err != nil || st.Size() != size {
					t.Fatalf("qemu-img convert wrote %v bytes (%v), want %d", st.Size(), err, size)
				}
				compareSource(t, "qemu-img convert", raw, src, size)
				vhdiInfo(t, path, map[bool]string{true: "Dynamic", false: "Fixed"}[dynamic], size, testUniqueID)
			})
		}
	}
}

// TestWriteFixedToPipe writes a fixed disk through a pipe (every byte
// written, in order) and checks it is the same bytes as the sparse file
// WriteFixed writes with holes.
func TestWriteFixedToPipe(t *testing.T) {
	src := writeCases()[0].src()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var buf bytes.Buffer
	go func() {
		_, err := io.Copy(&buf, pr)
		done <- err
	}()
	n, err := WriteFixed(context.Background(), pw, src, testOpts)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n != roundSector(src.Size())+footerSize {
		t.Fatalf("returned %d, wrote %d bytes, want %d", n, buf.Len(), roundSector(src.Size())+footerSize)
	}
	file, err := os.ReadFile(writeVHDFile(t, src, false, testOpts))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, buf.Bytes()) {
		t.Fatalf("pipe and sparse file differ at byte %d", firstDiff(file, buf.Bytes()))
	}
}

// TestWriteFromRawFile writes from raw host files, whose data the writers
// copy inside the kernel: from the output's file system, and from a
// tmpfs (/dev/shm), where the kernel may refuse the copy across file
// systems and the writers read the bytes instead. qemu-img must find the
// results identical to the source.
func TestWriteFromRawFile(t *testing.T) {
	dirs := []string{t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dirs = append(dirs, "/dev/shm")
	}
	for _, c := range writeCases() {
		if c.slow {
			continue
		}
		for _, dir := range dirs {
			srcPath := rawFile(t, dir, c.src())
			t.Cleanup(func() { os.Remove(srcPath) })
			for _, dynamic := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/dynamic=%v", c.name, dir, dynamic), func(t *testing.T) {
					src, err := raw.OpenFile(srcPath)
					if err != nil {
						t.Fatal(err)
					}
					defer src.Close()
					path := writeVHDFile(t, src, dynamic, testOpts)
					m, err := Open(openFile(t, path), Options{})
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					if m.Size() != src.Size() {
						t.Fatalf("size %d, source %d", m.Size(), src.Size())
					}
					compareSource(t, "diskport reader", m, src, src.Size())
					if out, err := exec.Command(testimg.QemuImg(t), "compare", "-q", "-f", "vpc", "-F", "raw", path, srcPath).CombinedOutput(); err != nil {
						t.Errorf("qemu-img compare: %v: %s", err, out)
					}
				})
			}
		}
	}
}

// TestWriteProgress checks the progress reports: increasing, ending at
// the virtual size.
func TestWriteProgress(t *testing.T) {
	src := writeCases()[0].src()
	size := roundSector(src.Size())
	for _, dynamic := range []bool{true, false} {
		var got []int64
		opts := testOpts
		opts.Progress = func(done, total int64) {
			if total != size {
				t.Errorf("total %d, want %d", total, size)
			}
			if len(got) > 0 && done <= got[len(got)-1] {
				t.Errorf("done %d after %d", done, got[len(got)-1])
			}
			got = append(got, done)
		}
		writeVHDFile(t, src, dynamic, opts)
		if len(got) == 0 || got[len(got)-1] != size {
			t.Errorf("dynamic %v: progress %v, want it to end at %d", dynamic, got, size)
		}
	}
}

// TestWriteCancel stops both writers through their context, before and
// during the write.
func TestWriteCancel(t *testing.T) {
	src := writeCases()[1].src()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteDynamic(ctx, discardWriterAt{}, src, WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteDynamic, cancelled: %v", err)
	}
	if _, err := WriteFixed(ctx, io.Discard, src, WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteFixed, cancelled: %v", err)
	}
	for _, dynamic := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		opts := WriteOptions{Workers: 3, Progress: func(done, total int64) { cancel() }}
		var err error
		if dynamic {
			_, err = WriteDynamic(ctx, discardWriterAt{}, src, opts)
		} else {
			_, err = WriteFixed(ctx, io.Discard, src, opts)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("dynamic %v, cancelled during the write: %v", dynamic, err)
		}
	}
}

// failingSource fails every read.
type failingSource struct{ *sparseSource }

func (failingSource) ReadAt(p []byte, off int64) (int, error) {
	return 0, errors.New("disk on fire")
}

// TestWriteSourceError checks that a read error stops the writers and
// says where.
func TestWriteSourceError(t *testing.T) {
	src := failingSource{writeCases()[0].src()}
	_, err := WriteDynamic(context.Background(), discardWriterAt{}, src, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "vhd: reading source at byte") || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("WriteDynamic: %v", err)
	}
	_, err = WriteFixed(context.Background(), io.Discard, src, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "vhd: reading source at byte") {
		t.Errorf("WriteFixed: %v", err)
	}
}
