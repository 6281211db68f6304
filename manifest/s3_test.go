package manifest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/s3"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/internal/testwait"
	"github.com/diskport/diskport/manifest/parts"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

func s3Config(t testing.TB) parts.S3Config {
	s := s3test.Shared(t)
	return parts.S3Config{Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
}

// uploadImages are small images of every format, from one golden disk.
func uploadImages(t testing.TB) map[string]string {
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 61})
	return map[string]string{
		FormatRAW:  golden,
		FormatVMDK: testimg.Make(t, golden, "vmdk", "subformat=streamOptimized"),
		FormatVHD:  testimg.Make(t, golden, "vpc", "subformat=dynamic"),
	}
}

// TestS3RoundTrip uploads each format, then reads it back through the
// presigned manifest URL: verify, and the bytes equal the local file.
func TestS3RoundTrip(t *testing.T) {
	cfg := s3Config(t)
	ctx := context.Background()
	for format, img := range uploadImages(t) {
		// SigV2 for VMDK, SigV4 for the others.
		for _, v2 := range []bool{format == FormatVMDK} {
			cfg.SigV2 = v2
			bucket := s3test.Shared(t).Bucket(t)
			want, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			var progress int64
			res, err := Upload(ctx, cfg, img, UploadOptions{
				SplitOptions: SplitOptions{PartSize: 256 << 10, Progress: func(done, _ int64) { progress = done }},
				Bucket:       bucket, Prefix: "imports/x", Parallel: 3,
			})
			if err != nil {
				t.Fatalf("%s v2=%v: Upload: %v", format, v2, err)
			}
			m := res.Manifest
			if m.FileFormat != format || m.Size != int64(len(want)) || res.Uploaded != len(m.Parts) || res.Skipped != 0 || progress != m.Size {
				t.Fatalf("%s: result %+v, manifest format %s size %d, progress %d", format, res, m.FileFormat, m.Size, progress)
			}
			if !strings.HasPrefix(res.ManifestKey, "imports/x/") || !strings.HasSuffix(res.ManifestKey, ".manifest.xml") {
				t.Fatalf("manifest key %s", res.ManifestKey)
			}
			sigParam := "X-Amz-Signature="
			if v2 {
				sigParam = "AWSAccessKeyId="
			}
			if !strings.Contains(res.ManifestURL, sigParam) || !strings.Contains(m.Parts[0].GetURL, sigParam) || !strings.Contains(m.SelfDestructURL, sigParam) {
				t.Fatalf("URLs not presigned with %s: %s", sigParam, res.ManifestURL)
			}
			m2, store, err := Open(ctx, res.ManifestURL, nil)
			if err != nil {
				t.Fatalf("%s v2=%v: Open(manifest URL): %v", format, v2, err)
			}
			if _, err := parts.Verify(ctx, m2.File(), store, parts.VerifyOptions{}); err != nil {
				t.Fatalf("%s v2=%v: Verify: %v", format, v2, err)
			}
			s, err := parts.OpenStorage(ctx, m2.File(), store, parts.StorageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(testimg.ReadAll(t, s), want) {
				t.Fatalf("%s v2=%v: bytes read through the manifest differ from the file", format, v2)
			}
			// The S3 API store reads the same.
			byKey, err := parts.NewS3Store(cfg, bucket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parts.Verify(ctx, m2.File(), byKey, parts.VerifyOptions{}); err != nil {
				t.Fatalf("S3Store verify: %v", err)
			}
		}
	}
}

// TestS3Resume interrupts an upload half-way and runs it again: the parts
// already stored are not sent again.
func TestS3Resume(t *testing.T) {
	cfg := s3Config(t)
	img := uploadImages(t)[FormatRAW]
	bucket := s3test.Shared(t).Bucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	var done int64
	opts := UploadOptions{SplitOptions: SplitOptions{PartSize: 256 << 10}, Bucket: bucket, Parallel: 2}
	opts.Progress = func(d, _ int64) {
		if done = d; done >= 6*256<<10 {
			cancel()
		}
	}
	_, err := Upload(ctx, cfg, img, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted upload: err = %v", err)
	}
	opts.Progress = nil
	res, err := Upload(context.Background(), cfg, img, opts)
	if err != nil {
		t.Fatal(err)
	}
	n := len(res.Manifest.Parts)
	if res.Skipped < 6 || res.Uploaded+res.Skipped != n || res.Uploaded == 0 {
		t.Fatalf("resumed: uploaded %d, skipped %d of %d parts", res.Uploaded, res.Skipped, n)
	}
	// A third run sends nothing.
	res, err = Upload(context.Background(), cfg, img, opts)
	if err != nil || res.Uploaded != 0 || res.Skipped != n {
		t.Fatalf("rerun: %v, uploaded %d, skipped %d", err, res.Uploaded, res.Skipped)
	}
	m, store, err := Open(context.Background(), res.ManifestURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parts.Verify(context.Background(), m.File(), store, parts.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestS3CorruptPart overwrites a part in the bucket: verification names it,
// reading through it fails, and a resumed upload replaces it.
func TestS3CorruptPart(t *testing.T) {
	cfg := s3Config(t)
	img := uploadImages(t)[FormatVHD]
	bucket := s3test.Shared(t).Bucket(t)
	ctx := context.Background()
	opts := UploadOptions{SplitOptions: SplitOptions{PartSize: 512 << 10}, Bucket: bucket}
	res, err := Upload(ctx, cfg, img, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := res.Manifest.Parts[2]
	client, err := s3.New(s3.Config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(img)
	bad := append([]byte(nil), data[p.Offset:p.End()]...)
	bad[1000] ^= 0xff
	if err := client.Put(ctx, bucket, p.Key, bad, "", nil); err != nil {
		t.Fatal(err)
	}
	m, store, err := Open(ctx, res.ManifestURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = parts.Verify(ctx, m.File(), store, parts.VerifyOptions{})
	var ve *parts.VerifyError
	if !errors.As(err, &ve) || len(ve.Failures) != 1 || ve.Failures[0].Part.Index != 2 || !errors.Is(err, disk.ErrCorrupt) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "part 2 (bytes 1048576-1572863)") || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("err = %v", err)
	}
	s, _ := parts.OpenStorage(ctx, m.File(), store, parts.StorageOptions{})
	if _, err := s.ReadAt(make([]byte, 10), p.Offset); err == nil {
		t.Fatal("read of the corrupt part succeeded")
	}
	// A truncated object is named too.
	client.Put(ctx, bucket, p.Key, bad[:100], "", nil)
	if _, err := parts.Verify(ctx, m.File(), store, parts.VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "part 2 (bytes 1048576-1572863)") || !strings.Contains(err.Error(), "truncated: server has 100 bytes") {
		t.Fatalf("err = %v", err)
	}
	client.Remove(ctx, bucket, p.Key)
	if _, err := parts.Verify(ctx, m.File(), store, parts.VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "part 2 (bytes 1048576-1572863)") || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "NoSuchKey") {
		t.Fatalf("err = %v", err)
	}
	res, err = Upload(ctx, cfg, img, opts)
	if err != nil || res.Uploaded != 1 {
		t.Fatalf("repair: %v, uploaded %d", err, res.Uploaded)
	}
	if _, err := parts.Verify(ctx, m.File(), store, parts.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestS3Expired presigns for one second: once expired, S3's 403 and its
// message come through.
func TestS3Expired(t *testing.T) {
	cfg := s3Config(t)
	img := uploadImages(t)[FormatRAW]
	res, err := Upload(context.Background(), cfg, img, UploadOptions{Bucket: s3test.Shared(t).Bucket(t), Expires: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The URL expires a second after it was signed: poll until the
	// manifest is refused instead of sleeping past the second.
	testwait.For(t, 10*time.Second, "the presigned manifest URL to expire", func() bool {
		_, _, err = Open(context.Background(), res.ManifestURL, nil)
		return err != nil
	})
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "X-Amz-Signature") {
		t.Fatalf("error shows the signature: %v", err)
	}
	_, err = parts.Verify(context.Background(), res.Manifest.File(), &parts.HTTPStore{}, parts.VerifyOptions{})
	if err == nil || !strings.Contains(err.Error(), "part 0 (bytes 0-") || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("err = %v", err)
	}
}
