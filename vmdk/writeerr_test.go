package vmdk

import (
	"context"
	"errors"
	"io"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// A multi-GiB disk that is mostly holes: only the grains with data are
// read and written, the rest costs nothing.
func TestWriteBigSparseSource(t *testing.T) {
	const gib = 1 << 30
	src := newWriteSource(6*gib+3*512,
		chunk{0, textLike(100000, 7)},
		chunk{2*gib - 5000, randomBytes(10000, 7)},
		chunk{5 * gib, textLike(1<<20, 8)},
		chunk{6*gib - 1000, textLike(1000+3*512, 9)},
	)
	t.Run("stream", func(t *testing.T) {
		path, b := writeStreamFile(t, src, WriteOptions{Name: "out.vmdk"})
		if len(b) > 1<<20 {
			t.Fatalf("stream of %d bytes for %d bytes of data", len(b), 1<<20+121000)
		}
		checkStreamLayout(t, b, src)
		checkWithOwnReader(t, path, src, "streamOptimized")
		checkWithQemu(t, path, src, "streamOptimized")
		checkWithVmdkinfo(t, path, src.size, "Stream optimized")
	})
	t.Run("sparse", func(t *testing.T) {
		path, b := writeSparseFile(t, src, WriteOptions{AdapterType: "ide"})
		if len(b) > 2<<20 {
			t.Fatalf("sparse file of %d bytes for %d bytes of data", len(b), 1<<20+121000)
		}
		checkSparseLayout(t, b, src)
		checkWithOwnReader(t, path, src, "monolithicSparse")
		checkWithQemu(t, path, src, "monolithicSparse")
		checkWithVmdkinfo(t, path, src.size, "Monolithic sparse")
	})
}

// A read error midway fails the write with an error naming the offset.
func TestWriteReadError(t *testing.T) {
	src := newWriteSource(4<<20, chunk{0, textLike(4<<20, 10)})
	src.failAt = 3<<20 + 12345
	want := "reading source at byte 3145728: injected read error"
	for _, w := range writers() {
		_, err := w.write(context.Background(), t, src, WriteOptions{Workers: 2})
		if err == nil || !errors.Is(err, errInjected) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: err %v, want one saying %q", w.name, err, want)
		}
	}
}

// A failing extent map fails the write.
func TestWriteExtentError(t *testing.T) {
	src := &failingExtents{newWriteSource(1<<20, chunk{0, textLike(1<<20, 11)})}
	for _, w := range writers() {
		if _, err := w.write(context.Background(), t, src, WriteOptions{}); err == nil || !errors.Is(err, errInjected) {
			t.Fatalf("%s: err %v, want the extent map's error", w.name, err)
		}
	}
}

type failingExtents struct{ *writeSource }

func (f *failingExtents) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	return func(yield func(disk.Extent, error) bool) {
		if yield(disk.Extent{Offset: 0, Length: 65536, Kind: disk.Data}, nil) {
			yield(disk.Extent{}, errInjected)
		}
	}
}

// A cancelled context stops the write.
func TestWriteCancel(t *testing.T) {
	src := newWriteSource(16<<20, chunk{0, textLike(16<<20, 12)})
	for _, w := range writers() {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, err := w.write(ctx, t, src, WriteOptions{Workers: 2, Progress: func(done, total int64) {
			if calls++; calls == 10 {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: err %v, want context.Canceled", w.name, err)
		}
		cancel()
	}
	// Already cancelled: nothing read.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, w := range writers() {
		if _, err := w.write(ctx, t, src, WriteOptions{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: err %v, want context.Canceled", w.name, err)
		}
	}
}

// Progress rises to the source's size.
func TestWriteProgress(t *testing.T) {
	src := newWriteSource(5<<20+512, chunk{1 << 20, textLike(1<<20, 13)}, chunk{5 << 20, textLike(512, 13)})
	for _, w := range writers() {
		last := int64(-1)
		_, err := w.write(context.Background(), t, src, WriteOptions{Progress: func(done, total int64) {
			if total != src.size || done < last || done > total {
				t.Fatalf("%s: progress %d/%d after %d", w.name, done, total, last)
			}
			last = done
		}})
		if err != nil || last != src.size {
			t.Fatalf("%s: err %v, last progress %d, want %d", w.name, err, last, src.size)
		}
	}
}

func TestWriteOptionsRefused(t *testing.T) {
	src := newWriteSource(1<<20, chunk{0, textLike(1000, 14)})
	for _, c := range []struct {
		opts WriteOptions
		want string
	}{
		{WriteOptions{Level: 10}, "Level 10"},
		{WriteOptions{Level: -1}, "Level -1"},
		{WriteOptions{Workers: -1}, "Workers -1"},
		{WriteOptions{Name: "../x.vmdk"}, "not a bare file name"},
		{WriteOptions{Name: `a"b.vmdk`}, "not a bare file name"},
		{WriteOptions{Name: "a\nb"}, "not a bare file name"},
		{WriteOptions{Name: strings.Repeat("n", 300)}, "300 bytes"},
		{WriteOptions{AdapterType: "pvscsi"}, `AdapterType "pvscsi"`},
	} {
		for _, w := range writers() {
			if _, err := w.write(context.Background(), t, src, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s %+v: err %v, want one saying %q", w.name, c.opts, err, c.want)
			}
		}
	}
	for _, w := range writers() {
		_, err := w.write(context.Background(), t, newWriteSource(0), WriteOptions{})
		if !errors.Is(err, disk.ErrUnsupported) {
			t.Fatalf("%s: 0-byte disk: err %v, want disk.ErrUnsupported", w.name, err)
		}
	}
	if _, err := (writers()[0]).write(context.Background(), t, newWriteSource(1<<50+512), WriteOptions{}); !errors.Is(err, disk.ErrTooLarge) {
		t.Fatalf("stream: disk over 1 PiB: err %v, want disk.ErrTooLarge", err)
	}
	huge := newWriteSource(2<<40 + 512)
	if _, err := (writers()[1]).write(context.Background(), t, huge, WriteOptions{}); !errors.Is(err, disk.ErrTooLarge) {
		t.Fatalf("sparse: disk over 2 TiB: err %v, want disk.ErrTooLarge", err)
	}
}

// A failing destination fails the write with the offset.
func TestWriteDestinationError(t *testing.T) {
	src := newWriteSource(4<<20, chunk{0, randomBytes(4<<20, 15)})
	if _, err := WriteStream(context.Background(), &limitWriter{n: 1 << 20}, src, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "writing the stream at byte") {
		t.Fatalf("stream: err %v", err)
	}
	f, err := os.Open(filepath.Join(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := WriteSparse(context.Background(), f, src, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "writing the grain at byte 65536") {
		t.Fatalf("sparse: err %v", err)
	}
}

type limitWriter struct{ n int }

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		k := l.n
		l.n = 0
		return k, io.ErrShortWrite
	}
	l.n -= len(p)
	return len(p), nil
}

// A writer under test: WriteStream or WriteSparse to a temporary file.
type writerFunc struct {
	name  string
	write func(ctx context.Context, t *testing.T, src disk.Image, opts WriteOptions) (int64, error)
}

func writers() []writerFunc {
	open := func(t *testing.T) *os.File {
		f, err := os.Create(filepath.Join(t.TempDir(), "w.vmdk"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	return []writerFunc{
		{"stream", func(ctx context.Context, t *testing.T, src disk.Image, o WriteOptions) (int64, error) {
			return WriteStream(ctx, open(t), src, o)
		}},
		{"sparse", func(ctx context.Context, t *testing.T, src disk.Image, o WriteOptions) (int64, error) {
			return WriteSparse(ctx, open(t), src, o)
		}},
	}
}

// Re-writing real images read by this package: a VMware stream (16 GiB,
// mostly unallocated) and a qemu-made monolithicSparse ext2 disk, each
// written by both writers; qemu-img must find the output identical to the
// original.
func TestWriteFromSamples(t *testing.T) {
	qemu := testimg.QemuImg(t)
	for _, name := range []string{"iotest-version3.vmdk.bz2", "dfvfs-ext2.vmdk.bz2"} {
		orig := filepath.Join(t.TempDir(), strings.TrimSuffix(name, ".bz2"))
		if err := os.WriteFile(orig, sample(t, name), 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := Open(hostFile(t, orig), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		for _, w := range writers() {
			out := filepath.Join(t.TempDir(), "out.vmdk")
			f, err := os.Create(out)
			if err != nil {
				t.Fatal(err)
			}
			if w.name == "stream" {
				_, err = WriteStream(context.Background(), f, img, WriteOptions{})
			} else {
				_, err = WriteSparse(context.Background(), f, img, WriteOptions{})
			}
			f.Close()
			if err != nil {
				t.Fatalf("%s from %s: %v", w.name, name, err)
			}
			if msg, err := exec.Command(qemu, "compare", "-q", orig, out).CombinedOutput(); err != nil {
				t.Fatalf("%s from %s: qemu-img compare: %v\n%s", w.name, name, err, msg)
			}
			if msg, err := exec.Command(qemu, "check", out).CombinedOutput(); err != nil {
				t.Fatalf("%s from %s: qemu-img check: %v\n%s", w.name, name, err, msg)
			}
		}
	}
}
