//go:build linux

// Command compare times `diskport convert` against `qemu-img convert -O
// raw` on the same images, in the same run, with two more anchors.
//
// Its headline is a real-content disk (bench/realdisk: a 3 GiB ext4
// filesystem made by mke2fs -d from 1.4 GB of real files: the Go
// toolchain, shared libraries, docs, /usr/bin), the kind of bytes a VM
// import carries. The second table is the synthetic golden disk
// (internal/testimg: random data, compressible text, zero runs, about a
// quarter zero), which flatters a converter: its random cells deflate to
// stored blocks and its text to long matches. From each raw disk qemu-img
// makes an image in each format (RAW, VMDK monolithicSparse,
// streamOptimized, twoGbMaxExtentSparse, monolithicFlat, VHD and VHDX
// dynamic and fixed); all are cached, and diskport is built. The ova row
// wraps the streamOptimized image in an OVA laid out as ovftool writes
// one and times diskport on it against diskport on the bare image (its target,
// and what bounds it, are in bench/BOUNDS.md).
//
// For each image every tool first runs once untimed (warming the page
// cache, sampling anonymous memory, and checking that every output is
// byte-identical to diskport's over the virtual size). Then the tools run
// in rounds whose order rotates as a Latin square: round r runs the tools
// of a base order 0, 1, n-1, 2, n-2, ... each advanced by r (mod n), so
// over n rounds each tool runs once in each position, and (for an even n;
// for an odd n over 2n rounds, the second n mirrored) directly after each
// other tool once. With two tools the rounds alternate; give -runs a
// multiple of the tool count (4 with the anchors) for a balanced
// schedule. So no tool is favoured by running first or by running after
// another tool's large output. Before every timed run all outputs are
// deleted and `sync` is run (untimed). Each cell reports the median wall
// time and the geometric mean over rounds of the pairwise ratio
// other/diskport, which cancels the favour the first run of a pair often
// gets on a VM, the CPU seconds (user + system) and the minor page faults
// of each tool (both from the children's rusage).
//
// Export rows (-export) time diskport writing an image from the raw disk
// against qemu-img writing the same layout, in the fast mode: `-O vmdk`
// (streamOptimized) against `qemu-img convert -f raw -O vmdk -o
// subformat=streamOptimized`, `-O vmdk --subformat monolithicSparse`
// against subformat=monolithicSparse, `-O vhd` and `-O vhd --subformat
// fixed` against `-O vpc -o subformat=dynamic|fixed,force_size=on`; and
// `-O ova` against diskport's own `-O vmdk` (the stream the OVA holds).
// The untimed first run samples peak anonymous memory and the output
// sizes, and checks every output against the raw disk: `qemu-img compare
// -f vmdk|vpc -F raw`, or for the OVA a conversion back to raw by diskport
// compared with cmp. The targets are speed-ups over qemu-img by the
// geometric mean, the OVA's time as a multiple of the stream's, diskport's
// peak anonymous memory and its streamOptimized output's size as a
// multiple of qemu-img's (see exportKinds).
//
// Fast mode: `diskport convert --no-sync` against qemu-img's default
// (which does not flush) and the anchors `qemu-img convert -m 16 -W` (its
// fastest) and qemu-nbd --read-only + nbdcopy (virt-v2v's pipeline).
// Durable mode: `diskport convert` (fdatasync) against `qemu-img convert
// -t writeback` (which flushes at the end).
//
// -baseline BIN times a second diskport binary (say one built from the
// main branch, or from before a change) in the fast rounds as one more
// tool, so a change is measured against what it replaces in the same run,
// under the same load; it needs -anchors=false.
//
// It prints markdown tables and with -out writes them with a description
// of the machine to a file such as bench/RESULTS.md (bench/BOUNDS.md,
// kept by hand, says what bounds the targets that file misses).
//
// Usage:
//
//	go run ./bench/compare [-runs 5] [-real-size 3221225472] [-real-files 1468006400]
//	    [-size 2147483648] [-disks real,golden] [-formats raw,streamOptimized|none]
//	    [-export stream,sparse,vhd,vhdfixed,ova|all] [-anchors=true] [-durable=true]
//	    [-baseline ./diskport-before] [-out bench/RESULTS.md]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskport/diskport/bench/realdisk"
	"github.com/diskport/diskport/internal/testimg"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	runs                int
	size                int64
	realSize, realFiles int64
	disks               string
	formats             string
	export              string
	out                 string
	cache               string
	work                string
	durable             bool
	anchors             bool
	baseline            string
	prepare             bool
}

func parseFlags() options {
	var o options
	defCache := filepath.Join(os.TempDir(), "diskport-bench")
	if base, err := os.UserCacheDir(); err == nil {
		defCache = filepath.Join(base, "diskport", "bench")
	}
	flag.IntVar(&o.runs, "runs", 5, "timed rounds of every tool per image and mode")
	flag.Int64Var(&o.size, "size", 2<<30, "size of the synthetic golden disk in bytes")
	flag.Int64Var(&o.realSize, "real-size", realdisk.Default.Size, "size of the real-content ext4 disk in bytes")
	flag.Int64Var(&o.realFiles, "real-files", realdisk.Default.Files, "bytes of real files copied into the real-content disk, at most")
	flag.StringVar(&o.disks, "disks", "real,golden", "comma-separated raw disks to make the images from: real (the real-content ext4 disk), golden (the synthetic one)")
	flag.StringVar(&o.formats, "formats", "all", "comma-separated rows to run: "+formatNames()+"; none")
	flag.StringVar(&o.export, "export", "none", "comma-separated export rows to run (diskport writing an image from the raw disk): "+exportNames()+"; all; none")
	flag.StringVar(&o.out, "out", "", "also write the tables and the machine description to this file")
	flag.StringVar(&o.cache, "cache", defCache, "directory for the raw disks and the images")
	flag.StringVar(&o.work, "work", "", "directory for the outputs (default: a directory in -cache)")
	flag.BoolVar(&o.durable, "durable", true, "also compare the durable mode (diskport without --no-sync against qemu-img -t writeback)")
	flag.BoolVar(&o.anchors, "anchors", true, "in the fast mode also time qemu-img -m 16 -W and qemu-nbd + nbdcopy")
	flag.StringVar(&o.baseline, "baseline", "", "also time this diskport binary in the fast mode, in the same rounds (needs -anchors=false)")
	flag.BoolVar(&o.prepare, "prepare", false, "only build the raw disks and the images, then exit")
	flag.Parse()
	return o
}

func formatNames() string {
	var names []string
	for _, f := range formats {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// A row is the comparison of the tools on one image in one mode.
type row struct {
	format      format
	virtualSize int64
	tools       []string   // tools[0] is diskport, tools[1] qemu-img
	times       [][]sample // by tool, then by round
	verify      verification
}

// verification is what the untimed first run found.
type verification struct {
	anon, alloc []int64 // per tool: peak anonymous memory, bytes allocated by the output
}

// A corpus is the rows of one raw disk.
type corpus struct {
	label         string // "real" or "golden"
	describe      string // markdown: what the disk is
	fast, durable []row
	ova           []row // diskport on the OVA against diskport on the bare image
	export        []exportRow
}

// programs are the paths of the commands compare runs.
type programs struct {
	diskport, qemu, qemuNbd, nbdcopy string
}

func run() error {
	o := parseFlags()
	if o.runs < 1 {
		return fmt.Errorf("-runs must be at least 1")
	}
	if o.baseline != "" && o.anchors {
		return fmt.Errorf("-baseline needs -anchors=false (the baseline takes the anchors' place in the rounds)")
	}
	rows, err := pickFormats(o.formats)
	if err != nil {
		return err
	}
	exports, err := pickExports(o.export)
	if err != nil {
		return err
	}
	p, err := findPrograms(o.anchors)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.cache, 0o755); err != nil {
		return err
	}
	disks, err := makeDisks(o, p.qemu)
	if err != nil {
		return err
	}
	if o.prepare {
		return prepare(o.cache, disks, rows)
	}
	work := o.work
	if work == "" {
		work = filepath.Join(o.cache, "out")
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "diskport-bench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	p.diskport = filepath.Join(bin, "diskport")
	logf("building diskport")
	if err := buildDiskport(p.diskport); err != nil {
		return err
	}

	machine := describeMachine(p.qemu, p.diskport)
	started := time.Now()
	results, err := compareAll(o, p, disks, rows, exports, work)
	if err != nil {
		return err
	}
	os.Remove(work) // only when empty, that is when compare made it

	rep := report(o, machine, started, results)
	fmt.Print(rep)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// findPrograms finds qemu-img and, for the anchors, qemu-nbd and nbdcopy
// (diskport is built later).
func findPrograms(anchors bool) (programs, error) {
	var p programs
	var err error
	if p.qemu, err = exec.LookPath("qemu-img"); err != nil {
		return p, fmt.Errorf("qemu-img is needed (make deps installs Debian's qemu-utils): %v", err)
	}
	if anchors {
		if p.qemuNbd, err = exec.LookPath("qemu-nbd"); err != nil {
			return p, fmt.Errorf("qemu-nbd is needed for the anchors (Debian's qemu-utils; or -anchors=false): %v", err)
		}
		if p.nbdcopy, err = exec.LookPath("nbdcopy"); err != nil {
			return p, fmt.Errorf("nbdcopy is needed for the anchors (make deps installs Debian's libnbd-bin; or -anchors=false): %v", err)
		}
	}
	return p, nil
}

// A benchDisk is one disk of -disks: its images, and its description for
// the report.
type benchDisk struct {
	set      *imageSet
	describe string
}

// makeDisks builds (or finds in the cache) the raw disks -disks names.
func makeDisks(o options, qemu string) ([]benchDisk, error) {
	version := firstLine(qemu, "--version")
	var disks []benchDisk
	for _, name := range strings.Split(o.disks, ",") {
		switch strings.TrimSpace(name) {
		case "real":
			info, err := realdisk.Build(o.cache, realdisk.Spec{Size: o.realSize, Files: o.realFiles}, logf)
			if err != nil {
				return nil, err
			}
			disks = append(disks, benchDisk{realSet(o.cache, qemu, version, info), describeReal(info)})
		case "golden":
			spec := testimg.Spec{Size: o.size, Seed: 1, ZeroPercent: 25}
			set, err := goldenSet(o.cache, qemu, version, spec)
			if err != nil {
				return nil, err
			}
			disks = append(disks, benchDisk{set, fmt.Sprintf("Golden disk: `testimg.Spec{Size: %d, Seed: 1, ZeroPercent: 25}` "+
				"(random data, compressible text, zero runs and zero sectors); each image made from it by qemu-img.", o.size)})
		default:
			return nil, fmt.Errorf("unknown disk %q in -disks (known: real, golden)", name)
		}
	}
	return disks, nil
}

// prepare makes every image of every row from each disk, and times
// nothing (-prepare).
func prepare(cache string, disks []benchDisk, rows []format) error {
	for _, d := range disks {
		for _, f := range rows {
			var err error
			if f.OVA {
				_, _, err = d.set.appliance()
			} else {
				_, err = d.set.image(f)
			}
			if err != nil {
				return err
			}
		}
	}
	logf("images ready in %s", cache)
	return nil
}

// compareAll times every row on every disk.
func compareAll(o options, p programs, disks []benchDisk, rows []format, exports []exportKind, work string) ([]corpus, error) {
	var results []corpus
	for _, d := range disks {
		c := corpus{label: d.set.label, describe: d.describe}
		for _, f := range rows {
			if f.OVA {
				r, err := compareOVA(o, p, d.set, f, work)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %v", d.set.label, f.Name, err)
				}
				c.ova = append(c.ova, r)
				continue
			}
			fast, durable, err := compareImage(o, p, d.set, f, work)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %v", d.set.label, f.Name, err)
			}
			c.fast = append(c.fast, fast)
			if o.durable {
				c.durable = append(c.durable, durable)
			}
		}
		var err error
		if c.export, err = compareExports(o, p, d.set, exports, work); err != nil {
			return nil, err
		}
		results = append(results, c)
	}
	return results, nil
}

// compareImage verifies and times the tools on f's image of set.
func compareImage(o options, p programs, set *imageSet, f format, work string) (fast, durable row, err error) {
	src, err := set.image(f)
	if err != nil {
		return fast, durable, err
	}
	vsize, err := set.virtualSize(src, f.Qemu)
	if err != nil {
		return fast, durable, err
	}
	dp := func(sync bool) tool { return diskportTool("diskport", p.diskport, f, work, sync) }
	qm := func(name string, extra ...string) tool {
		return command(name, outPath(work, name), func(src, dst string) []string {
			a := append([]string{p.qemu, "convert", "-f", f.Qemu, "-O", "raw"}, extra...)
			return append(a, src, dst)
		})
	}
	tools := []tool{dp(false), qm("qemu-img")}
	if o.baseline != "" {
		tools = append(tools, diskportTool(baselineName, o.baseline, f, work, false))
	}
	if o.anchors {
		tools = append(tools, qm("qemu-img -m 16 -W", "-m", "16", "-W"),
			nbdPipeline(p.qemuNbd, p.nbdcopy, f.Qemu, filepath.Join(work, "nbd.sock"), outPath(work, "qemu-nbd+nbdcopy")))
	}
	logf("%s %s: %s, virtual size %s", set.label, f.Name, src, mib(vsize))
	v, err := verify(tools, src, vsize)
	if err != nil {
		return fast, durable, err
	}
	for i, t := range tools {
		logf("  %-18s peak anonymous memory %s, allocated %s", t.name, mib(v.anon[i]), mib(v.alloc[i]))
	}
	names := func(ts []tool) []string {
		var n []string
		for _, t := range ts {
			n = append(n, t.name)
		}
		return n
	}
	times, err := measure(tools, src, o.runs)
	if err != nil {
		return fast, durable, err
	}
	fast = row{format: f, virtualSize: vsize, tools: names(tools), times: times, verify: v}
	if o.durable {
		logf("%s %s: durable mode", set.label, f.Name)
		tools := []tool{dp(true), qm("qemu-img -t writeback", "-t", "writeback")}
		times, err := measure(tools, src, o.runs)
		if err != nil {
			return fast, durable, fmt.Errorf("durable: %v", err)
		}
		durable = row{format: f, virtualSize: vsize, tools: names(tools), times: times, verify: v}
	}
	return fast, durable, nil
}

// baselineName is the -baseline binary's name in the tables.
const baselineName = "diskport baseline"

// diskportTool is `bin convert` of f's image, without --no-sync when sync.
func diskportTool(name, bin string, f format, work string, sync bool) tool {
	return command(name, outPath(work, name), func(src, dst string) []string {
		a := []string{bin, "convert", "--format", f.Diskport, "--exact-size", "--force"}
		if !sync {
			a = append(a, "--no-sync")
		}
		return append(a, src, dst)
	})
}

// buildDiskport builds cmd/diskport of the module compare runs in into
// path.
func buildDiskport(path string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	build := exec.Command("go", "build", "-o", path, "./cmd/diskport")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/diskport in %s: %v", root, err)
	}
	return nil
}

// verify runs every tool once, untimed, sampling their anonymous memory,
// and checks that each output is identical to the first tool's over the
// virtual size.
func verify(tools []tool, src string, vsize int64) (verification, error) {
	var v verification
	var outs []string
	for _, t := range tools {
		outs = append(outs, t.out)
	}
	if err := clean(outs...); err != nil {
		return v, err
	}
	for i, t := range tools {
		s, err := t.run(src, true)
		if err != nil {
			return v, err
		}
		v.anon = append(v.anon, s.PeakAnon)
		v.alloc = append(v.alloc, allocated(t.out))
		if i == 0 {
			continue
		}
		if err := sameBytes(tools[0].out, t.out, vsize); err != nil {
			return v, fmt.Errorf("%s against %s: %v", tools[0].name, t.name, err)
		}
		if err := os.Remove(t.out); err != nil {
			return v, err
		}
	}
	return v, clean(outs...)
}

// describeReal says in markdown what the real-content disk is.
func describeReal(info realdisk.Info) string {
	return fmt.Sprintf("Real-content disk: a %s ext4 filesystem holding %d files (%d MB), the first of %s in sorted order, "+
		"made by `%s` (bench/realdisk; key %s); each image made from it by qemu-img.",
		mib(info.Size), info.Files, info.Bytes/1e6, strings.Join(info.Roots, ", "), info.Mke2fs, info.Key)
}

// logf prints progress to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// mib formats a byte count in MiB.
func mib(n int64) string {
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}
