package vmdk_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/vmdk"
)

// memDisk is a disk.Image over a byte slice: one data run, so a writer
// reads all of it and skips the grains that hold only zeros.
type memDisk struct{ b []byte }

func (m memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m memDisk) Size() int64 { return int64(len(m.b)) }
func (m memDisk) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	return disk.Coalesce(func(yield func(disk.Extent, error) bool) {
		yield(disk.Extent{Offset: 0, Length: int64(len(m.b)), Kind: disk.Data}, nil)
	}, off, n)
}
func (m memDisk) Info() disk.Info { return disk.Info{Format: "raw", VirtualSize: int64(len(m.b))} }
func (m memDisk) Close() error    { return nil }

// Writing a 1 MiB disk as a streamOptimized VMDK (what an OVA carries and
// what EC2 and vSphere import) and reading it back.
func ExampleWriteStream() {
	text := []byte(strings.Repeat("a disk with some text at its start ", 100))
	src := memDisk{make([]byte, 1<<20)}
	copy(src.b, text)

	var out bytes.Buffer
	if _, err := vmdk.WriteStream(context.Background(), &out, src, vmdk.WriteOptions{Name: "disk.vmdk"}); err != nil {
		fmt.Println(err)
		return
	}
	img, err := vmdk.Open(disk.NewMemStorage("disk.vmdk", out.Bytes()), vmdk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer img.Close()
	back := make([]byte, len(text))
	img.ReadAt(back, 0)
	fmt.Println(img.CreateType(), img.Size(), bytes.Equal(back, text))
	// Output: streamOptimized 1048576 true
}

// Writing a monolithicSparse VMDK to a file: only the one grain holding
// data is stored, after 64 KiB of header, descriptor and tables.
func ExampleWriteSparse() {
	src := memDisk{make([]byte, 64<<20)}
	copy(src.b[10<<20:], "one grain of data")

	f, err := os.CreateTemp("", "example-*.vmdk")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := vmdk.WriteSparse(context.Background(), f, src, vmdk.WriteOptions{Name: "disk.vmdk"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n, "bytes")
	// Output: 131072 bytes
}
