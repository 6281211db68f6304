package diskport_test

import (
	"io"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// FuzzOpenStorage sniffs and opens arbitrary bytes under every declared
// format: it must return an image or a typed error, never panic, and an
// image it returns must read and map without panicking.
func FuzzOpenStorage(f *testing.F) {
	f.Add([]byte("KDMV\x01\x00\x00\x00"), "")
	f.Add([]byte("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"../../etc/passwd\" 0\n"), "vmdk")
	f.Add(append(make([]byte, 1024), []byte("conectix")...), "raw")
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"), "RAW")
	f.Add([]byte("vhdxfile"), "vhd")
	f.Add(make([]byte, 4096), "raw")
	f.Fuzz(func(t *testing.T, b []byte, format string) {
		s := disk.NewMemStorage("fuzz", b)
		if _, err := diskport.Detect(s); err != nil {
			return
		}
		for _, trust := range []bool{false, true} {
			img, err := diskport.OpenStorage(s, diskport.Options{Format: format, TrustFormat: trust, MaxVirtualSize: 1 << 30})
			if err != nil {
				continue
			}
			p := make([]byte, 4096)
			img.ReadAt(p, 0)
			img.ReadAt(p, max(0, img.Size()-100))
			n := 0
			for _, err := range img.Extents(0, img.Size()) {
				if err != nil || n > 1000 {
					break
				}
				n++
			}
			if _, err := img.ReadAt(p, img.Size()); err != io.EOF {
				t.Fatalf("ReadAt(Size) = %v, want io.EOF", err)
			}
			img.Close()
		}
	})
}
