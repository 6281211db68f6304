package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// Errors print with one "diskport:" and advice for the verb at hand: flags
// where the verb has them, the manifest where it declared the format.
func TestFormatErrorsOnePrefix(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 8})
	vmdk := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	code, _, errOut := call(t, "info", "--format", "raw", vmdk)
	if code != 1 || strings.Count(errOut, "diskport:") != 1 || !strings.Contains(errOut, "--format VMDK") || !strings.Contains(errOut, "--trust-format") || strings.Contains(errOut, "Options.") {
		t.Errorf("info --format raw of a VMDK: %d %q", code, errOut)
	}
	code, _, errOut = call(t, "info", "--format", "qcow2", vmdk)
	if code != 1 || strings.Count(errOut, "diskport:") != 1 || !strings.Contains(errOut, diskport.FormatNames()) {
		t.Errorf("info --format qcow2: %d %q", code, errOut)
	}
	// A manifest declaring RAW for a VMDK can only be written on trust;
	// converting from it must not advise a flag convert --manifest lacks.
	dir := t.TempDir()
	if code, _, errOut := call(t, "manifest", "create", "--format", "raw", vmdk, dir); code != 1 || !strings.Contains(errOut, "declared RAW but the bytes are a VMDK") {
		t.Fatalf("manifest create --format raw of a VMDK: %d %q", code, errOut)
	}
	if code, _, errOut := call(t, "manifest", "create", "--format", "raw", "--trust-format", vmdk, dir); code != 0 {
		t.Fatalf("manifest create --trust-format: %d %q", code, errOut)
	}
	man := filepath.Join(dir, filepath.Base(vmdk)+".manifest.xml")
	code, _, errOut = call(t, "convert", "--manifest", man, filepath.Join(dir, "out.raw"))
	if code != 1 || strings.Count(errOut, "diskport:") != 1 || strings.Contains(errOut, "trust") || strings.Contains(errOut, "Options.") || !strings.Contains(errOut, "manifest's file-format") {
		t.Errorf("convert --manifest of a RAW manifest of a VMDK: %d %q", code, errOut)
	}
	vhd := testimg.Make(t, g, "vpc", "")
	if code, out, errOut := call(t, "info", "--format", "vpc", vhd); code != 0 || !strings.Contains(out, "vhd") {
		t.Errorf("info --format vpc: %d %q %q", code, out, errOut)
	}
	if code, out, _ := call(t, "help"); code != 0 || !strings.Contains(out, diskport.FormatNames()) {
		t.Errorf("help: %q", out)
	}
}

// diskport info on a FIFO fails at once rather than block on its open.
func TestInfoFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "f.vmdk")
	disktest.Mkfifo(t, fifo)
	var code int
	var errOut string
	disktest.Within(t, "diskport info FIFO", func() error {
		code, _, errOut = call(t, "info", fifo)
		return nil
	})
	if code != 1 || !strings.Contains(errOut, "is a FIFO") {
		t.Errorf("info FIFO: %d %q", code, errOut)
	}
}

// A FIFO as a key file is refused at once.
func TestKeyFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "key.pem")
	disktest.Mkfifo(t, fifo)
	for name, read := range map[string]func(string) error{
		"public":  func(p string) error { _, err := readPublicKey(p); return err },
		"private": func(p string) error { _, err := readPrivateKey(p); return err },
	} {
		if err := disktest.Within(t, name+" key", func() error { return read(fifo) }); !errors.Is(err, disk.ErrUnsafe) {
			t.Errorf("reading a FIFO %s key: %v, want ErrUnsafe", name, err)
		}
	}
}
