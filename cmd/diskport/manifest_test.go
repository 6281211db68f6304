package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestManifestCreateShowVerify(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 2<<20 + 512, Seed: 3})
	vmdk := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	out := t.TempDir()
	code, stdoutText, errText := call(t, "manifest", "create", "--part-size", "512KiB", "--naming", "euca2ools", vmdk, out)
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errText)
	}
	name := filepath.Base(vmdk)
	mpath := filepath.Join(out, name+".manifest.xml")
	if !strings.Contains(stdoutText, mpath+": VMDK") {
		t.Fatalf("create output %q", stdoutText)
	}
	if _, err := os.Stat(filepath.Join(out, name+".part.0")); err != nil {
		t.Fatal(err)
	}
	code, stdoutText, errText = call(t, "manifest", "show", mpath)
	if code != 0 || !strings.Contains(stdoutText, "file format:  VMDK") || !strings.Contains(stdoutText, name+".part.0") {
		t.Fatalf("show: exit %d: %s%s", code, stdoutText, errText)
	}
	code, stdoutText, errText = call(t, "manifest", "verify", mpath)
	if code != 0 || !strings.HasPrefix(stdoutText, "ok: ") || !strings.Contains(stdoutText, "SHA-256") {
		t.Fatalf("verify: exit %d: %s%s", code, stdoutText, errText)
	}
	// The image read from the parts equals the image read from the file.
	img, err := openManifestImage(context.Background(), mpath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	local, err := diskport.Open(vmdk, diskport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if img.Size() != local.Size() || img.Info().Subformat != "streamOptimized" {
		t.Fatalf("size %d vs %d, info %+v", img.Size(), local.Size(), img.Info())
	}
	a, b := make([]byte, img.Size()), make([]byte, local.Size())
	img.ReadAt(a, 0)
	local.ReadAt(b, 0)
	if !bytes.Equal(a, b) {
		t.Fatal("image through the manifest differs")
	}
	// Damage a part: verify fails, naming it.
	os.Truncate(filepath.Join(out, name+".part.1"), 10)
	code, _, errText = call(t, "manifest", "verify", mpath)
	if code != 1 || !strings.Contains(errText, "part 1 (bytes 524288-1048575)") || !strings.Contains(errText, "truncated") {
		t.Fatalf("verify damaged: exit %d: %s", code, errText)
	}
	for _, args := range [][]string{{"manifest"}, {"manifest", "frob"}, {"manifest", "create", "x"}, {"manifest", "create", "--part-size", "12Q", "a", "b"}, {"upload", "x"}} {
		if code, _, _ := call(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestUploadCommand(t *testing.T) {
	s := s3test.Shared(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", s.Region)
	g := testimg.Golden(t, testimg.Spec{Size: 1<<20 + 512, Seed: 4})
	vhd := testimg.Make(t, g, "vpc", "subformat=dynamic")
	for _, v2 := range []bool{false, true} {
		bucket := s.Bucket(t)
		args := []string{"upload", "--create-bucket", "--endpoint", s.Endpoint, "--bucket", bucket, "--prefix", "p", "--part-size", "256KiB", vhd}
		if v2 {
			args = append(args[:1], append([]string{"--sigv2"}, args[1:]...)...)
		}
		code, out, errText := call(t, args...)
		if code != 0 {
			t.Fatalf("upload: exit %d: %s", code, errText)
		}
		url := strings.TrimSpace(out)
		if !strings.HasPrefix(url, s.Endpoint+"/") || !strings.Contains(errText, "parts sent") {
			t.Fatalf("upload output %q / %q", out, errText)
		}
		if code, out, errText := call(t, "manifest", "verify", url); code != 0 || !strings.HasPrefix(out, "ok: ") {
			t.Fatalf("verify %s: exit %d: %s%s", url, code, out, errText)
		}
		// The same parts read by key with the S3 API.
		if code, out, errText := call(t, "manifest", "verify", "--endpoint", s.Endpoint, "--bucket", bucket, url); code != 0 || !strings.HasPrefix(out, "ok: ") {
			t.Fatalf("verify --bucket %s: exit %d: %s%s", bucket, code, out, errText)
		}
		// convert --manifest gives the volume converting the file gives.
		dir := t.TempDir()
		if code, _, errText := call(t, "convert", "--exact-size", "--no-sync", "--manifest", url, filepath.Join(dir, "a.raw")); code != 0 {
			t.Fatalf("convert --manifest: exit %d: %s", code, errText)
		}
		if code, _, errText := call(t, "convert", "--exact-size", "--no-sync", vhd, filepath.Join(dir, "b.raw")); code != 0 {
			t.Fatalf("convert: exit %d: %s", code, errText)
		}
		va, _ := os.ReadFile(filepath.Join(dir, "a.raw"))
		vb, _ := os.ReadFile(filepath.Join(dir, "b.raw"))
		if len(va) == 0 || !bytes.Equal(va, vb) {
			t.Fatalf("convert --manifest wrote %d bytes, converting the file %d, or they differ", len(va), len(vb))
		}
		img, err := openManifestImage(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		local, _ := diskport.Open(vhd, diskport.Options{})
		a, b := make([]byte, img.Size()), make([]byte, local.Size())
		img.ReadAt(a, 0)
		local.ReadAt(b, 0)
		img.Close()
		local.Close()
		if !bytes.Equal(a, b) {
			t.Fatal("image through the uploaded manifest differs")
		}
	}
}

// TestHelperProcess runs the CLI when the test binary is re-executed by
// TestUploadResumeAfterKill; otherwise it does nothing.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("DISKPORT_HELPER_PROCESS") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(args))
}

// TestUploadResumeAfterKill kills `diskport upload` half-way (SIGKILL, no
// chance to clean up) and runs it again: the parts already stored are not
// sent again, and the result verifies.
func TestUploadResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kill -9 of upload into MinIO, then a resumed upload")
	}
	s := s3test.Shared(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	g := testimg.Golden(t, testimg.Spec{Size: 4 << 20, Seed: 5})
	bucket := s.Bucket(t)
	args := []string{"upload", "--create-bucket", "--endpoint", s.Endpoint, "--bucket", bucket, "--part-size", "16KiB", "--parallel", "1", g}
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "DISKPORT_HELPER_PROCESS=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	client, err := minio.New(s.Host, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: s.Region})
	if err != nil {
		t.Fatal(err)
	}
	parts := func() int {
		n := 0
		for o := range client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil && strings.Contains(o.Key, ".part") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for parts() < 4 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("upload stored no parts within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	stored := parts()
	if stored >= 256 {
		t.Fatalf("upload finished before it was killed (%d parts)", stored)
	}
	code, out, errText := call(t, args...)
	if code != 0 {
		t.Fatalf("resumed upload: exit %d: %s", code, errText)
	}
	// A PUT in flight when the process died may still have landed, so
	// at least the parts counted are reported as already there.
	var sent, there int
	if i := strings.Index(errText, "parts sent"); i < 0 {
		t.Fatalf("resumed upload says %q", errText)
	} else if _, err := fmt.Sscanf(errText[strings.LastIndex(errText[:i-1], " ")+1:], "%d parts sent, %d already there", &sent, &there); err != nil {
		t.Fatalf("resumed upload says %q: %v", errText, err)
	}
	if there < stored || sent+there != 256 || sent == 0 {
		t.Fatalf("resumed upload: %d sent, %d already there; %d were stored", sent, there, stored)
	}
	if code, vout, verr := call(t, "manifest", "verify", strings.TrimSpace(out)); code != 0 {
		t.Fatalf("verify: exit %d: %s%s", code, vout, verr)
	}
}
