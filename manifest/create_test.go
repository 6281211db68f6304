package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest/parts"
)

func TestCreate(t *testing.T) {
	const size, ps = 5<<20 + 1234, 1 << 20
	img, data := testimg.MixedFile(t, size, 1)
	dir := t.TempDir()
	m, mpath, err := Create(context.Background(), img, dir, SplitOptions{PartSize: ps})
	if err != nil {
		t.Fatal(err)
	}
	if mpath != filepath.Join(dir, "disk.img.manifest.xml") {
		t.Fatalf("manifest path %s", mpath)
	}
	if len(m.Parts) != 6 || m.Size != size || m.FileFormat != FormatRAW || m.VolumeSize != 1 {
		t.Fatalf("manifest %+v", m)
	}
	sum := sha256.Sum256(data)
	if m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("file sha256 %s", m.SHA256)
	}
	var joined []byte
	for i, p := range m.Parts {
		if p.Key != "disk.img.part"+string(rune('0'+i)) {
			t.Fatalf("part %d key %q", i, p.Key)
		}
		b, err := os.ReadFile(filepath.Join(dir, p.Key))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		if p.SHA256 != hex.EncodeToString(s[:]) || int64(len(b)) != p.Length {
			t.Fatalf("part %d: %d bytes, sha %s; manifest %+v", i, len(b), hex.EncodeToString(s[:]), p)
		}
		joined = append(joined, b...)
	}
	if !bytes.Equal(joined, data) {
		t.Fatal("parts do not join to the file")
	}
	doc, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ParseBytes(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("written manifest differs:\n%+v\n%+v", m, m2)
	}
	rep, err := parts.Verify(context.Background(), m2.File(), parts.DirStore{Dir: dir}, parts.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Parts != 6 || rep.Bytes != size || !rep.Checksums || rep.SHA256 != m.SHA256 {
		t.Fatalf("report %+v", rep)
	}
}

func TestCreateOptions(t *testing.T) {
	img, _ := testimg.MixedFile(t, 3000, 2)
	dir := t.TempDir()
	m, _, err := Create(context.Background(), img, dir, SplitOptions{PartSize: 1000, Naming: NamingEuca2ools, Name: "x.raw", KeyPrefix: "pre", VolumeSize: 9 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if m.Parts[2].Key != "pre/x.raw.part.2" || m.VolumeSize != 9 {
		t.Fatalf("%+v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.raw.part.2")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.raw.manifest.xml")); err != nil {
		t.Fatal(err)
	}
	if _, err := parts.Verify(context.Background(), m.File(), parts.DirStore{Dir: dir}, parts.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Exactly one part when the size is a multiple; an empty file is
	// refused.
	m, _, err = Create(context.Background(), img, t.TempDir(), SplitOptions{PartSize: 3000})
	if err != nil || len(m.Parts) != 1 {
		t.Fatalf("%v %+v", err, m)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o644)
	m, _, err = Create(context.Background(), empty, t.TempDir(), SplitOptions{})
	if !errors.Is(err, disk.ErrCorrupt) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty image: %v %+v", err, m)
	}
}

// TestCreateFormats sniffs qemu-img's VMDK and VHD and checks declared
// formats against the bytes.
func TestCreateFormats(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 6})
	cases := []struct {
		file, format string
		virtual      int64
	}{
		{golden, FormatRAW, 3<<20 + 512},
		{testimg.Make(t, golden, "vmdk", "subformat=streamOptimized"), FormatVMDK, 3<<20 + 512},
		{testimg.Make(t, golden, "vmdk", "subformat=monolithicSparse"), FormatVMDK, 3<<20 + 512},
		{testimg.Make(t, golden, "vpc", "subformat=dynamic,force_size=on"), FormatVHD, 3<<20 + 512},
		{testimg.Make(t, golden, "vpc", "subformat=fixed,force_size=on"), FormatVHD, 3<<20 + 512},
	}
	for _, c := range cases {
		f, err := openImage(c.file)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.File().Stat()
		format, virtual, err := imageFormat(f, &SplitOptions{})
		f.Close()
		if err != nil || format != c.format || virtual != c.virtual {
			t.Errorf("%s: imageFormat = %s %d %v, want %s %d", c.file, format, virtual, err, c.format, c.virtual)
		}
		m, _, err := Create(context.Background(), c.file, t.TempDir(), SplitOptions{PartSize: 1 << 20})
		if err != nil || m.FileFormat != c.format || m.Size != st.Size() {
			t.Errorf("%s: Create = %v %+v", c.file, err, m)
		}
	}
	vmdk := cases[1].file
	if _, _, err := Create(context.Background(), golden, t.TempDir(), SplitOptions{Format: "vmdk"}); !errors.Is(err, disk.ErrFormatMismatch) {
		t.Errorf("raw declared VMDK: err = %v", err)
	}
	// A declared RAW is checked like any declared format (diskport.Open
	// refuses to convert a VMDK declared RAW), unless trusted.
	if _, _, err := Create(context.Background(), vmdk, t.TempDir(), SplitOptions{Format: "raw"}); !errors.Is(err, disk.ErrFormatMismatch) {
		t.Errorf("VMDK declared raw: err = %v, want a format mismatch", err)
	}
	if m, _, err := Create(context.Background(), vmdk, t.TempDir(), SplitOptions{Format: "raw", TrustFormat: true}); err != nil || m.FileFormat != FormatRAW {
		t.Errorf("VMDK declared raw, trusted: %v", err)
	}
	if _, _, err := Create(context.Background(), golden, t.TempDir(), SplitOptions{Format: "qcow2"}); !errors.Is(err, disk.ErrUnsupported) {
		t.Errorf("qcow2: err = %v", err)
	}
	if _, _, err := Create(context.Background(), golden, t.TempDir(), SplitOptions{VolumeSize: 0}); err != nil {
		t.Error(err)
	}
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, nil, 0o644)
	os.Truncate(big, 3<<30+1)
	if m, _, err := describeFile(t, big, SplitOptions{PartSize: 1 << 30}); err != nil || m.VolumeSize != 4 || len(m.Parts) != 4 {
		t.Errorf("3 GiB+1: %v %+v", err, m)
	}
	if _, _, err := describeFile(t, big, SplitOptions{VolumeSize: 3 << 30}); !errors.Is(err, disk.ErrTooLarge) {
		t.Errorf("volume too small: err = %v", err)
	}
	desc := filepath.Join(t.TempDir(), "d.vmdk")
	os.WriteFile(desc, []byte("# Disk DescriptorFile\nversion=1\n"), 0o644)
	if _, _, err := Create(context.Background(), desc, t.TempDir(), SplitOptions{}); !errors.Is(err, disk.ErrUnsupported) || !strings.Contains(err.Error(), "descriptor") {
		t.Errorf("descriptor: err = %v", err)
	}
}

func describeFile(t *testing.T, path string, o SplitOptions) (*Manifest, int64, error) {
	f, err := openImage(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := describe(f, "big", &o)
	return m, f.Size(), err
}
