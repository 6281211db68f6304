//go:build linux && !portable

package raw

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// TestBlockDevice reads a loop device backed by a golden disk. Tests run as
// root in CI; a machine without loop devices fails here with a message.
func TestBlockDevice(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 3})
	dev := LoopDevice(t, g)
	img, err := OpenFile(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Size() != 2<<20 {
		t.Fatalf("device size %d, want %d", img.Size(), 2<<20)
	}
	want, _ := os.ReadFile(g)
	disktest.Check(t, img, bytes.NewReader(want))
}

// LoopDevice attaches file to a read-only loop device for the test.
func LoopDevice(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup (loop devices are needed; run the tests as root on a machine with /dev/loop-control): %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}
