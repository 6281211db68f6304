package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// TestClientShapes sends the requests osbuild, Talos and Terraform send
// (../shared/docs/ec2-modern.md §4; Packer's and Ansible's are in
// TestSDKImportImage) with aws-sdk-go-v2, which all three use, and reads
// what each reads.
func TestClientShapes(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := modernServer(t, s3)
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	golden := testimg.Golden(t, testimg.Spec{Size: 2<<20 + 512, Seed: 61})
	vmdk := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	bucket := putObjects(t, s3, map[string]string{"image.raw": golden, "disk.vmdk": vmdk})
	ub := func(key string) *types.UserBucket {
		return &types.UserBucket{S3Bucket: aws.String(bucket), S3Key: aws.String(key)}
	}
	register := func(t *testing.T, name, snap string) {
		t.Helper()
		if _, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String(name), Architecture: types.ArchitectureValuesX8664,
			VirtualizationType: aws.String("hvm"), RootDeviceName: aws.String("/dev/sda1"), EnaSupport: aws.Bool(true), BootMode: types.BootModeValuesUefi,
			BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"),
				Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(snap), DeleteOnTermination: aws.Bool(true), VolumeType: types.VolumeTypeGp3}}}}); err != nil {
			t.Fatal(err)
		}
	}

	// osbuild/images awscloud.Register: no Format, the SDK's waiter, then
	// CreateTags on the snapshot and RegisterImage.
	t.Run("osbuild", func(t *testing.T) {
		out, err := c.ImportSnapshot(ctx, &ec2.ImportSnapshotInput{Description: aws.String("image.raw"), RoleName: aws.String("vmimport"),
			DiskContainer: &types.SnapshotDiskContainer{UserBucket: ub("image.raw")}})
		if err != nil {
			t.Fatal(err)
		}
		in := &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{aws.ToString(out.ImportTaskId)}}
		if err := ec2.NewSnapshotImportedWaiter(c, func(o *ec2.SnapshotImportedWaiterOptions) { o.MinDelay = 100 * time.Millisecond }).Wait(ctx, in, time.Minute); err != nil {
			t.Fatal(err)
		}
		dt, err := c.DescribeImportSnapshotTasks(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		d := dt.ImportSnapshotTasks[0].SnapshotTaskDetail
		snap := aws.ToString(d.SnapshotId)
		if aws.ToString(d.Status) != "completed" || aws.ToString(d.Format) != "RAW" {
			t.Fatalf("osbuild reads %+v", d)
		}
		if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{snap}, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("osbuild")}}}); err != nil {
			t.Fatal(err)
		}
		register(t, "osbuild-image", snap)
		sameVolume(t, ts.VolumePath(snap), golden, 1<<30)
	})

	// Talos' cloud-image-uploader: Format raw, polling, dereferencing
	// Progress until the task completes.
	t.Run("talos", func(t *testing.T) {
		out, err := c.ImportSnapshot(ctx, &ec2.ImportSnapshotInput{Description: aws.String("talos"),
			DiskContainer: &types.SnapshotDiskContainer{Format: aws.String("raw"), UserBucket: ub("image.raw")}})
		if err != nil {
			t.Fatal(err)
		}
		var snap string
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			dt, err := c.DescribeImportSnapshotTasks(ctx, &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{aws.ToString(out.ImportTaskId)}})
			if err != nil {
				t.Fatal(err)
			}
			d := dt.ImportSnapshotTasks[0].SnapshotTaskDetail
			if aws.ToString(d.Status) == "completed" {
				snap = aws.ToString(d.SnapshotId)
				break
			}
			if _, err := strconv.ParseFloat(*d.Progress, 64); err != nil || aws.ToString(d.Status) != "active" || time.Now().After(deadline) {
				t.Fatalf("talos reads %+v", d)
			}
		}
		register(t, "talos-image", snap)
	})

	// Terraform's aws_ebs_snapshot_import: ClientToken, tags on the
	// task, Format VMDK, Encrypted false, RoleName; statuses active …
	// completed; then DescribeSnapshots and CreateTags on the snapshot.
	t.Run("terraform", func(t *testing.T) {
		in := &ec2.ImportSnapshotInput{ClientToken: aws.String("terraform-20261208"), Encrypted: aws.Bool(false), RoleName: aws.String("vmimport"),
			DiskContainer: &types.SnapshotDiskContainer{Format: aws.String("VMDK"), UserBucket: ub("disk.vmdk"), Description: aws.String("tf")},
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImportSnapshotTask,
				Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("tf")}}}}}
		out, err := c.ImportSnapshot(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.ImportSnapshot(ctx, in) // a retry after a lost answer
		if err != nil || aws.ToString(again.ImportTaskId) != aws.ToString(out.ImportTaskId) {
			t.Fatalf("the retry: %+v, %v", again, err)
		}
		d := waitImportSnapshot(t, c, aws.ToString(out.ImportTaskId))
		if st := aws.ToString(d.Status); st != "completed" {
			t.Fatalf("terraform fails on %s: %s", st, aws.ToString(d.StatusMessage))
		}
		snap := aws.ToString(d.SnapshotId)
		ds, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
		if err != nil || len(ds.Snapshots) != 1 || aws.ToInt32(ds.Snapshots[0].VolumeSize) != 1 || !strings.HasPrefix(aws.ToString(ds.Snapshots[0].VolumeId), "vol-") {
			t.Fatalf("DescribeSnapshots: %+v, %v", ds, err)
		}
		if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{snap}, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("tf")}}}); err != nil {
			t.Fatal(err)
		}
		sameVolume(t, ts.VolumePath(snap), testimg.QemuRaw(t, vmdk), 1<<30)
	})
}
