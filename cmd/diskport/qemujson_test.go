package main

import (
	"encoding/json"
	"os/exec"
	"slices"
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

// mergeMap joins adjacent entries qemu-img would print as one (same flags,
// contiguous offsets), so two mappers that cut runs differently compare.
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
			if k != "diskport" && k != "compressed" {
				c[k] = v
			}
		}
		out = append(out, c)
	}
	return out
}

// TestInfoMapJSONMatchQemuImg compares `info --output=json` and `map
// --output=json` with qemu-img's on the same images: every key qemu-img
// writes is there with the same structure, and the values agree (VHD's
// name is diskport's "vhd" where qemu says "vpc"; qemu's vpc driver calls
// unallocated blocks present, diskport does not).
func TestInfoMapJSONMatchQemuImg(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 8 << 20, Seed: 21, ZeroPercent: 50})
	for _, tc := range []struct {
		name, path string
		values     bool // map values compare too
	}{
		{"raw", g, true},
		{"vmdk", testimg.Make(t, g, "vmdk", "subformat=monolithicSparse"), true},
		{"vmdk-stream", testimg.Make(t, g, "vmdk", "subformat=streamOptimized"), false},
		{"vhd", testimg.Make(t, g, "vpc", "subformat=dynamic"), false},
	} {
		var qi, di map[string]any
		qemuJSON(t, &qi, "info", "--output=json", tc.path)
		diskportJSON(t, bin, &di, "info", "--output=json", tc.path)
		for k, qv := range qi {
			dv, ok := di[k]
			switch {
			case !ok:
				t.Errorf("%s: info lacks qemu-img's %q", tc.name, k)
			case k == "format-specific":
				qs, ds := qv.(map[string]any), dv.(map[string]any)
				if _, ok := ds["data"].(map[string]any); !ok || ds["type"] != qs["type"] && !(qs["type"] == "vpc" && ds["type"] == "vhd") {
					t.Errorf("%s: format-specific %v, qemu-img %v", tc.name, ds, qs)
				}
			case k == "format" && qv == "vpc":
				if dv != "vhd" {
					t.Errorf("%s: format %v", tc.name, dv)
				}
			case k == "actual-size":
				if _, ok := dv.(float64); !ok {
					t.Errorf("%s: actual-size %v", tc.name, dv)
				}
			case dv != qv:
				t.Errorf("%s: info %q = %v, qemu-img %v", tc.name, k, dv, qv)
			}
		}
		if _, ok := di["diskport"].(map[string]any); !ok {
			t.Errorf("%s: info has no diskport object: %v", tc.name, di)
		}

		var qm, dm []map[string]any
		qemuJSON(t, &qm, "map", "--output=json", tc.path)
		diskportJSON(t, bin, &dm, "map", "--output=json", tc.path)
		var end float64
		for _, e := range dm {
			for _, k := range []string{"start", "length", "depth", "present", "zero", "data"} {
				if _, ok := e[k]; !ok {
					t.Fatalf("%s: map entry %v lacks %q", tc.name, e, k)
				}
			}
			if e["start"] != end {
				t.Fatalf("%s: map entry %v after %v", tc.name, e, end)
			}
			end += e["length"].(float64)
		}
		if end != qm[len(qm)-1]["start"].(float64)+qm[len(qm)-1]["length"].(float64) {
			t.Errorf("%s: map ends at %v", tc.name, end)
		}
		for _, e := range qm {
			for k := range e {
				if !slices.Contains([]string{"start", "length", "depth", "present", "zero", "data", "offset", "compressed"}, k) {
					t.Errorf("%s: qemu-img map key %q unknown to diskport", tc.name, k)
				}
			}
		}
		if tc.values {
			q, d := mergeMap(qm), mergeMap(dm)
			if len(q) != len(d) {
				t.Errorf("%s: map has %d runs, qemu-img %d\n%v\n%v", tc.name, len(d), len(q), d, q)
				continue
			}
			for i := range q {
				for k, v := range q[i] {
					if d[i][k] != v {
						t.Errorf("%s: map run %d %q = %v, qemu-img %v", tc.name, i, k, d[i][k], v)
					}
				}
			}
		}
	}
}
