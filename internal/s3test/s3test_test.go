package s3test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestServer starts a server, creates a bucket and round-trips an object
// with SigV4 and SigV2 clients.
func TestServer(t *testing.T) {
	s := Shared(t)
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint %q is not a loopback URL", s.Endpoint)
	}
	ctx := context.Background()
	for _, v2 := range []bool{false, true} {
		creds := credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")
		if v2 {
			creds = credentials.NewStaticV2(s.AccessKey, s.SecretKey, "")
		}
		c, err := minio.New(s.Host, &minio.Options{Creds: creds, Region: s.Region})
		if err != nil {
			t.Fatal(err)
		}
		bucket := s.Bucket(t)
		if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
			t.Fatalf("MakeBucket %s (v2=%v): %v", bucket, v2, err)
		}
		want := bytes.Repeat([]byte("diskport"), 1000)
		if _, err := c.PutObject(ctx, bucket, "k", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("PutObject (v2=%v): %v", v2, err)
		}
		o, err := c.GetObject(ctx, bucket, "k", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		o.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("GetObject (v2=%v): %d bytes, err %v", v2, len(got), err)
		}
	}
	if Shared(t) != s {
		t.Fatal("Shared returned a second server")
	}
}

// TestStartStop runs a private server and checks it is gone after Stop.
func TestStartStop(t *testing.T) {
	s := Start(t)
	s.Stop()
	select {
	case <-s.done:
	default:
		t.Fatal("server still running after Stop")
	}
}

// TestInstallScriptVersion keeps scripts/install-minio.sh building the same
// version the tests look for.
func TestInstallScriptVersion(t *testing.T) {
	b, err := os.ReadFile("../../scripts/install-minio.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "VERSION="+MinioVersion) {
		t.Fatalf("scripts/install-minio.sh does not build MinIO %s", MinioVersion)
	}
}
