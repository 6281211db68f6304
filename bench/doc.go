// Package bench holds diskport's benchmarks of the hot paths, per format:
// reading an image (ReadAt throughput, which for streamOptimized is the
// inflate throughput of one core), converting it to a raw volume,
// converting with 1, 2 and 4 workers to show how the work scales with
// cores, and inflating the grains of a streamOptimized image from memory
// on one core and on all of them (the CPU cost alone, without I/O; on the
// synthetic golden disk and on a real-content one from bench/realdisk),
// each zlib decoder on the same grains (BenchmarkInflateDecoders: the
// build's vmdk.Inflate, libdeflate with cgo or the pure-Go path with
// -tags purego, against compress/zlib and klauspost/compress/zlib), and
// copying verbatim bytes between host files from a memory mapping, with
// pread or with copy_file_range. Run them with
//
//	go test -bench . ./bench/
//
// The images (a 128 MiB golden disk, a 1 GiB real-content ext4 disk with
// 512 MiB of files, and what qemu-img makes of them) are cached in
// internal/testimg's cache, so only the first run builds them.
// Without -bench, `go test ./bench/...` runs nothing and is quick.
//
// The comparison with qemu-img (and its anchors, qemu-img -m 16 -W and
// qemu-nbd + nbdcopy) on a 3 GiB real-content disk and a 2 GiB synthetic
// one is the command in bench/compare (`make bench`); its latest tables
// are in bench/RESULTS.md.
package bench
