package ova

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// readBack opens the OVA at path with its .mf required and returns its
// one disk's bytes, checked against the .mf.
func readBack(t *testing.T, path string) (*Appliance, []byte) {
	t.Helper()
	a, err := OpenFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if len(a.Disks) != 1 {
		t.Fatalf("%d disks", len(a.Disks))
	}
	img, err := a.OpenDisk(0)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	b, err := io.ReadAll(io.NewSectionReader(img, 0, img.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if err := img.Verify(); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestWrite writes an OVA into a file (the disk streamed in place) and
// into a pipe (the disk spooled first): package ova reads both back with
// the .mf verified, the disk's bytes the source's, and the descriptor
// names what VMware and VirtualBox import.
func TestWrite(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 51})
	src, err := diskport.Open(golden, diskport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want, _ := os.ReadFile(golden)
	opts := WriteOptions{Name: "web-01", CPUs: 2, MemoryMiB: 2048}

	dir := t.TempDir()
	inPlace := filepath.Join(dir, "in-place.ova")
	f, err := os.Create(inPlace)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Write(context.Background(), f, src, opts)
	f.Close()
	if st, _ := os.Stat(inPlace); err != nil || st.Size() != n {
		t.Fatalf("Write to a file: %v (%d bytes returned)", err, n)
	}
	var pipe bytes.Buffer // no Seek: the spooled path
	if _, err := Write(context.Background(), &pipe, src, opts); err != nil {
		t.Fatal(err)
	}
	spooled := filepath.Join(dir, "spooled.ova")
	os.WriteFile(spooled, pipe.Bytes(), 0o644)

	for _, p := range []string{inPlace, spooled} {
		a, got := readBack(t, p)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the disk's bytes differ from the source's", p)
		}
		d := a.Disks[0]
		if a.Descriptor != "web-01.ovf" || a.Manifest != "web-01.mf" || d.File != "web-01-disk1.vmdk" || d.Format != diskport.VMDK || d.Capacity != int64(len(want)) ||
			a.System != "web-01" || d.Controller == "" || a.Version != "1.0" {
			t.Errorf("%s: appliance %+v, disk %+v", p, a, d)
		}
		ms, err := walk(a.s, 10)
		if err != nil || len(ms) != 3 || ms[0].Name != "web-01.ovf" || ms[2].Name != "web-01.mf" {
			t.Errorf("%s: members %v: %v", p, ms, err)
		}
		desc, _ := a.readMember("web-01.ovf", 1<<20)
		for _, s := range []string{"<NetworkSection>", "<rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>", "<rasd:VirtualQuantity>2048</rasd:VirtualQuantity>",
			"<rasd:VirtualQuantity>2</rasd:VirtualQuantity>", `ovf:populatedSize="`, "#streamOptimized", "<OperatingSystemSection"} {
			if !bytes.Contains(desc, []byte(s)) {
				t.Errorf("%s: the descriptor lacks %s", p, s)
			}
		}
	}

	// A flipped byte in the disk member fails its .mf check.
	b, _ := os.ReadFile(inPlace)
	i := bytes.Index(b, []byte("KDMV"))
	b[i+100<<10] ^= 1
	bad := filepath.Join(dir, "bad.ova")
	os.WriteFile(bad, b, 0o644)
	a, err := OpenFile(bad, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, err := a.OpenDisk(0)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	io.Copy(io.Discard, io.NewSectionReader(img, 0, img.Size()))
	if err := img.Verify(); err == nil || !strings.Contains(err.Error(), "web-01-disk1.vmdk") {
		t.Errorf("Verify of a changed member = %v", err)
	}
}

// TestWriteRefuses: a name that is not a bare file name, or hardware out
// of range, is refused before anything is written.
func TestWriteRefuses(t *testing.T) {
	src, err := diskport.OpenStorage(disk.NewMemStorage("mem", make([]byte, 1<<20)), diskport.Options{Format: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []WriteOptions{{Name: "../x"}, {Name: `a"b`}, {Name: strings.Repeat("n", 65)}, {CPUs: -1}, {MemoryMiB: 1 << 30}} {
		var b bytes.Buffer
		if _, err := Write(context.Background(), &b, src, o); err == nil || b.Len() != 0 {
			t.Errorf("%+v: err %v, %d bytes written", o, err, b.Len())
		}
	}
}
