package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// TestUploadBucketMustExist: upload refuses a bucket that does not exist
// (a typo is not a new bucket) unless --create-bucket.
func TestUploadBucketMustExist(t *testing.T) {
	bin := buildCLI(t)
	s := s3test.Shared(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", s.Region)
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 29})
	bucket := s.Bucket(t)
	code, o := exitCode(t, bin, "upload", "--endpoint", s.Endpoint, "--bucket", bucket, g)
	if code != 1 || !strings.Contains(o, "bucket "+bucket) || !strings.Contains(o, "does not exist") || !strings.Contains(o, "--create-bucket") {
		t.Errorf("upload to a missing bucket: exit %d, %s", code, o)
	}
	if code, o := exitCode(t, bin, "upload", "--endpoint", s.Endpoint, "--bucket", bucket, "--create-bucket", g); code != 0 {
		t.Fatalf("upload --create-bucket: exit %d, %s", code, o)
	}
	if code, o := exitCode(t, bin, "upload", "--endpoint", s.Endpoint, "--bucket", bucket, "--prefix", "again", g); code != 0 {
		t.Errorf("upload to the bucket now there: exit %d, %s", code, o)
	}
}

// TestManifestByS3Key: once the presigned URLs are no use, the uploaded
// manifest is read as s3://bucket/key with credentials: manifest verify
// and show, convert, info and check --manifest, parts fetched by key.
func TestManifestByS3Key(t *testing.T) {
	bin := buildCLI(t)
	s := s3test.Shared(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", s.Region)
	g := testimg.Golden(t, testimg.Spec{Size: 2<<20 + 512, Seed: 30})
	bucket := s.Bucket(t)
	code, o := exitCode(t, bin, "upload", "--create-bucket", "--endpoint", s.Endpoint, "--bucket", bucket, "--prefix", "vm", "--part-size", "1M", g)
	if code != 0 {
		t.Fatalf("upload: exit %d, %s", code, o)
	}
	key := "s3://" + bucket + "/vm/" + filepath.Base(g) + ".manifest.xml"
	if !strings.Contains(o, key) {
		t.Fatalf("upload does not name %s: %s", key, o)
	}
	dst := filepath.Join(t.TempDir(), "v.raw")
	for _, args := range [][]string{
		{"manifest", "verify", "--endpoint", s.Endpoint, key},
		{"manifest", "show", "--endpoint", s.Endpoint, key},
		{"info", "--endpoint", s.Endpoint, "--manifest", key},
		{"check", "--endpoint", s.Endpoint, "--manifest", key},
		{"convert", "--no-sync", "--exact-size", "--endpoint", s.Endpoint, "--manifest", key, dst},
	} {
		code, o := exitCode(t, bin, args...)
		if code != 0 {
			t.Errorf("%v: exit %d, %s", args, code, o)
		}
		if args[1] == "show" && !strings.Contains(o, "from s3://"+bucket+"/vm/") {
			t.Errorf("manifest show of %s: parts not read by key: %s", key, o)
		}
	}
	sameBytes(t, dst, g)
	if code, o := exitCode(t, bin, "manifest", "verify", "--endpoint", s.Endpoint, "s3://"+bucket+"/vm/nosuch.xml"); code != 1 || !strings.Contains(o, "NoSuchKey") {
		t.Errorf("verify of a missing s3 key: exit %d, %s", code, o)
	}
}
