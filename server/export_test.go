package server

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/minio/minio-go/v7"
)

// sameAsQemu checks with `qemu-img compare` that the image file (of qemu
// format qfmt) holds the raw file's bytes (a larger one zeros past the
// smaller's end).
func sameAsQemu(t *testing.T, raw, image, qfmt string) {
	t.Helper()
	out, err := exec.Command(testimg.QemuImg(t), "compare", "-f", "raw", "-F", qfmt, raw, image).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img compare %s %s: %v\n%s", raw, image, err, out)
	}
}

// getObject downloads bucket/key into a file of dir.
func getObject(t *testing.T, s3 *s3test.Server, bucket, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(key))
	if err := s3.Client(t).FGetObject(context.Background(), bucket, key, path, minio.GetObjectOptions{}); err != nil {
		t.Fatalf("getting %s/%s: %v", bucket, key, err)
	}
	return path
}

// TestSDKExport: ExportImage of an imported image as VMDK, VHD and RAW,
// and CreateInstanceExportTask of an imported instance as an OVA, each
// object read back by qemu-img and compared with its source; the refused
// format and target combinations; CancelExportTask leaves no object.
func TestSDKExport(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := modernServer(t, s3)
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 3*65536, Seed: 51})
	bucket := putObjects(t, s3, map[string]string{"disk.raw": golden})
	snap := importSnap(t, c, bucket, "disk.raw")
	ri, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("export-me"), RootDeviceName: aws.String("/dev/sda1"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(snap)}}}})
	if err != nil {
		t.Fatal(err)
	}
	ami := aws.ToString(ri.ImageId)
	for _, f := range []struct{ format, qemu string }{{"VMDK", "vmdk"}, {"VHD", "vpc"}, {"RAW", "raw"}} {
		t.Run(f.format, func(t *testing.T) {
			if f.format == "RAW" && testing.Short() {
				t.Skip("long: a RAW export is the whole GiB of the snapshot")
			}
			out, err := c.ExportImage(ctx, &ec2.ExportImageInput{ImageId: aws.String(ami), DiskImageFormat: types.DiskImageFormat(f.format),
				S3ExportLocation: &types.ExportTaskS3LocationRequest{S3Bucket: aws.String(bucket), S3Prefix: aws.String("exports/")},
				RoleName:         aws.String("vmimport")})
			if err != nil {
				t.Fatal(err)
			}
			id := aws.ToString(out.ExportImageTaskId)
			if !strings.HasPrefix(id, "export-ami-") || len(id) != len("export-ami-")+17 || aws.ToString(out.Status) != "active" ||
				out.Progress == nil || string(out.DiskImageFormat) != strings.ToLower(f.format) {
				t.Fatalf("ExportImage answered %+v", out)
			}
			task := waitExportImage(t, c, id)
			if aws.ToString(task.Status) != "completed" {
				t.Fatalf("export ended %s: %s", aws.ToString(task.Status), aws.ToString(task.StatusMessage))
			}
			obj := getObject(t, s3, bucket, "exports/"+id+"."+strings.ToLower(f.format))
			sameAsQemu(t, ts.VolumePath(snap), obj, f.qemu)
		})
	}

	// An instance of ImportInstance, exported for VMware as an OVA.
	inst, vol := importedInstance(t, c, s3, testimg.Make(t, golden, "vmdk", "subformat=streamOptimized"))
	for _, bad := range []struct{ target, format, container string }{{"citrix", "RAW", ""}, {"vmware", "VHD", ""}, {"microsoft", "VHD", "ova"}} {
		in := &ec2.CreateInstanceExportTaskInput{InstanceId: aws.String(inst), TargetEnvironment: types.ExportEnvironment(bad.target),
			ExportToS3Task: &types.ExportToS3TaskSpecification{DiskImageFormat: types.DiskImageFormat(bad.format), S3Bucket: aws.String(bucket)}}
		if bad.container != "" {
			in.ExportToS3Task.ContainerFormat = types.ContainerFormat(bad.container)
		}
		if _, err := c.CreateInstanceExportTask(ctx, in); apiCode(err) != "Unsupported" {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	ce, err := c.CreateInstanceExportTask(ctx, &ec2.CreateInstanceExportTaskInput{InstanceId: aws.String(inst), TargetEnvironment: types.ExportEnvironmentVmware,
		ExportToS3Task: &types.ExportToS3TaskSpecification{DiskImageFormat: types.DiskImageFormatVmdk, ContainerFormat: types.ContainerFormatOva,
			S3Bucket: aws.String(bucket), S3Prefix: aws.String("vms/")}})
	if err != nil {
		t.Fatal(err)
	}
	et := ce.ExportTask
	id := aws.ToString(et.ExportTaskId)
	if !strings.HasPrefix(id, "export-i-") || et.State != types.ExportTaskStateActive || aws.ToString(et.ExportToS3Task.S3Key) != "vms/"+id+".ova" {
		t.Fatalf("CreateInstanceExportTask answered %+v", et)
	}
	if err := ec2.NewExportTaskCompletedWaiter(c, func(o *ec2.ExportTaskCompletedWaiterOptions) { o.MinDelay = 100 * time.Millisecond }).Wait(ctx,
		&ec2.DescribeExportTasksInput{ExportTaskIds: []string{id}}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	ova := getObject(t, s3, bucket, "vms/"+id+".ova")
	disk := untarVMDK(t, ova)
	sameAsQemu(t, ts.VolumePath(vol), disk, "vmdk")

	// A cancelled export leaves no object.
	out, err := c.ExportImage(ctx, &ec2.ExportImageInput{ImageId: aws.String(ami), DiskImageFormat: types.DiskImageFormatRaw,
		S3ExportLocation: &types.ExportTaskS3LocationRequest{S3Bucket: aws.String(bucket), S3Prefix: aws.String("cancelled/")}})
	if err != nil {
		t.Fatal(err)
	}
	cid := aws.ToString(out.ExportImageTaskId)
	if _, err := c.CancelExportTask(ctx, &ec2.CancelExportTaskInput{ExportTaskId: aws.String(cid)}); err != nil && apiCode(err) != "IncorrectState" {
		t.Fatal(err)
	}
	switch ct := waitExportImage(t, c, cid); aws.ToString(ct.Status) {
	case "deleted":
		if _, err := s3.Client(t).StatObject(ctx, bucket, "cancelled/"+cid+".raw", minio.StatObjectOptions{}); err == nil {
			t.Fatal("a cancelled export left its object")
		}
	case "completed": // finished before the cancel reached it: nothing to check
	default:
		t.Fatalf("cancelled export: %+v", ct)
	}
	if _, err := c.ExportImage(ctx, &ec2.ExportImageInput{ImageId: aws.String("ami-0123456789abcdef0"), DiskImageFormat: types.DiskImageFormatVmdk,
		S3ExportLocation: &types.ExportTaskS3LocationRequest{S3Bucket: aws.String(bucket)}}); apiCode(err) != "InvalidAMIID.NotFound" {
		t.Fatalf("an unknown image: %v", err)
	}
}

// waitExportImage waits for an ExportImage task to end (waitModern),
// through DescribeExportImageTasks.
func waitExportImage(t *testing.T, c *ec2.Client, id string) types.ExportImageTask {
	t.Helper()
	return waitModern(t, id, func() (types.ExportImageTask, *string, *string, *string) {
		out, err := c.DescribeExportImageTasks(context.Background(), &ec2.DescribeExportImageTasksInput{ExportImageTaskIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ExportImageTasks) != 1 {
			t.Fatalf("DescribeExportImageTasks(%s): %+v", id, out.ExportImageTasks)
		}
		et := out.ExportImageTasks[0]
		return et, et.Status, et.Progress, et.StatusMessage
	})
}

// untarVMDK extracts an OVA's .vmdk member into a file.
func untarVMDK(t *testing.T, ova string) string {
	t.Helper()
	f, err := os.Open(ova)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no .vmdk in %s: %v", ova, err)
		}
		if strings.HasSuffix(h.Name, ".vmdk") {
			path := filepath.Join(t.TempDir(), "disk.vmdk")
			out, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			out.Close()
			return path
		}
	}
}
