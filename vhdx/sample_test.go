package vhdx

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// Expected results from /work/shared/samples/README.md (qemu-img 7.2).
const (
	shaDynamic1G = "d3d112d8dab7fd360609f7d5a7b769904b7a2a7d7b6b8c535f65a23293c05478"
	shaDisk2vhd  = "96d964042be9b58dda1725567abfb0cf9fd8380e2118754afa979c2ad445938a"
	// After `qemu-img check -r all` on a copy.
	shaDirtyLog = "179cefe8b0587f123393eedf2aa7aa8d25798591178e6bc3950a09762f38f96f"
)

// openSample opens testdata/name.bz2, checking that Probe accepts it.
func openSample(t testing.TB, name string, opts Options) (*Image, string) {
	t.Helper()
	path := sample(t, name)
	s := openFile(t, path)
	if ok, err := Probe(s); !ok || err != nil {
		t.Errorf("Probe(%s) = %v, %v", name, ok, err)
	}
	m, err := Open(s, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m, path
}

// TestSampleDynamic1G: Hyper-V (Windows Server 2012) dynamic VHDX, 1 GiB
// in 32 MiB blocks, 0xa5 over 0-33 MiB, 0x96 over 33-66 MiB, zeros after.
func TestSampleDynamic1G(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a 1 GiB sample, hashed and read whole")
	}
	m, path := openSample(t, "iotest-dynamic-1G.vhdx", Options{})
	if m.Size() != 1<<30 || m.BlockSize() != 32<<20 || m.Subformat() != "dynamic" || m.LogReplayed() {
		t.Fatalf("Size %d BlockSize %d Subformat %s LogReplayed %v", m.Size(), m.BlockSize(), m.Subformat(), m.LogReplayed())
	}
	if got := sha256Image(t, m, m.Size()); got != shaDynamic1G {
		t.Errorf("sha256 %s, want %s", got, shaDynamic1G)
	}
	b := make([]byte, 1)
	for _, c := range []struct {
		off  int64
		want byte
	}{{0, 0xa5}, {33<<20 - 1, 0xa5}, {33 << 20, 0x96}, {66<<20 - 1, 0x96}, {66 << 20, 0}} {
		if _, err := m.ReadAt(b, c.off); err != nil || b[0] != c.want {
			t.Errorf("byte %d = %#x (%v), want %#x", c.off, b[0], err, c.want)
		}
	}
	exts := disktest.CheckExtents(t, m)
	if len(exts) != 2 || exts[0].Kind != disk.Data || exts[0].Length != 96<<20 || exts[0].Stored != disk.Storage(m.s) || exts[1].Kind != disk.Zero {
		t.Errorf("extents %+v, want one stored run of the 3 blocks (contiguous in the file) and zeros", exts)
	}
	want, err := os.Open(testimg.QemuRaw(t, path, "-f", "vhdx"))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	disktest.Check(t, m, want)
	info := m.Info()
	if info.Format != "vhdx" || info.Subformat != "dynamic" || info.ClusterSize != 32<<20 || info.Specific["creator"] != "Microsoft Windows 6.2.9200.16384" {
		t.Errorf("Info %+v", info)
	}
}

// TestSampleDisk2vhd: two identical headers with the same sequence number
// are valid (qemu commit 26e2da7279).
func TestSampleDisk2vhd(t *testing.T) {
	m, path := openSample(t, "test-disk2vhd.vhdx", Options{})
	if m.Size() != 256<<20 || m.BlockSize() != 2<<20 {
		t.Fatalf("Size %d BlockSize %d", m.Size(), m.BlockSize())
	}
	if note := m.Info().Specific["header"]; note != "header 1 (both identical, same sequence number)" {
		t.Errorf("header note %q", note)
	}
	if got := sha256Image(t, m, m.Size()); got != shaDisk2vhd {
		t.Errorf("sha256 %s, want %s", got, shaDisk2vhd)
	}
	want, err := os.Open(testimg.QemuRaw(t, path, "-f", "vhdx"))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	disktest.Check(t, m, want)
}

// TestSampleDirtyLog: qemu's 10 GiB dynamic VHDX whose log holds one
// unreplayed data sector. qemu refuses to read it read-only; diskport
// replays the log in memory and must read what qemu reads after
// `qemu-img check -r all` on a copy — without touching the original.
func TestSampleDirtyLog(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a 10 GiB sample, hashed whole and converted by qemu-img")
	}
	path := sample(t, "iotest-dirtylog-10G-4M.vhdx")
	before := sha256File(t, path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := openSample(t, "iotest-dirtylog-10G-4M.vhdx", Options{})
	if !m.LogReplayed() || m.Info().Specific["log_replayed"] != true {
		t.Fatalf("log not replayed: %v", m.Info().Specific["log"])
	}
	if !strings.Contains(m.Info().Specific["log"].(string), "1 data sector,") {
		t.Errorf("log note %q", m.Info().Specific["log"])
	}
	if m.Size() != 10<<30 {
		t.Fatalf("Size %d", m.Size())
	}
	// The log's one data sector is the BAT's first sector, which makes
	// block 17 (1 MiB blocks) present: after replay the 0xa5 pattern runs
	// to 18 MiB, without it to 17 MiB (checked against qemu's output of
	// the repaired copy below; the samples README's "0xc025000" does not
	// describe these bytes).
	if exts := disktest.CheckExtents(t, m); len(exts) != 11 || exts[len(exts)-1].Offset != 18<<20 || exts[len(exts)-1].Kind != disk.Zero {
		t.Errorf("extents %+v, want 10 stored runs over 18 MiB, then zeros", exts)
	}
	b := make([]byte, 1<<20+1)
	if _, err := m.ReadAt(b, 17<<20); err != nil {
		t.Fatal(err)
	}
	for i, c := range b[:1<<20] {
		if c != 0xa5 {
			t.Fatalf("byte %#x = %#x, want 0xa5 (log not applied)", 17<<20+i, c)
		}
	}
	if b[1<<20] != 0 {
		t.Errorf("byte 18 MiB = %#x, want 0", b[1<<20])
	}
	if !raceEnabled {
		if got := sha256Image(t, m, m.Size()); got != shaDirtyLog {
			t.Errorf("sha256 %s, want %s", got, shaDirtyLog)
		}
	}

	// qemu-img refuses the original read-only ...
	out, err := exec.Command(testimg.QemuImg(t), "convert", "-f", "vhdx", "-O", "raw", path, filepath.Join(t.TempDir(), "x.raw")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "log that needs to be replayed") {
		t.Errorf("qemu-img convert of the dirty original: %v: %s (want a refusal)", err, out)
	}
	// ... and reads a repaired copy as diskport reads the original.
	cp := filepath.Join(t.TempDir(), "copy.vhdx")
	if out, err := exec.Command("cp", "--sparse=always", path, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if out, err := exec.Command(testimg.QemuImg(t), "check", "-r", "all", "-f", "vhdx", cp).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check -r all: %v: %s", err, out)
	}
	want, err := os.Open(testimg.QemuRaw(t, cp, "-f", "vhdx"))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	disktest.Check(t, m, want)
	// Every byte the file holds is in the first 18 MiB: compare 64 MiB in
	// full (disktest samples an image this large); our hash above covers
	// the rest.
	got, exp := make([]byte, 64<<20), make([]byte, 64<<20)
	if _, err := m.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := want.ReadAt(exp, 0); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, exp); i >= 0 {
		t.Errorf("byte %d differs from qemu's output of the repaired copy", i)
	}

	// The original is untouched.
	st2, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after := sha256File(t, path); after != before || !st2.ModTime().Equal(st.ModTime()) || st2.Size() != st.Size() {
		t.Errorf("the original changed: sha256 %s -> %s, mtime %v -> %v", before, after, st.ModTime(), st2.ModTime())
	}
}
