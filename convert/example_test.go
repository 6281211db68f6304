package convert_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/volume"
)

// ExampleConvert opens an image and writes it as a raw volume the size of
// an EBS volume (the virtual size rounded up to a whole GiB), sparse,
// under a temporary name renamed into place when complete. A block device
// path (/dev/xvdf) is written in place.
func ExampleConvert() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "convert-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(src, append([]byte("boot"), make([]byte, 3<<20-4)...), 0o644); err != nil {
		log.Fatal(err)
	}

	img, err := diskport.Open(src, diskport.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	res, err := convert.Convert(ctx, img, filepath.Join(dir, "volume.raw"), convert.Options{Checksum: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes of image, %d GiB volume, sha256 %x\n", res.VirtualSize, convert.GiBs(res.VolumeSize), res.VirtualSHA256[:4])
	// Output: 3145728 bytes of image, 1 GiB volume, sha256 0e86d218
}

// ExampleCheck reads every block of an image as Convert would, without
// writing anything: an image Check passes is one Convert converts.
func ExampleCheck() {
	dir, err := os.MkdirTemp("", "check-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(src, make([]byte, 1<<20), 0o644); err != nil {
		log.Fatal(err)
	}
	img, err := diskport.Open(src, diskport.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	res, err := convert.Check(context.Background(), img, convert.CheckOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.Problems), "problems in", res.VirtualSize, "bytes")
	// Output: 0 problems in 1048576 bytes
}

// ExampleConvertInto converts into a volume the caller created and
// commits: here a 2 GiB one for a 1 MiB image.
func ExampleConvertInto() {
	dir, err := os.MkdirTemp("", "convert-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(src, append([]byte("boot"), make([]byte, 1<<20-4)...), 0o644); err != nil {
		log.Fatal(err)
	}
	img, err := diskport.Open(src, diskport.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	dst := filepath.Join(dir, "volume.raw")
	w, err := volume.Create(dst, 2*convert.GiB, volume.Options{NoSync: true})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := convert.ConvertInto(context.Background(), img, w, convert.Options{}); err != nil {
		w.Abort()
		log.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}
	f, err := os.Open(dst)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b := make([]byte, 4)
	f.ReadAt(b, 0)
	fmt.Println(st.Size(), string(b))
	// Output: 2147483648 boot
}
