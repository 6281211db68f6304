package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
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
	_, err = Upload(ctx, S3Config{Endpoint: "http://127.0.0.1:1", AccessKey: "a", SecretKey: "b"}, vmdk,
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
	s, err := OpenStorage(ctx, m, store, StorageOptions{Name: mpath})
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

// A FIFO or socket as a part file, as the image or as the manifest file is
// refused at once: opening a FIFO blocks, and a FIFO part would hang
// convert forever.
func TestSpecialFilesRefused(t *testing.T) {
	m, dir, _ := created(t, 3<<20, 1<<20)
	part := filepath.Join(dir, m.Parts[1].Key)
	os.Remove(part)
	disktest.Mkfifo(t, part)
	sockPart := filepath.Join(dir, m.Parts[2].Key)
	os.Remove(sockPart)
	disktest.Listen(t, sockPart)
	ctx := context.Background()
	for _, i := range []int{1, 2} {
		err := disktest.Within(t, "OpenPart", func() error {
			r, err := DirStore{dir}.OpenPart(ctx, &m.Parts[i], 0, m.Parts[i].Length)
			if err == nil {
				r.Close()
			}
			return err
		})
		if !errors.Is(err, disk.ErrUnsafe) {
			t.Errorf("OpenPart(part %d) = %v, want ErrUnsafe", i, err)
		}
	}
	err := disktest.Within(t, "Verify", func() error {
		_, err := Verify(ctx, m, DirStore{dir}, VerifyOptions{Parallel: 2})
		return err
	})
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Errorf("Verify = %v, want ErrUnsafe", err)
	}
	err = disktest.Within(t, "Create", func() error {
		_, _, err := Create(ctx, part, t.TempDir(), SplitOptions{})
		return err
	})
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Errorf("Create(FIFO) = %v, want ErrUnsafe", err)
	}
	err = disktest.Within(t, "Open", func() error {
		_, _, err := Open(ctx, part, nil)
		return err
	})
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Errorf("Open(FIFO manifest) = %v, want ErrUnsafe", err)
	}
}
