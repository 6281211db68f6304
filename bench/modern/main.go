//go:build linux

// Command modern times the modern VM Import/Export API of `diskport serve`
// against `diskport convert` on the same bytes, and measures the API's
// latency while tasks run.
//
// It builds diskport, starts MinIO (the binary internal/s3test installs)
// and `diskport serve` (SQLite, --workers 6 by default) reading and
// writing that MinIO with its root credentials, and uploads the streamOptimized VMDK
// of the real-content disk (bench/realdisk; made and cached as
// bench/compare makes it) as s3://bench/disk.vmdk. Then:
//
//   - import pairs: ImportSnapshot (UserBucket, Format VMDK), polling
//     DescribeImportSnapshotTasks every 50 ms until the task is no longer
//     active, against `diskport convert --manifest M out.raw`, where M is a
//     one-part import manifest whose GetURL is a presigned URL of the same
//     object (convert reads an object over HTTP only through a manifest;
//     this is the path an https Url of ImportSnapshot takes too);
//   - export pairs: ExportImage (VMDK, of an image RegisterImage made over
//     the first imported snapshot), polling DescribeExportImageTasks,
//     against `diskport convert -O vmdk --subformat streamOptimized
//     SNAPSHOT out.vmdk` of the snapshot's file;
//   - latency: 4 ImportSnapshot and 2 ExportImage tasks are started at
//     once, and while they run cheap actions (DescribeImportSnapshotTasks,
//     DescribeExportImageTasks, DescribeSnapshots, DescribeImages,
//     DescribeVolumes) are called back to back from two clients; p50, p99
//     and max are reported, beside the same calls' for 15 s before the
//     tasks start (the machine's own load: the idle baseline).
//
// Both sides are durable (the server's snapshot is flushed; convert runs
// without --no-sync). The two tools of a pair run one after the other, the
// first alternating from round to round, with outputs removed and `sync`
// run before each; each row reports median wall times, the geometric mean
// over rounds of the ratio server/convert, and CPU seconds: the serve
// process's (from /proc, polling included) and convert's (rusage). MinIO's
// CPU is in neither.
//
// Usage:
//
//	go run ./bench/modern [-runs 5] [-real-size 3221225472] [-real-files 1468006400]
//	    [-pairs=true] [-exports=true] [-latency=true] [-workers 6] [-serve-env K=V,...] [-serve-log FILE] [-out bench/RESULTS.md]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "modern:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	runs                int
	realSize, realFiles int64
	cache, work, out    string
	latency, pairs      bool
	exports             bool
	serveEnv            []string
	serveLog            string
	workers             int
}

func parseFlags() options {
	var o options
	defCache := filepath.Join(os.TempDir(), "diskport-bench")
	if base, err := os.UserCacheDir(); err == nil {
		defCache = filepath.Join(base, "diskport", "bench")
	}
	flag.IntVar(&o.runs, "runs", 5, "timed pairs of each kind (import, export)")
	flag.Int64Var(&o.realSize, "real-size", 3<<30, "size of the real-content ext4 disk in bytes")
	flag.Int64Var(&o.realFiles, "real-files", 1400<<20, "bytes of real files copied into the disk, at most")
	flag.StringVar(&o.cache, "cache", defCache, "directory of the cached disk and image")
	flag.StringVar(&o.work, "work", "", "directory for MinIO, the server's data and the outputs (default: a temporary directory in -cache)")
	flag.StringVar(&o.out, "out", "", "append the report to this file (such as bench/RESULTS.md)")
	flag.BoolVar(&o.pairs, "pairs", true, "time the import and export pairs")
	flag.BoolVar(&o.exports, "exports", true, "with -pairs, time the export pairs too")
	flag.BoolVar(&o.latency, "latency", true, "measure API latency while 4 imports and 2 exports run")
	env := flag.String("serve-env", "", "comma-separated KEY=VALUE pairs added to the serve process's environment (experiments such as GOMAXPROCS=8)")
	flag.IntVar(&o.workers, "workers", 6, "the server's --workers (6: the latency phase's tasks all run at once)")
	flag.StringVar(&o.serveLog, "serve-log", "", "write the server's log, every request at debug level (duration_ms), to this file")
	flag.Parse()
	if *env != "" {
		o.serveEnv = strings.Split(*env, ",")
	}
	return o
}
