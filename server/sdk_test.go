package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// formats are the images every import test converts: qemu-img makes
// them from one golden raw disk.
var formats = []struct {
	name, qemuFormat, opts, ec2Format string
}{
	{"streamOptimized", "vmdk", "subformat=streamOptimized", "VMDK"},
	{"sparseVMDK", "vmdk", "subformat=monolithicSparse", "VMDK"},
	{"dynamicVHD", "vpc", "subformat=dynamic", "VHD"},
	{"raw", "raw", "", "RAW"},
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSDKImportVolume(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := startServer(t, "", s3.Host)
	c := ts.sdk(testKey, testSecret)
	golden := testimg.Golden(t, testimg.Spec{Size: 5<<20 + 3*65536, Seed: 12})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			image := golden
			if f.qemuFormat != "raw" {
				image = testimg.Make(t, golden, f.qemuFormat, f.opts)
			}
			res, murl := upload(t, s3, image)
			out, err := c.ImportVolume(context.Background(), &ec2.ImportVolumeInput{
				AvailabilityZone: aws.String("us-east-1b"),
				Description:      aws.String("import of " + f.name),
				Image:            &types.DiskImageDetail{Format: types.DiskImageFormat(f.ec2Format), Bytes: aws.Int64(res.Manifest.Size), ImportManifestUrl: aws.String(murl)},
				Volume:           &types.VolumeDetail{Size: aws.Int64(1)},
			})
			if err != nil {
				t.Fatal(err)
			}
			ct := out.ConversionTask
			if ct == nil || !strings.HasPrefix(aws.ToString(ct.ConversionTaskId), "import-vol-") || ct.State != types.ConversionTaskStateActive ||
				ct.ImportVolume == nil || ct.ImportVolume.Volume == nil || aws.ToString(ct.ImportVolume.AvailabilityZone) != "us-east-1b" ||
				aws.ToInt64(ct.ImportVolume.Image.Size) != res.Manifest.Size || aws.ToString(ct.ExpirationTime) == "" {
				t.Fatalf("ImportVolume answered %+v", ct)
			}
			id, vol := aws.ToString(ct.ConversionTaskId), aws.ToString(ct.ImportVolume.Volume.Id)
			state, msg := waitTask(t, c, id, 2*time.Minute)
			if state != "completed" {
				t.Fatalf("task %s ended %s: %s", id, state, msg)
			}
			sameVolume(t, ts.VolumePath(vol), testimg.QemuRaw(t, image), 1<<30)
			dv, err := c.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
			if err != nil {
				t.Fatal(err)
			}
			if len(dv.Volumes) != 1 || dv.Volumes[0].State != types.VolumeStateAvailable || aws.ToInt32(dv.Volumes[0].Size) != 1 ||
				aws.ToString(dv.Volumes[0].AvailabilityZone) != "us-east-1b" || dv.Volumes[0].CreateTime == nil {
				t.Fatalf("DescribeVolumes: %+v", dv.Volumes)
			}
			dt, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{id}})
			if err != nil {
				t.Fatal(err)
			}
			iv := dt.ConversionTasks[0].ImportVolume
			if iv == nil || aws.ToString(iv.Description) != "import of "+f.name || aws.ToInt64(iv.BytesConverted) == 0 ||
				string(iv.Image.Format) != f.ec2Format {
				t.Fatalf("completed task: %+v", iv)
			}
		})
	}
}

func TestSDKImportInstance(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := startServer(t, "", s3.Host)
	c := ts.sdk(testKey, testSecret)
	golden := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 5})
	root := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	data := testimg.Make(t, golden, "vpc", "subformat=dynamic")
	var disks []types.DiskImage
	for _, img := range []string{root, data} {
		res, murl := upload(t, s3, img)
		disks = append(disks, types.DiskImage{
			Image:  &types.DiskImageDetail{Format: types.DiskImageFormat(res.Manifest.FileFormat), Bytes: aws.Int64(res.Manifest.Size), ImportManifestUrl: aws.String(murl)},
			Volume: &types.VolumeDetail{Size: aws.Int64(1)}, Description: aws.String("disk " + img[len(img)-4:]),
		})
	}
	out, err := c.ImportInstance(context.Background(), &ec2.ImportInstanceInput{
		Platform:   types.PlatformValuesWindows,
		DiskImages: disks,
		LaunchSpecification: &types.ImportInstanceLaunchSpecification{
			Architecture: types.ArchitectureValuesX8664, InstanceType: types.InstanceTypeM5Large,
			Monitoring: aws.Bool(true), Placement: &types.Placement{AvailabilityZone: aws.String("us-east-1a")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ii := out.ConversionTask.ImportInstance
	if ii == nil || !strings.HasPrefix(aws.ToString(ii.InstanceId), "i-") || len(ii.Volumes) != 2 || ii.Platform != types.PlatformValuesWindows {
		t.Fatalf("ImportInstance answered %+v", out.ConversionTask)
	}
	id := aws.ToString(out.ConversionTask.ConversionTaskId)
	if state, msg := waitTask(t, c, id, 2*time.Minute); state != "completed" {
		t.Fatalf("task ended %s: %s", state, msg)
	}
	dt, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range dt.ConversionTasks[0].ImportInstance.Volumes {
		if aws.ToString(v.Status) != "completed" {
			t.Fatalf("volume %d: %+v", i, v)
		}
		sameVolume(t, ts.VolumePath(aws.ToString(v.Volume.Id)), testimg.QemuRaw(t, []string{root, data}[i]), 1<<30)
	}
	di, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(ii.InstanceId)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(di.Reservations) != 1 || len(di.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances: %+v", di.Reservations)
	}
	in := di.Reservations[0].Instances[0]
	if in.State == nil || in.State.Name != types.InstanceStateNameStopped || len(in.BlockDeviceMappings) != 2 ||
		aws.ToString(in.BlockDeviceMappings[0].DeviceName) != "/dev/sda1" || in.Monitoring.State != types.MonitoringStateEnabled ||
		in.InstanceType != types.InstanceTypeM5Large || aws.ToString(in.Placement.AvailabilityZone) != "us-east-1a" {
		t.Fatalf("instance %+v", in)
	}
	// Another account sees neither the instance nor its volumes.
	_, key, err := AddAccount(context.Background(), ts.st, "other")
	if err != nil {
		t.Fatal(err)
	}
	other := ts.sdk(key.ID, key.Secret)
	if _, err := other.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(ii.InstanceId)}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("another account's DescribeInstances: %v", err)
	}
	if all, err := other.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}); err != nil || len(all.Reservations) != 0 {
		t.Fatalf("another account lists %v, %v", all, err)
	}
	if _, err := other.DeleteVolume(context.Background(), &ec2.DeleteVolumeInput{VolumeId: in.BlockDeviceMappings[1].Ebs.VolumeId}); apiCode(err) != "InvalidVolume.NotFound" {
		t.Fatalf("another account's DeleteVolume: %v", err)
	}
	if _, err := other.BundleInstance(context.Background(), &ec2.BundleInstanceInput{InstanceId: ii.InstanceId, Storage: &types.Storage{S3: &types.S3Storage{
		Bucket: aws.String("b"), Prefix: aws.String("p"), AWSAccessKeyId: aws.String("a"), UploadPolicy: []byte("{}"), UploadPolicySignature: aws.String("s")}}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("another account's BundleInstance: %v", err)
	}
	// An instance's volume is in use: DeleteVolume refuses it.
	_, err = c.DeleteVolume(context.Background(), &ec2.DeleteVolumeInput{VolumeId: in.BlockDeviceMappings[0].Ebs.VolumeId})
	if apiCode(err) != "VolumeInUse" {
		t.Fatalf("DeleteVolume of an instance's volume: %v", err)
	}
}

func TestSDKRefusals(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := startServer(t, "", s3.Host)
	ctx := context.Background()
	c := ts.sdk(testKey, testSecret)
	good := func() *ec2.ImportVolumeInput {
		return &ec2.ImportVolumeInput{
			Image:  &types.DiskImageDetail{Format: types.DiskImageFormatRaw, Bytes: aws.Int64(1 << 20), ImportManifestUrl: aws.String(s3.Endpoint + "/b/m.xml")},
			Volume: &types.VolumeDetail{Size: aws.Int64(1)},
		}
	}
	cases := []struct {
		name   string
		client *ec2.Client
		in     func() *ec2.ImportVolumeInput
		code   string
	}{
		{"wrong secret", ts.sdk(testKey, "not-the-secret"), good, "SignatureDoesNotMatch"},
		{"unknown key", ts.sdk("AKIAUNKNOWN000000000", testSecret), good, "AuthFailure"},
		{"bad format", c, func() *ec2.ImportVolumeInput { in := good(); in.Image.Format = "QCOW2"; return in }, "InvalidParameterValue"},
		{"zero size", c, func() *ec2.ImportVolumeInput { in := good(); in.Volume.Size = aws.Int64(0); return in }, "InvalidParameterValue"},
		{"raw bigger than the volume", c, func() *ec2.ImportVolumeInput { in := good(); in.Image.Bytes = aws.Int64(2<<30 + 1); return in }, "InvalidParameterValue"},
		{"URL off the allow list", c, func() *ec2.ImportVolumeInput {
			in := good()
			in.Image.ImportManifestUrl = aws.String("http://169.254.169.254/latest/meta-data/")
			return in
		}, "InvalidParameterValue"},
		{"file URL", c, func() *ec2.ImportVolumeInput {
			in := good()
			in.Image.ImportManifestUrl = aws.String("file:///etc/passwd")
			return in
		}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.ImportVolume(ctx, tc.in())
			if got := apiCode(err); got != tc.code {
				t.Fatalf("got %v (code %q), want %s", err, got, tc.code)
			}
		})
	}
	if left, err := ts.st.Unfinished(ctx); err != nil || len(left) != 0 {
		t.Fatalf("refused requests left tasks: %v %v", left, err)
	}

	_, err := c.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{"import-vol-00000000"}})
	if apiCode(err) != "InvalidConversionTaskId.NotFound" {
		t.Fatalf("unknown task: %v", err)
	}
	_, err = c.CancelConversionTask(ctx, &ec2.CancelConversionTaskInput{ConversionTaskId: aws.String("import-vol-00000000")})
	if apiCode(err) != "InvalidConversionTaskId.NotFound" {
		t.Fatalf("cancel of an unknown task: %v", err)
	}
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if apiCode(err) != "UnsupportedOperation" || !strings.Contains(err.Error(), "ImportVolume") {
		t.Fatalf("unsupported action: %v", err)
	}

	// Another account sees none of the first one's tasks and cannot
	// cancel them.
	_, key, err := AddAccount(ctx, ts.st, "other")
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ImportVolume(ctx, good())
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ConversionTask.ConversionTaskId)
	other := ts.sdk(key.ID, key.Secret)
	if all, err := other.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{}); err != nil || len(all.ConversionTasks) != 0 {
		t.Fatalf("the other account lists %v, %v", all, err)
	}
	_, err = other.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{id}})
	if apiCode(err) != "InvalidConversionTaskId.NotFound" {
		t.Fatalf("the other account describes the task: %v", err)
	}
	_, err = other.CancelConversionTask(ctx, &ec2.CancelConversionTaskInput{ConversionTaskId: aws.String(id)})
	if apiCode(err) != "InvalidConversionTaskId.NotFound" {
		t.Fatalf("the other account cancels the task: %v", err)
	}
	if vols, err := other.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{}); err != nil || len(vols.Volumes) != 0 {
		t.Fatalf("the other account lists volumes %v, %v", vols, err)
	}
	// The manifest does not exist: the task fails, with the reason, and
	// leaves no volume; cancelling it then is IncorrectState.
	state, msg := waitTask(t, c, id, time.Minute)
	if state != "cancelled" || !strings.HasPrefix(msg, "Failed: ") || strings.Contains(msg, "Signature") {
		t.Fatalf("task with a missing manifest ended %s: %q", state, msg)
	}
	noVolumeFiles(t, ts.dir, aws.ToString(out.ConversionTask.ImportVolume.Volume.Id))
	_, err = c.CancelConversionTask(ctx, &ec2.CancelConversionTaskInput{ConversionTaskId: aws.String(id)})
	if apiCode(err) != "IncorrectState" {
		t.Fatalf("cancel of a cancelled task: %v", err)
	}
	fmt.Fprintln(testWriter{t}, "failed task's message:", msg)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
