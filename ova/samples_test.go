package ova_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/ova"
)

// sample returns one of the real samples (shared/samples, copied into
// vmdk/testdata so a clone holds them), decompressed.
func sample(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "vmdk", "testdata", name)
	if filepath.Ext(name) != ".bz2" {
		return src
	}
	out, err := exec.Command("bzip2", "-dc", src).Output()
	if err != nil {
		t.Fatalf("bzip2 -dc %s: %v (the test needs the samples and bzip2)", src, err)
	}
	p := filepath.Join(t.TempDir(), name[:len(name)-4])
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Real VMware streamOptimized disks (GD_AT_END, as VMware's exports write
// them) inside OVAs, in place and gzip-compressed: the 2013 qemu iotest
// image (1 GiB, no grains) converts to zeros; govmomi's ttylinux disk,
// truncated after 36 grains, is refused either way (the in-place reader
// finds no footer, the stream no end-of-stream marker).
func TestVMwareStreamSamples(t *testing.T) {
	empty := sample(t, "iotest-version3-2013.vmdk.bz2")
	trunc := sample(t, "govmomi-ttylinux-pc_i486-16.1-disk1.vmdk")
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("gzip=", gz), func(t *testing.T) {
			a, err := ova.OpenFile(testimg.OVA(t, testimg.OVASpec{Version: 1, Alg: "SHA256", Files: map[string]string{"empty.vmdk": empty, "tty.vmdk": trunc},
				Disks: []testimg.OVADisk{
					{ID: "e", File: "empty.vmdk", Format: testimg.URIStreamOptimized, Capacity: "1", Units: "byte * 2^30", Gzip: gz},
					{ID: "t", File: "tty.vmdk", Format: testimg.URIStreamOptimized, Capacity: "30", Units: "byte * 2^20", Gzip: gz, Ctl: 1},
				}}), ova.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			vol, _, err := convertDisk(t, a, 0)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(vol)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 1<<20)
			var n int64
			for {
				k, err := f.Read(buf)
				if !bytes.Equal(buf[:k], make([]byte, k)) {
					t.Fatalf("non-zero bytes near %d", n)
				}
				n += int64(k)
				if errors.Is(err, io.EOF) {
					break
				}
			}
			if n != 1<<30 {
				t.Errorf("volume of %d bytes", n)
			}
			_, _, err = convertDisk(t, a, 1)
			if !errors.Is(err, disk.ErrCorrupt) {
				t.Errorf("truncated ttylinux stream: %v; want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}
