package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// awsCLI runs `aws ec2 ARGS` against the server and decodes its JSON
// output into out (when not nil).
func awsCLI(t *testing.T, aws, endpoint, home string, out any, args ...string) {
	t.Helper()
	if err := awsCLIRun(aws, endpoint, home, out, args...); err != nil {
		t.Fatal(err)
	}
}

// awsCLIRun runs `aws ec2 ARGS` and decodes its JSON into out; its error
// holds what the CLI printed.
func awsCLIRun(aws, endpoint, home string, out any, args ...string) error {
	cmd := exec.Command(aws, append([]string{"ec2", "--endpoint-url", endpoint, "--region", "eu-central-1", "--output", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testKey, "AWS_SECRET_ACCESS_KEY="+testSecret, "HOME="+home,
		"AWS_CONFIG_FILE="+filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"), "AWS_PAGER=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("aws ec2 %v: %v\n%s%s", args, err, b, stderr.String())
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("aws ec2 %v printed %q: %v", args, b, err)
		}
	}
	return nil
}

// TestAWSCLI drives the actions the aws CLI still has (it removed
// import-instance and import-volume): describe-conversion-tasks, its
// waiters, cancel-conversion-task, bundle-instance with the CLI's own
// --owner-akid/--owner-sak policy builder, bundle-task-complete,
// describe-bundle-tasks and cancel-bundle-task.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("long: runs the aws CLI, a Python program, for every call")
	}
	t.Parallel()
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("no aws CLI: install Debian's awscli (scripts/install-deps.sh --test)")
	}
	s3 := s3test.Shared(t)
	hidden := newPartsServer(t, testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 18}), 0, nil)
	hidden.hidden.Store(true)
	gate := newS3Gate(t, s3.Endpoint)
	ts := startServerWith(t, "", func(c *Config) { c.S3Endpoint = gate.URL }, s3.Host, gate.Listener.Addr().String(), hidden.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	home := t.TempDir()
	ctx := context.Background()
	inst, vol := importedInstance(t, c, s3, testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 19}))

	var tasks struct {
		ConversionTasks []struct {
			ConversionTaskID string `json:"ConversionTaskId"`
			State            string
			ImportInstance   struct {
				InstanceID string `json:"InstanceId"`
			}
		}
	}
	awsCLI(t, aws, ts.URL, home, &tasks, "describe-conversion-tasks")
	if len(tasks.ConversionTasks) != 1 || tasks.ConversionTasks[0].State != "completed" || tasks.ConversionTasks[0].ImportInstance.InstanceID != inst {
		t.Fatalf("describe-conversion-tasks: %+v", tasks)
	}
	awsCLI(t, aws, ts.URL, home, nil, "wait", "conversion-task-completed", "--conversion-task-ids", tasks.ConversionTasks[0].ConversionTaskID)

	waiting, _ := importVolume(t, c, "RAW", hidden.m.Size, hidden.manifestURL(), 1)
	awsCLI(t, aws, ts.URL, home, nil, "cancel-conversion-task", "--conversion-task-id", waiting, "--reason-message", "from the aws CLI")
	awsCLI(t, aws, ts.URL, home, nil, "wait", "conversion-task-cancelled", "--conversion-task-ids", waiting)
	awsCLI(t, aws, ts.URL, home, &tasks, "describe-conversion-tasks", "--conversion-task-ids", waiting)
	if tasks.ConversionTasks[0].State != "cancelled" {
		t.Fatalf("after cancel-conversion-task: %+v", tasks)
	}

	mc, err := minio.New(s3.Host, &minio.Options{Creds: miniocreds.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	bucket := s3.Bucket(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3.Region}); err != nil {
		t.Fatal(err)
	}
	var bt struct {
		BundleTask struct {
			BundleID string `json:"BundleId"`
			State    string
			Progress string
		}
	}
	awsCLI(t, aws, ts.URL, home, &bt, "bundle-instance", "--instance-id", inst, "--bucket", bucket, "--prefix", "cli/image",
		"--owner-akid", s3.AccessKey, "--owner-sak", s3.SecretKey)
	id := bt.BundleTask.BundleID
	if id == "" || bt.BundleTask.State != "pending" {
		t.Fatalf("bundle-instance: %+v", bt)
	}
	start := time.Now()
	if err := awsCLIRun(aws, ts.URL, home, nil, "wait", "bundle-task-complete", "--bundle-ids", id); err != nil {
		t.Fatalf("%v\n%s", err, ts.logs.String())
	}
	t.Logf("bundle-task-complete after %v", time.Since(start))
	var bts struct {
		BundleTasks []struct {
			BundleID string `json:"BundleId"`
			State    string
			Progress string
			Storage  struct {
				S3 struct{ Bucket, Prefix string }
			}
		}
	}
	awsCLI(t, aws, ts.URL, home, &bts, "describe-bundle-tasks", "--bundle-ids", id)
	if len(bts.BundleTasks) != 1 || bts.BundleTasks[0].State != "complete" || bts.BundleTasks[0].Progress != "100%" ||
		bts.BundleTasks[0].Storage.S3.Prefix != "cli/image" {
		t.Fatalf("describe-bundle-tasks: %+v", bts)
	}
	if !sameFiles(t, unbundle(t, ctx, ts, s3, bucket, "cli/image"), ts.VolumePath(vol)) {
		t.Fatal("the bundle the aws CLI asked for does not unbundle to the volume")
	}

	// cancel-bundle-task while the bundle's uploads are held back: the
	// task fails with Cancelled and leaves nothing stored.
	gate.hold()
	awsCLI(t, aws, ts.URL, home, &bt, "bundle-instance", "--instance-id", inst, "--bucket", bucket, "--prefix", "cli/cancelled",
		"--owner-akid", s3.AccessKey, "--owner-sak", s3.SecretKey)
	awsCLI(t, aws, ts.URL, home, &bt, "cancel-bundle-task", "--bundle-id", bt.BundleTask.BundleID)
	defer gate.release() // the cancel must end the held uploads itself
	if bt.BundleTask.State != "cancelling" {
		t.Fatalf("cancel-bundle-task: %+v", bt)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		awsCLI(t, aws, ts.URL, home, &bts, "describe-bundle-tasks", "--bundle-ids", bt.BundleTask.BundleID)
		if bts.BundleTasks[0].State == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cancelled bundle still %s", bts.BundleTasks[0].State)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "cli/cancelled", Recursive: true}) {
		t.Fatalf("a cancelled bundle left %s (%v)", o.Key, o.Err)
	}
}

// An s3Gate is a proxy in front of S3 that can hold back uploads (POST and
// PUT) until released, or until their client gives up: a bundle task then
// stays running for as long as a test needs it to.
type s3Gate struct {
	*httptest.Server
	mu   sync.Mutex
	open chan struct{} // closed while uploads pass
}

func newS3Gate(t *testing.T, endpoint string) *s3Gate {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	g := &s3Gate{open: make(chan struct{})}
	close(g.open)
	proxy := httputil.NewSingleHostReverseProxy(u)
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			g.mu.Lock()
			open := g.open
			g.mu.Unlock()
			select {
			case <-open:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// hold holds back the uploads that arrive from now on.
func (g *s3Gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

// release lets held and later uploads through.
func (g *s3Gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}
