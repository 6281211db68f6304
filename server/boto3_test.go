package server

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// python3WithBoto3 finds a python3 that imports boto3 (Debian's
// python3-boto3 is /usr/bin/python3's), failing the test when none does.
func python3WithBoto3(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import boto3").Run() == nil {
			return path
		}
	}
	t.Fatal("no python3 with boto3: install Debian's python3-boto3 (scripts/install-deps.sh --test)")
	return ""
}

// TestBoto3 drives ImportVolume and ImportInstance with boto3 against a
// real server and a manifest in MinIO, and compares the volumes with
// qemu-img's raw conversion.
func TestBoto3(t *testing.T) {
	if testing.Short() {
		t.Skip("long: runs boto3 in a Python subprocess")
	}
	t.Parallel()
	py := python3WithBoto3(t)
	s3 := s3test.Shared(t)
	// The script's client is in us-west-2 and imports into us-west-2c.
	ts := startServerWith(t, "", func(c *Config) { c.Region = "us-west-2" }, s3.Host)
	golden := testimg.Golden(t, testimg.Spec{Size: 4<<20 + 512, Seed: 77})
	image := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	res, murl := upload(t, s3, image)
	cmd := exec.Command(py, "testdata/boto3_import.py", ts.URL, testKey, testSecret, "VMDK", strconv.FormatInt(res.Manifest.Size, 10), murl)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("boto3 script: %v\n%s%s", err, out, msg)
	}
	var got struct {
		Volume         string            `json:"volume"`
		InstanceVolume string            `json:"instance_volume"`
		Boto3          string            `json:"boto3"`
		Codes          map[string]string `json:"codes"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("boto3 script printed %q: %v", out, err)
	}
	t.Logf("boto3 %s: volumes %s, %s", got.Boto3, got.Volume, got.InstanceVolume)
	want := testimg.QemuRaw(t, image)
	for _, v := range []string{got.Volume, got.InstanceVolume} {
		if !strings.HasPrefix(v, "vol-") {
			t.Fatalf("volume id %q", v)
		}
		sameVolume(t, ts.VolumePath(v), want, 1<<30)
	}
	if got.Codes["unknown_task"] != "InvalidConversionTaskId.NotFound" || got.Codes["wrong_secret"] != "SignatureDoesNotMatch" {
		t.Fatalf("boto3 saw the refusals as %v", got.Codes)
	}
}

// TestBoto3Modern drives ImportSnapshot (as osbuild: UserBucket, no
// Format), the snapshot_imported waiter, CreateTags, DescribeSnapshots,
// CreateVolume, and ImportImage as Ansible finds its task (filters tag:Name
// and task-state) with boto3, and compares the snapshots and the volume
// with qemu-img's raw conversion.
func TestBoto3Modern(t *testing.T) {
	if testing.Short() {
		t.Skip("long: runs boto3 in a Python subprocess")
	}
	t.Parallel()
	py := python3WithBoto3(t)
	s3 := s3test.Shared(t)
	ts := modernServer(t, s3)
	golden := testimg.Golden(t, testimg.Spec{Size: 4<<20 + 512, Seed: 78})
	image := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	bucket := putObjects(t, s3, map[string]string{"image.vmdk": image})
	cmd := exec.Command(py, "testdata/boto3_modern.py", ts.URL, testKey, testSecret, bucket, "image.vmdk")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("boto3 script: %v\n%s%s", err, out, msg)
	}
	var got struct {
		Snapshot, Volume, Boto3 string
		ImageSnapshot           string `json:"image_snapshot"`
		Codes                   map[string]string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("boto3 script printed %q: %v", out, err)
	}
	t.Logf("boto3 %s: snapshot %s, volume %s", got.Boto3, got.Snapshot, got.Volume)
	want := testimg.QemuRaw(t, image)
	sameVolume(t, ts.VolumePath(got.Snapshot), want, 1<<30)
	sameVolume(t, ts.VolumePath(got.Volume), want, 2<<30)
	sameVolume(t, ts.VolumePath(got.ImageSnapshot), want, 1<<30)
	if got.Codes["unknown_snapshot"] != "InvalidSnapshot.NotFound" || got.Codes["encrypted"] != "InvalidParameterValue" {
		t.Fatalf("boto3 saw the refusals as %v", got.Codes)
	}
}
