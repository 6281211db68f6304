package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// rawOVA builds an appliance of two RAW disks (boot disk first), with an
// .mf of SHA-256 checksums unless noMF.
func rawOVA(t *testing.T, noMF bool) string {
	t.Helper()
	d1, _ := testimg.MixedFile(t, 3<<20, 161)
	d2, _ := testimg.MixedFile(t, 1<<20+512, 162)
	alg := "SHA256"
	if noMF {
		alg = ""
	}
	return testimg.OVA(t, testimg.OVASpec{Version: 1, Alg: alg, Files: map[string]string{"a.img": d1, "b.img": d2},
		Disks: []testimg.OVADisk{
			{ID: "a", File: "a.img", Format: testimg.URIRaw, Capacity: fmt.Sprint(3 << 20)},
			{ID: "b", File: "b.img", Format: testimg.URIRaw, Capacity: fmt.Sprint(1<<20 + 512), Ctl: 1},
		}})
}

// A declared OVA is cut whole into parts, as EC2 takes an appliance: its
// file-format is OVA, its size the archive's, its volume-size the boot
// disk's. It must be an appliance package ova opens; an undeclared one is
// not taken for one; OpenImage reads its disks.
func TestCreateOVA(t *testing.T) {
	ctx := context.Background()
	path := rawOVA(t, false)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, mpath, err := Create(ctx, path, dir, SplitOptions{Format: "ova", PartSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if m.FileFormat != FormatOVA || FormatOVA != "OVA" || m.Format() != diskport.Tar || m.Size != int64(len(data)) || m.VolumeSize != 1 {
		t.Fatalf("manifest %s: file-format %s, size %d of %d, volume %d GiB", mpath, m.FileFormat, m.Size, len(data), m.VolumeSize)
	}
	var joined []byte
	for _, p := range m.Parts {
		b, err := os.ReadFile(filepath.Join(dir, p.Key))
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, b...)
	}
	if !bytes.Equal(joined, data) {
		t.Fatal("the parts do not join to the OVA")
	}
	doc, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	if m2, err := ParseBytes(doc); err != nil || m2.FileFormat != FormatOVA {
		t.Fatalf("reading the OVA manifest back: %v", err)
	}
	if !strings.Contains(ec2Names(), "OVA") {
		t.Errorf("ec2Names() = %q", ec2Names())
	}
	// The one import path reads the appliance's disks from the parts,
	// each checked against the .mf and the parts' sums.
	boot, err := OpenImage(ctx, Source{Manifest: mpath}, ImageOptions{})
	if err != nil {
		t.Fatalf("OpenImage of an OVA manifest: %v", err)
	}
	second, err := boot.Disk(1)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range []*Image{boot, second} {
		want := []int64{3 << 20, 1<<20 + 512}[i]
		if a, n := img.Appliance(); a == nil || n != i || img.Size() != want {
			t.Errorf("disk %d: appliance %v, number %d, size %d of %d", i, a != nil, n, img.Size(), want)
		}
		if err := img.Verify(); err != nil {
			t.Errorf("disk %d: Verify: %v", i, err)
		}
	}
	second.Close()
	boot.Close()

	notOVF, _ := testimg.MixedFile(t, 4096, 3)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "disk.img", Mode: 0o644, Size: 4096})
	tw.Write(data[:4096])
	tw.Close()
	plainTar := filepath.Join(t.TempDir(), "plain.tar")
	if err := os.WriteFile(plainTar, tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, image, format string
		class               error
		want                string
	}{
		{"undeclared", path, "", disk.ErrUnsupported, "tar archive"},
		{"a RAW disk declared OVA", notOVF, "OVA", disk.ErrFormatMismatch, "declared OVA but the bytes are a RAW disk"},
		{"a tar without .ovf", plainTar, "OVA", disk.ErrCorrupt, "no .ovf descriptor"},
		{"an OVA without .mf", rawOVA(t, true), "OVA", disk.ErrUnsafe, "no .mf manifest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Create(ctx, c.image, t.TempDir(), SplitOptions{Format: c.format})
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Create: %v; want %v saying %q", err, c.class, c.want)
			}
		})
	}
}
