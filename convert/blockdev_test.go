//go:build linux && !portable

package convert

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBlockDevice converts onto a loop device that holds garbage: the
// device ends up holding the virtual disk and zeros.
func TestBlockDevice(t *testing.T) {
	img, want := openGolden(t, 3<<20+512, 7)
	back := filepath.Join(t.TempDir(), "backing")
	if err := os.WriteFile(back, bytes.Repeat([]byte{0xee}, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", back).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup (loop devices are needed; run as root): %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", dev).Run()
	// The default volume (1 GiB) does not fit the 8 MiB device.
	if _, err := Convert(context.Background(), img, dev, Options{}); err == nil || !strings.Contains(err.Error(), "holds") {
		t.Fatalf("err = %v, want the device too small", err)
	}
	res, err := Convert(context.Background(), img, dev, Options{VolumeSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Device {
		t.Error("Result.Device not set")
	}
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, 8<<20)
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(want)], want) || !bytes.Equal(got[len(want):], make([]byte, len(got)-len(want))) {
		t.Fatal("device does not hold the virtual disk followed by zeros")
	}
}
