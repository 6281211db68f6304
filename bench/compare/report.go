//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine describes where the numbers were taken.
type machine struct {
	cpus, cpuModel, memory, kernel, goVersion, qemuVersion, nbdcopy, diskport, loadBefore string
}

// firstLine runs a command and returns the first line of its output ("?"
// when it fails).
func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// procField returns the value of the first "key: value" line of a /proc
// file whose key is key.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func describeMachine(qemu, diskport string) machine {
	return machine{
		cpus:        firstLine("nproc"),
		cpuModel:    procField("/proc/cpuinfo", "model name"),
		memory:      procField("/proc/meminfo", "MemTotal"),
		kernel:      firstLine("uname", "-sr"),
		goVersion:   runtime.Version(),
		qemuVersion: firstLine(qemu, "--version"),
		nbdcopy:     firstLine("nbdcopy", "--version"),
		diskport:    firstLine(diskport, "version"),
		loadBefore:  loadAverage(),
	}
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// busy reports whether the 1-minute load in a loadAverage string exceeds
// the number of CPUs.
func busy(load, cpus string) bool {
	var l1 float64
	var n int
	if _, err := fmt.Sscan(load, &l1); err != nil {
		return false
	}
	if _, err := fmt.Sscan(cpus, &n); err != nil || n == 0 {
		return false
	}
	return l1 > float64(n)
}

// report renders the tables and the machine description as markdown.
func report(o options, m machine, started time.Time, results []corpus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# diskport convert vs qemu-img convert\n\n")
	fmt.Fprintf(&b, "Made by `go run ./bench/compare %s` on %s (%s).\n",
		strings.Join(os.Args[1:], " "), started.UTC().Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Second))
	fmt.Fprintf(&b, "Every tool runs %d times per image and mode, in rounds whose order rotates as a Latin square (round r runs the base order 0, 1, n-1, 2, n-2, ... "+
		"with every tool advanced by r mod n), so over n rounds each tool runs once in each position and once right after each other tool; "+
		"before every timed run all outputs are deleted and `sync` is run (untimed). ", o.runs)
	fmt.Fprintf(&b, "Wall is the median; *geo* is the geometric mean over rounds of the pairwise ratio other/diskport, which cancels the favour the first run of a pair often gets. "+
		"CPU is user + system seconds and *minflt* the minor page faults, both from the children's rusage (median). ")
	fmt.Fprintf(&b, "Before timing, one untimed run of each tool checks that its output is byte-identical to diskport's over the virtual size (cmp) and warms the page cache.\n\n")

	fmt.Fprintf(&b, "## Machine\n\n")
	fmt.Fprintf(&b, "- CPUs: %s × %s\n", m.cpus, m.cpuModel)
	fmt.Fprintf(&b, "- Memory: %s\n", m.memory)
	fmt.Fprintf(&b, "- Kernel: %s\n", m.kernel)
	fmt.Fprintf(&b, "- Go: %s; %s; %s\n", m.goVersion, m.diskport, m.qemuVersion)
	if o.anchors {
		fmt.Fprintf(&b, "- %s\n", m.nbdcopy)
	}
	after := loadAverage()
	fmt.Fprintf(&b, "- Load average before the run: %s; after: %s (1, 5, 15 min)\n\n", m.loadBefore, after)
	if busy(m.loadBefore, m.cpus) || busy(after, m.cpus) {
		fmt.Fprintf(&b, "**Taken under load**: the load average was above the %s CPUs, so other work shared the machine. "+
			"Wall times are stretched and noisy; the CPU-seconds columns (user + system time of each child) are the steadier comparison.\n\n", m.cpus)
	}

	for _, c := range results {
		title := map[string]string{"real": "Real-content disk (headline)", "golden": "Synthetic golden disk"}[c.label]
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", title, c.describe)
		if len(c.fast) > 0 {
			fmt.Fprintf(&b, "### Fast: `diskport convert --no-sync --exact-size` vs `qemu-img convert -O raw`\n\n")
			table(&b, c.fast, c.label)
		}
		if o.anchors && len(c.fast) > 0 && len(c.fast[0].tools) > 2 {
			fmt.Fprintf(&b, "\n#### Anchors (same rounds): `qemu-img convert -m 16 -W -O raw` and `qemu-nbd --read-only --persistent --shared=0 --socket=S` + `nbdcopy nbd+unix:///?socket=S out.raw`\n\n")
			anchorTable(&b, c.fast)
		}
		if o.baseline != "" && len(c.fast) > 0 && len(c.fast[0].tools) > 2 {
			fmt.Fprintf(&b, "\n#### Baseline (same rounds): `%s` (-baseline), the same command\n\n", o.baseline)
			baselineTable(&b, c.fast)
		}
		if len(c.durable) > 0 {
			fmt.Fprintf(&b, "\n### Durable: `diskport convert --exact-size` (fdatasync) vs `qemu-img convert -t writeback -O raw` (flush)\n\n")
			table(&b, c.durable, "")
		}
		memoryTable(&b, c.fast)
		if len(c.ova) > 0 {
			fmt.Fprintf(&b, "\n### OVA: `diskport convert --no-sync --exact-size appliance.ova` vs the same on the bare streamOptimized image\n\n")
			fmt.Fprintf(&b, "The OVA is laid out as ovftool writes one (descriptor, `.mf` with SHA-256, the disk); its disk is read in place and the member's SHA-256 checked as it is read. Target: within 5%% of the bare image's time.\n\n")
			ovaTable(&b, c.ova)
		}
		exportSection(&b, c.export)
		if len(c.fast)+len(c.durable)+len(c.ova) > 0 {
			fmt.Fprintf(&b, "\n### All runs (wall seconds, round by round)\n\n")
		}
		for _, rows := range [][]row{c.fast, c.durable, c.ova} {
			for _, r := range rows {
				fmt.Fprintf(&b, "- %s (%s):", r.format.Name, strings.Join(r.tools, " / "))
				for i := range r.times[0] {
					var cells []string
					for _, t := range r.times {
						if i < len(t) {
							cells = append(cells, fmt.Sprintf("%.2f", t[i].Wall.Seconds()))
						}
					}
					fmt.Fprintf(&b, " %s", strings.Join(cells, "/"))
				}
				fmt.Fprintf(&b, "\n")
			}
		}
		fmt.Fprintf(&b, "\n")
	}
	return b.String()
}

// table writes one mode's rows, diskport against the second tool; target
// picks the speed-up asked for ("real" or "golden": the format's target
// on that disk; "": no slower than qemu-img).
func table(b *strings.Builder, rows []row, target string) {
	fmt.Fprintf(b, "| format | diskport s | qemu-img s | qemu/diskport geo | median ratio | target | diskport CPU s | qemu-img CPU s | CPU qemu/diskport | diskport minflt | qemu-img minflt | diskport MiB/s | diskport peak RSS | qemu-img peak RSS |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		d, q := r.times[0], r.times[1]
		f := pairOf(r)
		dw, qw, geo := f.wall[0], f.wall[1], f.geo
		want := 1.0
		switch target {
		case "real":
			want = r.format.RealTarget
		case "golden":
			want = r.format.Target
		}
		dc, qc := f.cpu[0], f.cpu[1]
		fmt.Fprintf(b, "| %s | %.2f | %.2f | %.2f× | %.2f× | ≥%.1f× %s | %.2f | %.2f | %.2f× | %s | %s | %.0f | %s | %s |\n",
			r.format.Name, dw, qw, geo, qw/dw, want, met(geo, want), dc, qc, qc/dc, faults(medianFaults(d)), faults(medianFaults(q)),
			float64(r.virtualSize)/(1<<20)/dw, mib(maxRSS(d)), mib(maxRSS(q)))
	}
}

// pair is the figures of a row's first two tools: median wall and CPU
// seconds, and the geometric mean of the pairwise wall ratios
// second/first.
type pair struct {
	wall, cpu [2]float64
	geo       float64
}

func pairOf(r row) pair {
	d, q := r.times[0], r.times[1]
	return pair{wall: [2]float64{median(d, wall).Seconds(), median(q, wall).Seconds()},
		cpu: [2]float64{median(d, cpu).Seconds(), median(q, cpu).Seconds()}, geo: geomeanRatio(d, q, wall)}
}

// anchorTable writes the anchors of the fast rows against diskport, with
// each row's target.
func anchorTable(b *strings.Builder, rows []row) {
	fmt.Fprintf(b, "| format | diskport s | qemu-img -m 16 -W s | geo | CPU s | minflt | qemu-nbd+nbdcopy s | geo | CPU s | minflt | target |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		d, w, n := r.times[0], r.times[2], r.times[3]
		gw, gn := geomeanRatio(d, w, wall), geomeanRatio(d, n, wall)
		fmt.Fprintf(b, "| %s | %.2f | %.2f | %.2f× | %.2f | %s | %.2f | %.2f× | %.2f | %s | ≥1.2× %s |\n", r.format.Name,
			median(d, wall).Seconds(), median(w, wall).Seconds(), gw, median(w, cpu).Seconds(), faults(medianFaults(w)),
			median(n, wall).Seconds(), gn, median(n, cpu).Seconds(), faults(medianFaults(n)), met(min(gw, gn), 1.2))
	}
}

// baselineTable writes the -baseline binary of the fast rows against
// diskport and against qemu-img.
func baselineTable(b *strings.Builder, rows []row) {
	fmt.Fprintf(b, "| format | diskport s | baseline s | baseline/diskport geo | qemu/baseline geo | diskport CPU s | baseline CPU s | CPU baseline/diskport | diskport minflt | baseline minflt |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		d, q, base := r.times[0], r.times[1], r.times[2]
		dc, bc := median(d, cpu).Seconds(), median(base, cpu).Seconds()
		fmt.Fprintf(b, "| %s | %.2f | %.2f | %.2f× | %.2f× | %.2f | %.2f | %.2f× | %s | %s |\n", r.format.Name,
			median(d, wall).Seconds(), median(base, wall).Seconds(), geomeanRatio(d, base, wall), geomeanRatio(base, q, wall),
			dc, bc, bc/dc, faults(medianFaults(d)), faults(medianFaults(base)))
	}
}

// memoryTable writes what the untimed verification runs found.
func memoryTable(b *strings.Builder, rows []row) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### Memory and output (untimed verification run)\n\n")
	fmt.Fprintf(b, "Peak RSS above includes the file-backed pages of a memory-mapped source; peak anonymous memory is RssAnon sampled from /proc every 5 ms (both processes of the nbd pipeline summed). Every output is identical to diskport's.\n\n")
	fmt.Fprintf(b, "| format | virtual size |")
	for _, t := range rows[0].tools {
		fmt.Fprintf(b, " anon %s |", t)
	}
	for _, t := range rows[0].tools {
		fmt.Fprintf(b, " allocated %s |", t)
	}
	fmt.Fprintf(b, "\n|---|---:|%s\n", strings.Repeat("---:|", 2*len(rows[0].tools)))
	for _, r := range rows {
		fmt.Fprintf(b, "| %s | %d |", r.format.Name, r.virtualSize)
		for _, n := range r.verify.anon {
			fmt.Fprintf(b, " %s |", mib(n))
		}
		for _, n := range r.verify.alloc {
			fmt.Fprintf(b, " %s |", mib(n))
		}
		fmt.Fprintf(b, "\n")
	}
}

// met says whether ratio reaches want.
func met(ratio, want float64) string {
	if ratio < want {
		return "**missed**"
	}
	return "met"
}
