//go:build linux && !portable

package volume

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// loopDevice returns a loop device over a file of size bytes of 0xee.
func loopDevice(t *testing.T, size int) string {
	back := filepath.Join(t.TempDir(), "backing")
	if err := os.WriteFile(back, bytes.Repeat([]byte{0xee}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", back).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup (loop devices are needed; run as root): %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func readDevice(t *testing.T, dev string, n int) []byte {
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBlockDevice writes onto a loop device holding garbage: a device not
// declared zeroed gets every zero written; one declared zeroed is trusted.
func TestBlockDevice(t *testing.T) {
	dev := loopDevice(t, 8<<20)
	if _, err := Create(dev, 16<<20, Options{}); err == nil || !strings.Contains(err.Error(), "holds") {
		t.Errorf("too small a device: %v", err)
	}
	if _, err := Create(dev, 8<<20, Options{Resume: true, Journal: &spec}); err == nil || !strings.Contains(err.Error(), "block device") {
		t.Errorf("resume onto a device: %v", err)
	}
	w, err := Create(dev, 8<<20, Options{Journal: &spec})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Device() || w.Journal() != nil {
		t.Errorf("Device %v, Journal %v", w.Device(), w.Journal())
	}
	buf := append(pattern(zeroBlock, 1), make([]byte, 2*zeroBlock)...)
	if err := w.Fill(buf, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.FillZero(3*zeroBlock, 8<<20-3*zeroBlock); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 8<<20)
	copy(want, buf)
	if !bytes.Equal(readDevice(t, dev, 8<<20), want) {
		t.Fatal("the device does not hold the volume")
	}
	// Declared zeroed: zeros are not written, so the garbage shows.
	dev2 := loopDevice(t, 1<<20)
	w, err = Create(dev2, 1<<20, Options{DeviceZeroed: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Fill(buf, 0)
	w.FillZero(3*zeroBlock, 1<<20-3*zeroBlock)
	w.Commit()
	got := readDevice(t, dev2, 1<<20)
	if !bytes.Equal(got[:zeroBlock], buf[:zeroBlock]) || got[zeroBlock] != 0xee || got[1<<20-1] != 0xee {
		t.Error("zeros were written to a device declared zeroed")
	}
	if _, err := os.Stat(PartialName(dev)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a device volume made a partial file")
	}
}
