package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/internal/testwait"
	"github.com/minio/minio-go/v7"
)

// modernServer is a server that reads UserBucket objects from the shared
// MinIO with its root credentials (standing for the vmimport role), and
// fetches https Urls from allow.
func modernServer(t *testing.T, s3 *s3test.Server, allow ...string) *testServer {
	t.Helper()
	return startServerWith(t, "", func(c *Config) {
		c.S3Endpoint, c.S3AccessKey, c.S3SecretKey, c.S3Region = s3.Endpoint, s3.AccessKey, s3.SecretKey, s3.Region
	}, append(allow, s3.Host)...)
}

// putObjects makes a bucket holding each file under its key.
func putObjects(t *testing.T, s3 *s3test.Server, files map[string]string) string {
	t.Helper()
	ctx := context.Background()
	mc := s3.Client(t)
	bucket := s3.Bucket(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3.Region}); err != nil {
		t.Fatal(err)
	}
	for key, path := range files {
		if _, err := mc.FPutObject(ctx, bucket, key, path, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return bucket
}

// waitModern polls describe, which reads a modern task's Describe item
// with its status, progress and status message, until the task is neither
// active nor deleting, checking that Progress is present while it is, and
// returns the last item.
func waitModern[T any](t *testing.T, id string, describe func() (item T, status, progress, message *string)) T {
	t.Helper()
	var item T
	var status, message *string
	ended := testwait.Until(2*time.Minute, func() bool {
		var progress *string
		item, status, progress, message = describe()
		switch st := aws.ToString(status); st {
		case "active", "deleting":
			if progress == nil {
				t.Fatalf("task %s is %s (%s) without Progress", id, st, aws.ToString(message))
			}
			return false
		}
		return true
	})
	if !ended {
		t.Fatalf("task %s still %s (%s)", id, aws.ToString(status), aws.ToString(message))
	}
	return item
}

// waitImportSnapshot waits for an ImportSnapshot task to end
// (waitModern), through DescribeImportSnapshotTasks.
func waitImportSnapshot(t *testing.T, c *ec2.Client, id string) types.SnapshotTaskDetail {
	t.Helper()
	return waitModern(t, id, func() (types.SnapshotTaskDetail, *string, *string, *string) {
		out, err := c.DescribeImportSnapshotTasks(context.Background(), &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ImportSnapshotTasks) != 1 || out.ImportSnapshotTasks[0].SnapshotTaskDetail == nil {
			t.Fatalf("DescribeImportSnapshotTasks(%s): %+v", id, out.ImportSnapshotTasks)
		}
		d := *out.ImportSnapshotTasks[0].SnapshotTaskDetail
		return d, d.Status, d.Progress, d.StatusMessage
	})
}

// TestSDKImportSnapshot imports images from MinIO with aws-sdk-go-v2, as
// osbuild does (UserBucket, no Format) and as Talos and Terraform do
// (Format given), waits with the SDK's SnapshotImported waiter, and
// compares each snapshot with qemu-img's raw conversion.
func TestSDKImportSnapshot(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := modernServer(t, s3)
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 5*65536, Seed: 31})
	images := map[string]string{"disk.raw": golden}
	for _, f := range formats[:3] {
		images[f.name] = testimg.Make(t, golden, f.qemuFormat, f.opts)
	}
	bucket := putObjects(t, s3, images)
	waiter := ec2.NewSnapshotImportedWaiter(c, func(o *ec2.SnapshotImportedWaiterOptions) { o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second })
	for key, path := range images {
		t.Run(key, func(t *testing.T) {
			in := &ec2.ImportSnapshotInput{Description: aws.String("osbuild " + key),
				DiskContainer: &types.SnapshotDiskContainer{UserBucket: &types.UserBucket{S3Bucket: aws.String(bucket), S3Key: aws.String(key)}}}
			if key == "streamOptimized" {
				in.DiskContainer.Format = aws.String("vmdk") // Talos and Terraform name it; any case
			}
			out, err := c.ImportSnapshot(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			id := aws.ToString(out.ImportTaskId)
			d := out.SnapshotTaskDetail
			if !strings.HasPrefix(id, "import-snap-") || len(id) != len("import-snap-")+17 || d == nil || aws.ToString(d.Status) != "active" ||
				d.Progress == nil || aws.ToString(d.StatusMessage) != "pending" || aws.ToString(d.UserBucket.S3Key) != key {
				t.Fatalf("ImportSnapshot answered %s %+v", id, d)
			}
			if err := waiter.Wait(ctx, &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{id}}, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
			d2 := waitImportSnapshot(t, c, id)
			st, _ := os.Stat(path)
			snap := aws.ToString(d2.SnapshotId)
			if aws.ToString(d2.Status) != "completed" || !strings.HasPrefix(snap, "snap-") || aws.ToFloat64(d2.DiskImageSize) != float64(st.Size()) ||
				d2.Progress != nil {
				t.Fatalf("completed task: %+v", d2)
			}
			sameVolume(t, ts.VolumePath(snap), testimg.QemuRaw(t, path), 1<<30)
			ds, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}, OwnerIds: []string{"self"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds.Snapshots) != 1 || ds.Snapshots[0].State != types.SnapshotStateCompleted || aws.ToInt32(ds.Snapshots[0].VolumeSize) != 1 ||
				aws.ToString(ds.Snapshots[0].OwnerId) == "" {
				t.Fatalf("DescribeSnapshots: %+v", ds.Snapshots)
			}
		})
	}
}

// TestSDKImportSnapshotRefusals: what a client gets wrong ends the task
// deleted with "ClientError: …" (a Format the bytes contradict, naming
// both; a key that is not there), or is refused at once; ClientToken
// makes a repeated call return its task.
func TestSDKImportSnapshotRefusals(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); slow.Close() })
	ts := modernServer(t, s3, slow.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	golden := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 32})
	vmdk := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	bucket := putObjects(t, s3, map[string]string{"disk.vmdk": vmdk})
	imp := func(format, key, token string) (*ec2.ImportSnapshotOutput, error) {
		in := &ec2.ImportSnapshotInput{DiskContainer: &types.SnapshotDiskContainer{
			UserBucket: &types.UserBucket{S3Bucket: aws.String(bucket), S3Key: aws.String(key)}}}
		if format != "" {
			in.DiskContainer.Format = aws.String(format)
		}
		if token != "" {
			in.ClientToken = aws.String(token)
		}
		return c.ImportSnapshot(ctx, in)
	}
	for _, tc := range []struct{ format, key, want string }{
		{"VHD", "disk.vmdk", "ClientError: Format is VHD but the bytes of s3://" + bucket + "/disk.vmdk are VMDK"},
		{"RAW", "missing.raw", "ClientError: Disk validation failed [We do not have access to the given resource s3://" + bucket + "/missing.raw."},
	} {
		out, err := imp(tc.format, tc.key, "")
		if err != nil {
			t.Fatal(err)
		}
		d := waitImportSnapshot(t, c, aws.ToString(out.ImportTaskId))
		if aws.ToString(d.Status) != "deleted" || !strings.HasPrefix(aws.ToString(d.StatusMessage), tc.want) || d.SnapshotId != nil {
			t.Fatalf("%s as %s: %s %q, want %q", tc.key, tc.format, aws.ToString(d.Status), aws.ToString(d.StatusMessage), tc.want)
		}
	}

	a, err := imp("", "disk.vmdk", "token-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := imp("", "disk.vmdk", "token-1")
	if err != nil || aws.ToString(b.ImportTaskId) != aws.ToString(a.ImportTaskId) {
		t.Fatalf("the same token again: %v, %v", b, err)
	}
	if _, err := imp("VMDK", "disk.vmdk", "token-1"); apiCode(err) != "IdempotentParameterMismatch" {
		t.Fatalf("the token with other parameters: %v", err)
	}
	if _, err := c.ImportSnapshot(ctx, &ec2.ImportSnapshotInput{Encrypted: aws.Bool(true),
		DiskContainer: &types.SnapshotDiskContainer{Url: aws.String("s3://" + bucket + "/disk.vmdk")}}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("Encrypted: %v", err)
	}
	if _, err := c.ImportSnapshot(ctx, &ec2.ImportSnapshotInput{DiskContainer: &types.SnapshotDiskContainer{Format: aws.String("QCOW2"),
		Url: aws.String("s3://" + bucket + "/disk.vmdk")}}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("Format QCOW2: %v", err)
	}
	if _, err := c.ImportSnapshot(ctx, &ec2.ImportSnapshotInput{DiskContainer: &types.SnapshotDiskContainer{
		Url: aws.String("https://example.com/disk.raw")}}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("a Url off the allow list: %v", err)
	}

	// A task whose Url never answers is cancelled: deleting, then deleted
	// with the reason.
	out, err := c.ImportSnapshot(ctx, &ec2.ImportSnapshotInput{DiskContainer: &types.SnapshotDiskContainer{Url: aws.String(slow.URL + "/disk.raw")}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ImportTaskId)
	cr, err := c.CancelImportTask(ctx, &ec2.CancelImportTaskInput{ImportTaskId: aws.String(id), CancelReason: aws.String("changed my mind")})
	if err != nil || aws.ToString(cr.PreviousState) != "active" || aws.ToString(cr.State) != "deleting" {
		t.Fatalf("CancelImportTask: %+v, %v", cr, err)
	}
	if d := waitImportSnapshot(t, c, id); aws.ToString(d.Status) != "deleted" || aws.ToString(d.StatusMessage) != "changed my mind" {
		t.Fatalf("cancelled task: %+v", d)
	}
	if _, err := c.CancelImportTask(ctx, &ec2.CancelImportTaskInput{ImportTaskId: aws.String(id)}); apiCode(err) != "IncorrectState" {
		t.Fatalf("cancelling a deleted task: %v", err)
	}

	// Filters, pages, and another account's view.
	all, err := c.DescribeImportSnapshotTasks(ctx, &ec2.DescribeImportSnapshotTasksInput{
		Filters: []types.Filter{{Name: aws.String("task-state"), Values: []string{"deleted"}}}})
	if err != nil || len(all.ImportSnapshotTasks) != 3 {
		t.Fatalf("deleted tasks: %d, %v", len(all.ImportSnapshotTasks), err)
	}
	var pages int
	p := ec2.NewDescribeImportSnapshotTasksPaginator(c, &ec2.DescribeImportSnapshotTasksInput{MaxResults: aws.Int32(2)})
	for n := 0; p.HasMorePages(); pages++ {
		pg, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n += len(pg.ImportSnapshotTasks); !p.HasMorePages() && n != 4 {
			t.Fatalf("%d tasks in pages", n)
		}
	}
	if pages != 2 {
		t.Fatalf("%d pages of 2 for 4 tasks", pages)
	}
	_, key, err := AddAccount(ctx, ts.st, "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob := ts.sdk(key.ID, key.Secret)
	if _, err := bob.DescribeImportSnapshotTasks(ctx, &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{id}}); err == nil {
		t.Fatal("bob sees alice's task")
	}
	if _, err := bob.CancelImportTask(ctx, &ec2.CancelImportTaskInput{ImportTaskId: aws.String(id)}); err == nil {
		t.Fatal("bob cancels alice's task")
	}
}
