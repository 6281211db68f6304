package server

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// importSnap imports s3://bucket/key with ImportSnapshot and returns the
// snapshot's id once the task completed.
func importSnap(t *testing.T, c *ec2.Client, bucket, key string) string {
	t.Helper()
	out, err := c.ImportSnapshot(context.Background(), &ec2.ImportSnapshotInput{
		DiskContainer: &types.SnapshotDiskContainer{UserBucket: &types.UserBucket{S3Bucket: aws.String(bucket), S3Key: aws.String(key)}}})
	if err != nil {
		t.Fatal(err)
	}
	d := waitImportSnapshot(t, c, aws.ToString(out.ImportTaskId))
	if aws.ToString(d.Status) != "completed" {
		t.Fatalf("import of %s ended %s: %s", key, aws.ToString(d.Status), aws.ToString(d.StatusMessage))
	}
	return aws.ToString(d.SnapshotId)
}

// TestSDKSnapshotsAndImages: what osbuild, Talos and Terraform do after
// ImportSnapshot (tag the snapshot, register an image of it, describe
// both), CreateVolume of the snapshot (a sparse copy of its bytes), and
// the refusals that keep a snapshot an image uses.
func TestSDKSnapshotsAndImages(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := modernServer(t, s3)
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	golden := testimg.Golden(t, testimg.Spec{Size: 2<<20 + 7*65536, Seed: 33})
	image := testimg.Make(t, golden, "vpc", "subformat=dynamic")
	bucket := putObjects(t, s3, map[string]string{"disk.vhd": image})
	snap := importSnap(t, c, bucket, "disk.vhd")

	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{snap},
		Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("fedora")}, {Key: aws.String("Arch"), Value: aws.String("x86_64")}}}); err != nil {
		t.Fatal(err)
	}
	dt, err := c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{snap}}}})
	if err != nil || len(dt.Tags) != 2 || dt.Tags[0].ResourceType != types.ResourceTypeSnapshot || aws.ToString(dt.Tags[1].Value) != "fedora" {
		t.Fatalf("DescribeTags: %+v, %v", dt, err)
	}

	// RegisterImage as osbuild sends it.
	ri, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("fedora-43 (x86_64)"), Architecture: types.ArchitectureValuesX8664,
		RootDeviceName: aws.String("/dev/sda1"), VirtualizationType: aws.String("hvm"), EnaSupport: aws.Bool(true), BootMode: types.BootModeValuesUefiPreferred,
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"),
			Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(snap), DeleteOnTermination: aws.Bool(true), VolumeType: types.VolumeTypeGp3}}},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("img")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ami := aws.ToString(ri.ImageId)
	if !strings.HasPrefix(ami, "ami-") || len(ami) != 4+17 {
		t.Fatalf("RegisterImage: %q", ami)
	}
	if _, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("fedora-43 (x86_64)"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(snap)}}}}); apiCode(err) != "InvalidAMIName.Duplicate" {
		t.Fatalf("a second image of the name: %v", err)
	}
	if err := ec2.NewImageAvailableWaiter(c).Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	di, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("tag:Name"), Values: []string{"img"}}}})
	if err != nil || len(di.Images) != 1 {
		t.Fatalf("DescribeImages: %+v, %v", di, err)
	}
	img := di.Images[0]
	if aws.ToString(img.ImageId) != ami || img.State != types.ImageStateAvailable || aws.ToString(img.RootDeviceName) != "/dev/sda1" ||
		len(img.BlockDeviceMappings) != 1 || aws.ToString(img.BlockDeviceMappings[0].Ebs.SnapshotId) != snap ||
		aws.ToInt32(img.BlockDeviceMappings[0].Ebs.VolumeSize) != 1 || img.BootMode != types.BootModeValuesUefiPreferred || !aws.ToBool(img.EnaSupport) {
		t.Fatalf("the image: %+v", img)
	}
	if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)}); apiCode(err) != "InvalidSnapshot.InUse" {
		t.Fatalf("deleting the image's snapshot: %v", err)
	}

	// CreateVolume of the snapshot: the snapshot's bytes, its holes holes.
	cv, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{SnapshotId: aws.String(snap), AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(2)})
	if err != nil || cv.State != types.VolumeStateCreating || aws.ToString(cv.SnapshotId) != snap {
		t.Fatalf("CreateVolume: %+v, %v", cv, err)
	}
	vol := aws.ToString(cv.VolumeId)
	if err := ec2.NewVolumeAvailableWaiter(c, func(o *ec2.VolumeAvailableWaiterOptions) { o.MinDelay = 100 * time.Millisecond }).Wait(ctx,
		&ec2.DescribeVolumesInput{VolumeIds: []string{vol}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	sameVolume(t, ts.VolumePath(vol), testimg.QemuRaw(t, image), 2<<30)
	fi, err := os.Stat(ts.VolumePath(vol))
	if err != nil {
		t.Fatal(err)
	}
	if used, ok := disk.AllocatedBytes(fi); ok && used > 64<<20 {
		t.Fatalf("the 2 GiB volume of a %d-byte disk allocates %d bytes", 2<<20, used)
	}
	cv, err = c.CreateVolume(ctx, &ec2.CreateVolumeInput{SnapshotId: aws.String(snap), AvailabilityZone: aws.String("us-east-1a")})
	if err != nil || aws.ToInt32(cv.Size) != 1 {
		t.Fatalf("CreateVolume of the snapshot's size: %+v, %v", cv, err)
	}
	if err := ec2.NewVolumeAvailableWaiter(c, func(o *ec2.VolumeAvailableWaiterOptions) { o.MinDelay = 100 * time.Millisecond }).Wait(ctx,
		&ec2.DescribeVolumesInput{VolumeIds: []string{aws.ToString(cv.VolumeId)}}, time.Minute); err != nil {
		t.Fatal(err)
	}

	// Another account sees none of it.
	_, key, err := AddAccount(ctx, ts.st, "eve")
	if err != nil {
		t.Fatal(err)
	}
	eve := ts.sdk(key.ID, key.Secret)
	if _, err := eve.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}}); apiCode(err) != "InvalidSnapshot.NotFound" {
		t.Fatalf("eve describes the snapshot: %v", err)
	}
	if _, err := eve.CreateVolume(ctx, &ec2.CreateVolumeInput{SnapshotId: aws.String(snap), AvailabilityZone: aws.String("us-east-1a")}); apiCode(err) != "InvalidSnapshot.NotFound" {
		t.Fatalf("eve copies the snapshot: %v", err)
	}
	if _, err := eve.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ami}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); apiCode(err) != "InvalidID" {
		t.Fatalf("eve tags the image: %v", err)
	}
	if out, err := eve.DescribeImages(ctx, &ec2.DescribeImagesInput{}); err != nil || len(out.Images) != 0 {
		t.Fatalf("eve's images: %+v, %v", out, err)
	}

	if _, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(ami)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ts.VolumePath(snap)); !os.IsNotExist(err) {
		t.Fatalf("the deleted snapshot's file: %v", err)
	}
	if _, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}}); apiCode(err) != "InvalidSnapshot.NotFound" {
		t.Fatalf("describing the deleted snapshot: %v", err)
	}
	if _, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"vol-1"}}); apiCode(err) != "InvalidSnapshotID.Malformed" {
		t.Fatalf("a malformed id: %v", err)
	}
}
