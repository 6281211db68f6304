package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/diskport/diskport/server/store"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

const (
	testKey    = "AKIADISKPORTTEST0001"
	testSecret = "diskport-test-secret-key-0001"
)

// testServer is a Server behind an httptest server, with its log.
type testServer struct {
	*Server
	URL  string
	dir  string
	st   *store.DB
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startServer runs a server on dir (a new one when "") allowed to fetch
// from allow.
func startServer(t *testing.T, dir string, allow ...string) *testServer {
	t.Helper()
	return startServerWith(t, dir, nil, allow...)
}

// startServerWith is startServer with a change to the configuration.
func startServerWith(t testing.TB, dir string, edit func(*Config), allow ...string) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := FirstAccount(context.Background(), st, testKey, testSecret); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{Store: st, DataDir: dir, AllowFetch: allow, Workers: 2,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), ProgressInterval: 100 * time.Millisecond, UploadPoll: 100 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv.Start(ctx)
	hs := httptest.NewServer(srv)
	ts := &testServer{Server: srv, URL: hs.URL, dir: dir, st: st, logs: logs}
	t.Cleanup(func() {
		hs.Close()
		cancel()
		srv.Close()
		st.Close()
		for _, secret := range []string{testSecret, s3test.SecretKey, "X-Amz-Signature=", "Signature="} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("the log holds a secret or a signature (%q)", secret)
			}
		}
	})
	return ts
}

// sdk returns an aws-sdk-go-v2 EC2 client of the server.
func (ts *testServer) sdk(key, secret string) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{
		Region:           "eu-west-3",
		Credentials:      credentials.NewStaticCredentialsProvider(key, secret, ""),
		BaseEndpoint:     aws.String(ts.URL),
		RetryMaxAttempts: 1,
	})
}

// upload stores image's parts and manifest in a new bucket of s and
// returns the presigned manifest URL.
func upload(t *testing.T, s *s3test.Server, image string) (*manifest.UploadResult, string) {
	t.Helper()
	cfg := parts.S3Config{Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
	res, err := manifest.Upload(context.Background(), cfg, image, manifest.UploadOptions{
		Bucket: s.Bucket(t), SplitOptions: manifest.SplitOptions{PartSize: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	return res, res.ManifestURL
}

// waitTask polls DescribeConversionTasks until the task leaves active
// (or cancelling) and returns its final state.
func waitTask(t testing.TB, c *ec2.Client, id string, timeout time.Duration) (state, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ConversionTasks) != 1 {
			t.Fatalf("%d tasks for %s", len(out.ConversionTasks), id)
		}
		ct := out.ConversionTasks[0]
		state, msg = string(ct.State), aws.ToString(ct.StatusMessage)
		if state != "active" && state != "cancelling" {
			return state, msg
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still %s (%s) after %v", id, state, msg, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sameVolume checks that the volume file holds want's bytes followed by
// zeros up to size.
func sameVolume(t *testing.T, volume, want string, size int64) {
	t.Helper()
	testimg.SameVolume(t, volume, want, size)
}

// noVolumeFiles checks that nothing of a volume is left in dir.
func noVolumeFiles(t *testing.T, dir, volumeID string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "volumes", "*"+volumeID+"*"))
	if len(matches) > 0 {
		t.Fatalf("files of %s left: %v", volumeID, matches)
	}
}

// volumeFilesGone reports whether nothing of a volume is left in dir, for
// waiting until a stopped worker has removed its files.
func volumeFilesGone(dir, volumeID string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "volumes", "*"+volumeID+"*"))
	return len(matches) == 0
}
