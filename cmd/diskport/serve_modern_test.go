//go:build unix

package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/server/store"
	"github.com/minio/minio-go/v7"
)

// TestServeBinaryImportSnapshotKill9: an ImportSnapshot of a
// streamOptimized VMDK in MinIO (read with the S3 credentials of the
// server's environment, through a throttled proxy) whose server is killed
// with SIGKILL mid-conversion completes after a restart, with a snapshot
// identical to qemu-img's conversion.
func TestServeBinaryImportSnapshotKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kill -9 of the serve binary mid-import through MinIO")
	}
	t.Parallel()
	bin := buildCLI(t)
	s3 := s3test.Shared(t)
	target, _ := url.Parse(s3.Endpoint)
	proxy := httptest.NewServer(throttle(httputil.NewSingleHostReverseProxy(target), 24<<20))
	defer proxy.Close()
	g := testimg.Golden(t, testimg.Spec{Size: 192 << 20, Seed: 22, ZeroPercent: 5})
	image := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	ctx := context.Background()
	mc := s3.Client(t)
	bucket := s3.Bucket(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3.Region}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.FPutObject(ctx, bucket, "disk.vmdk", image, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	data := filepath.Join(t.TempDir(), "data")
	env := []string{"DISKPORT_ACCESS_KEY_ID=AKIASERVETEST0000002", "DISKPORT_SECRET_ACCESS_KEY=serve-test-secret",
		"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey, "AWS_REGION=" + s3.Region}
	p := startServe(t, bin, data, proxy.URL, env...)
	client := func(url string) *ec2.Client {
		return ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("AKIASERVETEST0000002", "serve-test-secret", "")})
	}
	c := client(p.url)
	out, err := c.ImportSnapshot(ctx, &ec2.ImportSnapshotInput{DiskContainer: &types.SnapshotDiskContainer{
		UserBucket: &types.UserBucket{S3Bucket: aws.String(bucket), S3Key: aws.String("disk.vmdk")}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ImportTaskId)
	detail := func(c *ec2.Client) types.SnapshotTaskDetail {
		t.Helper()
		dt, err := c.DescribeImportSnapshotTasks(ctx, &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		return *dt.ImportSnapshotTasks[0].SnapshotTaskDetail
	}
	// Kill once some 25% is converted (opening the VMDK read its first
	// and last 32 MiB).
	for deadline := time.Now().Add(time.Minute); ; {
		d := detail(c)
		if aws.ToString(d.Status) != "active" {
			t.Fatalf("task %s before the kill: %s", aws.ToString(d.Status), aws.ToString(d.StatusMessage))
		}
		if pct, _ := strconv.Atoi(aws.ToString(d.Progress)); pct >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import never got a third of the way: %+v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	snaps, _ := filepath.Glob(filepath.Join(data, "snapshots", "snap-*.raw"))
	if len(snaps) != 0 {
		t.Fatalf("a killed server left a snapshot under its final name: %v", snaps)
	}

	p = startServe(t, bin, data, proxy.URL, env...)
	c = client(p.url)
	var d types.SnapshotTaskDetail
	for deadline := time.Now().Add(2 * time.Minute); ; {
		d = detail(c)
		if aws.ToString(d.Status) == "completed" {
			break
		}
		if aws.ToString(d.Status) != "active" || time.Now().After(deadline) {
			t.Fatalf("after the restart the task is %s: %s\n%s", aws.ToString(d.Status), aws.ToString(d.StatusMessage), p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	testimg.SameVolume(t, filepath.Join(data, "snapshots", aws.ToString(d.SnapshotId)+".raw"), testimg.QemuRaw(t, image), 1<<30)
}

// TestServePostgresImportSnapshotTakeover: two servers share a PostgreSQL
// store; the one running an ImportSnapshot is killed with SIGKILL, and
// the other takes the task over once its lease (2 s) expires and
// completes it with a snapshot identical to qemu-img's conversion in its
// own data directory.
func TestServePostgresImportSnapshotTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a PostgreSQL cluster of serve processes")
	}
	t.Parallel()
	c := newCluster(t, 24<<20)
	env := []string{"DISKPORT_ACCESS_KEY_ID=" + pgKey, "DISKPORT_SECRET_ACCESS_KEY=" + pgSecret,
		"AWS_ACCESS_KEY_ID=" + c.s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + c.s3.SecretKey, "AWS_REGION=" + c.s3.Region}
	for i := range 2 {
		args := []string{"--data", filepath.Join(t.TempDir(), "data"), "--s3-endpoint", c.s3url, "--store", c.pg.URL,
			"--server-id", "s" + strconv.Itoa(i), "--lease-timeout", "2s"}
		c.args = append(c.args, args)
		c.procs = append(c.procs, startServeArgs(t, c.bin, args, env...))
	}
	st, err := store.OpenPostgres(context.Background(), c.pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.st = st

	g := testimg.Golden(t, testimg.Spec{Size: 160 << 20, Seed: 24, ZeroPercent: 5})
	image := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	ctx := context.Background()
	mc := c.s3.Client(t)
	bucket := c.s3.Bucket(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: c.s3.Region}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.FPutObject(ctx, bucket, "disk.vmdk", image, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := c.client(0).ImportSnapshot(ctx, &ec2.ImportSnapshotInput{DiskContainer: &types.SnapshotDiskContainer{
		UserBucket: &types.UserBucket{S3Bucket: aws.String(bucket), S3Key: aws.String("disk.vmdk")}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ImportTaskId)
	acct := c.account()
	owner := -1
	for deadline := time.Now().Add(time.Minute); owner < 0; time.Sleep(20 * time.Millisecond) {
		tk, err := c.st.Task(ctx, acct, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State != store.TaskActive || time.Now().After(deadline) {
			t.Fatalf("task %s before the kill: %s", tk.State, tk.StatusMessage)
		}
		if strings.HasPrefix(tk.StatusMessage, "Progress:") { // converting
			fmt.Sscanf(tk.LeaseOwner, "s%d", &owner)
		}
	}
	c.procs[owner].cmd.Process.Signal(syscall.SIGKILL)
	c.procs[owner].cmd.Wait()
	took := awaitTakeover(t, c, id, owner, 2*time.Second+6*time.Second)
	t.Logf("taken over %v after the kill", took)
	other := 1 - owner
	var d types.SnapshotTaskDetail
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		dt, err := c.client(other).DescribeImportSnapshotTasks(ctx, &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if d = *dt.ImportSnapshotTasks[0].SnapshotTaskDetail; aws.ToString(d.Status) == "completed" {
			break
		}
		if aws.ToString(d.Status) != "active" || time.Now().After(deadline) {
			t.Fatalf("after the takeover the task is %s: %s\n%s", aws.ToString(d.Status), aws.ToString(d.StatusMessage), c.procs[other].log())
		}
	}
	sameAsQemu(t, filepath.Join(c.args[other][1], "snapshots", aws.ToString(d.SnapshotId)+".raw"), image)
	ds, err := c.client(owner^1).DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(d.SnapshotId)}})
	if err != nil || len(ds.Snapshots) != 1 {
		t.Fatalf("DescribeSnapshots: %+v, %v", ds, err)
	}
}
