package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// testOVA builds a two-disk appliance the way ovftool lays it out (a
// streamOptimized VMDK boot disk on SCSI 0, a VHD on SCSI 1) and returns
// its path and the bare disk files in boot order.
func testOVA(t *testing.T) (string, []string) {
	t.Helper()
	g1 := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 1601})
	g2 := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 1602})
	v := testimg.Make(t, g1, "vmdk", "subformat=streamOptimized")
	h := testimg.Make(t, g2, "vpc", "")
	img, err := diskport.Open(h, diskport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	vhdSize := img.Size()
	img.Close()
	return testimg.OVA(t, testimg.OVASpec{Version: 1, Alg: "SHA256",
		Files: map[string]string{"app-disk1.vmdk": v, "app-disk2.vhd": h},
		Disks: []testimg.OVADisk{
			{ID: "vmdisk2", File: "app-disk2.vhd", Format: testimg.URIVHD, Capacity: fmt.Sprint(vhdSize), Ctl: 1},
			{ID: "vmdisk1", File: "app-disk1.vmdk", Format: testimg.URIStreamOptimized, Capacity: "3", Units: "byte * 2^20", Ctl: 0},
		}}), []string{v, h}
}

// info lists an OVA's virtual system and disks; convert takes its boot
// disk, --disk N another, --all every one, each checked against the .mf.
func TestOVAVerbs(t *testing.T) {
	path, bare := testOVA(t)
	code, out, errOut := call(t, "info", path)
	if code != 0 || !strings.Contains(out, "virtual system: appliance-vm") || !strings.Contains(out, "0: app-disk1.vmdk vmdk, capacity 3 MiB") ||
		!strings.Contains(out, "1: app-disk2.vhd vhd") || !strings.Contains(out, "subformat: streamOptimized") {
		t.Fatalf("info: %d %q %q", code, out, errOut)
	}
	code, out, _ = call(t, "info", "--output", "json", "--disk", "1", path)
	var j map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j["format"] != "vpc" || j["diskport"].(map[string]any)["appliance"].(map[string]any)["virtual-system"] != "appliance-vm" {
		t.Fatalf("info --output json --disk 1: %d %q", code, out)
	}
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot.raw")
	if code, out, errOut := call(t, "convert", "--exact-size", path, boot); code != 0 {
		t.Fatalf("convert: %d %q %q", code, out, errOut)
	}
	testimg.SameAsQemu(t, boot, bare[0])
	second := filepath.Join(dir, "second.raw")
	if code, out, errOut := call(t, "convert", "--exact-size", "--disk", "1", path, second); code != 0 {
		t.Fatalf("convert --disk 1: %d %q %q", code, out, errOut)
	}
	testimg.SameAsQemu(t, second, bare[1])
	all := t.TempDir()
	if code, out, errOut := call(t, "convert", "--exact-size", "--all", all, path); code != 0 || strings.Count(out, "converted") != 2 {
		t.Fatalf("convert --all: %d %q %q", code, out, errOut)
	}
	testimg.SameAsQemu(t, filepath.Join(all, "appliance-0.raw"), bare[0])
	testimg.SameAsQemu(t, filepath.Join(all, "appliance-1.raw"), bare[1])
	if code, _, errOut := call(t, "convert", "--disk", "2", path, filepath.Join(dir, "x.raw")); code != 1 || !strings.Contains(errOut, "no disk 2") {
		t.Errorf("convert --disk 2: %d %q", code, errOut)
	}
	// A flipped byte in the VHD member fails the conversion naming it.
	b, _ := os.ReadFile(path)
	i := bytes.Index(b, []byte("app-disk2.vhd\x00"))
	j2 := i + 512 + 1<<20 + 5
	b[j2] ^= 1
	bad := filepath.Join(dir, "bad.ova")
	os.WriteFile(bad, b, 0o644)
	if code, _, errOut := call(t, "convert", "--disk", "1", bad, filepath.Join(dir, "bad.raw")); code != 1 || !strings.Contains(errOut, `"app-disk2.vhd"`) || !strings.Contains(errOut, "checksum mismatch") {
		t.Errorf("convert of a flipped member: %d %q", code, errOut)
	}
	// An OVA without an .mf is refused with the flag that accepts it.
	noMF := testimg.OVA(t, testimg.OVASpec{Version: 2, Files: map[string]string{"d.vmdk": bare[0]},
		Disks: []testimg.OVADisk{{ID: "d", File: "d.vmdk", Format: testimg.URIStreamOptimized, Capacity: "3145728"}}})
	if code, _, errOut := call(t, "convert", noMF, filepath.Join(dir, "nomf.raw")); code != 1 || !strings.Contains(errOut, "no .mf manifest") || !strings.Contains(errOut, "--no-verify-manifest") {
		t.Errorf("convert of an OVA without .mf: %d %q", code, errOut)
	}
	if code, _, errOut := call(t, "convert", "--exact-size", "--no-verify-manifest", noMF, filepath.Join(dir, "nomf.raw")); code != 0 {
		t.Errorf("convert --no-verify-manifest: %d %q", code, errOut)
	}
	testimg.SameAsQemu(t, filepath.Join(dir, "nomf.raw"), bare[0])
	// A gzip-compressed member (ovftool --compress) converts as a stream.
	gz := testimg.OVA(t, testimg.OVASpec{Version: 1, Alg: "SHA1", Files: map[string]string{"d.vmdk": bare[0]},
		Disks: []testimg.OVADisk{{ID: "d", File: "d.vmdk", Format: testimg.URIStreamOptimized, Capacity: "3145728", Gzip: true}}})
	if code, _, errOut := call(t, "convert", "--exact-size", gz, filepath.Join(dir, "gz.raw")); code != 0 {
		t.Fatalf("convert of a gzip member: %d %q", code, errOut)
	}
	testimg.SameAsQemu(t, filepath.Join(dir, "gz.raw"), bare[0])
	if code, _, errOut := call(t, "info", "--disk", "1", bare[0]); code != 2 || !strings.Contains(errOut, "not one") {
		t.Errorf("info --disk of a VMDK: %d %q", code, errOut)
	}
	// Declared raw still reads the tar as RAW; undeclared through the
	// library it is refused.
	if code, out, _ := call(t, "info", "--format", "raw", path); code != 0 || !strings.Contains(out, "file format: raw") {
		t.Errorf("info --format raw: %d %q", code, out)
	}
}

// manifest create takes an OVA's disk in place: the parts are the disk
// member's bytes, checked against the .mf as they are cut, and the
// manifest converts like the bare disk.
func TestOVAManifestCreate(t *testing.T) {
	path, bare := testOVA(t)
	dir := t.TempDir()
	code, out, errOut := call(t, "manifest", "create", "--part-size", "256KiB", "--disk", "1", path, dir)
	if code != 0 || !strings.Contains(out, "VHD") {
		t.Fatalf("manifest create: %d %q %q", code, out, errOut)
	}
	man := filepath.Join(dir, "appliance-1.vhd.manifest.xml")
	vol := filepath.Join(dir, "vol.raw")
	if code, out, errOut := call(t, "convert", "--exact-size", "--manifest", man, vol); code != 0 {
		t.Fatalf("convert --manifest: %d %q %q", code, out, errOut)
	}
	testimg.SameAsQemu(t, vol, bare[1])
	b, _ := os.ReadFile(path)
	i := bytes.Index(b, []byte("app-disk2.vhd\x00"))
	b[i+512+1<<20+5] ^= 1
	bad := filepath.Join(dir, "bad.ova")
	os.WriteFile(bad, b, 0o644)
	if code, _, errOut := call(t, "manifest", "create", "--disk", "1", bad, t.TempDir()); code != 1 || !strings.Contains(errOut, `"app-disk2.vhd"`) {
		t.Errorf("manifest create of a flipped member: %d %q", code, errOut)
	}
}

// manifest create --format ova cuts the whole appliance: the parts join
// to the OVA's bytes and the manifest says OVA. A declared OVA must be
// one; --disk does not go with it.
func TestOVAManifestCreateWhole(t *testing.T) {
	path, _ := testOVA(t)
	dir := t.TempDir()
	code, out, errOut := call(t, "manifest", "create", "--part-size", "256KiB", "--format", "ova", path, dir)
	if code != 0 || !strings.Contains(out, ": OVA, ") {
		t.Fatalf("manifest create --format ova: %d %q %q", code, out, errOut)
	}
	code, out, _ = call(t, "manifest", "show", "--output", "json", filepath.Join(dir, "appliance.ova.manifest.xml"))
	st, _ := os.Stat(path)
	if code != 0 || !strings.Contains(out, `"file-format": "OVA"`) || !strings.Contains(out, fmt.Sprintf(`"size": %d`, st.Size())) {
		t.Fatalf("manifest show: %d %q", code, out)
	}
	if code, _, errOut := call(t, "manifest", "create", "--format", "ova", "--disk", "1", path, t.TempDir()); code != 2 || !strings.Contains(errOut, "whole appliance") {
		t.Errorf("--format ova --disk 1: %d %q", code, errOut)
	}
	_, bare := testOVA(t)
	if code, _, errOut := call(t, "manifest", "create", "--format", "ova", bare[0], t.TempDir()); code != 1 || !strings.Contains(errOut, "declared OVA but the bytes are a VMDK") {
		t.Errorf("--format ova of a VMDK: %d %q", code, errOut)
	}
}

// upload takes an OVA's boot disk in place, against a real MinIO: the
// manifest's parts convert like the bare disk.
func TestOVAUpload(t *testing.T) {
	path, bare := testOVA(t)
	s := s3test.Shared(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", s.Region)
	code, out, errText := call(t, "upload", "--endpoint", s.Endpoint, "--bucket", s.Bucket(t), "--create-bucket", "--part-size", "256KiB", path)
	if code != 0 {
		t.Fatalf("upload: %d %s", code, errText)
	}
	vol := filepath.Join(t.TempDir(), "vol.raw")
	if code, _, errText := call(t, "convert", "--exact-size", "--no-sync", "--manifest", strings.TrimSpace(out), vol); code != 0 {
		t.Fatalf("convert --manifest: %d %s", code, errText)
	}
	testimg.SameAsQemu(t, vol, bare[0])
	// --format ova uploads the whole appliance, for ImportInstance.
	code, out, errText = call(t, "upload", "--endpoint", s.Endpoint, "--bucket", s.Bucket(t), "--create-bucket", "--part-size", "256KiB", "--format", "OVA", path)
	if code != 0 || !strings.Contains(errText, "(OVA), ") {
		t.Fatalf("upload --format OVA: %d %s", code, errText)
	}
	st, _ := os.Stat(path)
	code, shown, _ := call(t, "manifest", "show", "--output", "json", strings.TrimSpace(out))
	if code != 0 || !strings.Contains(shown, `"file-format": "OVA"`) || !strings.Contains(shown, fmt.Sprintf(`"size": %d`, st.Size())) {
		t.Fatalf("manifest show of the uploaded OVA: %d %q", code, shown)
	}
}
