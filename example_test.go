package diskport_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// ExampleOpen opens an image file, its format detected from the bytes (or
// declared with Options.Format, which the bytes must not contradict), and
// reads its description and its first bytes.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "diskport-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(path, append([]byte("boot"), make([]byte, 1<<20-4)...), 0o644); err != nil {
		log.Fatal(err)
	}

	img, err := diskport.Open(path, diskport.Options{Format: "RAW"})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	b := make([]byte, 4)
	if _, err := img.ReadAt(b, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Info().Format, img.Size(), string(b))
	// Output: raw 1048576 boot
}

// ExampleDetect tells the format of bytes in a storage: what Open does
// before it opens them. QCOW2 is recognised, so it is never taken for RAW,
// and refused.
func ExampleDetect() {
	for _, b := range [][]byte{
		make([]byte, 4096),
		append([]byte("QFI\xfb\x00\x00\x00\x03"), make([]byte, 4088)...),
	} {
		f, err := diskport.Detect(disk.NewMemStorage("example", b))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(f, f.EC2Name(), f.Readable())
	}
	// Output:
	// raw RAW true
	// qcow2  false
}
