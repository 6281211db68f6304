// Package vhd reads Microsoft Virtual Hard Disk (VHD, version 1) images —
// fixed, dynamic and differencing — as a [disk.Image], and writes any
// disk.Image as a dynamic ([WriteDynamic]) or fixed ([WriteFixed]) VHD.
// qemu calls the format "vpc".
//
// A VHD ends with a 512-byte footer (cookie "conectix", big-endian fields,
// a one's-complement byte-sum checksum). A fixed disk is its data followed
// by the footer. A dynamic disk starts with a copy of the footer, then a
// dynamic header ("cxsparse") pointing at the block allocation table
// (BAT); each allocated block is a sector bitmap (one bit per sector, most
// significant bit first) followed by the block's data. A differencing disk
// is a dynamic disk whose clear bitmap bits and unallocated blocks are read
// from a parent, named in the header by unique id, name and locators.
//
// # Choices
//
//   - Virtual size: the footer's current size (offset 48), rounded up to a
//     whole sector; bytes past the current size read as zeros. This is what
//     Hyper-V, VirtualBox and Microsoft's specification use. The CHS size
//     (cylinders × heads × sectors per track × 512), which rounds down and
//     caps near 127 GiB, is reported as chs_size in Info, and the size
//     qemu would use as qemu_size.
//   - Footer: the trailing footer is authoritative. When it is missing or
//     its checksum fails, the copy at offset 0 is used if it is a valid
//     dynamic or differencing footer, as the specification tells readers to
//     do (Info records it under "footer"); when both fail, ErrCorrupt. A
//     511-byte footer (Virtual PC before 2004) is ErrUnsupported.
//   - The dynamic header's checksum is verified strictly (ErrCorrupt).
//   - Sector bitmaps are honoured: in a dynamic disk a clear bit reads as
//     zeros (the specification requires such sectors to hold zeros on
//     disk), in a differencing disk it reads from the parent.
//   - Differencing disks are refused with disk.ErrUnsafe naming the parent
//     unless the caller passes the opened parent in Options.Parent; no file
//     is ever opened by name. A *vhd.Image parent must carry the unique id
//     the child names (else ErrUnsafe). Where the child is larger than its
//     parent, the bytes past the parent's end read as zeros.
//   - Limits: block size a power of two from 512 bytes to 256 MiB
//     (ErrCorrupt outside the powers of two, ErrTooLarge above); virtual
//     size at most Options.MaxVirtualSize (default 2040 GiB, qemu's limit);
//     the BAT, every allocated block (bitmap and the data inside the disk)
//     and every parent locator (at most 64 KiB) must lie inside the file
//     before the trailing footer; blocks must not overlap the footers, the
//     dynamic header, the BAT, the parent locators or each other. Memory
//     is bounded by the file size: the BAT entries the disk needs, and one
//     sector bitmap per partly-present block.
//
// # Writing
//
//   - Size: the footer's current and original size are the source's size
//     rounded up to 512 bytes; the geometry is the specification's. The
//     creator is "win " (host "Wi2k", version 10.0), as Hyper-V writes: qemu
//     takes the size from the geometry, which rounds down, for every
//     creator but a few it knows to use the current size, and "win " is the
//     one it has known the longest. Hyper-V, Azure and VirtualBox read the
//     current size whatever the creator; libvhdi reads the original size,
//     which is the same.
//   - Limit: MaxWriteSize (2040 GiB), checked before anything is written.
//   - Dynamic layout: footer copy, header at 512, BAT at 1536, then the
//     allocated 2 MiB blocks in block order, each bitmap fully set and
//     ending on a 4 KiB boundary so the data is page-aligned (3.5 KiB of
//     zeros between blocks), then the footer. All-zero blocks are not
//     stored. qemu packs blocks without the padding; readers follow the
//     BAT, so both read the same.
//   - Speed: blocks are read and zero-tested by several goroutines into
//     reused buffers; the source's holes are never read; bytes a raw
//     source stores verbatim in a host file are copied into an output file
//     with copy_file_range after a zero test that stops at the first
//     non-zero 64 KiB.
//
// # Differences from qemu-img 7.2
//
//   - Size: qemu uses the CHS size for every creator except "win ", "qem2",
//     "d2v ", "CTXS" and "tap\0" (unless the geometry is the 65535/16/255
//     maximum), so it truncates disks made by Virtual PC ("vpc "), Virtual
//     Server ("vs  ") and qemu without force_size ("qemu") to the CHS size.
//     diskport uses the current size, so its output is as long or longer;
//     the extra bytes are what the disk holds there (zeros in practice).
//   - A current size that is not a multiple of 512 (no known writer makes
//     one): diskport rounds up and reads zeros past the current size; qemu
//     rounds down, and fails to open such a fixed disk at all ("invalid VPC
//     image": it looks for the footer at the file size rounded up).
//   - Differencing disks: qemu opens them as dynamic disks and ignores the
//     parent, silently returning wrong data; diskport refuses them without
//     a parent and reads through the parent when given one.
//   - Footer: qemu reads the copy at offset 0 first and refuses a bad
//     checksum ("Incorrect header checksum"); diskport prefers the trailing
//     footer and falls back to the copy. A fixed disk whose data starts with
//     "conectix" is read as fixed here (its trailing footer says so); qemu
//     would misread it as dynamic.
//   - Bitmaps: qemu ignores them and reads the block's data area, so a
//     dynamic disk whose writer left non-zero bytes in sectors marked absent
//     reads differently (zeros here, as the specification says).
//   - Blocks smaller than 4 KiB: the sector bitmap holds one bit per sector
//     padded to a whole sector, so it takes 512 bytes; qemu computes
//     (blockSize/4096 + 511) &^ 511 = 0 bytes and reads the bitmap as data.
//     Such block sizes are untested by Microsoft and never written by qemu.
//   - qemu checks only that the last block ends within the file; diskport
//     also rejects blocks that overlap metadata or each other, locators
//     outside the file, and a bad dynamic header checksum.
package vhd
