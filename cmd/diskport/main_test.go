package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest"
)

// TestMain stops the package's one MinIO server (s3test.Shared: the tests
// that talk S3 each take a bucket of their own) when the tests end, and
// removes the binary buildCLI built.
func TestMain(m *testing.M) {
	code := s3test.Main(m)
	if cliPath != "" {
		os.RemoveAll(filepath.Dir(cliPath))
	}
	os.Exit(code)
}

// call runs the CLI in-process and returns its exit status and output.
func call(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	return run(args), o.String(), e.String()
}

func TestHelpForEveryVerb(t *testing.T) {
	for name := range commands {
		code, out, _ := call(t, name, "--help")
		if code != 0 || !strings.Contains(out, "usage: diskport "+name) {
			t.Errorf("%s --help: exit %d, output %q", name, code, out)
		}
	}
	if code, out, _ := call(t, "help"); code != 0 || !strings.Contains(out, "convert") {
		t.Errorf("help: exit %d, %q", code, out)
	}
	if code, _, errOut := call(t, "frobnicate"); code != 2 || !strings.HasPrefix(errOut, "diskport: ") {
		t.Errorf("unknown verb: exit %d, %q", code, errOut)
	}
	if code, out, _ := call(t, "version"); code != 0 || !strings.HasPrefix(out, "diskport ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"info"},
		{"info", "a", "b"},
		{"info", "--output", "xml", "a"},
		{"convert", "a"},
		{"convert", "--exact-size", "--volume-size", "2", "a", "b"},
		{"map", "--bogus", "a"},
	} {
		if code, _, errOut := call(t, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2", args, code, errOut)
		}
	}
}

func TestInfoJSON(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 100, Seed: 1})
	code, out, errOut := call(t, "info", "--output", "json", g)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	// qemu-img's keys, so scripts written for it read ours; diskport's own
	// under "diskport".
	for _, k := range []string{"filename", "format", "virtual-size", "actual-size", "dirty-flag", "diskport"} {
		if _, ok := m[k]; !ok {
			t.Errorf("info JSON lacks %q: %s", k, out)
		}
	}
	ext, _ := m["diskport"].(map[string]any)
	for _, k := range []string{"file-size", "allocated-bytes", "blocks-checked"} {
		if _, ok := ext[k]; !ok {
			t.Errorf("info JSON lacks diskport.%q: %s", k, out)
		}
	}
	if m["format"] != "raw" || m["virtual-size"] != float64(3<<20+512) || ext["file-size"] != float64(3<<20+100) {
		t.Errorf("info JSON: %s", out)
	}
	if code, out, _ := call(t, "info", g); code != 0 || !strings.Contains(out, "file format: raw") {
		t.Errorf("info human: %d %q", code, out)
	}
}

func TestMapJSON(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 2})
	code, out, errOut := call(t, "map", "--output=json", g)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m []struct {
		Start, Length int64
		Data, Zero    bool
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var pos int64
	for _, e := range m {
		if e.Start != pos || e.Data == e.Zero {
			t.Fatalf("map entry %+v at %d", e, pos)
		}
		pos += e.Length
	}
	if pos != 2<<20 {
		t.Fatalf("map covers %d bytes", pos)
	}
}

func TestConvert(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 3})
	dir := t.TempDir()
	dst := filepath.Join(dir, "vol.raw")
	if code, _, errOut := call(t, "convert", "--no-sync", g, dst); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errOut)
	}
	if st, _ := os.Stat(dst); st.Size() != 1<<30 {
		t.Fatalf("volume %d bytes, want 1 GiB", st.Size())
	}
	// Exists: refused without --force.
	code, _, errOut := call(t, "convert", g, dst)
	if code != 1 || !strings.HasPrefix(errOut, "diskport: ") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("existing destination: exit %d, %q", code, errOut)
	}
	if code, _, errOut := call(t, "convert", "--force", "--exact-size", g, dst); code != 0 {
		t.Fatalf("--force --exact-size: %d %s", code, errOut)
	}
	if st, _ := os.Stat(dst); st.Size() != 3<<20+512 {
		t.Fatalf("exact volume %d bytes", st.Size())
	}
}

func TestConvertTooSmall(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 1<<30 + 4096, Seed: 4, ZeroPercent: 99})
	dir := t.TempDir()
	code, _, errOut := call(t, "convert", "--volume-size", "1", g, filepath.Join(dir, "vol"))
	if code != 1 || !strings.Contains(errOut, "1073745920") || !strings.Contains(errOut, "1073741824") {
		t.Fatalf("exit %d, %q: want 1 and both sizes named", code, errOut)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}

// TestConvertFromManifest splits a VMDK into manifest parts and converts
// it from the parts: the volume equals converting the file itself.
func TestConvertFromManifest(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 9<<20 + 512, Seed: 5})
	img := testimg.Make(t, g, "vmdk", "subformat=monolithicSparse")
	dir := t.TempDir()
	if code, _, errOut := call(t, "manifest", "create", "--part-size", "1MiB", "--format", "vmdk", img, dir); code != 0 {
		t.Fatalf("manifest create: %d %s", code, errOut)
	}
	man := filepath.Join(dir, filepath.Base(img)+".manifest.xml")
	a, b := filepath.Join(dir, "a.raw"), filepath.Join(dir, "b.raw")
	if code, _, errOut := call(t, "convert", "--no-sync", "--exact-size", "--manifest", man, a); code != 0 {
		t.Fatalf("convert --manifest: %d %s", code, errOut)
	}
	if code, _, errOut := call(t, "convert", "--no-sync", "--exact-size", img, b); code != 0 {
		t.Fatalf("convert: %d %s", code, errOut)
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) != 9<<20+512 || !bytes.Equal(x, y) {
		t.Fatal("converting from the manifest differs from converting the file")
	}
	if code, _, _ := call(t, "convert", "--manifest", man, "--format", "raw", filepath.Join(dir, "c")); code != 2 {
		t.Fatalf("--manifest with --format: exit %d, want 2", code)
	}
}

// TestConvertFromManifestChecksSHA256 swaps two parts' bytes and their
// checksum entries: every part verifies, the whole file does not, and
// `convert --manifest` must fail naming the manifest and leave nothing under
// the destination's name: a volume whose source fails its checksum
// must not look finished.
func TestConvertFromManifestChecksSHA256(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 6 << 20, Seed: 8})
	dir := t.TempDir()
	if code, _, errOut := call(t, "manifest", "create", "--part-size", "1MiB", "--format", "raw", g, dir); code != 0 {
		t.Fatalf("manifest create: %d %s", code, errOut)
	}
	man := filepath.Join(dir, filepath.Base(g)+".manifest.xml")
	f, err := os.Open(man)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Two full parts with different, non-zero bytes.
	data, _ := os.ReadFile(g)
	i, j := -1, -1
	for k := range m.Parts {
		p := &m.Parts[k]
		b := data[p.Offset:p.End()]
		if p.Length != 1<<20 || bytes.Count(b, []byte{0}) == len(b) {
			continue
		}
		if i < 0 {
			i = k
		} else if !bytes.Equal(b, data[m.Parts[i].Offset:m.Parts[i].End()]) {
			j = k
			break
		}
	}
	if j < 0 {
		t.Fatal("no two different data parts")
	}
	pi, pj := filepath.Join(dir, path.Base(m.Parts[i].Key)), filepath.Join(dir, path.Base(m.Parts[j].Key))
	tmp := pi + ".swap"
	if err := os.Rename(pi, tmp); err != nil {
		t.Fatal(err)
	}
	os.Rename(pj, pi)
	os.Rename(tmp, pj)
	m.Parts[i].SHA256, m.Parts[j].SHA256 = m.Parts[j].SHA256, m.Parts[i].SHA256
	if err := os.WriteFile(man, m.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "out.raw")
	code, _, errOut := call(t, "convert", "--no-sync", "--exact-size", "--manifest", man, dst)
	if code != 1 || !strings.Contains(errOut, man) || !strings.Contains(errOut, "checksum mismatch") || !strings.Contains(errOut, m.SHA256) {
		t.Fatalf("convert --manifest of swapped parts: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists after the failed conversion (%v)", dst, err)
	}
	left, _ := filepath.Glob(dst + "*")
	left2, _ := filepath.Glob(filepath.Join(dir, ".out.raw*"))
	if len(left)+len(left2) != 0 {
		t.Fatalf("the failed conversion left %q %q", left, left2)
	}
	// The per-part checksums all hold: each part alone is fine.
	if code, _, errOut := call(t, "manifest", "verify", man); code != 1 || !strings.Contains(errOut, "file checksum mismatch") {
		t.Fatalf("manifest verify: exit %d: %s", code, errOut)
	}
}
