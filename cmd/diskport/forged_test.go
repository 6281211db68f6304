package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/diskport/diskport/server"
	"github.com/diskport/diskport/server/store"
	"github.com/minio/minio-go/v7"
)

// forgedPart is the part size of the forged imports: larger than
// parts.MaxChunk, so that a part is never held whole and its sum is
// checked as it streams past.
const forgedPart = parts.MaxChunk + 2<<20

// TestForgedImports uploads an image to S3 (MinIO) and forges what the
// import reads in three ways: two parts' entries swapped in the manifest
// (each with its own checksum, so only the whole file's catches it), a
// whole-file SHA-256 that does not match, and one byte flipped in a stored
// part larger than parts.MaxChunk (the manifest untouched). The CLI
// (convert and check --manifest) and the API server (ImportVolume) open
// the source through the same import path: each must refuse every
// forgery, name the checksum that failed, and leave no volume.
func TestForgedImports(t *testing.T) {
	t.Parallel()
	s := s3test.Shared(t)
	mc := s.Client(t)
	image := filepath.Join(t.TempDir(), "disk.img")
	data := make([]byte, 2*forgedPart+1<<20)
	r := rand.New(rand.NewPCG(7, 23))
	for i := range data {
		data[i] = byte('a' + r.IntN(26)) // text-like: no part reads as zeros
	}
	if err := os.WriteFile(image, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := parts.S3Config{Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
	putManifest := func(t *testing.T, bucket, key string, m *manifest.Manifest) {
		t.Helper()
		doc := m.Marshal()
		if _, err := mc.PutObject(context.Background(), bucket, key, bytes.NewReader(doc), int64(len(doc)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		forge func(t *testing.T, bucket string, res *manifest.UploadResult)
		want  string // what the failure names
	}{
		{"swapped parts", func(t *testing.T, bucket string, res *manifest.UploadResult) {
			m := res.Manifest
			a, b := &m.Parts[0], &m.Parts[1]
			a.Key, b.Key = b.Key, a.Key
			a.HeadURL, b.HeadURL = b.HeadURL, a.HeadURL
			a.GetURL, b.GetURL = b.GetURL, a.GetURL
			a.DeleteURL, b.DeleteURL = b.DeleteURL, a.DeleteURL
			a.SHA256, b.SHA256 = b.SHA256, a.SHA256
			putManifest(t, bucket, res.ManifestKey, m)
		}, "file checksum mismatch"},
		{"wrong file sum", func(t *testing.T, bucket string, res *manifest.UploadResult) {
			m := res.Manifest
			m.SHA256 = strings.Repeat("ab", 32)
			putManifest(t, bucket, res.ManifestKey, m)
		}, "file checksum mismatch"},
		{"flipped byte in a large part", func(t *testing.T, bucket string, res *manifest.UploadResult) {
			key := res.Manifest.Parts[1].Key
			obj, err := mc.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(obj)
			obj.Close()
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x01
			if _, err := mc.PutObject(context.Background(), bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}, "part 1"},
	}
	ts := startInProcessServer(t, s.Host)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bucket := s.Bucket(t)
			res, err := manifest.Upload(context.Background(), cfg, image, manifest.UploadOptions{
				Bucket: bucket, SplitOptions: manifest.SplitOptions{PartSize: forgedPart}})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(res.Manifest.Parts); n != 3 {
				t.Fatalf("%d parts, want 3", n)
			}
			c.forge(t, bucket, res)

			dst := filepath.Join(t.TempDir(), "vol.raw")
			code, _, stderr := call(t, "convert", "--exact-size", "--manifest", res.ManifestURL, dst)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Errorf("convert: exit %d, stderr %q; want a failure naming %q", code, stderr, c.want)
			}
			if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 0 {
				t.Errorf("convert left %v", ents)
			}
			code, out, stderr := call(t, "check", "--manifest", res.ManifestURL)
			if code == 0 || !strings.Contains(out+stderr, c.want) {
				t.Errorf("check: exit %d, output %q %q; want a failure naming %q", code, out, stderr, c.want)
			}

			task, vol := ts.importVolume(t, int64(len(data)), res.ManifestURL)
			state, msg := ts.wait(t, task)
			if state != "cancelled" || !strings.Contains(msg, c.want) || !strings.Contains(msg, "checksum mismatch") {
				t.Errorf("server: task %s, %q; want cancelled naming %q", state, msg, c.want)
			}
			if left, _ := filepath.Glob(filepath.Join(ts.dir, "volumes", "*"+vol+"*")); len(left) > 0 {
				t.Errorf("server left %v", left)
			}
		})
	}
}

// inProcessServer is an API server run in the test's process.
type inProcessServer struct {
	c   *ec2.Client
	dir string
}

// startInProcessServer runs an API server allowed to fetch from allow,
// with one account, and returns an aws-sdk-go-v2 client of it.
func startInProcessServer(t *testing.T, allow string) *inProcessServer {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const key, secret = "AKIAFORGEDIMPORTS000", "forged-imports-secret"
	if _, _, err := server.FirstAccount(context.Background(), st, key, secret); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, DataDir: dir, AllowFetch: []string{allow}, Workers: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UploadPoll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv.Start(ctx)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		srv.Close()
		st.Close()
	})
	c := ec2.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(key, secret, ""),
		BaseEndpoint:     aws.String(hs.URL),
		RetryMaxAttempts: 1,
	})
	return &inProcessServer{c: c, dir: dir}
}

// importVolume starts an ImportVolume of a RAW image of size bytes whose
// manifest is at manifestURL, and returns the task's and volume's ids.
func (ts *inProcessServer) importVolume(t *testing.T, size int64, manifestURL string) (task, vol string) {
	t.Helper()
	if _, err := url.Parse(manifestURL); err != nil {
		t.Fatal(err)
	}
	out, err := ts.c.ImportVolume(context.Background(), &ec2.ImportVolumeInput{
		AvailabilityZone: aws.String("us-east-1a"),
		Image:            &types.DiskImageDetail{Format: types.DiskImageFormatRaw, Bytes: aws.Int64(size), ImportManifestUrl: aws.String(manifestURL)},
		Volume:           &types.VolumeDetail{Size: aws.Int64(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ConversionTask.ConversionTaskId), aws.ToString(out.ConversionTask.ImportVolume.Volume.Id)
}

// wait polls the task until it leaves active and returns its state and
// status message.
func (ts *inProcessServer) wait(t *testing.T, id string) (state, msg string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := ts.c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{id}})
		if err != nil || len(out.ConversionTasks) != 1 {
			t.Fatalf("describing %s: %v", id, err)
		}
		ct := out.ConversionTasks[0]
		state, msg = string(ct.State), aws.ToString(ct.StatusMessage)
		if state != "active" && state != "cancelling" {
			return state, msg
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still %s (%s)", id, state, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
