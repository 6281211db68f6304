package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
)

// TestCheckSameVerdictAsConvert mutates streamOptimized and sparse VMDKs
// and a dynamic VHD (16 random bytes at a random offset, seeded): on every
// copy, check and convert agree (exit 0 both, or exit 1 both), check
// writes nothing, and some copies info accepts while check refuses them
// (the blocks info does not read).
func TestCheckSameVerdictAsConvert(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	work := t.TempDir()
	g := testimg.Golden(t, testimg.Spec{Size: 4 << 20, Seed: 25, ZeroPercent: 30})
	rng := rand.New(rand.NewPCG(15, 25))
	infoOnly, refused := 0, 0
	for _, src := range []string{
		testimg.Make(t, g, "vmdk", "subformat=streamOptimized"),
		testimg.Make(t, g, "vmdk", "subformat=monolithicSparse"),
		testimg.Make(t, g, "vpc", "subformat=dynamic"),
	} {
		orig, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 16 {
			b := append([]byte(nil), orig...)
			at := rng.IntN(len(b) - 16)
			for k := range 16 {
				b[at+k] = byte(rng.Uint32())
			}
			img := filepath.Join(work, filepath.Base(src)+".mut")
			if err := os.WriteFile(img, b, 0o644); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(work, "vol.raw")
			os.Remove(dst)
			infoCode, _ := exitCode(t, bin, "info", img)
			checkCode, checkOut := exitCode(t, bin, "check", img)
			convCode, convOut := exitCode(t, bin, "convert", "--no-sync", "--exact-size", img, dst)
			if checkCode != convCode {
				t.Errorf("%s mutated at %d (#%d): check exit %d, convert exit %d\ncheck: %s\nconvert: %s", filepath.Base(src), at, i, checkCode, convCode, checkOut, convOut)
			}
			if checkCode == 1 {
				refused++
				if !strings.HasPrefix(checkOut, "ERROR ") && !strings.HasPrefix(checkOut, "diskport: ") {
					t.Errorf("check of a corrupt image says: %s", checkOut)
				}
				if infoCode == 0 {
					infoOnly++
				}
			}
			var left []string
			ents, _ := os.ReadDir(work)
			for _, e := range ents {
				if !strings.HasSuffix(e.Name(), ".mut") {
					left = append(left, e.Name())
				}
			}
			if want := map[bool]int{true: 1, false: 0}[convCode == 0]; len(left) != want {
				t.Errorf("after check and convert: %v in the work dir", left)
			}
		}
	}
	t.Logf("%d of 48 mutated images refused, %d of them accepted by info", refused, infoOnly)
	if infoOnly == 0 {
		t.Error("no mutated image that info accepts did check refuse: the test does not reach the blocks")
	}
}

// TestCheckReports: a clean image passes with exit 0 in both outputs; a
// compressed grain damaged in the middle of a streamOptimized VMDK fails
// with exit 1, the JSON naming the range, while info still opens it and
// says it did not read the blocks.
func TestCheckReports(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 8 << 20, Seed: 26})
	img := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	if code, out := exitCode(t, bin, "check", img); code != 0 || !strings.Contains(out, "No errors were found") {
		t.Fatalf("check of a clean image: exit %d, %s", code, out)
	}
	// check --output=json has qemu-img check's keys.
	var q, d map[string]any
	qemuJSON(t, &q, "check", "--output=json", img)
	diskportJSON(t, bin, &d, "check", "--output=json", img)
	for k, v := range q {
		if dv, ok := d[k]; !ok || (k != "filename" && dv != v) {
			t.Errorf("check JSON %q = %v, qemu-img %v", k, dv, v)
		}
	}
	b, _ := os.ReadFile(img)
	for k := range 64 {
		b[len(b)/2+k] ^= 0x5a
	}
	bad := filepath.Join(t.TempDir(), "bad.vmdk")
	os.WriteFile(bad, b, 0o644)
	if code, out := exitCode(t, bin, "info", bad); code != 0 || !strings.Contains(out, "blocks: not read") {
		t.Errorf("info of the damaged image: exit %d, %s", code, out)
	}
	code, out := exitCode(t, bin, "check", "--output=json", bad)
	var j struct {
		Filename    string `json:"filename"`
		Format      string `json:"format"`
		CheckErrors int    `json:"check-errors"`
		Diskport    struct {
			Problems []struct {
				Offset, Length int64
				Error          string
			} `json:"problems"`
		} `json:"diskport"`
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &j); err != nil {
		t.Fatalf("check --output=json: %v: %s", err, out)
	}
	if code != 1 || j.CheckErrors == 0 || j.Format != "vmdk" || j.Filename != bad || len(j.Diskport.Problems) != j.CheckErrors || j.Diskport.Problems[0].Error == "" {
		t.Errorf("check of the damaged image: exit %d, %s", code, out)
	}
}
