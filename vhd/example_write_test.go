package vhd_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/raw"
	"github.com/diskport/diskport/vhd"
)

// ExampleWriteDynamic converts a raw disk of 5 MiB and 1.5 KiB holding one
// non-zero sector into a dynamic VHD: only the block holding that sector
// is stored, and the virtual size is exact.
func ExampleWriteDynamic() {
	disk1 := make([]byte, 5<<20+3*512)
	copy(disk1[3<<20:], "hello, VHD")
	src, err := raw.Open(disk.NewMemStorage("disk.img", disk1))
	if err != nil {
		log.Fatal(err)
	}

	out, err := os.CreateTemp("", "example-*.vhd")
	if err != nil {
		log.Fatal(err)
	}
	path := out.Name()
	defer os.Remove(path)
	n, err := vhd.WriteDynamic(context.Background(), out, src, vhd.WriteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}

	s, err := disk.OpenHostFile(path)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	img, err := vhd.Open(s, vhd.Options{})
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := img.ReadAt(buf, 3<<20); err != nil {
		log.Fatal(err)
	}
	fmt.Println("file bytes:", n)
	fmt.Println("virtual size:", img.Size(), img.Info().Subformat)
	fmt.Printf("at 3 MiB: %q\n", buf)
	// Output:
	// file bytes: 2101760
	// virtual size: 5244416 dynamic
	// at 3 MiB: "hello, VHD"
}

// ExampleWriteFixed streams a fixed VHD to any io.Writer: the disk's bytes,
// then the 512-byte footer.
func ExampleWriteFixed() {
	disk1 := bytes.Repeat([]byte("diskport"), 4096/8)
	src, err := raw.Open(disk.NewMemStorage("disk.img", disk1))
	if err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	n, err := vhd.WriteFixed(context.Background(), &out, src, vhd.WriteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	footer := out.Bytes()[n-512:]
	fmt.Println("bytes:", n)
	fmt.Printf("footer: %q, creator %q\n", footer[:8], footer[28:32])
	// Output:
	// bytes: 4608
	// footer: "conectix", creator "win "
}
