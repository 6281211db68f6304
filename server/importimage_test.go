package server

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// waitImportImage waits for an ImportImage task to end (waitModern),
// through DescribeImportImageTasks as Packer does (completed is success,
// deleted failure).
func waitImportImage(t *testing.T, c *ec2.Client, id string) types.ImportImageTask {
	t.Helper()
	return waitModern(t, id, func() (types.ImportImageTask, *string, *string, *string) {
		out, err := c.DescribeImportImageTasks(context.Background(), &ec2.DescribeImportImageTasksInput{ImportTaskIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ImportImageTasks) != 1 {
			t.Fatalf("DescribeImportImageTasks(%s): %+v", id, out.ImportImageTasks)
		}
		it := out.ImportImageTasks[0]
		return it, it.Status, it.Progress, it.StatusMessage
	})
}

// TestSDKImportImage imports an image of two disks (a streamOptimized
// VMDK and a RAW, as Packer sends them) and an OVA of two disks, finds
// the tasks as Ansible does (filters tag:Name and task-state), and checks
// that each ends with an ami- whose block devices are the snapshots, each
// compared with qemu-img's conversion of its disk.
func TestSDKImportImage(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := modernServer(t, s3)
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 9*65536, Seed: 41})
	vmdk := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	data := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 42})
	app := twoDiskOVA(t)
	bucket := putObjects(t, s3, map[string]string{"root.vmdk": vmdk, "data.raw": data, "app.ova": app.path})
	ub := func(key string) *types.UserBucket {
		return &types.UserBucket{S3Bucket: aws.String(bucket), S3Key: aws.String(key)}
	}

	for _, tc := range []struct {
		name       string
		containers []types.ImageDiskContainer
		disks      []string
	}{
		{"packer", []types.ImageDiskContainer{{Format: aws.String("vmdk"), UserBucket: ub("root.vmdk")},
			{Format: aws.String("raw"), UserBucket: ub("data.raw"), DeviceName: aws.String("/dev/sdf")}}, []string{vmdk, data}},
		{"ova", []types.ImageDiskContainer{{Format: aws.String("ova"), UserBucket: ub("app.ova")}}, app.disks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.ImportImage(ctx, &ec2.ImportImageInput{DiskContainers: tc.containers, Architecture: aws.String("x86_64"),
				BootMode: types.BootModeValuesUefi, Platform: aws.String("Linux"), LicenseType: aws.String("BYOL"), Description: aws.String(tc.name),
				RoleName: aws.String("vmimport"), ClientToken: aws.String("tok-" + tc.name),
				TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImportImageTask,
					Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("ansible-" + tc.name)}}}}})
			if err != nil {
				t.Fatal(err)
			}
			id := aws.ToString(out.ImportTaskId)
			if !strings.HasPrefix(id, "import-ami-") || len(id) != len("import-ami-")+17 || aws.ToString(out.Status) != "active" ||
				out.Progress == nil || out.ImageId != nil || len(out.SnapshotDetails) != len(tc.containers) || len(out.Tags) != 1 {
				t.Fatalf("ImportImage answered %s %+v", id, out)
			}
			// Ansible's idempotency: the task by its Name tag and state.
			found, err := c.DescribeImportImageTasks(ctx, &ec2.DescribeImportImageTasksInput{Filters: []types.Filter{
				{Name: aws.String("tag:Name"), Values: []string{"ansible-" + tc.name}},
				{Name: aws.String("task-state"), Values: []string{"completed", "active"}}}})
			if err != nil || len(found.ImportImageTasks) != 1 || aws.ToString(found.ImportImageTasks[0].ImportTaskId) != id {
				t.Fatalf("the task by its tag: %+v, %v", found, err)
			}
			it := waitImportImage(t, c, id)
			ami := aws.ToString(it.ImageId)
			if aws.ToString(it.Status) != "completed" || !strings.HasPrefix(ami, "ami-") || len(it.SnapshotDetails) != len(tc.disks) ||
				it.BootMode != types.BootModeValuesUefi || aws.ToString(it.LicenseType) != "BYOL" {
				t.Fatalf("completed task: %+v", it)
			}
			di, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
			if err != nil || len(di.Images) != 1 {
				t.Fatalf("DescribeImages: %+v, %v", di, err)
			}
			img := di.Images[0]
			if len(img.BlockDeviceMappings) != len(tc.disks) || aws.ToString(img.RootDeviceName) != "/dev/sda1" || aws.ToString(img.Name) != id {
				t.Fatalf("the image: %+v", img)
			}
			for i, disk := range tc.disks {
				bd, sd := img.BlockDeviceMappings[i], it.SnapshotDetails[i]
				snap := aws.ToString(bd.Ebs.SnapshotId)
				if snap != aws.ToString(sd.SnapshotId) || aws.ToString(bd.DeviceName) != aws.ToString(sd.DeviceName) {
					t.Fatalf("block device %d %+v, snapshot detail %+v", i, bd, sd)
				}
				sameVolume(t, ts.VolumePath(snap), testimg.QemuRaw(t, disk), int64(aws.ToInt32(bd.Ebs.VolumeSize))<<30)
			}
			if tc.name == "packer" && aws.ToString(img.BlockDeviceMappings[1].DeviceName) != "/dev/sdf" {
				t.Fatalf("the data disk's device: %+v", img.BlockDeviceMappings[1])
			}
		})
	}

	// A second disk that fails fails the task, deleting the first's
	// snapshot; a repeated token answers its task.
	out, err := c.ImportImage(ctx, &ec2.ImportImageInput{DiskContainers: []types.ImageDiskContainer{
		{UserBucket: ub("root.vmdk")}, {Format: aws.String("VHD"), UserBucket: ub("data.raw")}}})
	if err != nil {
		t.Fatal(err)
	}
	it := waitImportImage(t, c, aws.ToString(out.ImportTaskId))
	if aws.ToString(it.Status) != "deleted" || !strings.HasPrefix(aws.ToString(it.StatusMessage), "ClientError: Format is VHD but the bytes of") || it.ImageId != nil {
		t.Fatalf("failed task: %+v", it)
	}
	for _, sd := range it.SnapshotDetails {
		if sd.SnapshotId != nil {
			t.Fatalf("a failed task's snapshot: %+v", sd)
		}
	}
	snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{})
	if err != nil || len(snaps.Snapshots) != 4 {
		t.Fatalf("%d snapshots after 2 images of 2 disks and a failure, %v", len(snaps.Snapshots), err)
	}
	if _, err := c.ImportImage(ctx, &ec2.ImportImageInput{BootMode: types.BootModeValuesUefiPreferred,
		DiskContainers: []types.ImageDiskContainer{{UserBucket: ub("root.vmdk")}}}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("BootMode uefi-preferred: %v", err)
	}
	deleted, err := c.DescribeImportImageTasks(ctx, &ec2.DescribeImportImageTasksInput{Filters: []types.Filter{
		{Name: aws.String("task-state"), Values: []string{"deleted"}}}})
	if err != nil || len(deleted.ImportImageTasks) != 1 {
		t.Fatalf("deleted tasks: %+v, %v", deleted, err)
	}
	again, err := c.ImportImage(ctx, &ec2.ImportImageInput{DiskContainers: []types.ImageDiskContainer{{Format: aws.String("ova"), UserBucket: ub("app.ova")}},
		Architecture: aws.String("x86_64"), BootMode: types.BootModeValuesUefi, Platform: aws.String("Linux"), LicenseType: aws.String("BYOL"),
		Description: aws.String("ova"), RoleName: aws.String("vmimport"), ClientToken: aws.String("tok-ova"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImportImageTask,
			Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("ansible-ova")}}}}})
	if err != nil || aws.ToString(again.Status) != "completed" || aws.ToString(again.ImageId) == "" {
		t.Fatalf("the ova import again: %+v, %v", again, err)
	}
}
