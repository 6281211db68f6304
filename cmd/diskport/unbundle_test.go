package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
)

// TestUnbundleMessages: each refusal names the flag that changes it, the
// summary says whether the signature was verified, an existing
// destination is refused as convert refuses it, and every error starts
// "diskport: unbundle: ".
func TestUnbundleMessages(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	work := t.TempDir()
	ec2Cert, userCert, userKey, ec2Key := keyFiles(t, work)
	g := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 27})
	out := filepath.Join(work, "bundle")
	for _, args := range [][]string{
		{"bundle", "--format", "raw", "--prefix", "unsigned", "--ec2-cert", ec2Cert, "--out", out, g},
		{"bundle", "--format", "raw", "--prefix", "signed", "--ec2-cert", ec2Cert, "--user-cert", userCert, "--user-key", userKey, "--out", out, g},
	} {
		if code, o := exitCode(t, bin, args...); code != 0 {
			t.Fatalf("%v: exit %d, %s", args, code, o)
		}
	}
	dst := func(name string) string { return filepath.Join(work, name) }
	unbundle := func(args ...string) (int, string) {
		return exitCode(t, bin, append([]string{"unbundle", "--dir", out}, args...)...)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
		not  string
	}{
		{"unsigned refused", []string{"--private-key", ec2Key, "--manifest", "unsigned.manifest.xml", dst("a")}, 1,
			[]string{"diskport: unbundle: manifest is UNSIGNED", "--allow-unsigned"}, "bundle: bundle:"},
		{"unsigned allowed", []string{"--allow-unsigned", "--private-key", ec2Key, "--manifest", "unsigned.manifest.xml", dst("b")}, 0,
			[]string{"the manifest is UNSIGNED"}, "signature verified"},
		{"signed, --allow-unsigned", []string{"--allow-unsigned", "--private-key", userKey, "--manifest", "signed.manifest.xml", dst("c")}, 0,
			[]string{"manifest signature and image digest verified"}, "UNSIGNED"},
		{"signed, EC2 key, no --user-cert", []string{"--private-key", ec2Key, "--manifest", "signed.manifest.xml", dst("d")}, 1,
			[]string{"diskport: unbundle: manifest signature does not verify", "public half of --private-key " + ec2Key, "--user-cert"}, ""},
		{"signed, wrong --user-cert", []string{"--private-key", ec2Key, "--user-cert", ec2Cert, "--manifest", "signed.manifest.xml", dst("e")}, 1,
			[]string{"checked against --user-cert " + ec2Cert}, ""},
		{"destination exists", []string{"--private-key", userKey, "--manifest", "signed.manifest.xml", dst("c")}, 1,
			[]string{"diskport: unbundle: destination " + dst("c") + " exists (give --force to overwrite it)"}, "Options.Force"},
		{"--force", []string{"--force", "--private-key", userKey, "--manifest", "signed.manifest.xml", dst("c")}, 0, nil, ""},
	} {
		code, o := unbundle(tc.args...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d: %s", tc.name, code, tc.code, o)
		}
		for _, w := range tc.want {
			if !strings.Contains(o, w) {
				t.Errorf("%s: output lacks %q: %s", tc.name, w, o)
			}
		}
		if tc.not != "" && strings.Contains(o, tc.not) {
			t.Errorf("%s: output has %q: %s", tc.name, tc.not, o)
		}
	}
	// convert says the same of an existing destination.
	os.WriteFile(dst("f"), nil, 0o644)
	if code, o := exitCode(t, bin, "convert", g, dst("f")); code != 1 || !strings.Contains(o, "destination "+dst("f")+" exists (give --force to overwrite it)") {
		t.Errorf("convert onto an existing file: exit %d, %s", code, o)
	}
}

// TestBundleMissingFlag: without --out, the missing S3 flag named is the
// first in the usage line's order, every time (it was picked by map order).
func TestBundleMissingFlag(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	work := t.TempDir()
	ec2Cert, _, _, _ := keyFiles(t, work)
	base := []string{"bundle", "--prefix", "p", "--ec2-cert", ec2Cert}
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, "--endpoint"},
		{[]string{"--endpoint", "http://x"}, "--bucket"},
		{[]string{"--endpoint", "http://x", "--bucket", "b"}, "--access-key-id"},
		{[]string{"--endpoint", "http://x", "--bucket", "b", "--access-key-id", "k"}, "--upload-policy"},
		{[]string{"--endpoint", "http://x", "--bucket", "b", "--access-key-id", "k", "--upload-policy", "p"}, "--upload-policy-signature"},
	} {
		for range 5 {
			code, o := exitCode(t, bin, append(append(base, tc.extra...), "img")...)
			if code != 2 || !strings.Contains(o, "diskport bundle: "+tc.want+" is required") {
				t.Fatalf("%v: exit %d, %s; want %s named", tc.extra, code, o, tc.want)
			}
		}
	}
}
