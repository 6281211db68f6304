package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

// barDone checks a progress bar drawn on stderr reached 100% of a known
// total: a bar without a total sits at "0/0 B" and tells the user nothing.
func barDone(t *testing.T, what string, stderr []byte, label string) {
	t.Helper()
	s := string(stderr)
	if !strings.Contains(s, label) || !strings.Contains(s, "100%") || strings.Contains(s, "0/ 0 B") || strings.Contains(s, "0/0 B") {
		t.Errorf("%s: progress bar on stderr: %q", what, s)
	}
}

// TestProgressBars runs every verb that shows progress with --progress or
// -p, stderr not a terminal: each bar reaches 100% of its real total.
func TestProgressBars(t *testing.T) {
	bin := buildCLI(t)
	work := t.TempDir()
	g := testimg.Golden(t, testimg.Spec{Size: 5 << 20, Seed: 23})
	run := func(what, label string, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var e strings.Builder
		cmd.Stderr = &e
		if out, err := cmd.Output(); err != nil {
			t.Fatalf("%s: %v: %s%s", what, err, out, e.String())
		}
		barDone(t, what, []byte(e.String()), label)
	}
	dir := filepath.Join(work, "m")
	run("manifest create", "splitting", "manifest", "create", "-p", "--part-size", "1MiB", g, dir)
	run("manifest verify", "verifying", "manifest", "verify", "--progress", filepath.Join(dir, filepath.Base(g)+".manifest.xml"))
	run("convert", "converting", "convert", "-p", "--no-sync", g, filepath.Join(work, "v.raw"))

	ec2Cert, _, _, ec2Key := keyFiles(t, work)
	out := filepath.Join(work, "b")
	run("bundle", "bundling", "bundle", "--format", "raw", "--prefix", "img", "--ec2-cert", ec2Cert, "--out", out, "-p", g)
	run("unbundle", "restoring", "unbundle", "-p", "--allow-unsigned", "--private-key", ec2Key, "--dir", out, "--manifest", "img.manifest.xml", filepath.Join(work, "u.raw"))

	s := s3test.Shared(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", s.Region)
	run("upload", "uploading", "upload", "-p", "--create-bucket", "--endpoint", s.Endpoint, "--bucket", s.Bucket(t), "--part-size", "1MiB", g)
}
