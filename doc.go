// Package diskport opens virtual-machine disk images — VMDK, VHD, VHDX and RAW,
// and through package ova the disks of an OVA appliance — as [disk.Image]s,
// ready to convert into raw cloud volumes.
//
// [Open] and [OpenStorage] sniff the format from the image's bytes
// ([Detect]) and check it against the format the caller declares, the way
// EC2's ImportInstance declares DiskImage.N.Image.Format. A declared format
// is authoritative: an image is never parsed as a format it was not
// declared as, and bytes that look like another format (a RAW upload that
// is really a VMDK descriptor, a qcow2 with a backing file, a dynamic VHD)
// are refused with [disk.ErrFormatMismatch] unless the caller sets
// [Options.TrustFormat]. References to other files are followed only as
// far as [Options] allows: VMDK extent files only inside the descriptor's
// own directory, parent images only when the caller lists them.
//
// One table in this package lists the formats: for each, its name, EC2's
// name, its probe, its opener, its stream reader (for the formats a stream
// can hold) and whether it can have a parent. It drives [ParseFormat] (the
// one parser of a declared format), [Detect], [Open], [OpenStream] (for
// package ova's gzip-compressed disks), [Formats] (for help text) and the
// manifest writer. A [Format] has one
// spelling per context: EC2's ("VMDK", "RAW", "VHD", [Format.EC2Name]) on
// the wire and in manifests, the lowercase name ([Format.String]) in human
// and JSON output; "vpc" is accepted for "vhd" everywhere a format is
// declared. [Detect] finds one format or refuses: bytes that carry a
// format's signature but fail its checks are that format's
// disk.ErrCorrupt, never RAW; an archive or compressed file (tar, and so
// an OVA, which package ova reads; zip, gzip, xz, bzip2, zstd) or a disk
// format diskport does not read (qcow2, QED, VDI) is refused with what it
// is and how to get at the disk, never read as RAW unless declared RAW.
//
// Errors name what is wrong in library terms ([Options] fields, the format
// to declare), never a command-line flag. Errors about no one format (a
// declared format the bytes contradict, an unknown format name) carry no
// "diskport:" prefix of their own, so a program that prefixes its name
// prints it once.
//
// The subpackages do the work:
//
//   - disk: the common interface (Image, Storage, extents, typed errors)
//     and the host files images are read from; disk/mapped, the core of
//     the readers whose disk is a map of grains or blocks; disk/disktest,
//     the checks every reader passes.
//   - raw, vmdk, vhd and vhdx: the readers (and writers) of RAW, VMDK,
//     VHD and VHDX, which this package's format table opens;
//     vmdk/internal/libdeflate, the cgo inflater of streamOptimized
//     grains.
//   - ova: OVA appliances, whose disks it opens through the format table.
//   - convert: an image to a raw volume; volume: the file or block device
//     a volume is written to, with its resume journal.
//   - manifest: EC2 import manifests (made, read, uploaded, and read from
//     as an image), with manifest/parts (their parts stored, fetched and
//     checked); bundle: AMI bundles under a BundleInstance policy.
//   - server: the EC2 Query API server (VM import, BundleInstance), with
//     server/auth (request signatures) and server/store (its durable
//     state).
//   - cmd/diskport: the command-line tool.
//   - bench (benchmarks; bench/compare, diskport against qemu-img;
//     bench/modern, the server's ImportSnapshot and ExportImage against
//     convert, and its API latency under load; bench/realdisk, the
//     real-content disks they read) and fuzz (the fuzz targets beside each
//     parser, run by scripts/fuzz.sh).
//   - internal packages: internal/s3 (the one S3 client), internal/logtext
//     (one-line, redacted log text), internal/atomicfile and
//     internal/flock (files written and locked safely), and the test
//     helpers internal/testimg, internal/testwait, internal/pgtest and
//     internal/s3test.
package diskport
