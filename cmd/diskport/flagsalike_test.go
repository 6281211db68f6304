package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
)

// helpOf returns the --help output of the verb or subcommand path.
func helpOf(t *testing.T, bin, path string) string {
	t.Helper()
	out, err := exec.Command(bin, append(strings.Fields(path), "--help")...).Output()
	if err != nil {
		t.Fatalf("%s --help: %v: %s", path, err, out)
	}
	return string(out)
}

// TestFlagsAlike: every verb and subcommand's synopsis lists all its
// flags, no help shows an empty Flags: section or a placeholder that is
// not one, and --workers says in every verb what runs at once and how
// many by default.
func TestFlagsAlike(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	flagLine := regexp.MustCompile(`(?m)^  -(\S+)(?: (\S+))?(?:\t|\n\s+)(.*)$`)
	placeholders := map[string]bool{"string": true, "int": true, "size": true, "duration": true, "format": true, "N": true, "file": true}
	for _, n := range completionNodes() {
		help := helpOf(t, bin, n.path)
		usage, _, _ := strings.Cut(help, "\n\n")
		if strings.HasSuffix(strings.TrimSpace(help), "Flags:") {
			t.Errorf("%s --help ends in an empty Flags: section:\n%s", n.path, help)
		}
		lines := flagLine.FindAllStringSubmatch(help, -1)
		short := map[string]string{} // --format: f
		for _, m := range lines {
			if long, ok := strings.CutPrefix(m[3], "short for --"); ok {
				short[long] = m[1]
			}
		}
		inUsage := func(name string) bool {
			return name != "" && regexp.MustCompile(`(^|[\s\[(|])--?`+regexp.QuoteMeta(name)+`([\s\]=|)]|$)`).MatchString(usage)
		}
		for _, m := range lines {
			name, ph, use := m[1], m[2], m[3]
			if ph != "" && !placeholders[ph] {
				t.Errorf("%s --help: -%s shows the placeholder %q", n.path, name, ph)
			}
			if strings.HasPrefix(use, "short for --") {
				continue
			}
			if !inUsage(name) && !inUsage(short[name]) {
				t.Errorf("%s: the synopsis lacks --%s:\n%s", n.path, name, usage)
			}
			if name == "workers" && !regexp.MustCompile(`^\S.* at once.*\(default`).MatchString(use) {
				t.Errorf("%s --workers: %q does not say what runs at once and the default", n.path, use)
			}
		}
	}
}

// TestEnumsAnyCase: the enumerated values (--format, -O, --output,
// --naming, --progress=json, --checksum) are taken in any case, in every
// verb.
func TestEnumsAnyCase(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	work := t.TempDir()
	g := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 31})
	vmdk := testimg.Make(t, g, "vmdk", "subformat=monolithicSparse")
	for _, args := range [][]string{
		{"info", "--output", "JSON", "--format", "VMDK", vmdk},
		{"map", "--output=Json", "-f", "Vmdk", vmdk},
		{"check", "--output", "JSON", vmdk},
		{"convert", "--progress=JSON", "--checksum", "SHA256", "--no-sync", "--format", "RAW", g, filepath.Join(work, "a.raw")},
		{"convert", "-O", "VMDK", "--subformat", "STREAMOPTIMIZED", g, filepath.Join(work, "b.vmdk")},
		{"convert", "-O", "VPC", "-o", "subformat=FIXED", g, filepath.Join(work, "b.vhd")},
		{"manifest", "create", "--naming", "EUCA2OOLS", "--format", "Vmdk", vmdk, filepath.Join(work, "m")},
	} {
		if code, out := exitCode(t, bin, args...); code != 0 {
			t.Errorf("%v: exit %d, %s", args, code, out)
		}
	}
	if code, out := exitCode(t, bin, "manifest", "show", "--output", "JSON", filepath.Join(work, "m")); code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Errorf("manifest show --output JSON: exit %d, %s", code, out)
	}
}

// TestOVAFormatFlag: `--format ova X.ova` reads X.ova as it is read
// without --format; a disk format declared for an OVA is refused without
// advice to read the tar as that disk.
func TestOVAFormatFlag(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	path, _ := testOVA(t)
	work := t.TempDir()
	for _, verb := range [][]string{{"info"}, {"map"}, {"check"}} {
		_, plain := exitCode(t, bin, append(verb, path)...)
		code, out := exitCode(t, bin, append(verb, "--format", "ova", path)...)
		if code != 0 || out != plain {
			t.Errorf("%v --format ova: exit %d, %s\nwithout --format:\n%s", verb, code, out, plain)
		}
	}
	if code, out := exitCode(t, bin, "convert", "--no-sync", "--format", "OVA", path, filepath.Join(work, "v.raw")); code != 0 {
		t.Errorf("convert --format OVA: exit %d, %s", code, out)
	}
	code, out := exitCode(t, bin, "info", "--format", "vmdk", path)
	if code == 0 || strings.Contains(out, "trust-format") || !strings.Contains(out, "ova") {
		t.Errorf("info --format vmdk X.ova: exit %d, %s", code, out)
	}
}

// TestConvertDestinations: `convert --all DIR` creates DIR; `-` is
// standard output for a raw volume (holes written as zeros) as for the
// formats written front to back, and never a file named "-".
func TestConvertDestinations(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	path, _ := testOVA(t)
	work := t.TempDir()
	dir := filepath.Join(work, "new", "disks")
	if code, out := exitCode(t, bin, "convert", "--no-sync", "--all", dir, path); code != 0 {
		t.Fatalf("convert --all into a new directory: exit %d, %s", code, out)
	}
	if fs, _ := filepath.Glob(filepath.Join(dir, "*.raw")); len(fs) != 2 {
		t.Errorf("convert --all made %v", fs)
	}

	g := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 32, ZeroPercent: 50})
	vmdk := testimg.Make(t, g, "vmdk", "subformat=monolithicSparse")
	want, _ := os.ReadFile(g)
	cases := []struct {
		args []string
		size int
	}{{[]string{"--exact-size", "--checksum", "sha256"}, len(want)}}
	if !testing.Short() {
		cases = append(cases, struct {
			args []string
			size int
		}{nil, 1 << 30}) // the whole volume: a GiB through the pipe
	}
	for _, tc := range cases {
		cmd := exec.Command(bin, append(append([]string{"convert"}, tc.args...), vmdk, "-")...)
		cmd.Dir = work
		var errb bytes.Buffer
		cmd.Stderr = &errb
		out := &volumeChecker{want: want, bad: -1}
		cmd.Stdout = out
		if err := cmd.Run(); err != nil {
			t.Fatalf("convert %v - : %v: %s", tc.args, err, errb.String())
		}
		if out.n != int64(tc.size) || out.bad >= 0 {
			t.Errorf("convert %v to -: %d bytes on stdout (wrong bytes from %d), want the %d-byte volume", tc.args, out.n, out.bad, tc.size)
		}
		if tc.args != nil {
			sum := sha256.Sum256(want)
			if !strings.Contains(errb.String(), hex.EncodeToString(sum[:])) {
				t.Errorf("convert --checksum to -: stderr %s", errb.String())
			}
		}
	}
	if _, err := os.Stat(filepath.Join(work, "-")); err == nil {
		t.Error("convert made a file named -")
	}
	for _, args := range [][]string{{"convert", "--resume", vmdk}, {"convert", "--force", vmdk}, {"convert", "--device-zeroed", vmdk},
		{"unbundle", "--private-key", "k.pem", "--dir", work, "--manifest", "x.manifest.xml"}} {
		cmd := exec.Command(bin, append(args, "-")...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 {
			t.Errorf("%v to -: %v, %s", args, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "-")); err == nil {
		t.Error("a file named - was made")
	}
}

// volumeChecker is the standard output of a conversion to "-": it checks
// the bytes as they stream past against want followed by zeros, so a GiB
// volume is never held in memory.
type volumeChecker struct {
	want []byte
	n    int64 // bytes seen
	bad  int64 // the first wrong byte's offset; -1 while none is
}

func (v *volumeChecker) Write(p []byte) (int, error) {
	n, off := len(p), v.n
	v.n += int64(n)
	if v.bad >= 0 {
		return n, nil
	}
	if off < int64(len(v.want)) {
		k := min(len(p), len(v.want)-int(off))
		if !bytes.Equal(p[:k], v.want[off:off+int64(k)]) {
			v.bad = off // within this write; the exact byte does not matter
			return n, nil
		}
		p, off = p[k:], off+int64(k)
	}
	for len(p) > 0 {
		k := min(len(p), len(zeros))
		if !bytes.Equal(p[:k], zeros[:k]) {
			v.bad = off
			break
		}
		p, off = p[k:], off+int64(k)
	}
	return n, nil
}

// zeros is compared against the zero tail of a volume, one write at a time
// (a pipe delivers at most 1 MiB a write).
var zeros = make([]byte, 4<<20)
