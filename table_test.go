package diskport_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

func TestFormatTable(t *testing.T) {
	if got := diskport.Formats(); !slices.Equal(got, []diskport.Format{diskport.VMDK, diskport.VHD, diskport.VHDX, diskport.Raw}) {
		t.Errorf("Formats() = %v", got)
	}
	for name, want := range map[string]diskport.Format{
		"vmdk": diskport.VMDK, "VMDK": diskport.VMDK, "vhd": diskport.VHD, "VHD": diskport.VHD,
		"vpc": diskport.VHD, " VPC ": diskport.VHD, "raw": diskport.Raw, "RAW": diskport.Raw, "img": diskport.Raw,
	} {
		if f, err := diskport.ParseFormat(name); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", name, f, err, want)
		}
	}
	// Only formats Open reads parse (a declared qcow2 must not get as far as
	// the reader), and the message
	// lists the table's names, not a list of its own.
	for _, name := range []string{"qcow2", "QCOW2", "qed", ""} {
		f, err := diskport.ParseFormat(name)
		if !errors.Is(err, disk.ErrUnsupported) {
			t.Errorf("ParseFormat(%q) = %v, %v; want ErrUnsupported", name, f, err)
			continue
		}
		for _, g := range diskport.Formats() {
			if !strings.Contains(err.Error(), g.String()) {
				t.Errorf("ParseFormat(%q): %q does not name %s", name, err, g)
			}
		}
		if strings.Contains(err.Error(), "want RAW, VMDK or VHD") {
			t.Errorf("ParseFormat(%q): %q", name, err)
		}
	}
	for f, want := range map[diskport.Format]string{diskport.VMDK: "VMDK", diskport.VHD: "VHD", diskport.VHDX: "VHDX", diskport.Raw: "RAW", diskport.QCOW2: "", diskport.Tar: "OVA"} {
		if f.EC2Name() != want {
			t.Errorf("%s.EC2Name() = %q, want %q", f, f.EC2Name(), want)
		}
	}
	if got := diskport.ImportFormats(); !slices.Equal(got, []diskport.Format{diskport.VMDK, diskport.VHD, diskport.VHDX, diskport.Tar, diskport.Raw}) {
		t.Errorf("ImportFormats() = %v", got)
	}
	if _, err := diskport.ParseFormat("ova"); !errors.Is(err, disk.ErrUnsupported) || !strings.Contains(err.Error(), "recognised but not read") {
		t.Errorf(`ParseFormat("ova"): %v; want "recognised but not read" (package ova reads an OVA)`, err)
	}
	if !diskport.VMDK.HasParents() || !diskport.VHD.HasParents() || !diskport.VHDX.HasParents() || diskport.Raw.HasParents() {
		t.Error("HasParents")
	}
	if diskport.QCOW2.Readable() || !diskport.VHDX.Readable() || !diskport.Raw.Readable() {
		t.Error("Readable")
	}
}

// checkNoCLI asserts a library error carries no "diskport:" prefix of its
// own (the CLI adds one) and names no command-line flag: a program other than the CLI
// has no such flags.
func checkNoCLI(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "diskport:") || strings.Contains(msg, "--") {
		t.Errorf("%s: %q: a diskport: prefix or a CLI flag", what, msg)
	}
}

func TestErrorsInLibraryTerms(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 3})
	vmdk := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	_, err := diskport.Open(vmdk, diskport.Options{Format: "raw"})
	checkNoCLI(t, "mismatch", err)
	var me *diskport.MismatchError
	if !errors.As(err, &me) || !errors.Is(err, disk.ErrFormatMismatch) || me.Declared != diskport.Raw || me.Found != diskport.VMDK ||
		!strings.Contains(err.Error(), "Options.TrustFormat") || !strings.HasPrefix(err.Error(), vmdk+": declared RAW but the bytes are a VMDK") {
		t.Errorf("mismatch: %v", err)
	}
	_, err = diskport.Open(vmdk, diskport.Options{Format: "qed"})
	checkNoCLI(t, "unknown format", err)
	qcow := testimg.Make(t, g, "qcow2", "")
	_, err = diskport.Open(qcow, diskport.Options{})
	checkNoCLI(t, "qcow2", err)
	_, err = diskport.Open(g, diskport.Options{Parents: []string{g}})
	checkNoCLI(t, "raw with a parent", err)
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Errorf("raw with a parent: %v, want ErrUnsafe", err)
	}
}

// corruptVHD returns a fixed VHD whose footer edit damages.
func corruptVHD(t *testing.T, g string, edit func(f []byte)) string {
	t.Helper()
	b, err := os.ReadFile(testimg.Make(t, g, "vpc", "subformat=fixed"))
	if err != nil {
		t.Fatal(err)
	}
	edit(b[len(b)-512:])
	p := filepath.Join(t.TempDir(), "bad.vhd")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// vhdChecksum recomputes a VHD footer's checksum.
func vhdChecksum(f []byte) {
	binary.BigEndian.PutUint32(f[64:], 0)
	var sum uint32
	for _, c := range f {
		sum += uint32(c)
	}
	binary.BigEndian.PutUint32(f[64:], ^sum)
}

// Bytes with a format's signature that fail its checks are corrupt, never
// RAW: converting a damaged VMDK as RAW would copy its metadata as the disk.
func TestSignatureButCorrupt(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 4})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flat.bin"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	desc := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		"vhd-bad-checksum":   corruptVHD(t, g, func(f []byte) { f[64] ^= 0x40 }),
		"vhd-version-2":      corruptVHD(t, g, func(f []byte) { binary.BigEndian.PutUint32(f[12:], 0x00020000); vhdChecksum(f) }),
		"descriptor-version": desc("v.vmdk", "# Disk DescriptorFile\nversoin=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"flat.bin\" 0\n"),
		"descriptor-parse":   desc("p.vmdk", "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 20x8 FLAT \"flat.bin\" 0\n"),
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			if !strings.HasPrefix(name, "descriptor-parse") {
				h, err := disk.OpenHostFile(path)
				if err != nil {
					t.Fatal(err)
				}
				f, err := diskport.Detect(h)
				h.Close()
				if !errors.Is(err, disk.ErrCorrupt) {
					t.Fatalf("Detect = %v, %v; want ErrCorrupt", f, err)
				}
			}
			declared := []string{"", "vhd", "raw"}
			if strings.HasPrefix(name, "descriptor") {
				declared = []string{"", "vmdk"}
			}
			if name == "descriptor-version" {
				declared = append(declared, "raw")
			}
			for _, declared := range declared {
				img, err := diskport.Open(path, diskport.Options{Format: declared})
				if err == nil {
					img.Close()
				}
				if !errors.Is(err, disk.ErrCorrupt) || strings.Contains(err.Error(), "the bytes are RAW") {
					t.Errorf("Open(format %q) = %v, want ErrCorrupt", declared, err)
				}
			}
			// A caller who vouches for RAW gets the bytes as they are.
			img, err := diskport.Open(path, diskport.Options{Format: "raw", TrustFormat: true})
			if err != nil {
				t.Fatalf("trusted RAW: %v", err)
			}
			img.Close()
		})
	}
}

// Bytes two formats claim are refused, not taken by the first probe: a
// fixed VHD whose disk begins with a VMDK sparse header.
func TestDetectAmbiguous(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 6})
	b, err := os.ReadFile(testimg.Make(t, g, "vpc", "subformat=fixed"))
	if err != nil {
		t.Fatal(err)
	}
	copy(b, "KDMV")
	f, err := diskport.Detect(disk.NewMemStorage("both", b))
	if !errors.Is(err, disk.ErrUnsafe) || !strings.Contains(err.Error(), "VMDK") || !strings.Contains(err.Error(), "VHD") {
		t.Errorf("Detect = %v, %v; want ErrUnsafe naming VMDK and VHD", f, err)
	}
}

// A FIFO or socket named as the image, as a VMDK extent or as a parent is
// refused at once: opening a FIFO blocks until a writer comes (mkfifo
// f.vmdk; diskport info f.vmdk would hang forever).
func TestSpecialFilesRefused(t *testing.T) {
	dir := t.TempDir()
	fifo, sock := filepath.Join(dir, "f.vmdk"), filepath.Join(dir, "s.vmdk")
	disktest.Mkfifo(t, fifo)
	disktest.Listen(t, sock)
	desc := func(name, extent string) string {
		p := filepath.Join(dir, name)
		d := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"" + extent + "\" 0\n"
		if err := os.WriteFile(p, []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 5})
	base := testimg.Make(t, g, "vmdk", "")
	for _, c := range []struct {
		name, path string
		opts       diskport.Options
	}{
		{"FIFO image", fifo, diskport.Options{}},
		{"FIFO image, declared", fifo, diskport.Options{Format: "vmdk"}},
		{"socket image", sock, diskport.Options{}},
		{"FIFO extent", desc("d1.vmdk", "f.vmdk"), diskport.Options{}},
		{"socket extent", desc("d2.vmdk", "s.vmdk"), diskport.Options{}},
		{"FIFO extent by map", desc("d3.vmdk", "x.vmdk"), diskport.Options{ExtentFiles: map[string]string{"x.vmdk": fifo}}},
		{"FIFO parent", base, diskport.Options{Parents: []string{fifo}}},
		{"socket parent", base, diskport.Options{Parents: []string{sock}}},
	} {
		err := disktest.Within(t, c.name, func() error {
			img, err := diskport.Open(c.path, c.opts)
			if err == nil {
				img.Close()
			}
			return err
		})
		var ke *disk.FileKindError
		if !errors.Is(err, disk.ErrUnsafe) || !errors.As(err, &ke) {
			t.Errorf("%s: Open = %v, want a FileKindError (ErrUnsafe)", c.name, err)
		}
	}
}
