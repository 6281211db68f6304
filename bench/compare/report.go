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
	cpus, cpuModel, memory, kernel, goVersion, qemuVersion, loadBefore string
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

func describeMachine(qemu string) machine {
	return machine{
		cpus:        firstLine("nproc"),
		cpuModel:    procField("/proc/cpuinfo", "model name"),
		memory:      procField("/proc/meminfo", "MemTotal"),
		kernel:      firstLine("uname", "-sr"),
		goVersion:   runtime.Version(),
		qemuVersion: firstLine(qemu, "--version"),
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
func report(o options, m machine, started time.Time, fast, durable []row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# diskport convert vs qemu-img convert\n\n")
	fmt.Fprintf(&b, "Made by `go run ./bench/compare -runs %d -size %d` on %s (%s).\n",
		o.runs, o.size, started.UTC().Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Second))
	fmt.Fprintf(&b, "Golden disk: `testimg.Spec{Size: %d, Seed: 1, ZeroPercent: 25}` (random data, compressible text, zero runs and zero sectors); each image made from it by qemu-img.\n", o.size)
	fmt.Fprintf(&b, "Each cell is the median of %d runs; the two commands alternate which goes first, and before every timed run both outputs are deleted and `sync` is run (untimed). ", o.runs)
	fmt.Fprintf(&b, "Before timing, one untimed run of each checks that the outputs are byte-identical over the virtual size (cmp) and warms the page cache.\n\n")

	fmt.Fprintf(&b, "## Machine\n\n")
	fmt.Fprintf(&b, "- CPUs: %s × %s\n", m.cpus, m.cpuModel)
	fmt.Fprintf(&b, "- Memory: %s\n", m.memory)
	fmt.Fprintf(&b, "- Kernel: %s\n", m.kernel)
	fmt.Fprintf(&b, "- Go: %s; %s\n", m.goVersion, m.qemuVersion)
	after := loadAverage()
	fmt.Fprintf(&b, "- Load average before the run: %s; after: %s (1, 5, 15 min)\n\n", m.loadBefore, after)
	if busy(m.loadBefore, m.cpus) || busy(after, m.cpus) {
		fmt.Fprintf(&b, "**Taken under load**: the load average was above the %s CPUs, so other work shared the machine. "+
			"Wall times are stretched and noisy; the CPU-seconds columns (user + system time of each child) are the steadier comparison.\n\n", m.cpus)
	}

	fmt.Fprintf(&b, "## Fast: `diskport convert --no-sync --exact-size` vs `qemu-img convert -O raw`\n\n")
	table(&b, fast, 1)
	if len(durable) > 0 {
		fmt.Fprintf(&b, "\n## Durable: `diskport convert --exact-size` (fdatasync) vs `qemu-img convert -t writeback -O raw` (flush)\n\n")
		table(&b, durable, 0)
	}

	fmt.Fprintf(&b, "\n## Memory and output (untimed verification run)\n\n")
	fmt.Fprintf(&b, "Peak RSS above includes the file-backed pages of a memory-mapped source; peak anonymous memory is RssAnon sampled from /proc every 5 ms.\n\n")
	fmt.Fprintf(&b, "| format | virtual size | identical | anon diskport | anon qemu-img | allocated diskport | allocated qemu-img |\n")
	fmt.Fprintf(&b, "|---|---:|---|---:|---:|---:|---:|\n")
	for _, r := range fast {
		v := r.verify
		fmt.Fprintf(&b, "| %s | %d | yes | %s | %s | %s | %s |\n", r.format.Name, r.virtualSize,
			mib(v.anonDiskport), mib(v.anonQemu), mib(v.allocDiskport), mib(v.allocQemu))
	}

	fmt.Fprintf(&b, "\n## All runs (seconds, diskport / qemu-img)\n\n")
	runs := func(mode string, rows []row) {
		for _, r := range rows {
			fmt.Fprintf(&b, "- %s %s:", mode, r.format.Name)
			for i := range r.times.a {
				fmt.Fprintf(&b, " %.2f/%.2f", r.times.a[i].Wall.Seconds(), r.times.b[i].Wall.Seconds())
			}
			fmt.Fprintf(&b, "\n")
		}
	}
	runs("fast", fast)
	runs("durable", durable)
	return b.String()
}

// table writes one mode's rows; target picks the speed-up asked for
// (1: the format's target; 0: no slower than qemu-img).
func table(b *strings.Builder, rows []row, target int) {
	fmt.Fprintf(b, "| format | diskport s | qemu-img s | qemu/diskport | target | diskport MiB/s | qemu-img MiB/s | diskport peak RSS | qemu-img peak RSS | diskport CPU s | qemu-img CPU s |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		d, q := median(r.times.a, wall).Seconds(), median(r.times.b, wall).Seconds()
		ratio := q / d
		want := 1.0
		if target == 1 {
			want = r.format.Target
		}
		met := "met"
		if ratio < want {
			met = "**missed**"
		}
		rate := func(s float64) float64 { return float64(r.virtualSize) / (1 << 20) / s }
		fmt.Fprintf(b, "| %s | %.2f | %.2f | %.2f× | ≥%.1f× %s | %.0f | %.0f | %s | %s | %.2f | %.2f |\n",
			r.format.Name, d, q, ratio, want, met, rate(d), rate(q),
			mib(maxRSS(r.times.a)), mib(maxRSS(r.times.b)),
			median(r.times.a, cpu).Seconds(), median(r.times.b, cpu).Seconds())
	}
}
