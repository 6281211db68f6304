package ova_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/ova"
)

// ExampleWrite writes a RAW disk as an OVA (descriptor, streamOptimized
// VMDK, .mf) and opens it again, its .mf required: the appliance has the
// one disk, of the source's size.
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "ova-example-")
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

	f, err := os.Create(filepath.Join(dir, "web.ova"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ova.Write(context.Background(), f, src, ova.WriteOptions{Name: "web", CPUs: 2, MemoryMiB: 4096}); err != nil {
		log.Fatal(err)
	}
	f.Close()

	a, err := ova.OpenFile(f.Name(), ova.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	fmt.Println(a.Descriptor, a.Manifest, a.System)
	for _, d := range a.Disks {
		fmt.Println(d.File, d.Format, d.Capacity, d.Controller)
	}
	// Output:
	// web.ovf web.mf web
	// web-disk1.vmdk vmdk 1048576 SCSI Controller 0
}
