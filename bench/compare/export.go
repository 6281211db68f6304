//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// An exportKind is one export row: diskport writing an image from a raw
// disk, against qemu-img writing the same layout (or, for the OVA,
// against diskport writing the bare streamOptimized VMDK the OVA holds).
type exportKind struct {
	// Name is the row's -export key; Title names the output in the
	// tables.
	Name, Title string
	// Diskport is diskport convert's output flags.
	Diskport []string
	// Qemu and Opts are qemu-img's -O and -o for the reference; Qemu ""
	// makes the reference diskport -O vmdk (the OVA row).
	Qemu, Opts string
	// Ext is the output file's extension.
	Ext string
	// Target is the speed-up over qemu-img the row must reach; for the
	// OVA row, the most the OVA may take in multiples of the bare
	// stream's time. 0: no target.
	Target float64
	// MaxSize is the most diskport's output may be in multiples of the
	// reference's (0: no target).
	MaxSize float64
}

// exportKinds lists the export rows, in table order.
var exportKinds = []exportKind{
	{Name: "stream", Title: "vmdk streamOptimized", Diskport: []string{"-O", "vmdk"},
		Qemu: "vmdk", Opts: "subformat=streamOptimized", Ext: "vmdk", Target: 4, MaxSize: 1.05},
	{Name: "sparse", Title: "vmdk monolithicSparse", Diskport: []string{"-O", "vmdk", "--subformat", "monolithicSparse"},
		Qemu: "vmdk", Opts: "subformat=monolithicSparse", Ext: "vmdk", Target: 1.5},
	{Name: "vhd", Title: "vhd dynamic", Diskport: []string{"-O", "vhd"},
		Qemu: "vpc", Opts: "subformat=dynamic,force_size=on", Ext: "vhd", Target: 1.5},
	{Name: "vhdfixed", Title: "vhd fixed", Diskport: []string{"-O", "vhd", "--subformat", "fixed"},
		Qemu: "vpc", Opts: "subformat=fixed,force_size=on", Ext: "vhd"},
	{Name: "ova", Title: "ova (streamOptimized inside)", Diskport: []string{"-O", "ova"}, Ext: "ova", Target: 1.1},
}

// exportAnonTarget is the most anonymous memory diskport may use writing
// an image.
const exportAnonTarget = 64 << 20

// pickExports returns the export rows named in list (comma-separated, any
// case; "all" for every row; "" or "none" for none).
func pickExports(list string) ([]exportKind, error) {
	switch {
	case list == "" || strings.EqualFold(list, "none"):
		return nil, nil
	case strings.EqualFold(list, "all"):
		return exportKinds, nil
	}
	var out []exportKind
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, k := range exportKinds {
			if strings.EqualFold(k.Name, name) {
				out = append(out, k)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown export %q in -export (known: %s, all, none)", name, exportNames())
		}
	}
	return out, nil
}

func exportNames() string {
	var names []string
	for _, k := range exportKinds {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}

// An exportRow is the comparison of diskport and the reference on one
// export.
type exportRow struct {
	kind        exportKind
	virtualSize int64
	tools       []string   // tools[0] is diskport, tools[1] the reference
	times       [][]sample // by tool, then by round
	// What the untimed verification run found, per tool: peak anonymous
	// memory, the output's size and the bytes it occupies, and how it was
	// checked.
	anon, size, alloc []int64
	checked           []string
}

// exportTool is a tool of an export row and how its output is checked
// against the raw source.
type exportTool struct {
	tool
	check   func(out, src string, vsize int64) error
	checked string // how, for the report
}

// compareExports verifies and times every export in kinds from the raw
// disk of set.
func compareExports(o options, p programs, set *imageSet, kinds []exportKind, work string) ([]exportRow, error) {
	var rows []exportRow
	for _, k := range kinds {
		r, err := compareExport(o, p, set, k, work)
		if err != nil {
			return rows, fmt.Errorf("%s export %s: %v", set.label, k.Name, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// compareExport verifies and times diskport against the reference on the
// export k of set's raw disk, in the fast mode (--no-sync; qemu-img does
// not flush by default).
func compareExport(o options, p programs, set *imageSet, k exportKind, work string) (exportRow, error) {
	src := set.golden
	vsize, err := set.virtualSize(src, "raw")
	if err != nil {
		return exportRow{}, err
	}
	dp := func(name, ext string, flags []string) tool {
		return command(name, filepath.Join(work, "export-"+strings.NewReplacer(" ", "-").Replace(name)+"."+ext),
			func(src, dst string) []string {
				a := append([]string{p.diskport, "convert", "--format", "raw"}, flags...)
				return append(a, "--no-sync", "--force", src, dst)
			})
	}
	byQemu := func(qemuFormat string) (func(out, src string, vsize int64) error, string) {
		return func(out, src string, _ int64) error { return qemuCompare(p.qemu, qemuFormat, out, src) },
			"`qemu-img compare -f " + qemuFormat + " -F raw`"
	}
	var tools []exportTool
	if k.Qemu != "" {
		check, how := byQemu(k.Qemu)
		tools = []exportTool{
			{dp("diskport", k.Ext, k.Diskport), check, how},
			{command("qemu-img", filepath.Join(work, "export-qemu-img."+k.Ext), func(src, dst string) []string {
				return []string{p.qemu, "convert", "-f", "raw", "-O", k.Qemu, "-o", k.Opts, src, dst}
			}), check, how},
		}
	} else {
		check, how := byQemu("vmdk")
		tools = []exportTool{
			{dp("diskport -O ova", k.Ext, k.Diskport), func(out, src string, vsize int64) error {
				return ovaRoundTrip(p.diskport, out, src, filepath.Join(work, "export-ova-volume.raw"), vsize)
			}, "`diskport convert --exact-size` back to raw, `cmp`"},
			{dp("diskport -O vmdk", "vmdk", []string{"-O", "vmdk"}), check, how},
		}
	}
	logf("%s export %s: %s, virtual size %s", set.label, k.Name, src, mib(vsize))
	r := exportRow{kind: k, virtualSize: vsize}
	var outs []string
	var plain []tool
	for _, t := range tools {
		outs = append(outs, t.out)
		plain = append(plain, t.tool)
		r.tools = append(r.tools, t.name)
		r.checked = append(r.checked, t.checked)
	}
	if err := clean(outs...); err != nil {
		return r, err
	}
	for _, t := range tools {
		s, err := t.run(src, true)
		if err != nil {
			return r, err
		}
		st, err := os.Stat(t.out)
		if err != nil {
			return r, err
		}
		r.anon = append(r.anon, s.PeakAnon)
		r.size = append(r.size, st.Size())
		r.alloc = append(r.alloc, allocated(t.out))
		if err := t.check(t.out, src, vsize); err != nil {
			return r, fmt.Errorf("%s's output: %v", t.name, err)
		}
		logf("  %-18s verified; peak anonymous memory %s, output %d bytes (allocated %s), minflt %d",
			t.name, mib(s.PeakAnon), st.Size(), mib(r.alloc[len(r.alloc)-1]), s.Minflt)
		if err := os.Remove(t.out); err != nil {
			return r, err
		}
	}
	r.times, err = measure(plain, src, o.runs)
	return r, err
}

// qemuCompare checks with qemu-img compare that the image out (of
// qemuFormat) holds the raw disk src.
func qemuCompare(qemu, qemuFormat, out, src string) error {
	b, err := exec.Command(qemu, "compare", "-f", qemuFormat, "-F", "raw", out, src).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img compare -f %s -F raw: %v: %s", qemuFormat, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// ovaRoundTrip converts the OVA out back to a raw volume vol with diskport
// and checks that it holds the vsize bytes of src.
func ovaRoundTrip(diskport, out, src, vol string, vsize int64) error {
	defer os.Remove(vol)
	b, err := exec.Command(diskport, "convert", "--exact-size", "--force", "--no-sync", out, vol).CombinedOutput()
	if err != nil {
		return fmt.Errorf("diskport convert %s: %v: %s", out, err, strings.TrimSpace(string(b)))
	}
	return sameBytes(vol, src, vsize)
}

// exportSection writes the export rows of one disk.
func exportSection(b io.Writer, rows []exportRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### Export: `diskport convert --format raw --no-sync -O F` vs `qemu-img convert -f raw -O F -o subformat=S`\n\n")
	fmt.Fprintf(b, "From the raw disk. VHDs from qemu-img with `force_size=on` (the exact size, no CHS rounding). "+
		"The OVA row is `-O ova` against diskport's own `-O vmdk` (the stream it holds); its ratio is the OVA's time over the stream's. "+
		"Targets: speed-up over qemu-img by *geo*; the OVA at most its multiple of the stream's time.\n\n")
	fmt.Fprintf(b, "| output | diskport s | reference s | ref/diskport geo | median ratio | target | diskport CPU s | reference CPU s | CPU ref/diskport | diskport minflt | reference minflt |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		f := pairOf(row{times: r.times})
		target := "—"
		switch {
		case r.kind.Qemu == "" && r.kind.Target > 0:
			target = fmt.Sprintf("OVA/stream %.3f× ≤%.2f× %s", 1/f.geo, r.kind.Target, metAtMost(1/f.geo, r.kind.Target))
		case r.kind.Target > 0:
			target = fmt.Sprintf("≥%.1f× %s", r.kind.Target, met(f.geo, r.kind.Target))
		}
		fmt.Fprintf(b, "| %s (vs %s) | %.2f | %.2f | %.2f× | %.2f× | %s | %.2f | %.2f | %.2f× | %s | %s |\n",
			r.kind.Title, r.tools[1], f.wall[0], f.wall[1], f.geo, f.wall[1]/f.wall[0], target,
			f.cpu[0], f.cpu[1], f.cpu[1]/f.cpu[0], faults(medianFaults(r.times[0])), faults(medianFaults(r.times[1])))
	}
	fmt.Fprintf(b, "\n#### Memory and output (untimed verification run)\n\n")
	fmt.Fprintf(b, "Peak anonymous memory is RssAnon sampled from /proc every 5 ms. Size is the output file's length; allocated, the blocks it occupies.\n\n")
	fmt.Fprintf(b, "| output | diskport peak anon | target | reference peak anon | diskport size | reference size | size diskport/ref | target | diskport allocated | reference allocated | verified by |\n")
	fmt.Fprintf(b, "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---|\n")
	for _, r := range rows {
		sizeTarget := "—"
		ratio := float64(r.size[0]) / float64(r.size[1])
		if r.kind.MaxSize > 0 {
			sizeTarget = fmt.Sprintf("≤%.2f× %s", r.kind.MaxSize, metAtMost(ratio, r.kind.MaxSize))
		}
		fmt.Fprintf(b, "| %s | %s | ≤%s %s | %s | %.1f MiB | %.1f MiB | %.3f× | %s | %s | %s | %s |\n",
			r.kind.Title, mib(r.anon[0]), mib(exportAnonTarget), metAtMost(float64(r.anon[0]), exportAnonTarget), mib(r.anon[1]),
			float64(r.size[0])/(1<<20), float64(r.size[1])/(1<<20), ratio, sizeTarget, mib(r.alloc[0]), mib(r.alloc[1]), r.checked[0])
	}
	fmt.Fprintf(b, "\n#### Export runs (wall seconds, round by round, diskport/reference)\n\n")
	for _, r := range rows {
		fmt.Fprintf(b, "- %s (%s):", r.kind.Title, strings.Join(r.tools, " / "))
		for i := range r.times[0] {
			var cells []string
			for _, t := range r.times {
				if i < len(t) {
					cells = append(cells, fmt.Sprintf("%.2f", t[i].Wall.Seconds()))
				}
			}
			fmt.Fprintf(b, " %s", strings.Join(cells, "/"))
		}
		fmt.Fprintf(b, "\n")
	}
}

// metAtMost says whether value stays within limit.
func metAtMost(value, limit float64) string {
	if value > limit {
		return "**missed**"
	}
	return "met"
}
