package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/internal/testwait"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
)

// testAppliance is an OVA built the way ovftool lays one out (the OVF
// first, then the .mf with SHA-256, then the disks), and its bare disk
// files in boot order.
type testAppliance struct {
	path  string
	disks []string // the bare disk files, in boot order
	files []string // their member names
}

// twoDiskOVA builds an appliance of two disks made by qemu-img: a
// streamOptimized VMDK boot disk on SCSI controller 0 and a dynamic VHD
// on controller 1 (listed first in the descriptor: boot order is the
// hardware's, not the DiskSection's).
func twoDiskOVA(t *testing.T) testAppliance { return twoDiskOVASized(t, 2<<20) }

// twoDiskOVASized is twoDiskOVA with a VHD of vhdSize bytes.
func twoDiskOVASized(t *testing.T, vhdSize int64) testAppliance {
	t.Helper()
	g1 := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 65536, Seed: 1661})
	g2 := testimg.Golden(t, testimg.Spec{Size: vhdSize, Seed: 1662, ZeroPercent: 5})
	vmdk := testimg.Make(t, g1, "vmdk", "subformat=streamOptimized")
	vhd := testimg.Make(t, g2, "vpc", "subformat=dynamic")
	return testAppliance{
		path: testimg.OVA(t, testimg.OVASpec{Version: 1, Alg: "SHA256",
			Files: map[string]string{"app-disk1.vmdk": vmdk, "app-disk2.vhd": vhd},
			Disks: []testimg.OVADisk{
				{ID: "vmdisk2", File: "app-disk2.vhd", Format: testimg.URIVHD, Capacity: fmt.Sprint(virtualSize(t, vhd)), Ctl: 1},
				{ID: "vmdisk1", File: "app-disk1.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(virtualSize(t, vmdk)), Ctl: 0},
			}}),
		disks: []string{vmdk, vhd},
		files: []string{"app-disk1.vmdk", "app-disk2.vhd"},
	}
}

// oneDiskOVA builds an appliance of one streamOptimized VMDK, its member
// gzip-compressed (ovftool --compress) when gz.
func oneDiskOVA(t *testing.T, gz bool) testAppliance {
	t.Helper()
	g := testimg.Golden(t, testimg.Spec{Size: 2<<20 + 4096, Seed: 1663})
	vmdk := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	return testAppliance{
		path: testimg.OVA(t, testimg.OVASpec{Version: 1, Alg: "SHA256", Files: map[string]string{"only.vmdk": vmdk},
			Disks: []testimg.OVADisk{{ID: "d", File: "only.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(virtualSize(t, vmdk)), Gzip: gz}}}),
		disks: []string{vmdk},
		files: []string{"only.vmdk"},
	}
}

// virtualSize is the disk's virtual size as diskport reads the bare file.
func virtualSize(t *testing.T, path string) int64 {
	t.Helper()
	img, err := diskport.Open(path, diskport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	return img.Size()
}

// uploadOVA stores the whole OVA at path as file-format OVA parts in a
// new bucket of s and returns the manifest's size and presigned URL.
func uploadOVA(t *testing.T, s *s3test.Server, path string) (int64, string) {
	t.Helper()
	cfg := parts.S3Config{Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
	res, err := manifest.Upload(context.Background(), cfg, path, manifest.UploadOptions{
		Bucket: s.Bucket(t), SplitOptions: manifest.SplitOptions{PartSize: 1 << 20, Format: "ova"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.FileFormat != manifest.FormatOVA {
		t.Fatalf("uploaded as %s", res.Manifest.FileFormat)
	}
	return res.Manifest.Size, res.ManifestURL
}

// importOVAInstance imports the OVA at murl as an instance's one disk
// image and returns the task's id.
func importOVAInstance(t *testing.T, c *ec2.Client, size int64, murl string) *types.ConversionTask {
	t.Helper()
	out, err := c.ImportInstance(context.Background(), &ec2.ImportInstanceInput{
		Platform: types.PlatformValues("Linux"),
		DiskImages: []types.DiskImage{{
			Image:       &types.DiskImageDetail{Format: "OVA", Bytes: aws.Int64(size), ImportManifestUrl: aws.String(murl)},
			Volume:      &types.VolumeDetail{Size: aws.Int64(1)},
			Description: aws.String("the appliance"),
		}},
		LaunchSpecification: &types.ImportInstanceLaunchSpecification{Architecture: types.ArchitectureValuesX8664},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.ConversionTask
}

// describeTask returns the task as DescribeConversionTasks shows it.
func describeTask(t *testing.T, c *ec2.Client, id string) types.ConversionTask {
	t.Helper()
	dt, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return dt.ConversionTasks[0]
}

// ImportInstance of a whole OVA, uploaded as a file-format OVA manifest
// to MinIO and imported through aws-sdk-go-v2: the task completes with a
// volume per disk, in boot order, each byte-identical to qemu-img's
// conversion of its disk file alone; DescribeInstances lists both.
func TestSDKImportInstanceOVA(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := startServer(t, "", s3.Host)
	c := ts.sdk(testKey, testSecret)
	app := twoDiskOVA(t)
	size, murl := uploadOVA(t, s3, app.path)
	ct := importOVAInstance(t, c, size, murl)
	ii := ct.ImportInstance
	if ii == nil || len(ii.Volumes) != 1 || string(ii.Volumes[0].Image.Format) != "OVA" {
		t.Fatalf("ImportInstance answered %+v", ct)
	}
	id := aws.ToString(ct.ConversionTaskId)
	if state, msg := waitTask(t, c, id, 2*time.Minute); state != "completed" {
		t.Fatalf("task ended %s: %s", state, msg)
	}
	vols := describeTask(t, c, id).ImportInstance.Volumes
	if len(vols) != 2 {
		t.Fatalf("%d volumes, want one per disk: %+v", len(vols), vols)
	}
	for i, v := range vols {
		if aws.ToString(v.Status) != "completed" || aws.ToInt64(v.Volume.Size) != 1 || aws.ToInt64(v.BytesConverted) != virtualSize(t, app.disks[i]) ||
			string(v.Image.Format) != "OVA" || aws.ToInt64(v.Image.Size) != size {
			t.Errorf("volume %d: %+v", i, v)
		}
		sameVolume(t, ts.VolumePath(aws.ToString(v.Volume.Id)), testimg.QemuRaw(t, app.disks[i]), 1<<30)
	}
	if d := aws.ToString(vols[1].Description); !strings.Contains(d, "the appliance") || !strings.Contains(d, app.files[1]) {
		t.Errorf("the added volume's description %q", d)
	}
	di, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(ii.InstanceId)}})
	if err != nil {
		t.Fatal(err)
	}
	in := di.Reservations[0].Instances[0]
	if len(in.BlockDeviceMappings) != 2 || aws.ToString(in.BlockDeviceMappings[0].Ebs.VolumeId) != aws.ToString(vols[0].Volume.Id) ||
		aws.ToString(in.BlockDeviceMappings[1].Ebs.VolumeId) != aws.ToString(vols[1].Volume.Id) {
		t.Fatalf("the instance's block devices: %+v", in.BlockDeviceMappings)
	}
	if !strings.Contains(ts.logs.String(), `"event":"expanded"`) {
		t.Error("no expanded event in the log")
	}
}

// A flipped byte in the second disk's member: the boot disk's volume is
// converted, then the task is cancelled with the member named in its
// status, and no file of either volume is left.
func TestOVAFlippedMember(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := startServer(t, "", s3.Host)
	c := ts.sdk(testKey, testSecret)
	app := twoDiskOVA(t)
	b, err := os.ReadFile(app.path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte(app.files[1]+"\x00"))
	if at < 0 {
		t.Fatal("no header of the VHD member")
	}
	b[at+512+(1<<20)+5] ^= 1 // inside the VHD's data
	bad := filepath.Join(t.TempDir(), "flipped.ova")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	size, murl := uploadOVA(t, s3, bad)
	id := aws.ToString(importOVAInstance(t, c, size, murl).ConversionTaskId)
	state, msg := waitTask(t, c, id, 2*time.Minute)
	if state != "cancelled" || !strings.Contains(msg, `"`+app.files[1]+`"`) || !strings.Contains(msg, "checksum mismatch") {
		t.Fatalf("task ended %s: %q; want cancelled naming %s", state, msg, app.files[1])
	}
	t.Log(msg)
	vols := describeTask(t, c, id).ImportInstance.Volumes
	if len(vols) != 2 {
		t.Fatalf("%d volumes, want 2", len(vols))
	}
	for _, v := range vols {
		noVolumeFiles(t, ts.dir, aws.ToString(v.Volume.Id))
	}
}

// ImportVolume takes an OVA of one disk, which becomes the volume (a
// gzip-compressed member too, read as a stream); one of two disks fails
// the task saying to use ImportInstance.
func TestOVAImportVolume(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := startServer(t, "", s3.Host)
	c := ts.sdk(testKey, testSecret)
	for _, app := range []testAppliance{oneDiskOVA(t, false), oneDiskOVA(t, true), twoDiskOVA(t)} {
		size, murl := uploadOVA(t, s3, app.path)
		out, err := c.ImportVolume(context.Background(), &ec2.ImportVolumeInput{
			AvailabilityZone: aws.String("us-east-1a"),
			Image:            &types.DiskImageDetail{Format: "OVA", Bytes: aws.Int64(size), ImportManifestUrl: aws.String(murl)},
			Volume:           &types.VolumeDetail{Size: aws.Int64(1)},
		})
		if err != nil {
			t.Fatal(err)
		}
		id, vol := aws.ToString(out.ConversionTask.ConversionTaskId), aws.ToString(out.ConversionTask.ImportVolume.Volume.Id)
		state, msg := waitTask(t, c, id, 2*time.Minute)
		if len(app.disks) == 1 {
			if state != "completed" {
				t.Fatalf("one-disk OVA: task ended %s: %s", state, msg)
			}
			sameVolume(t, ts.VolumePath(vol), testimg.QemuRaw(t, app.disks[0]), 1<<30)
			continue
		}
		if state != "cancelled" || !strings.Contains(msg, "2 disks") || !strings.Contains(msg, "ImportInstance") {
			t.Fatalf("two-disk OVA: task ended %s: %q; want cancelled saying to use ImportInstance", state, msg)
		}
		t.Log(msg)
		noVolumeFiles(t, ts.dir, vol)
	}
}

// waitSecondDisk waits until the task converts its OVA's second disk, and
// returns its two volumes' ids.
func waitSecondDisk(t *testing.T, c *ec2.Client, id string) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		task := describeTask(t, c, id)
		if task.State != types.ConversionTaskStateActive {
			t.Fatalf("task %s (%s) before its second disk was converting", task.State, aws.ToString(task.StatusMessage))
		}
		vols := task.ImportInstance.Volumes
		if len(vols) == 2 && aws.ToInt64(vols[1].BytesConverted) > 0 {
			if msg := aws.ToString(task.StatusMessage); !strings.HasSuffix(msg, "(disk 2 of 2)") {
				t.Errorf("status message %q converting the second disk", msg)
			}
			if aws.ToString(vols[0].Status) != "completed" {
				t.Errorf("the boot disk's volume is %s while the second converts", aws.ToString(vols[0].Status))
			}
			return []string{aws.ToString(vols[0].Volume.Id), aws.ToString(vols[1].Volume.Id)}
		}
		if time.Now().After(deadline) {
			t.Fatal("the second disk never started converting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CancelConversionTask while an OVA's second disk converts removes both
// volumes' files: the boot disk's, committed, and the partial one.
func TestOVACancel(t *testing.T) {
	app := twoDiskOVASized(t, 12<<20)
	ps := newPartsServer(t, app.path, 8<<20, nil)
	ts := startServer(t, "", ps.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	id := aws.ToString(importOVAInstance(t, c, ps.m.Size, ps.manifestURL()).ConversionTaskId)
	vols := waitSecondDisk(t, c, id)
	if _, err := os.Stat(ts.VolumePath(vols[0])); err != nil {
		t.Fatalf("the boot disk's volume: %v", err)
	}
	if _, err := c.CancelConversionTask(context.Background(), &ec2.CancelConversionTaskInput{ConversionTaskId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if state, msg := waitTask(t, c, id, 10*time.Second); state != "cancelled" || msg != "Cancelled by user" {
		t.Fatalf("cancelled task: %s %q", state, msg)
	}
	// Wait for the worker to let go, then nothing of either volume is left.
	testwait.Until(10*time.Second, func() bool { return volumeFilesGone(ts.dir, vols[0]) && volumeFilesGone(ts.dir, vols[1]) })
	for _, v := range vols {
		noVolumeFiles(t, ts.dir, v)
	}
}

// A server stopped while it converts an OVA's second disk, and another
// started on its data directory: the task completes with the appliance's
// two volumes, not more (the restarted worker adds none), each identical
// to qemu-img's conversion.
func TestOVARestartMidTask(t *testing.T) {
	t.Parallel()
	app := twoDiskOVASized(t, 12<<20)
	ps := newPartsServer(t, app.path, 8<<20, nil) // 8 MiB/s: some two seconds
	dir := t.TempDir()
	ts := startServer(t, dir, ps.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	ct := importOVAInstance(t, c, ps.m.Size, ps.manifestURL())
	id := aws.ToString(ct.ConversionTaskId)
	before := waitSecondDisk(t, c, id)
	ts.Close() // the workers stop; the task stays active
	sent := ps.sent.Load()
	ts2 := startServer(t, dir, ps.Listener.Addr().String())
	c2 := ts2.sdk(testKey, testSecret)
	if state, msg := waitTask(t, c2, id, 2*time.Minute); state != "completed" {
		t.Fatalf("resumed task ended %s: %s", state, msg)
	}
	t.Logf("OVA %d bytes: %d fetched before the restart, %d after", ps.m.Size, sent, ps.sent.Load()-sent)
	vols := describeTask(t, c2, id).ImportInstance.Volumes
	if len(vols) != 2 || aws.ToString(vols[0].Volume.Id) != before[0] || aws.ToString(vols[1].Volume.Id) != before[1] {
		t.Fatalf("after the restart: %d volumes %+v, want %v", len(vols), vols, before)
	}
	if dv, err := c2.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{}); err != nil || len(dv.Volumes) != 2 {
		t.Fatalf("DescribeVolumes after the restart: %v, %v", dv, err)
	}
	if strings.Contains(ts2.logs.String(), `"event":"expanded"`) {
		t.Error("the restarted server added volumes")
	}
	for i, v := range vols {
		sameVolume(t, ts2.VolumePath(aws.ToString(v.Volume.Id)), testimg.QemuRaw(t, app.disks[i]), 1<<30)
	}
}

// An instance has at most 26 volumes, an OVA's disks counted: 25 disk
// images and a two-disk OVA fail the task at the expansion, before any
// volume is added.
func TestOVAVolumeLimit(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := startServer(t, "", s3.Host)
	c := ts.sdk(testKey, testSecret)
	app := twoDiskOVA(t)
	size, murl := uploadOVA(t, s3, app.path)
	disks := []types.DiskImage{{Image: &types.DiskImageDetail{Format: "OVA", Bytes: aws.Int64(size), ImportManifestUrl: aws.String(murl)},
		Volume: &types.VolumeDetail{Size: aws.Int64(1)}}}
	for range 25 {
		disks = append(disks, types.DiskImage{Image: &types.DiskImageDetail{Format: "OVA", Bytes: aws.Int64(size), ImportManifestUrl: aws.String(murl)},
			Volume: &types.VolumeDetail{Size: aws.Int64(1)}})
	}
	out, err := c.ImportInstance(context.Background(), &ec2.ImportInstanceInput{Platform: types.PlatformValues("Linux"), DiskImages: disks})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ConversionTask.ConversionTaskId)
	state, msg := waitTask(t, c, id, 2*time.Minute)
	if state != "cancelled" || !strings.Contains(msg, "27 volumes, more than the 26") {
		t.Fatalf("task ended %s: %q; want cancelled over the 26-volume limit", state, msg)
	}
	t.Log(msg)
	if n := len(describeTask(t, c, id).ImportInstance.Volumes); n != 26 {
		t.Fatalf("%d volumes, want the request's 26", n)
	}
}
