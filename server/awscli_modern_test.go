package server

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// TestAWSCLIModern runs the README's worked example with the aws CLI:
// import-snapshot of an object in MinIO, wait snapshot-imported,
// describe-import-snapshot-tasks, create-tags, register-image,
// describe-images, export-image; then import-image, and
// create-instance-export-task with wait export-task-completed. Every
// snapshot is compared with qemu-img's conversion, every export read back
// by qemu-img compare.
func TestAWSCLIModern(t *testing.T) {
	if testing.Short() {
		t.Skip("long: runs the aws CLI, a Python program, for every call")
	}
	t.Parallel()
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("no aws CLI: install Debian's awscli (scripts/install-deps.sh --test)")
	}
	s3 := s3test.Shared(t)
	ts := modernServer(t, s3)
	home := t.TempDir()
	golden := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 79})
	image := testimg.Make(t, golden, "vpc", "subformat=dynamic")
	bucket := putObjects(t, s3, map[string]string{"disks/image.vhd": image})

	var imp struct {
		ImportTaskID       string `json:"ImportTaskId"`
		SnapshotTaskDetail struct {
			Status, Progress, StatusMessage string
		}
	}
	awsCLI(t, aws, ts.URL, home, &imp, "import-snapshot", "--description", "cli import",
		"--disk-container", `{"Format":"VHD","UserBucket":{"S3Bucket":"`+bucket+`","S3Key":"disks/image.vhd"}}`)
	if !strings.HasPrefix(imp.ImportTaskID, "import-snap-") || imp.SnapshotTaskDetail.Status != "active" || imp.SnapshotTaskDetail.Progress == "" {
		t.Fatalf("import-snapshot: %+v", imp)
	}
	awsCLI(t, aws, ts.URL, home, nil, "wait", "snapshot-imported", "--import-task-ids", imp.ImportTaskID)
	var tasks struct {
		ImportSnapshotTasks []struct {
			SnapshotTaskDetail struct {
				Status, SnapshotId, Format string
				DiskImageSize              float64
			}
		}
	}
	awsCLI(t, aws, ts.URL, home, &tasks, "describe-import-snapshot-tasks", "--import-task-ids", imp.ImportTaskID)
	d := tasks.ImportSnapshotTasks[0].SnapshotTaskDetail
	if d.Status != "completed" || !strings.HasPrefix(d.SnapshotId, "snap-") || d.Format != "VHD" || d.DiskImageSize < 3<<20 {
		t.Fatalf("describe-import-snapshot-tasks: %+v", tasks)
	}
	sameVolume(t, ts.VolumePath(d.SnapshotId), testimg.QemuRaw(t, image), 1<<30)
	awsCLI(t, aws, ts.URL, home, nil, "create-tags", "--resources", d.SnapshotId, "--tags", "Key=Name,Value=cli")
	var reg struct{ ImageId string }
	awsCLI(t, aws, ts.URL, home, &reg, "register-image", "--name", "cli-image", "--architecture", "x86_64",
		"--root-device-name", "/dev/xvda", "--virtualization-type", "hvm", "--ena-support",
		"--block-device-mappings", `[{"DeviceName":"/dev/xvda","Ebs":{"SnapshotId":"`+d.SnapshotId+`"}}]`)
	awsCLI(t, aws, ts.URL, home, nil, "wait", "image-available", "--image-ids", reg.ImageId)
	var imgs struct {
		Images []struct {
			ImageId, State, Name string
			BlockDeviceMappings  []struct{ Ebs struct{ SnapshotId string } }
		}
	}
	awsCLI(t, aws, ts.URL, home, &imgs, "describe-images", "--owners", "self", "--filters", "Name=name,Values=cli-*")
	if len(imgs.Images) != 1 || imgs.Images[0].ImageId != reg.ImageId || imgs.Images[0].BlockDeviceMappings[0].Ebs.SnapshotId != d.SnapshotId {
		t.Fatalf("describe-images: %+v", imgs)
	}
	var snaps struct {
		Snapshots []struct{ SnapshotId, State string }
	}
	awsCLI(t, aws, ts.URL, home, &snaps, "describe-snapshots", "--owner-ids", "self", "--filters", "Name=tag:Name,Values=cli")
	if len(snaps.Snapshots) != 1 || snaps.Snapshots[0].SnapshotId != d.SnapshotId || snaps.Snapshots[0].State != "completed" {
		t.Fatalf("describe-snapshots: %+v", snaps)
	}

	// export-image of the registered image, read back by qemu-img.
	var exp struct{ ExportImageTaskId, Status, DiskImageFormat string }
	awsCLI(t, aws, ts.URL, home, &exp, "export-image", "--image-id", reg.ImageId, "--disk-image-format", "VMDK",
		"--s3-export-location", "S3Bucket="+bucket+",S3Prefix=exports/")
	if !strings.HasPrefix(exp.ExportImageTaskId, "export-ami-") || exp.Status != "active" || exp.DiskImageFormat != "vmdk" {
		t.Fatalf("export-image: %+v", exp)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var dt struct {
			ExportImageTasks []struct{ Status, StatusMessage string }
		}
		awsCLI(t, aws, ts.URL, home, &dt, "describe-export-image-tasks", "--export-image-task-ids", exp.ExportImageTaskId)
		if st := dt.ExportImageTasks[0].Status; st == "completed" {
			break
		} else if st != "active" || time.Now().After(deadline) {
			t.Fatalf("export-image task: %+v", dt)
		}
	}
	sameAsQemu(t, ts.VolumePath(d.SnapshotId), getObject(t, s3, bucket, "exports/"+exp.ExportImageTaskId+".vmdk"), "vmdk")

	// import-image of the same object, as Packer does it.
	var ii struct{ ImportTaskId, Status string }
	awsCLI(t, aws, ts.URL, home, &ii, "import-image", "--description", "cli image", "--boot-mode", "uefi",
		"--disk-containers", `[{"Format":"vhd","UserBucket":{"S3Bucket":"`+bucket+`","S3Key":"disks/image.vhd"}}]`)
	if !strings.HasPrefix(ii.ImportTaskId, "import-ami-") || ii.Status != "active" {
		t.Fatalf("import-image: %+v", ii)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var dt struct {
			ImportImageTasks []struct {
				Status, ImageId string
				SnapshotDetails []struct{ SnapshotId string }
			}
		}
		awsCLI(t, aws, ts.URL, home, &dt, "describe-import-image-tasks", "--import-task-ids", ii.ImportTaskId)
		it := dt.ImportImageTasks[0]
		if it.Status == "completed" {
			if !strings.HasPrefix(it.ImageId, "ami-") || len(it.SnapshotDetails) != 1 {
				t.Fatalf("import-image task: %+v", it)
			}
			sameVolume(t, ts.VolumePath(it.SnapshotDetails[0].SnapshotId), testimg.QemuRaw(t, image), 1<<30)
			break
		}
		if it.Status != "active" || time.Now().After(deadline) {
			t.Fatalf("import-image task: %+v", it)
		}
	}

	// create-instance-export-task of an ImportInstance's instance as an
	// OVA for VMware, and the CLI's export-task-completed waiter.
	inst, vol := importedInstance(t, ts.sdk(testKey, testSecret), s3, image)
	var et struct {
		ExportTask struct {
			ExportTaskId, State string
			ExportToS3Task      struct{ S3Key string }
		}
	}
	awsCLI(t, aws, ts.URL, home, &et, "create-instance-export-task", "--instance-id", inst, "--target-environment", "vmware",
		"--export-to-s3-task", "DiskImageFormat=VMDK,ContainerFormat=ova,S3Bucket="+bucket+",S3Prefix=vms/")
	if et.ExportTask.State != "active" || et.ExportTask.ExportToS3Task.S3Key != "vms/"+et.ExportTask.ExportTaskId+".ova" {
		t.Fatalf("create-instance-export-task: %+v", et)
	}
	awsCLI(t, aws, ts.URL, home, nil, "wait", "export-task-completed", "--export-task-ids", et.ExportTask.ExportTaskId)
	sameAsQemu(t, ts.VolumePath(vol), untarVMDK(t, getObject(t, s3, bucket, et.ExportTask.ExportToS3Task.S3Key)), "vmdk")
}
