//go:build linux

package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGeomeanRatio(t *testing.T) {
	s := func(secs ...float64) []sample {
		var out []sample
		for _, x := range secs {
			out = append(out, sample{Wall: time.Duration(x * float64(time.Second))})
		}
		return out
	}
	// Pairs 2/1 and 2/4: ratios 2 and 0.5, geometric mean 1.
	if got := geomeanRatio(s(1, 4), s(2, 2), wall); math.Abs(got-1) > 1e-9 {
		t.Errorf("geomeanRatio = %v, want 1", got)
	}
	if got := geomeanRatio(s(1, 1, 1), s(2, 8, 4), wall); math.Abs(got-4) > 1e-9 {
		t.Errorf("geomeanRatio = %v, want 4", got)
	}
}

// measure runs each round in the order roundOrder gives.
func TestMeasureRotates(t *testing.T) {
	var order []string
	dir := t.TempDir()
	mk := func(name string) tool {
		return tool{name: name, out: filepath.Join(dir, name), run: func(string, bool) (sample, error) {
			order = append(order, name)
			return sample{Wall: time.Millisecond}, nil
		}}
	}
	got, err := measure([]tool{mk("a"), mk("b"), mk("c"), mk("d")}, "src", 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := "abdcbcadcdbadacb"; strings.Join(order, "") != want {
		t.Errorf("order %s, want %s", strings.Join(order, ""), want)
	}
	for i, s := range got {
		if len(s) != 4 {
			t.Errorf("tool %d: %d samples, want 4", i, len(s))
		}
	}
}

// qemuNbds returns the pids of qemu-nbd processes whose command line names
// sock.
func qemuNbds(t *testing.T, sock string) []string {
	t.Helper()
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte("qemu-nbd")) && bytes.Contains(cmdline, []byte(sock)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func nbdTools(t *testing.T) (qemuNbd, nbdcopy string) {
	t.Helper()
	var err error
	if qemuNbd, err = exec.LookPath("qemu-nbd"); err != nil {
		t.Fatalf("qemu-nbd is needed (Debian's qemu-utils; scripts/install-deps.sh): %v", err)
	}
	if nbdcopy, err = exec.LookPath("nbdcopy"); err != nil {
		t.Fatalf("nbdcopy is needed (Debian's libnbd-bin; scripts/install-deps.sh): %v", err)
	}
	return qemuNbd, nbdcopy
}

// The nbd pipeline copies the image's bytes, counts both processes' CPU
// and leaves no qemu-nbd behind, also when qemu-nbd fails.
func TestNbdPipeline(t *testing.T) {
	qemuNbd, nbdcopy := nbdTools(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	data := make([]byte, 3<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data[:1<<20] {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "nbd.sock")
	out := filepath.Join(dir, "out.raw")
	s, err := nbdPipeline(qemuNbd, nbdcopy, "raw", sock, out).run(src, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("nbdcopy's output differs from the source (%d bytes, %v)", len(got), err)
	}
	if s.Wall <= 0 || s.CPU <= 0 || s.MaxRSS <= 0 || s.PeakAnon <= 0 {
		t.Errorf("sample %+v: want every field measured", s)
	}
	if pids := qemuNbds(t, sock); len(pids) > 0 {
		t.Errorf("qemu-nbd still running after the copy: pids %v", pids)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind (%v)", sock, err)
	}

	start := time.Now()
	_, err = nbdPipeline(qemuNbd, nbdcopy, "vmdk", sock, out).run(src, false)
	if err == nil || !strings.Contains(err.Error(), "qemu-nbd") {
		t.Errorf("serving a raw file as vmdk: error %v, want qemu-nbd's", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("a failing qemu-nbd took %v to report", time.Since(start))
	}
	if pids := qemuNbds(t, sock); len(pids) > 0 {
		t.Errorf("qemu-nbd still running after a failure: pids %v", pids)
	}
}
