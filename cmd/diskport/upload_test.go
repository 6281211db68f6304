package main

import (
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// TestUploadBucketMustExist: upload refuses a bucket that does not exist
// (a typo is not a new bucket) unless --create-bucket.
func TestUploadBucketMustExist(t *testing.T) {
	bin := buildCLI(t)
	s := s3test.Start(t)
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
