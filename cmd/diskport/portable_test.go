//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// linuxOnly are the calls only the Linux fast paths make: openat2
// (extents resolved beneath their directory), copy_file_range,
// sync_file_range, fadvise and fallocate (hole punching). A binary built
// with the portable tag, as every other OS builds diskport, makes none.
const linuxOnly = "openat2,copy_file_range,sync_file_range,fadvise64,fallocate"

// linuxOnlyCall finds one of them in strace's output, whole or resumed.
var linuxOnlyCall = regexp.MustCompile(`(?m)(?:^\d+ +|<\.\.\. )(openat2|copy_file_range|sync_file_range|fadvise64|fallocate)(?:\(| resumed>)`)

var (
	portableOnce sync.Once
	portablePath string
	portableErr  error
)

// buildPortableCLI builds the diskport binary with -tags portable and
// without cgo, as darwin, windows and freebsd build it, once per run.
func buildPortableCLI(t *testing.T) string {
	t.Helper()
	dir := filepath.Dir(buildCLI(t)) // removed by TestMain
	portableOnce.Do(func() {
		portablePath = filepath.Join(dir, "diskport-portable")
		cmd := exec.Command("go", "build", "-tags", "portable", "-o", portablePath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			portableErr = fmt.Errorf("go build -tags portable: %v: %s", err, out)
		}
	})
	if portableErr != nil {
		t.Fatal(portableErr)
	}
	return portablePath
}

// straced runs bin with args under strace, tracing the Linux-only calls,
// and returns its output, the calls it made and its exit error.
func straced(t *testing.T, bin string, args ...string) (string, []string, error) {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is needed: run `make test-deps` (scripts/install-deps.sh --test installs Debian's strace): %v", err)
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	cmd := exec.Command(strace, append([]string{"-f", "-qq", "-e", "signal=none", "-e", "trace=" + linuxOnly, "-o", log, bin}, args...)...)
	out, runErr := cmd.CombinedOutput()
	trace, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("strace wrote no log (%v): %s", err, out)
	}
	var calls []string
	for _, m := range linuxOnlyCall.FindAllStringSubmatch(string(trace), -1) {
		calls = append(calls, m[1])
	}
	return string(out), calls, runErr
}

// TestPortableBinaryCalls converts a flat VMDK, a streamOptimized VMDK,
// a dynamic VHD and a VHDX with a portable build under strace: the
// volumes are qemu-img's raw conversions, sparse, and written without a
// single Linux-only call; an extent outside its descriptor's directory is
// still refused. The Linux build, traced the same way, makes them (so the
// trace would see them).
func TestPortableBinaryCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI twice: long")
	}
	bin := buildPortableCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 6<<20 + 512, Seed: 2901, ZeroPercent: 40})
	flat := testimg.Make(t, g, "vmdk", "subformat=monolithicFlat")
	images := map[string]string{
		"flat":            flat,
		"streamOptimized": testimg.Make(t, g, "vmdk", "subformat=streamOptimized"),
		"dynamic VHD":     testimg.Make(t, g, "vpc", "subformat=dynamic"),
		"VHDX":            testimg.Make(t, g, "vhdx", ""),
	}
	for name, img := range images {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vol := filepath.Join(t.TempDir(), "vol.raw")
			out, calls, err := straced(t, bin, "convert", "--exact-size", img, vol)
			if err != nil {
				t.Fatalf("convert: %v: %s", err, out)
			}
			if len(calls) > 0 {
				t.Errorf("the portable build called %v", calls)
			}
			testimg.SameAsQemu(t, vol, img)
			fi, err := os.Stat(vol)
			if err != nil {
				t.Fatal(err)
			}
			alloc, ok := disk.AllocatedBytes(fi)
			if !ok || alloc >= fi.Size() {
				t.Errorf("volume of %d bytes has %d allocated (reported: %v): not sparse", fi.Size(), alloc, ok)
			}
		})
	}

	t.Run("escape", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		dir := filepath.Join(root, "d")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		desc, err := os.ReadFile(flat)
		if err != nil {
			t.Fatal(err)
		}
		extent := strings.TrimSuffix(filepath.Base(flat), ".vmdk") + "-flat.vmdk"
		if err := os.Link(filepath.Join(filepath.Dir(flat), extent), filepath.Join(root, "outside-flat.vmdk")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../outside-flat.vmdk", filepath.Join(dir, "link-flat.vmdk")); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"../outside-flat.vmdk", "link-flat.vmdk", filepath.Join(root, "outside-flat.vmdk")} {
			d := strings.Replace(string(desc), `"`+extent+`"`, `"`+ref+`"`, 1)
			if d == string(desc) {
				t.Fatalf("no extent %q in %s", extent, flat)
			}
			img := filepath.Join(dir, "escape.vmdk")
			if err := os.WriteFile(img, []byte(d), 0o644); err != nil {
				t.Fatal(err)
			}
			vol := filepath.Join(root, "vol.raw")
			out, calls, err := straced(t, bin, "convert", "--exact-size", "--force", img, vol)
			// The descriptor's parser refuses a path, openBeneath a link.
			if err == nil || !strings.Contains(out, "escapes") && !strings.Contains(out, "not a bare file name") {
				t.Errorf("extent %q: %v, %s; want a refusal", ref, err, out)
			}
			if len(calls) > 0 {
				t.Errorf("extent %q: the portable build called %v", ref, calls)
			}
		}
	})

	t.Run("linux build", func(t *testing.T) {
		t.Parallel()
		vol := filepath.Join(t.TempDir(), "vol.raw")
		out, calls, err := straced(t, buildCLI(t), "convert", "--exact-size", flat, vol)
		if err != nil {
			t.Fatalf("convert: %v: %s", err, out)
		}
		if !strings.Contains(strings.Join(calls, ","), "openat2") {
			t.Errorf("the Linux build's trace shows %v, no openat2: the trace misses the calls", calls)
		}
	})
}
