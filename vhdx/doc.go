// Package vhdx reads Microsoft Virtual Hard Disk v2 (VHDX) images — fixed,
// dynamic and differencing — as a [disk.Image], following MS-VHDX.
//
// A VHDX starts with a 1 MiB header section: the file type identifier
// ("vhdxfile" and the creator), two 4 KiB headers and two 64 KiB region
// tables, each checksummed with CRC-32C. The region table locates the
// block allocation table (BAT) and the metadata region (block size,
// virtual size, sector sizes, and for a differencing disk its parent
// locator); a header may name a log, a ring of 4 KiB sectors holding
// metadata updates not yet written in place. The BAT has one entry per
// payload block, and in each chunk of 2^23 sectors one sector bitmap entry
// after the chunk's payload entries; a differencing disk's sector bitmaps
// (one bit per logical sector, least significant bit first) say which
// sectors of a partially present block the file holds.
//
// The reader is a [mapped.Image] (package disk/mapped): this package
// parses the metadata and describes the disk as runs.
//
// # Choices
//
//   - Headers: a header is valid when its signature and CRC-32C are right;
//     of two valid ones the higher sequence number wins; two valid headers
//     with equal sequence numbers must be byte-identical (Disk2vhd writes
//     them so), else ErrCorrupt. Region tables: the first valid copy is
//     used (Info records a fallback to the second). An unknown region or
//     metadata item marked required is ErrUnsupported.
//   - The log: when the current header names a log (non-zero log GUID),
//     its active sequence — the newest valid, complete one (MS-VHDX
//     2.3.3, the head entry's tail inside the sequence) — is replayed in
//     memory: every later read of the file goes through an overlay of the
//     log's data and zero descriptors, with the file extended to the size
//     the log gives it. The file is never written. Info's log_replayed and
//     log say what was replayed. A log that holds no valid sequence is not
//     replayed (as qemu does; the specification calls that corrupt). A log
//     entry claiming a file larger than there is (FlushedFileOffset) is
//     ErrCorrupt (truncated), as are writes into the file identifier,
//     headers or the log itself. The log is read into memory, at most
//     MaxLogLength (256 MiB; ErrTooLarge above), and the scan's checksum
//     work is bounded by 8 times its size.
//   - Limits (CVE-2014-0148 and MS-VHDX): block size a power of two from
//     1 to 256 MiB, logical sector size 512 or 4096, physical 512 or 4096,
//     virtual size a multiple of the logical sector and at most 64 TiB (or
//     Options.MaxVirtualSize, ErrTooLarge), every region and the log
//     1 MiB-aligned, inside the file and past the header section, no two
//     overlapping; the BAT region must hold every entry the disk needs.
//     Every fully or partially present block (the part inside the disk)
//     and every present sector bitmap must lie inside the file, outside
//     the header section, the log, the BAT, the metadata and any other
//     region, and overlap no other block. Memory is bounded by the file
//     size: the BAT entries the disk needs, the log, and a partially
//     present block's bits when first read.
//   - Block states: fully present blocks are read from the file;
//     partially present ones (differencing only) by their sector bitmap;
//     not present blocks read as zeros, or from the parent in a
//     differencing disk; undefined, zero and unmapped blocks (and state 5,
//     unmapped in the 0.95 draft) read as zeros in every disk, which the
//     specification allows. A dynamic or fixed disk's sector bitmap
//     entries are ignored (qemu wrote garbage there before 2023).
//   - Differencing disks are refused with disk.ErrUnsafe naming the parent
//     locator's entries unless the caller passes the opened parent in
//     Options.Parent; no file is ever opened by name. A *vhdx.Image
//     parent's data write GUID must be one the locator names
//     (parent_linkage, parent_linkage2) and its logical sector size the
//     child's. A parent given to a fixed or dynamic disk is ErrUnsafe.
//     Where the child is larger than its parent, the bytes past the
//     parent's end read as zeros.
//
// # Differences from qemu-img 7.2
//
//   - A file with a log to replay: qemu refuses to open it read-only ("run
//     qemu-img check -r all", which rewrites the file); diskport reads it
//     as it will be after replay, without writing it.
//   - Differencing disks: qemu refuses them (unsupported); diskport reads
//     them through the parent the caller gives.
//   - 4096-byte logical sectors: qemu 7.2 refuses such files ("Operation
//     not supported"); diskport reads them.
//   - diskport also rejects blocks overlapping each other (qemu checks
//     each block against the header section, log and regions only) and
//     falls back to the second region table when the first is damaged.
package vhdx
