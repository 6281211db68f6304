package main

import (
	"encoding/json"
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

// TestProgressJSONKeys: every line of `convert --progress=json` and
// `convert -O vmdk --progress=json` has kebab-case keys, as qemu-img's
// JSON does, and real types: started-over is a boolean, a checksum not
// asked for is absent (not ""), one asked for is there.
func TestProgressJSONKeys(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	work := t.TempDir()
	g := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 24})
	lines := func(args ...string) []map[string]any {
		t.Helper()
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var ls []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%v: line %q: %v", args, l, err)
			}
			for k, v := range m {
				if strings.ContainsAny(k, "_ ") || strings.ToLower(k) != k {
					t.Errorf("%v: key %q is not kebab-case", args, k)
				}
				if v == "" {
					t.Errorf("%v: %q is \"\"", args, k)
				}
			}
			ls = append(ls, m)
		}
		return ls
	}
	ls := lines("convert", "--progress=json", "--no-sync", g, filepath.Join(work, "a.raw"))
	if p := ls[0]; p["bytes-converted"] == nil || p["total-bytes"] != float64(3<<20) {
		t.Errorf("progress line %v", p)
	}
	done := ls[len(ls)-1]
	if done["done"] != true || done["started-over"] != false || done["volume-size"] != float64(1<<30) {
		t.Errorf("result line %v", done)
	}
	for _, k := range []string{"sha256", "virtual-sha256", "started-over-reason"} {
		if _, ok := done[k]; ok {
			t.Errorf("result line has %q without it: %v", k, done)
		}
	}
	ls = lines("convert", "--progress=json", "--checksum", "sha256", "--no-sync", "--exact-size", g, filepath.Join(work, "b.raw"))
	if s, _ := ls[len(ls)-1]["virtual-sha256"].(string); len(s) != 64 {
		t.Errorf("result line with --checksum: %v", ls[len(ls)-1])
	}
	ls = lines("convert", "-O", "vmdk", "--progress=json", "--no-sync", g, filepath.Join(work, "c.vmdk"))
	if d := ls[len(ls)-1]; d["image-size"] == nil || d["virtual-size"] != float64(3<<20) {
		t.Errorf("export result line %v", d)
	}
}

// TestOneUnitSystem: summaries and progress bars use binary units, as
// qemu-img does; --exact-size's summary states the size it wrote; counts
// agree with their nouns.
func TestOneUnitSystem(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	work := t.TempDir()
	g := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 44})
	run := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var e strings.Builder
		cmd.Stderr = &e
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v: %s", args, err, e.String())
		}
		return string(out), e.String()
	}
	out, bar := run("convert", "--no-sync", "--exact-size", "-p", g, filepath.Join(work, "a.raw"))
	if !strings.Contains(out, "volume 3 MiB (3146240 bytes)") || strings.Contains(out, "GiB") {
		t.Errorf("convert --exact-size: %s", out)
	}
	if !strings.Contains(bar, "MiB") || strings.Contains(bar, " MB") {
		t.Errorf("convert -p: progress bar %q", bar)
	}
	if out, _ := run("convert", "--no-sync", g, filepath.Join(work, "b.raw")); !strings.Contains(out, "volume 1 GiB (1073741824 bytes)") {
		t.Errorf("convert: %s", out)
	}
	dir := filepath.Join(work, "m")
	out, _ = run("manifest", "create", "--part-size", "10MiB", g, dir)
	if !strings.Contains(out, "3 MiB (3146240 bytes) in 1 part,") {
		t.Errorf("manifest create: %s", out)
	}
	if out, _ := run("manifest", "verify", filepath.Join(dir, filepath.Base(g)+".manifest.xml")); !strings.Contains(out, "ok: 1 part, 3 MiB (3146240 bytes)") {
		t.Errorf("manifest verify: %s", out)
	}
	for n, want := range map[int]string{0: "0 parts", 1: "1 part", 2: "2 parts"} {
		if got := count(n, "part"); got != want {
			t.Errorf("count(%d) = %q", n, got)
		}
	}
	if got := count(2, "entry"); got != "2 entries" {
		t.Errorf("count(2, entry) = %q", got)
	}
}
