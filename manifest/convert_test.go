package manifest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest/parts"
)

// convertImage converts img to a raw volume of exactly its virtual size and
// returns the volume's bytes.
func convertImage(t testing.TB, img disk.Image) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "vol.raw")
	if _, err := convert.Convert(context.Background(), img, dst, convert.Options{ExactSize: true, NoSync: true}); err != nil {
		t.Fatalf("convert: %v", err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConvertFromManifestURL is the round trip of the issue: create,
// upload to MinIO, verify, and convert from the presigned manifest URL,
// for every format and subformat, equal to converting the local file (and
// to qemu-img's raw output).
func TestConvertFromManifestURL(t *testing.T) {
	cfg := s3Config(t)
	ctx := context.Background()
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 62})
	for _, c := range []struct{ format, opts string }{
		{"raw", ""},
		{"vmdk", "subformat=streamOptimized"},
		{"vmdk", "subformat=monolithicSparse"},
		{"vpc", "subformat=dynamic,force_size=on"},
		{"vpc", "subformat=fixed,force_size=on"},
	} {
		t.Run(c.format+"-"+c.opts, func(t *testing.T) {
			img := golden
			if c.format != "raw" {
				img = testimg.Make(t, golden, c.format, c.opts)
			}
			local, err := diskport.Open(img, diskport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer local.Close()
			want := convertImage(t, local)
			// qemu-img probes a fixed VHD as raw; name the format.
			qemu, err := os.ReadFile(testimg.QemuRaw(t, img, "-f", c.format))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want, qemu) {
				t.Fatalf("local conversion differs from qemu-img's (%d vs %d bytes)", len(want), len(qemu))
			}

			res, err := Upload(ctx, cfg, img, UploadOptions{SplitOptions: SplitOptions{PartSize: 512 << 10}, Bucket: s3test.Shared(t).Bucket(t)})
			if err != nil {
				t.Fatal(err)
			}
			m, store, err := Open(ctx, res.ManifestURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parts.Verify(ctx, m.File(), store, parts.VerifyOptions{}); err != nil {
				t.Fatal(err)
			}
			counted := &countingStore{Store: store}
			s, err := parts.OpenStorage(ctx, m.File(), counted, parts.StorageOptions{Name: res.ManifestURL})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fromParts, err := diskport.OpenStorage(s, diskport.Options{Format: m.FileFormat})
			if err != nil {
				t.Fatalf("open from parts: %v", err)
			}
			defer fromParts.Close()
			if got := convertImage(t, fromParts); !bytes.Equal(got, want) {
				t.Fatalf("conversion from the manifest differs from the local one (%d vs %d bytes)", len(got), len(want))
			}
			// The whole file's SHA-256, hashed on the way, checks.
			if err := s.Verify(); err != nil {
				t.Fatal(err)
			}
			// One pass over the parts: no part fetched more than twice (the
			// footer of a streamOptimized VMDK is read first, then again
			// in order).
			if n := counted.n.Load(); n > int64(len(m.Parts))+2 {
				t.Errorf("%d part fetches for %d parts", n, len(m.Parts))
			}
		})
	}
}

// TestDeclaredFormatChecked: a manifest declaring VHD for VMDK bytes is
// refused when the image is opened.
func TestDeclaredFormatChecked(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 63})
	vmdk := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	dir := t.TempDir()
	m, _, err := Create(context.Background(), vmdk, dir, SplitOptions{PartSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	m.FileFormat = FormatVHD
	s, _ := parts.OpenStorage(context.Background(), m.File(), parts.DirStore{Dir: dir}, parts.StorageOptions{})
	if _, err := diskport.OpenStorage(s, diskport.Options{Format: m.FileFormat}); err == nil {
		t.Fatal("VMDK parts opened as the declared VHD")
	}
}

// countingStore counts the fetches a store serves.
type countingStore struct {
	parts.Store
	n atomic.Int64
}

func (c *countingStore) OpenPart(ctx context.Context, p *parts.Part, off, n int64) (io.ReadCloser, error) {
	c.n.Add(1)
	return c.Store.OpenPart(ctx, p, off, n)
}
