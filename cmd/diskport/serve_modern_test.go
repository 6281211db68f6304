package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
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
	want, err := os.ReadFile(testimg.QemuRaw(t, image))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(data, "snapshots", aws.ToString(d.SnapshotId)+".raw"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1<<30 || !bytes.Equal(got[:len(want)], want) || !bytes.Equal(got[len(want):], make([]byte, len(got)-len(want))) {
		t.Fatalf("the snapshot (%d bytes) differs from qemu-img's conversion", len(got))
	}
}
