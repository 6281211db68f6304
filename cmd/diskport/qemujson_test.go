package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
)

// qemuJSON runs qemu-img with args and decodes its JSON into v.
func qemuJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := exec.Command("qemu-img", args...).Output()
	if err != nil {
		t.Fatalf("qemu-img %v: %v", args, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("qemu-img %v: %v: %s", args, err, out)
	}
}

// diskportJSON runs the built diskport with args and decodes its JSON.
func diskportJSON(t *testing.T, bin string, v any, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("diskport %v: %v: %s", args, err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("diskport %v: %v: %s", args, err, out)
	}
}

// mergeMap joins adjacent entries qemu-img would print as one (same
// flags, contiguous offsets), so two mappers that cut runs differently
// compare, and drops diskport's own key.
func mergeMap(es []map[string]any) []map[string]any {
	var out []map[string]any
	for _, e := range es {
		if n := len(out); n > 0 {
			p := out[n-1]
			same := p["zero"] == e["zero"] && p["data"] == e["data"] && p["present"] == e["present"] && p["depth"] == e["depth"]
			po, pok := p["offset"].(float64)
			eo, eok := e["offset"].(float64)
			if same && pok == eok && (!pok || po+p["length"].(float64) == eo) {
				p["length"] = p["length"].(float64) + e["length"].(float64)
				continue
			}
		}
		c := map[string]any{}
		for k, v := range e {
			if k != "diskport" {
				c[k] = v
			}
		}
		out = append(out, c)
	}
	return out
}

// clipMap cuts the merged map es at end.
func clipMap(es []map[string]any, end float64) []map[string]any {
	var out []map[string]any
	for _, e := range es {
		s, l := e["start"].(float64), e["length"].(float64)
		if s >= end {
			break
		}
		if s+l > end {
			e["length"] = end - s
		}
		out = append(out, e)
	}
	return out
}

// corpusImage is one image of the qemu-img comparison corpus.
type corpusImage struct {
	name, path string
	parents    []string // --parent for diskport; qemu-img follows the backing file itself
	// onlyDiskport says why diskport reads an image qemu-img refuses, or
	// onlyQemu why qemu-img reads one diskport refuses ("" for neither).
	onlyDiskport, onlyQemu string
}

// qemuCorpus returns every image the comparison runs on: the public
// samples (vmdk/, vhd/ and vhdx/testdata), every format and subformat
// qemu-img writes made from a golden disk with holes, and a VMDK delta
// link with data, zeroed grains and unallocated grains over a smaller
// parent.
func qemuCorpus(t *testing.T) []corpusImage {
	t.Helper()
	var c []corpusImage
	why := map[string][2]string{
		"dfvfs-fat-differential.vhd":  {"", "qemu-img ignores a differencing VHD's parent; diskport refuses it without --parent"},
		"iotest-dirtylog-10G-4M.vhdx": {"diskport replays the log in memory; qemu-img refuses a log to replay read-only", ""},
	}
	for _, dir := range []string{"vmdk", "vhd", "vhdx"} {
		es, err := os.ReadDir(filepath.Join("..", "..", dir, "testdata"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			n := e.Name()
			if e.IsDir() || strings.HasSuffix(n, ".md") || strings.HasSuffix(n, ".py") {
				continue
			}
			p := testimg.Sample(t, filepath.Join("..", "..", dir, "testdata", n))
			w := why[filepath.Base(p)]
			c = append(c, corpusImage{name: filepath.Base(p), path: p, onlyDiskport: w[0], onlyQemu: w[1]})
		}
	}
	g := testimg.Golden(t, testimg.Spec{Size: 8<<20 + 512*3, Seed: 27, ZeroPercent: 40})
	c = append(c, corpusImage{name: "raw", path: g})
	for _, f := range []struct{ format, opts string }{
		{"vmdk", "subformat=monolithicSparse"}, {"vmdk", "subformat=monolithicFlat"},
		{"vmdk", "subformat=twoGbMaxExtentSparse"}, {"vmdk", "subformat=twoGbMaxExtentFlat"},
		{"vmdk", "subformat=streamOptimized"}, {"vmdk", "subformat=monolithicSparse,zeroed_grain=on"},
		{"vpc", "subformat=dynamic"}, {"vpc", "subformat=fixed"},
		{"vhdx", "subformat=dynamic"}, {"vhdx", "subformat=fixed"},
	} {
		p := testimg.Make(t, g, f.format, f.opts)
		c = append(c, corpusImage{name: f.format + " " + f.opts, path: p})
		// The same image by an absolute path: qemu-img's extent and
		// backing names follow the name it was given.
		if abs, _ := filepath.Abs(p); f.format == "vmdk" {
			c = append(c, corpusImage{name: f.format + " " + f.opts + " absolute", path: abs})
		}
	}
	// A delta link: base 4 MiB, child 8 MiB with data, zeroed grains and
	// unallocated grains over the base's data, holes and end.
	dir := t.TempDir()
	base := filepath.Join(dir, "base.vmdk")
	child := filepath.Join(dir, "child.vmdk")
	b := testimg.Golden(t, testimg.Spec{Size: 4 << 20, Seed: 28, ZeroPercent: 40})
	for _, args := range [][]string{
		{"qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", b, base},
		{"qemu-img", "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", "-b", "base.vmdk", "-F", "vmdk", child, "8M"},
		{"qemu-io", "-c", "write -P 0x55 512k 128k", "-c", "write -z 3M 64k", "-c", "write -z 5M 128k", "-c", "write -P 0x66 7M 64k", child},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	c = append(c, corpusImage{name: "vmdk delta link", path: child, parents: []string{base}})
	// Settle every file's allocation before comparing st_blocks: a file
	// just written can still change its allocation as it reaches disk.
	for _, im := range c {
		fs, _ := filepath.Glob(filepath.Join(filepath.Dir(im.path), "*"))
		for _, f := range fs {
			if h, err := os.Open(f); err == nil {
				h.Sync()
				h.Close()
			}
		}
	}
	return c
}

// TestQemuJSONCorpus runs `qemu-img info/map --output=json` and `diskport
// info/map --output=json` on every image of the corpus and compares them:
// diskport has every key qemu-img writes, with the same JSON type and
// value, and no other key outside "diskport"; merged, the maps have the
// same runs. Where diskport is right on purpose (a VHD's current size
// against qemu-img's CHS rounding; a VHDX's map, which qemu-img reports as
// data throughout), the values may differ, as README says.
func TestQemuJSONCorpus(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	testimg.QemuImg(t)
	for _, im := range qemuCorpus(t) {
		t.Run(im.name, func(t *testing.T) {
			var dargs []string
			for _, p := range im.parents {
				dargs = append(dargs, "--parent", p)
			}
			dout, derr := exec.Command(bin, append(append([]string{"info", "--output=json"}, dargs...), im.path)...).Output()
			var di map[string]any
			if derr == nil {
				if err := json.Unmarshal(dout, &di); err != nil {
					t.Fatalf("diskport info: %v: %s", err, dout)
				}
			}
			qargs := []string{"info", "--output=json"}
			if di != nil {
				qargs = append(qargs, "-f", di["format"].(string)) // a fixed VHD probes as raw
			}
			qout, qerr := exec.Command("qemu-img", append(qargs, im.path)...).Output()
			switch {
			case derr != nil && qerr != nil:
				return // both refuse it
			case derr != nil:
				if im.onlyQemu == "" {
					t.Fatalf("diskport refuses what qemu-img reads: %v", derr)
				}
				return
			case qerr != nil:
				if im.onlyDiskport == "" {
					t.Fatalf("qemu-img refuses what diskport reads: %v", qerr)
				}
				return
			case im.onlyDiskport != "" || im.onlyQemu != "":
				t.Fatalf("both read it, but the corpus says one does not: %s%s", im.onlyDiskport, im.onlyQemu)
			}
			var qi map[string]any
			if err := json.Unmarshal(qout, &qi); err != nil {
				t.Fatal(err)
			}
			compareInfo(t, qi, di)

			var qm, dm []map[string]any
			qemuJSON(t, &qm, "map", "--output=json", "-f", qi["format"].(string), im.path)
			diskportJSON(t, bin, &dm, append(append([]string{"map", "--output=json"}, dargs...), im.path)...)
			compareMap(t, qi, di, qm, dm)
		})
	}
}

// compareInfo checks diskport's info document di against qemu-img's qi.
func compareInfo(t *testing.T, qi, di map[string]any) {
	t.Helper()
	for k := range di {
		if _, ok := qi[k]; !ok && k != "diskport" {
			t.Errorf("info key %q is not qemu-img's (diskport's own go under \"diskport\")", k)
		}
	}
	dp, _ := di["diskport"].(map[string]any)
	if dp == nil {
		t.Fatalf("info has no diskport object: %v", di)
	}
	for k, qv := range qi {
		dv, ok := di[k]
		switch {
		case !ok:
			t.Errorf("info lacks qemu-img's %q (%v)", k, qv)
		case reflect.TypeOf(dv) != reflect.TypeOf(qv):
			t.Errorf("info %q is %T %v, qemu-img's %T %v", k, dv, dv, qv, qv)
		case k == "virtual-size" && qi["format"] == "vpc" && dv != qv:
			// qemu-img rounds a VHD made by Virtual PC or qemu to its CHS
			// geometry; diskport reads the footer's current size.
			fs := dp["format-specific"].(map[string]any)
			if dv != fs["current-size"] || qv != fs["chs-size"] {
				t.Errorf("virtual-size %v, qemu-img %v: neither the current size %v nor the CHS size %v", dv, qv, fs["current-size"], fs["chs-size"])
			}
		case !reflect.DeepEqual(dv, qv):
			t.Errorf("info %q = %v, qemu-img %v", k, dv, qv)
		}
	}
}

// compareMap checks diskport's map dm against qemu-img's qm.
func compareMap(t *testing.T, qi, di map[string]any, qm, dm []map[string]any) {
	t.Helper()
	keys := map[string]reflect.Type{}
	for _, e := range qm {
		for k, v := range e {
			keys[k] = reflect.TypeOf(v)
		}
	}
	var end float64
	for _, e := range dm {
		for _, k := range []string{"start", "length", "depth", "present", "zero", "data"} {
			if _, ok := e[k]; !ok {
				t.Fatalf("map entry %v lacks %q", e, k)
			}
		}
		for k, v := range e {
			if k == "diskport" {
				continue
			}
			if _, known := map[string]bool{"start": true, "length": true, "depth": true, "present": true, "zero": true, "data": true, "offset": true}[k]; !known {
				t.Errorf("map key %q is not qemu-img's", k)
			}
			if qt, ok := keys[k]; ok && qt != reflect.TypeOf(v) {
				t.Errorf("map %q is %T, qemu-img's %v", k, v, qt)
			}
		}
		if e["start"] != end {
			t.Fatalf("map entry %v after %v", e, end)
		}
		end += e["length"].(float64)
	}
	if end != di["virtual-size"] {
		t.Errorf("map ends at %v, virtual size %v", end, di["virtual-size"])
	}
	if qi["format"] == "vhdx" {
		return // qemu-img maps a VHDX as data throughout, no offsets
	}
	q, d := mergeMap(qm), mergeMap(dm)
	if n := min(qi["virtual-size"].(float64), end); n != end || n != qi["virtual-size"] {
		q, d = clipMap(q, n), clipMap(d, n) // a VHD's CHS rounding
	}
	if !reflect.DeepEqual(q, d) {
		for i := range max(len(q), len(d)) {
			var qe, de map[string]any
			if i < len(q) {
				qe = q[i]
			}
			if i < len(d) {
				de = d[i]
			}
			if !reflect.DeepEqual(qe, de) {
				t.Errorf("map run %d: diskport %v, qemu-img %v", i, de, qe)
				break
			}
		}
		t.Errorf("diskport's map (%d runs merged) is not qemu-img's (%d)", len(d), len(q))
	}
}
