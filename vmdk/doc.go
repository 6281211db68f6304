// Package vmdk reads VMware virtual disks (VMDK) as a disk.Image, and
// writes a disk.Image as a VMDK (WriteStream, WriteSparse).
//
// Open takes one disk.Storage holding either a binary extent file or a
// text descriptor:
//
//   - a hosted sparse extent (KDMV, versions 1 to 3): monolithicSparse, a
//     single extent of twoGbMaxExtentSparse, or streamOptimized with
//     zlib-compressed grains, its grain directory in front (qemu, govmomi)
//     or in a footer (VMware, VMDKstream);
//   - a COWD (VMDK3) extent, the vmfsSparse delta format of ESX;
//   - a text descriptor (monolithicFlat, twoGbMaxExtentFlat,
//     twoGbMaxExtentSparse, vmfs, vmfsThin, vmfsEagerZeroedThick,
//     vmfsPreallocated, vmfsSparse, seSparse) listing FLAT, VMFS, SPARSE,
//     VMFSSPARSE, SESPARSE and ZERO extents, whose files are obtained
//     through Options.OpenExtent.
//
// # Safety
//
// Every header field is validated before use and every offset and count
// is checked against the file size with overflow-checked arithmetic;
// allocations follow the file size, not header claims: the grain directory
// must fit in the file, grain tables are loaded lazily into a small cache,
// and every compressed grain is inflated into a grain-sized buffer with
// its compressed size at most two grains (see Inflate). Grain tables must
// not overlap each other, the header, the descriptor, the grain
// directories or the footer; grains must lie past the metadata
// (overHead) and, for uncompressed extents, grain tables before it.
// Compressed grains must carry the LBA their grain table entry implies.
//
// Extent file names must be bare file names (no '/', '\\', ':', NUL or
// ".."); without Options.OpenExtent a descriptor that names any file is
// refused. The createTypes fullDevice, partitionedDevice, custom and the
// raw device maps, and VMFSRDM/VMFSRAW extents, are refused with
// disk.ErrUnsafe. A sparse file with capacity 0 and an embedded
// descriptor (which qemu opens as a descriptor file) is refused. Delta
// links (parentCID other than ffffffff, or a parentFileNameHint) are
// refused with disk.ErrUnsafe unless the caller passes the parent as
// Options.Parent: a *vmdk.Image, whose CID must equal the child's
// parentCID, or another disk.Image, taken on the caller's word; the hint
// is never opened. A parent given to an image without a delta link is
// refused with disk.ErrUnsafe. Unallocated grains of a delta read the
// parent; zeroed grains read as zeros.
//
// # Streams
//
// Besides random access through the grain directory (Image.ReadAt,
// Image.Extents, Image.Grains), a streamOptimized extent can be read
// sequentially from a non-seekable source with StreamReader or WalkStream,
// and grains can be inflated in parallel with InflateGrain.
//
// # Writing
//
// WriteStream writes a streamOptimized disk to an io.Writer, front to back,
// the way VMware's tools write one (grain directory in a footer, grain
// table and end-of-stream markers), which qemu-img, VirtualBox, vSphere
// and EC2 read; qemu-img's own streamOptimized output keeps its tables in
// front, without footer or end-of-stream marker. Grains are compressed in
// parallel (see Deflater). WriteSparse writes a monolithicSparse disk to
// an io.WriterAt in qemu-img's layout. Both read the source through its
// extent map, skip its zero runs and store no grain that reads as zeros.
//
// # Where this package differs from qemu-img
//
//   - qemu drops extent lines whose access mode is not RW and all ZERO
//     extents, shortening the disk; this package honours RDONLY extents
//     (VMware's stream descriptors say RDONLY) and ZERO extents, as the
//     VMDK specification says. NOACCESS extents that name a file are
//     refused (disk.ErrUnsupported); NOACCESS ZERO extents read as zeros.
//   - qemu refuses a text descriptor whose createType is monolithicSparse
//     or streamOptimized; this package accepts it with SPARSE extents.
//   - qemu accepts absolute and relative paths (including "..") in extent
//     names and follows parentFileNameHint; this package does neither.
//   - qemu fails on a grain that inflates to less than a grain
//     (VMDKstream writes the unpadded tail of an input that is not a
//     multiple of 512 bytes that way); this package accepts such a grain
//     when it holds the end of the disk and stops inside the last sector
//     the disk needs, and reads the missing bytes as zeros.
//   - qemu does not check a compressed grain's LBA, the CR/LF newline
//     detector, that grain tables and grains stay out of other metadata,
//     or that the zlib stream ends exactly at the marker's size; this
//     package refuses all of those as disk.ErrCorrupt.
//   - Grain sizes must be powers of 2 from 8 to 2048 sectors and grain
//     tables powers of 2 from 128 to 512 entries (no known writer uses
//     anything else); qemu accepts any grain up to 1 GiB.
//   - qemu checks the parent's CID on each read; this package checks it
//     once, at Open.
//   - qemu takes a stream's footer as is; this package requires it to agree
//     with the header on version, descriptor location, capacity and grain
//     size (as OpenStack's format inspector does), and refuses unknown
//     incompatible header flags.
//   - qemu reads CID, parentCID and parentFileNameHint from a fixed window
//     at byte 512 with strstr, even inside comments; this package parses
//     the embedded descriptor where descriptorOffset says, line by line,
//     with keys compared case-insensitively, and refuses lines that are
//     neither comments, key=value pairs nor extent lines.
//   - The sequential walk (StreamReader) has no qemu counterpart; it
//     requires grains in ascending LBA order, as every known writer emits
//     them.
//   - SESPARSE extents are read with qemu's strict header checks plus bounds
//     on every region and entry; a seSparse file opened on its own (without
//     the descriptor naming its parent) is refused with disk.ErrUnsupported.
package vmdk
