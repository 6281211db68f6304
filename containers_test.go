package diskport_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/klauspost/compress/zstd"
)

// containerFiles builds, from the golden disk g, one real file of each
// container and recognised-but-unread disk format, with the tools that
// make them (archive/tar, gzip, the xz, bzip2 and zstd programs,
// qemu-img), keyed by the format Detect must find.
func containerFiles(t *testing.T, g string) map[diskport.Format]string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(g)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tool := func(name string, args ...string) string {
		t.Helper()
		in := write(name+".in", data)
		out, err := exec.Command(name, append(args, in)...).Output()
		if err != nil {
			t.Fatalf("%s: %v (the test needs %s installed)", name, err, name)
		}
		return write(name+".out", out)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "appliance.ovf", Mode: 0o644, Size: int64(len(data)), Format: tar.FormatUSTAR})
	tw.Write(data)
	tw.Close()
	var gb bytes.Buffer
	gw := tar.NewWriter(&gb) // GNU magic: a long name forces the GNU format
	gw.WriteHeader(&tar.Header{Name: strings.Repeat("d", 120) + ".vmdk", Mode: 0o644, Size: 1, Format: tar.FormatGNU})
	gw.Write([]byte{1})
	gw.Close()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	f, _ := zw.Create("disk.img")
	f.Write(data)
	zw.Close()
	var gz bytes.Buffer
	gzw := gzip.NewWriter(&gz)
	gzw.Write(data)
	gzw.Close()
	var zs bytes.Buffer
	zsw, _ := zstd.NewWriter(&zs)
	zsw.Write(data)
	zsw.Close()
	return map[diskport.Format]string{
		diskport.Tar:   write("a.ova", tb.Bytes()),
		"gnutar":       write("gnu.tar", gb.Bytes()),
		diskport.Zip:   write("a.zip", zb.Bytes()),
		diskport.Gzip:  write("a.img.gz", gz.Bytes()),
		diskport.Zstd:  write("a.img.zst", zs.Bytes()),
		diskport.XZ:    tool("xz", "-c"),
		diskport.Bzip2: tool("bzip2", "-c"),
		diskport.QCOW2: testimg.Make(t, g, "qcow2", ""),
		diskport.QED:   testimg.Make(t, g, "qed", ""),
		diskport.VDI:   testimg.Make(t, g, "vdi", ""),
	}
}

// An undeclared file whose first bytes are another known container is
// refused with what it looks like, never converted as RAW (else a
// tar's bytes become the volume); a declared RAW still reads an archive or
// compressed file as RAW, while a declared RAW for a disk format diskport
// does not read stays a mismatch.
func TestContainersNotRaw(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 16})
	want := map[diskport.Format]string{
		diskport.Tar: "tar archive", "gnutar": "tar archive", diskport.Zip: "unzip", diskport.Gzip: "gzip -dk",
		diskport.Zstd: "zstd -dk", diskport.XZ: "xz -dk", diskport.Bzip2: "bzip2 -dk",
		diskport.QCOW2: "QCOW2", diskport.QED: "QED", diskport.VDI: "VDI",
	}
	for f, path := range containerFiles(t, g) {
		t.Run(string(f), func(t *testing.T) {
			h, err := disk.OpenHostFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			found, err := diskport.Detect(h)
			wantF := f
			if f == "gnutar" {
				wantF = diskport.Tar
			}
			if err != nil || found != wantF {
				t.Fatalf("Detect = %v, %v; want %v", found, err, wantF)
			}
			_, err = diskport.Open(path, diskport.Options{})
			if !errors.Is(err, disk.ErrUnsupported) || !strings.Contains(err.Error(), want[f]) {
				t.Fatalf("Open undeclared: %v; want ErrUnsupported saying %q", err, want[f])
			}
			checkNoCLI(t, string(f), err)
			img, err := diskport.Open(path, diskport.Options{Format: "raw"})
			container := f != diskport.QCOW2 && f != diskport.QED && f != diskport.VDI
			if container {
				if err != nil {
					t.Fatalf("declared raw: %v", err)
				}
				defer img.Close()
				if img.Info().Format != "raw" || img.Size() != (h.Size()+511)/512*512 {
					t.Errorf("declared raw: %+v", img.Info())
				}
				if !strings.Contains(err2str(diskport.Open(path, diskport.Options{Format: "vmdk"})), "declared VMDK") {
					t.Error("declared vmdk: no mismatch")
				}
			} else if !errors.Is(err, disk.ErrFormatMismatch) {
				t.Errorf("declared raw for %s: %v, want a mismatch", f, err)
			}
		})
	}
}

func err2str(img disk.Image, err error) string {
	if img != nil {
		img.Close()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// A disk format's signature wins over a container's short one: a fixed VHD
// whose disk begins with gzip's magic is a VHD.
func TestDiskFormatBeatsContainer(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "g.raw")
	b := make([]byte, 1<<20)
	copy(b, "\x1f\x8b\x08\x00")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	v := testimg.Make(t, src, "vpc", "subformat=fixed")
	img, err := diskport.Open(v, diskport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Info().Format != "vhd" {
		t.Errorf("format %s", img.Info().Format)
	}
}
