package manifest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest/parts"
)

// A declared RAW for a VMDK is refused by Create and Upload as diskport's
// Open refuses it, so diskport never writes a manifest it then refuses to
// convert (a sniffer that accepted RAW for anything let it through).
func TestDeclaredFormatRule(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 11})
	vmdk := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	vhd := testimg.Make(t, golden, "vpc", "subformat=dynamic,force_size=on")
	ctx := context.Background()

	_, _, err := Create(ctx, vmdk, t.TempDir(), SplitOptions{Format: "RAW"})
	var me *diskport.MismatchError
	if !errors.As(err, &me) || me.Declared != diskport.Raw || me.Found != diskport.VMDK {
		t.Errorf("Create(VMDK declared RAW) = %v, want a mismatch", err)
	}
	// Upload checks the image before it talks to the endpoint.
	_, err = Upload(ctx, parts.S3Config{Endpoint: "http://127.0.0.1:1", AccessKey: "a", SecretKey: "b"}, vmdk,
		UploadOptions{SplitOptions: SplitOptions{Format: "raw"}, Bucket: "bucket"})
	if !errors.Is(err, disk.ErrFormatMismatch) {
		t.Errorf("Upload(VMDK declared RAW) = %v, want a mismatch", err)
	}

	// "vpc" is VHD here as in every verb; the manifest spells it VHD.
	m, _, err := Create(ctx, vhd, t.TempDir(), SplitOptions{Format: "vpc"})
	if err != nil || m.FileFormat != "VHD" {
		t.Fatalf("Create(VHD declared vpc) = %+v, %v", m, err)
	}
	// VHDX is declared like any other format: a VHD declared VHDX is a
	// mismatch.
	if _, _, err := Create(ctx, vhd, t.TempDir(), SplitOptions{Format: "vhdx"}); !errors.Is(err, disk.ErrFormatMismatch) {
		t.Errorf("Create(VHD declared vhdx) = %v, want a format mismatch", err)
	}

	// What Create writes, convert reads back under the manifest's format.
	m, mpath, err := Create(ctx, vmdk, t.TempDir(), SplitOptions{})
	if err != nil || m.FileFormat != "VMDK" {
		t.Fatalf("Create(VMDK) = %+v, %v", m, err)
	}
	m, store, err := Open(ctx, mpath, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := parts.OpenStorage(ctx, m.File(), store, parts.StorageOptions{Name: mpath})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	img, err := diskport.OpenStorage(s, diskport.Options{Format: m.FileFormat})
	if err != nil {
		t.Fatalf("OpenStorage of the manifest's own format %s: %v", m.FileFormat, err)
	}
	if img.Size() != 2<<20 {
		t.Errorf("size %d", img.Size())
	}
	img.Close()
}

// A FIFO as the image or as the manifest file is refused at once:
// opening a FIFO blocks. (Part files: parts.TestSpecialFilesRefused.)
func TestSpecialFilesRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "disk.img.manifest.xml")
	disktest.Mkfifo(t, fifo)
	ctx := context.Background()
	err := disktest.Within(t, "Create", func() error {
		_, _, err := Create(ctx, fifo, t.TempDir(), SplitOptions{})
		return err
	})
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Errorf("Create(FIFO) = %v, want ErrUnsafe", err)
	}
	err = disktest.Within(t, "Open", func() error {
		_, _, err := Open(ctx, fifo, nil)
		return err
	})
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Errorf("Open(FIFO manifest) = %v, want ErrUnsafe", err)
	}
}
