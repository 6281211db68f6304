// Command compare times `diskport convert` against `qemu-img convert -O
// raw` on the same images, in the same run.
//
// It builds a deterministic golden raw disk (internal/testimg: random
// data, compressible text, zero runs, about a quarter zero), has qemu-img
// make an image of it in each format (RAW, VMDK monolithicSparse,
// streamOptimized, twoGbMaxExtentSparse, monolithicFlat, VHD dynamic and
// fixed), caches them, and builds diskport. For each image it first runs
// both converters once untimed (warming the page cache, sampling anonymous
// memory, and checking that both outputs are byte-identical over the
// virtual size), then times them alternately, several runs each. Before
// every timed run both outputs are deleted and `sync` is run (untimed), so
// freeing and writing back a previous 2 GiB output never lands on the
// next command.
//
// Two modes are compared: fast (`diskport convert --no-sync` against
// qemu-img's default, which does not flush) and durable (`diskport
// convert`, which fdatasyncs, against `qemu-img convert -t writeback`,
// which flushes at the end).
//
// It prints markdown tables (median seconds, the ratio qemu/diskport,
// MiB/s of virtual size, peak memory), and with -out writes them with a
// description of the machine to a file such as bench/RESULTS.md.
//
// Usage:
//
//	go run ./bench/compare [-runs 5] [-size 2147483648] [-formats raw,streamOptimized] [-out bench/RESULTS.md]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

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
	runs    int
	size    int64
	formats string
	out     string
	cache   string
	work    string
	durable bool
	prepare bool
}

func parseFlags() options {
	var o options
	defCache := filepath.Join(os.TempDir(), "diskport-bench")
	if base, err := os.UserCacheDir(); err == nil {
		defCache = filepath.Join(base, "diskport", "bench")
	}
	flag.IntVar(&o.runs, "runs", 5, "timed runs of each command per image and mode")
	flag.Int64Var(&o.size, "size", 2<<30, "size of the golden disk in bytes")
	flag.StringVar(&o.formats, "formats", "all", "comma-separated rows to run: "+formatNames())
	flag.StringVar(&o.out, "out", "", "also write the tables and the machine description to this file")
	flag.StringVar(&o.cache, "cache", defCache, "directory for the golden disk and the images")
	flag.StringVar(&o.work, "work", "", "directory for the outputs (default: a directory in -cache)")
	flag.BoolVar(&o.durable, "durable", true, "also compare the durable mode (diskport without --no-sync against qemu-img -t writeback)")
	flag.BoolVar(&o.prepare, "prepare", false, "only build the golden disk and the images, then exit")
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

// A row is the comparison of both converters on one image in one mode.
type row struct {
	format      format
	virtualSize int64
	times       pair // a: diskport, b: qemu-img
	verify      verification
}

// verification is what the untimed first run found.
type verification struct {
	anonDiskport, anonQemu   int64 // peak anonymous memory
	allocDiskport, allocQemu int64 // bytes allocated by each output
}

func run() error {
	o := parseFlags()
	if o.runs < 1 {
		return fmt.Errorf("-runs must be at least 1")
	}
	rows, err := pickFormats(o.formats)
	if err != nil {
		return err
	}
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		return fmt.Errorf("qemu-img is needed (make deps installs Debian's qemu-utils): %v", err)
	}
	if err := os.MkdirAll(o.cache, 0o755); err != nil {
		return err
	}
	set := &imageSet{cache: o.cache, qemu: qemu, version: firstLine(qemu, "--version"),
		spec: testimg.Spec{Size: o.size, Seed: 1, ZeroPercent: 25}}
	if err := set.buildGolden(); err != nil {
		return err
	}
	if o.prepare {
		for _, f := range rows {
			if _, err := set.image(f); err != nil {
				return err
			}
		}
		logf("images ready in %s", o.cache)
		return nil
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
	diskport := filepath.Join(bin, "diskport")
	logf("building diskport")
	if err := buildDiskport(diskport); err != nil {
		return err
	}

	machine := describeMachine(qemu)
	started := time.Now()
	var fast, durable []row
	for _, f := range rows {
		src, err := set.image(f)
		if err != nil {
			return err
		}
		vsize, err := set.virtualSize(src, f.Qemu)
		if err != nil {
			return err
		}
		dOut, qOut := filepath.Join(work, "diskport.raw"), filepath.Join(work, "qemu.raw")
		dp := func(sync bool) tool {
			return tool{name: "diskport", out: dOut, args: func(src, dst string) []string {
				a := []string{diskport, "convert", "--format", f.Diskport, "--exact-size", "--force"}
				if !sync {
					a = append(a, "--no-sync")
				}
				return append(a, src, dst)
			}}
		}
		qm := func(sync bool) tool {
			return tool{name: "qemu-img", out: qOut, args: func(src, dst string) []string {
				a := []string{qemu, "convert", "-f", f.Qemu, "-O", "raw"}
				if sync {
					a = append(a, "-t", "writeback")
				}
				return append(a, src, dst)
			}}
		}
		logf("%s: %s, virtual size %s", f.Name, src, mib(vsize))
		v, err := verify(dp(false), qm(false), src, vsize)
		if err != nil {
			return fmt.Errorf("%s: %v", f.Name, err)
		}
		logf("%s: outputs identical over %d bytes; peak anonymous memory diskport %s, qemu-img %s",
			f.Name, vsize, mib(v.anonDiskport), mib(v.anonQemu))
		p, err := timePair(dp(false), qm(false), src, o.runs)
		if err != nil {
			return fmt.Errorf("%s: %v", f.Name, err)
		}
		fast = append(fast, row{format: f, virtualSize: vsize, times: p, verify: v})
		if o.durable {
			logf("%s: durable mode", f.Name)
			p, err := timePair(dp(true), qm(true), src, o.runs)
			if err != nil {
				return fmt.Errorf("%s (durable): %v", f.Name, err)
			}
			durable = append(durable, row{format: f, virtualSize: vsize, times: p, verify: v})
		}
	}
	os.Remove(work) // only when empty, that is when compare made it

	rep := report(o, machine, started, fast, durable)
	fmt.Print(rep)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
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

// verify runs both converters once, untimed, sampling their anonymous
// memory, and checks that their outputs are identical over the virtual
// size.
func verify(d, q tool, src string, vsize int64) (verification, error) {
	var v verification
	if err := clean(d.out, q.out); err != nil {
		return v, err
	}
	sd, err := runChild(d.args(src, d.out), true)
	if err != nil {
		return v, err
	}
	sq, err := runChild(q.args(src, q.out), true)
	if err != nil {
		return v, err
	}
	v.anonDiskport, v.anonQemu = sd.PeakAnon, sq.PeakAnon
	v.allocDiskport, v.allocQemu = allocated(d.out), allocated(q.out)
	if err := sameBytes(d.out, q.out, vsize); err != nil {
		return v, err
	}
	return v, clean(d.out, q.out)
}

// logf prints progress to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// mib formats a byte count in MiB.
func mib(n int64) string {
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}
