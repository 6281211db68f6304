//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/diskport/diskport/bench/realdisk"
)

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// Targets.
const (
	ratioTarget = 1.3
	p99Target   = 100 * time.Millisecond
)

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// report renders the markdown section.
func report(b *bench, info realdisk.Info, rows []pairRow, lat *latencyResult, loadBefore, loadAfter string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "## Modern API: ImportSnapshot and ExportImage vs `diskport convert`\n\n")
	env := ""
	if len(b.o.serveEnv) > 0 {
		env = " -serve-env " + strings.Join(b.o.serveEnv, ",")
	}
	fmt.Fprintf(&s, "`go run ./bench/modern -runs %d -real-size %d -real-files %d -pairs=%v -exports=%v -latency=%v -workers %d%s` (%s, %s, %d CPUs, %s).\n\n",
		b.o.runs, b.o.realSize, b.o.realFiles, b.o.pairs, b.o.exports, b.o.latency, b.o.workers, env, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.Version(), runtime.NumCPU(), firstLine("uname", "-sr"))
	fmt.Fprintf(&s, "Disk: the real-content ext4 disk (bench/realdisk, %d MiB, %d files, %d MB), as qemu-img's streamOptimized VMDK (%d MiB) in MinIO. "+
		"Server: `diskport serve` (SQLite, --workers %d) on the same machine as MinIO; the client is aws-sdk-go-v2 polling every %v. "+
		"Import: ImportSnapshot (UserBucket, Format VMDK) until DescribeImportSnapshotTasks says completed, against `diskport convert --manifest M out.raw`, "+
		"M a one-part manifest whose GetURL is a presigned URL of the same object (convert reads an object over HTTP only through a manifest). "+
		"Export: ExportImage (VMDK, of an image RegisterImage made over the snapshot) to MinIO until DescribeExportImageTasks says completed, against "+
		"`diskport convert -O vmdk --subformat streamOptimized SNAPSHOT.raw out.vmdk`. Both sides durable. Pairs alternate which runs first; outputs removed and `sync` before each run; "+
		"one untimed run of each first. CPU: the serve process's user+system (polling included), convert's rusage; MinIO's in neither.\n\n",
		info.Size>>20, info.Files, info.Bytes/1e6, b.size>>20, b.o.workers, pollEvery)
	fmt.Fprintf(&s, "Load average (1, 5, 15 min) before: %s; after: %s, on %d CPUs shared with other sessions (a `make test` ran at the same time): wall times are stretched and noisy, the pairwise ratio is what counts.\n\n",
		loadBefore, loadAfter, runtime.NumCPU())
	s.WriteString("| | server median s | convert median s | geomean server/convert | target | server CPU s | convert CPU s |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		g := geomeanRatio(r)
		fmt.Fprintf(&s, "| %s | %.2f | %.2f | %.3f× | ≤%.1f× %s | %.2f | %.2f |\n", r.name, median(r.server, false).Seconds(), median(r.convert, false).Seconds(),
			g, ratioTarget, verdict(g <= ratioTarget), median(r.server, true).Seconds(), median(r.convert, true).Seconds())
	}
	s.WriteString("\nAll rounds (wall seconds, server/convert; the first of a pair alternates, server first in round 1):\n\n")
	for _, r := range rows {
		var runs []string
		for i := range r.server {
			runs = append(runs, fmt.Sprintf("%.2f/%.2f", r.server[i].wall.Seconds(), r.convert[i].wall.Seconds()))
		}
		fmt.Fprintf(&s, "- %s: %s (status messages seen: %s)\n", r.name, strings.Join(runs, " "), strings.Join(r.steps, " → "))
	}
	if lat != nil {
		fmt.Fprintf(&s, "\n### API latency while %d ImportSnapshot and %d ExportImage tasks run\n\n", lat.imports, lat.exports)
		fmt.Fprintf(&s, "The %d tasks were started at once and took %.1f s; meanwhile two clients called the actions below back to back (%d calls), "+
			"besides the six pollers of the tasks. Target: p99 < %v over all calls: %s.\n\n",
			lat.imports+lat.exports, lat.wall.Seconds(), len(lat.all), p99Target, verdict(percentile(lat.all, 99) < p99Target))
		s.WriteString("| action | calls | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n")
		names := make([]string, 0, len(lat.byAction))
		for n := range lat.byAction {
			names = append(names, n)
		}
		sort.Strings(names)
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e6) }
		for _, n := range names {
			d := lat.byAction[n]
			fmt.Fprintf(&s, "| %s | %d | %s | %s | %s |\n", n, len(d), ms(percentile(d, 50)), ms(percentile(d, 99)), ms(percentile(d, 100)))
		}
		fmt.Fprintf(&s, "| **all** | %d | %s | %s | %s |\n", len(lat.all), ms(percentile(lat.all, 50)), ms(percentile(lat.all, 99)), ms(percentile(lat.all, 100)))
		fmt.Fprintf(&s, "| all, idle server (%v before the tasks, one client) | %d | %s | %s | %s |\n", idleProbe, len(lat.idle),
			ms(percentile(lat.idle, 50)), ms(percentile(lat.idle, 99)), ms(percentile(lat.idle, 100)))
	}
	return s.String()
}
