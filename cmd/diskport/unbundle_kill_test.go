package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/volume"
)

// TestUnbundleKilledLeavesNoVolume is defect 4's regression test: an
// unbundle killed while it writes leaves nothing under the final name
// (it used to write the volume in place), and one stopped by SIGTERM
// removes its partial output.
func TestUnbundleKilledLeavesNoVolume(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kill -9 of unbundle")
	}
	bin := buildCLI(t)
	work := t.TempDir()
	ec2Cert, _, _, ec2Key := keyFiles(t, work)
	golden := testimg.Golden(t, testimg.Spec{Size: 48 << 20, Seed: 1113})
	out := filepath.Join(work, "out")
	if code, _, errOut := call(t, "bundle", "--format", "raw", "--prefix", "img", "--ec2-cert", ec2Cert, "--out", out, golden); code != 0 {
		t.Fatalf("bundle: exit %d: %s", code, errOut)
	}
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		dst := filepath.Join(work, "vol-"+sig.String()+".raw")
		cmd := exec.Command(bin, "unbundle", "--allow-unsigned", "--private-key", ec2Key, "--dir", out, "--manifest", "img.manifest.xml", dst)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
	wait:
		for {
			select {
			case err = <-done:
				t.Fatalf("%v: unbundle finished (%v) before any output appeared: %s", sig, err, errb.Bytes())
			default:
			}
			for _, p := range []string{dst, volume.PartialName(dst)} {
				if _, err := os.Stat(p); err == nil {
					break wait
				}
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Signal(sig)
		err = <-done
		if err == nil {
			t.Logf("%v: unbundle finished before the signal", sig)
			continue
		}
		if _, err := os.Stat(dst); err == nil {
			t.Fatalf("%v: a stopped unbundle left a file under the final name", sig)
		}
		if _, err := os.Stat(volume.PartialName(dst)); sig == syscall.SIGTERM && err == nil {
			t.Errorf("SIGTERM: the partial output was not removed")
		}
	}
	// Run to the end, the volume is whole.
	dst := filepath.Join(work, "vol.raw")
	if out, err := exec.Command(bin, "unbundle", "--allow-unsigned", "--private-key", ec2Key, "--dir", out, "--manifest", "img.manifest.xml", dst).CombinedOutput(); err != nil {
		t.Fatalf("unbundle: %v: %s", err, out)
	}
	sameBytes(t, dst, golden)
	if _, err := os.Stat(volume.PartialName(dst)); err == nil {
		t.Error("partial output left beside the volume")
	}
}
