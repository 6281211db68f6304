package diskport_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/diskport/diskport"
)

// ExampleWrite writes a RAW disk as a streamOptimized VMDK (the VMDK
// row's default subformat) and opens the result: the same virtual disk.
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "diskport-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(path, append([]byte("boot"), make([]byte, 1<<20-4)...), 0o644); err != nil {
		log.Fatal(err)
	}
	src, err := diskport.Open(path, diskport.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()

	out, err := os.Create(filepath.Join(dir, "disk.vmdk"))
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	if _, err := diskport.Write(context.Background(), diskport.VMDK, out, src, diskport.WriteOptions{Name: "disk.vmdk"}); err != nil {
		log.Fatal(err)
	}

	img, err := diskport.Open(out.Name(), diskport.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	b := make([]byte, 4)
	if _, err := img.ReadAt(b, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Info().Format, img.Info().Subformat, img.Size(), string(b))
	fmt.Println(diskport.VMDK.Subformats(), diskport.VHD.Subformats())
	// Output:
	// vmdk streamOptimized 1048576 boot
	// [streamOptimized monolithicSparse] [dynamic fixed]
}
