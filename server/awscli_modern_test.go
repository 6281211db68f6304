package server

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// TestAWSCLIModern runs the README's worked example with the aws CLI:
// import-snapshot of an object in MinIO, wait snapshot-imported,
// describe-import-snapshot-tasks, create-tags, register-image and
// describe-images; the snapshot is compared with qemu-img's conversion.
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
}
