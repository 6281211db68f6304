package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/internal/testimg"
)

// exitCode runs the built diskport and returns its exit status and output.
func exitCode(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("diskport %v: %v", args, err)
		}
		return ee.ExitCode(), string(out)
	}
	return 0, string(out)
}

// TestOneFlagLanguage: every size flag takes 10MiB, 10M, 512K and bytes;
// --volume-size counts GiB and takes 12 and 12GiB; --expires takes days;
// --workers is the one name of parallelism (the old names still work,
// undocumented); every verb takes the same --format names.
func TestOneFlagLanguage(t *testing.T) {
	bin := buildCLI(t)
	work := t.TempDir()
	g := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 24})
	vhd := testimg.Make(t, g, "vpc", "subformat=dynamic")
	size := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	for i, tc := range []struct {
		arg  string
		want int64
	}{{"2", 2 << 30}, {"2GiB", 2 << 30}, {"2G", 2 << 30}, {"2048MiB", 2 << 30}} {
		dst := filepath.Join(work, "v"+string(rune('a'+i)))
		if code, out := exitCode(t, bin, "convert", "--no-sync", "--volume-size", tc.arg, g, dst); code != 0 || size(dst) != tc.want {
			t.Errorf("convert --volume-size %s: exit %d, %s", tc.arg, code, out)
		}
	}
	for _, bad := range []string{"1.5", "1500MiB", "-1", "2X"} {
		if code, out := exitCode(t, bin, "convert", "--volume-size", bad, g, filepath.Join(work, "bad")); code != 2 {
			t.Errorf("convert --volume-size %s: exit %d, %s", bad, code, out)
		}
	}
	for _, tc := range []struct {
		arg  string
		want int64
	}{{"512K", 512 << 10}, {"1M", 1 << 20}, {"1MiB", 1 << 20}, {"524288", 512 << 10}} {
		dir := filepath.Join(work, "m"+tc.arg)
		if code, out := exitCode(t, bin, "manifest", "create", "--part-size", tc.arg, "--volume-size", "4GiB", "--format", "vpc", vhd, dir); code != 0 {
			t.Fatalf("manifest create --part-size %s: exit %d, %s", tc.arg, code, out)
		}
		if got := size(filepath.Join(dir, filepath.Base(vhd)+".part0")); got != tc.want {
			t.Errorf("--part-size %s: part 0 is %d bytes, want %d", tc.arg, got, tc.want)
		}
		mpath := filepath.Join(dir, filepath.Base(vhd)+".manifest.xml")
		if code, out := exitCode(t, bin, "manifest", "show", mpath); code != 0 || !strings.Contains(out, "volume size:  4 GiB") {
			t.Errorf("--volume-size 4GiB: %s", out)
		}
		if code, out := exitCode(t, bin, "manifest", "verify", "--parallel", "2", mpath); code != 0 {
			t.Errorf("manifest verify --parallel (the old name): exit %d, %s", code, out)
		}
	}
	ec2Cert, _, _, _ := keyFiles(t, work)
	if code, out := exitCode(t, bin, "bundle", "--prefix", "img", "--ec2-cert", ec2Cert, "--out", filepath.Join(work, "b"), "--part-size", "1M", "--uploads", "2", "--format", "vpc", vhd); code != 0 {
		t.Errorf("bundle --part-size 1M --uploads 2: exit %d, %s", code, out)
	}
	if code, out := exitCode(t, bin, "bundle", "--prefix", "img", "--ec2-cert", ec2Cert, "--out", filepath.Join(work, "b"), "--part-size", "1", vhd); code != 2 || !strings.Contains(out, "1 MiB") {
		t.Errorf("bundle --part-size 1 (one byte): exit %d, %s", code, out)
	}
	// --expires: days, and the SigV4 bound said in days.
	if code, out := exitCode(t, bin, "upload", "--bucket", "b", "--expires", "8d", g); code != 2 || !strings.Contains(out, "7d") {
		t.Errorf("upload --expires 8d: exit %d, %s", code, out)
	}
	t.Setenv(secretEnv, "s3cret")
	out, err := exec.Command(bin, "policy", "create", "--bucket", "b", "--prefix", "p", "--expires", "7d").Output()
	if err != nil {
		t.Fatalf("policy create --expires 7d: %v: %s", err, out)
	}
	var pol struct {
		Policy    string `json:"upload_policy"`
		Signature string `json:"upload_policy_signature"`
	}
	json.Unmarshal(out, &pol)
	if code, o := exitCode(t, bin, "policy", "check", "--bucket", "b", "--prefix", "p", "--signature", pol.Signature, pol.Policy); code != 0 || !strings.Contains(o, time.Now().UTC().Add(7*24*time.Hour).Format("2006-01-02")) {
		t.Errorf("policy check of a 7d policy: exit %d, %s", code, o)
	}
	// Only --workers is documented.
	for _, verb := range [][]string{{"upload"}, {"manifest", "verify"}, {"bundle"}, {"convert"}} {
		_, help := exitCode(t, bin, append(verb, "--help")...)
		if !strings.Contains(help, "-workers") || strings.Contains(help, "-parallel") || strings.Contains(help, "-uploads") {
			t.Errorf("%v --help: %s", verb, help)
		}
	}
}
