// Package testimg builds the test fixtures diskport is checked against:
// deterministic golden raw disks, the images qemu-img makes of them, and
// qemu-img's own raw conversions of any image.
//
// Everything is cached by content under $DISKPORT_TESTCACHE (default
// ~/.cache/diskport/testimg), so a test run does not rebuild what an
// earlier run made. Entries are written to a temporary name and renamed
// into place, so test binaries running in parallel share the cache safely.
//
// Tests that need qemu-img fail (never skip) when it is missing: `make deps`
// installs it (Debian's qemu-utils).
package testimg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// genVersion changes whenever the golden generator changes its output, so
// cached goldens and everything made from them are rebuilt.
const genVersion = "golden-v2"

// CacheDir returns the cache directory, creating it.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("DISKPORT_TESTCACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "diskport", "testimg")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testimg: cache dir: %v", err)
	}
	return dir
}

var (
	qemuOnce    sync.Once
	qemuPath    string
	qemuVersion string
	qemuErr     error
)

// QemuImg returns the path of qemu-img, failing the test when it is not
// installed.
func QemuImg(t testing.TB) string {
	t.Helper()
	qemuOnce.Do(func() {
		qemuPath, qemuErr = exec.LookPath("qemu-img")
		if qemuErr != nil {
			return
		}
		out, err := exec.Command(qemuPath, "--version").Output()
		if err != nil {
			qemuErr = fmt.Errorf("qemu-img --version: %v", err)
			return
		}
		qemuVersion = strings.SplitN(string(out), "\n", 2)[0]
	})
	if qemuErr != nil {
		t.Fatalf("testimg: qemu-img is needed and was not found (%v): run `make deps`, which installs Debian's qemu-utils", qemuErr)
	}
	return qemuPath
}

// QemuVersion returns the first line of `qemu-img --version`.
func QemuVersion(t testing.TB) string {
	QemuImg(t)
	return qemuVersion
}

// key hashes its parts into a cache key.
func key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// cached returns dir/<k>/<name>, building it with build(tmpdir) first when
// missing. build writes name (and any other files) into tmpdir.
func cached(t testing.TB, k, name string, build func(tmpdir string) error) string {
	t.Helper()
	dir := filepath.Join(CacheDir(t), k)
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp, err := os.MkdirTemp(CacheDir(t), ".build-")
	if err != nil {
		t.Fatalf("testimg: %v", err)
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		t.Fatalf("testimg: building %s: %v", name, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(path); serr == nil {
			return path // another process built it first
		}
		t.Fatalf("testimg: %v", err)
	}
	return path
}

// run runs qemu-img with args, returning its combined output in the error.
func run(t testing.TB, args ...string) error {
	cmd := exec.Command(QemuImg(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fileKey identifies a file's content cheaply: path, size and mtime.
// Files in the cache are content-addressed by their directory already.
func fileKey(t testing.TB, path string) string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("testimg: %v", err)
	}
	abs, _ := filepath.Abs(path)
	return fmt.Sprintf("%s|%d|%d", abs, st.Size(), st.ModTime().UnixNano())
}

// Make converts the raw golden disk to format with qemu-img
// (`qemu-img convert -f raw -O format -o opts`) and returns the image's
// path; for multi-file VMDKs, the descriptor's. opts is qemu-img's -o
// string ("" for none), e.g. "subformat=streamOptimized".
func Make(t testing.TB, golden, format, opts string) string {
	t.Helper()
	ext := map[string]string{"vpc": "vhd", "vmdk": "vmdk", "raw": "img", "vhdx": "vhdx", "qcow2": "qcow2"}[format]
	if ext == "" {
		ext = format
	}
	k := key("make", QemuVersion(t), fileKey(t, golden), format, opts)
	return cached(t, k, "image."+ext, func(tmp string) error {
		args := []string{"convert", "-q", "-f", "raw", "-O", format}
		if opts != "" {
			args = append(args, "-o", opts)
		}
		return run(t, append(args, golden, filepath.Join(tmp, "image."+ext))...)
	})
}

// Create runs `qemu-img create -f format -o opts image size` and returns the
// image's path: an empty image of the given virtual size.
func Create(t testing.TB, format, opts string, size int64) string {
	t.Helper()
	k := key("create", QemuVersion(t), format, opts, fmt.Sprint(size))
	return cached(t, k, "image."+format, func(tmp string) error {
		args := []string{"create", "-q", "-f", format}
		if opts != "" {
			args = append(args, "-o", opts)
		}
		return run(t, append(args, filepath.Join(tmp, "image."+format), fmt.Sprint(size))...)
	})
}

// QemuRaw returns qemu-img's raw conversion of image
// (`qemu-img convert [args] -O raw image out`). args may name the source
// format (-f vmdk) or options (--image-opts is not supported).
func QemuRaw(t testing.TB, image string, args ...string) string {
	t.Helper()
	k := key(append([]string{"raw", QemuVersion(t), fileKey(t, image)}, args...)...)
	return cached(t, k, "qemu.raw", func(tmp string) error {
		a := append([]string{"convert", "-q"}, args...)
		return run(t, append(a, "-O", "raw", image, filepath.Join(tmp, "qemu.raw"))...)
	})
}

// Sample returns a copy of the sample image at path (one of the public
// samples under vmdk/testdata, vhd/testdata, vhdx/testdata), decompressed
// with the bzip2 program when its name ends in ".bz2", cached. The copy
// leaves runs of 64 KiB of zeros as holes.
func Sample(t testing.TB, path string) string {
	t.Helper()
	name := filepath.Base(path)
	if !strings.HasSuffix(name, ".bz2") {
		return path
	}
	name = strings.TrimSuffix(name, ".bz2")
	return cached(t, key("sample", fileKey(t, path)), name, func(tmp string) error {
		cmd := exec.Command("bzip2", "-dc", path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("bzip2 (the samples need it): %v", err)
		}
		werr := writeSparse(filepath.Join(tmp, name), out)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("bzip2 -dc %s: %v", path, err)
		}
		return werr
	})
}

// writeSparse copies r into a new file at path, seeking over each 64 KiB
// block of zeros.
func writeSparse(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf, zero := make([]byte, CellSize), make([]byte, CellSize)
	var n int64
	for {
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			if !bytes.Equal(buf[:k], zero[:k]) {
				if _, err := f.WriteAt(buf[:k], n); err != nil {
					f.Close()
					return err
				}
			}
			n += int64(k)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			f.Close()
			return rerr
		}
	}
	if err := f.Truncate(n); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
