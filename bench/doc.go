// Package bench holds diskport's benchmarks of the hot paths, per format:
// reading an image (ReadAt throughput, which for streamOptimized is the
// inflate throughput of one core), converting it to a raw volume,
// converting with 1, 2 and 4 workers to show how the work scales with
// cores, and inflating the grains of a streamOptimized image from memory
// on one core and on all of them (the CPU cost alone, without I/O), and
// copying verbatim bytes between host files from a memory mapping, with
// pread or with copy_file_range. Run them with
//
//	go test -bench . ./bench/
//
// The images (a 128 MiB golden disk and what qemu-img makes of it) come
// from internal/testimg and are cached, so only the first run builds them.
// Without -bench, `go test ./bench/...` runs nothing and is quick.
//
// The comparison with qemu-img on 2 GiB images is the command in
// bench/compare (`make bench`); its latest table is in bench/RESULTS.md.
package bench
