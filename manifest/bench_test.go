//go:build unix

package manifest

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest/parts"
)

// benchImages are 256 MiB disks as raw and as streamOptimized VMDK: large
// enough for the part cache to reach its steady state. raw-mostly-empty
// is a raw disk whose first 32 MiB are the golden disk's and the rest
// zeros, as a freshly installed system's disk is.
func benchImages(b *testing.B) map[string]string {
	golden := testimg.Golden(b, testimg.Spec{Size: 256 << 20, Seed: 99})
	empty := filepath.Join(b.TempDir(), "mostly-empty.raw")
	if err := writeHead(empty, golden, 32<<20, 256<<20); err != nil {
		b.Fatal(err)
	}
	return map[string]string{
		"raw":              golden,
		"raw-mostly-empty": empty,
		"streamOptimized":  testimg.Make(b, golden, "vmdk", "subformat=streamOptimized"),
	}
}

// writeHead writes the first n bytes of src to dst, then extends dst with a
// hole to size bytes.
func writeHead(dst, src string, n, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(out, in, n); err != nil {
		out.Close()
		return err
	}
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchConvert converts the image open returns b.N times in the durable
// mode (the default: the volume flushed to disk) and in the fast mode
// (NoSync), reporting besides the wall-clock rate the CPU time per
// conversion (cpu-ms/op): on a shared machine the CPU time is the steadier
// measure of the work done. The HTTP server of the manifest benchmarks
// runs in the same process, so its CPU time counts too.
func benchConvert(b *testing.B, open func() (disk.Image, func())) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"durable", false}, {"fast", true}} {
		b.Run(mode.name, func(b *testing.B) { benchConvertMode(b, open, mode.noSync) })
	}
}

func benchConvertMode(b *testing.B, open func() (disk.Image, func()), noSync bool) {
	dst := filepath.Join(b.TempDir(), "vol.raw")
	var cpu time.Duration
	defer func() { b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op") }()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Deleting the last output and flushing the machine's dirty
		// pages are not part of the next conversion.
		b.StopTimer()
		os.Remove(dst)
		syscall.Sync()
		b.StartTimer()
		start := cpuTime()
		img, done := open()
		if i == 0 {
			b.SetBytes(img.Size())
		}
		if _, err := convert.Convert(context.Background(), img, dst, convert.Options{ExactSize: true, NoSync: noSync, Force: true}); err != nil {
			b.Fatal(err)
		}
		done()
		cpu += cpuTime() - start
	}
}

// BenchmarkConvertLocal converts the image file directly: the baseline.
func BenchmarkConvertLocal(b *testing.B) {
	for name, path := range benchImages(b) {
		b.Run(name, func(b *testing.B) {
			benchConvert(b, func() (disk.Image, func()) {
				img, err := diskport.Open(path, diskport.Options{})
				if err != nil {
					b.Fatal(err)
				}
				return img, func() { img.Close() }
			})
		})
	}
}

// BenchmarkConvertManifestHTTP converts the same image from its 10 MiB
// parts served over loopback HTTP, through the manifest storage (parts
// fetched in parallel, every part's SHA-256 checked). The raw-unchecked
// case drops the checksums, as in a manifest from another tool, to show
// what verification costs.
func BenchmarkConvertManifestHTTP(b *testing.B) {
	images := benchImages(b)
	images["raw-unchecked"] = images["raw"]
	for name, path := range images {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			m, _, err := Create(context.Background(), path, dir, SplitOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if name == "raw-unchecked" {
				m.SHA256 = ""
				for i := range m.Parts {
					m.Parts[i].SHA256 = ""
				}
			}
			srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
			defer srv.Close()
			for i := range m.Parts {
				m.Parts[i].GetURL = srv.URL + "/" + m.Parts[i].Key
			}
			b.ResetTimer()
			benchConvert(b, func() (disk.Image, func()) {
				s, err := parts.OpenStorage(context.Background(), m.File(), &parts.HTTPStore{}, parts.StorageOptions{})
				if err != nil {
					b.Fatal(err)
				}
				img, err := diskport.OpenStorage(s, diskport.Options{Format: m.FileFormat})
				if err != nil {
					b.Fatal(err)
				}
				return img, func() { img.Close(); s.Close() }
			})
		})
	}
}

// BenchmarkPartChecksum times the SHA-256 of one 10 MiB part, on one core
// and on all: the verification every byte fetched from a manifest with
// checksums costs, and converting a local file does not.
func BenchmarkPartChecksum(b *testing.B) {
	part := make([]byte, DefaultPartSize)
	b.Run("one-core", func(b *testing.B) {
		b.SetBytes(int64(len(part)))
		for b.Loop() {
			sha256.Sum256(part)
		}
	})
	b.Run("all-cores", func(b *testing.B) {
		b.SetBytes(int64(len(part)))
		b.RunParallel(func(pb *testing.PB) {
			p := make([]byte, len(part))
			for pb.Next() {
				sha256.Sum256(p)
			}
		})
	})
}
