package ova_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/ova"
)

// FuzzOpen feeds mutated OVAs to the tar walk, the OVF and .mf parsers and
// the disks' readers: each is opened or refused with a disk.Err* error,
// never a panic, and a disk that opens reads and verifies without one.
func FuzzOpen(f *testing.F) {
	raw := make([]byte, 4096)
	for i := range raw {
		raw[i] = byte(i)
	}
	dir := f.TempDir()
	p := filepath.Join(dir, "disk.img")
	os.WriteFile(p, raw, 0o644)
	for _, v := range []int{1, 2} {
		path := testimg.OVA(f, testimg.OVASpec{Version: v, Alg: "SHA256", Files: map[string]string{"disk.img": p},
			Disks: []testimg.OVADisk{{ID: "d", File: "disk.img", Format: testimg.URIRaw, Capacity: "4096", Units: "byte * 2^0", Gzip: v == 2}}})
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ova.Open(disk.NewMemStorage("fuzz.ova", b), ova.Options{MaxVirtualSize: 1 << 30})
		if err != nil {
			if !isClassified(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		for i := range a.Disks {
			img, err := a.OpenDisk(i)
			if err != nil {
				continue
			}
			buf := make([]byte, 64<<10)
			for off := int64(0); off < img.Size() && off < 1<<20; off += int64(len(buf)) {
				img.ReadAt(buf, off)
			}
			for range img.Extents(0, img.Size()) {
			}
			_ = img.Verify()
			img.Close()
		}
	})
}

func isClassified(err error) bool {
	for _, c := range []error{disk.ErrCorrupt, disk.ErrUnsupported, disk.ErrUnsafe, disk.ErrTooLarge, disk.ErrFormatMismatch} {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}
