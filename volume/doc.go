// Package volume writes raw volumes: the one place diskport creates the
// file or fills the block device a disk image is converted or restored to.
//
// A file volume is written under a temporary name beside the destination
// (".NAME.diskport-partial"), sized at once, flushed with fdatasync, renamed
// into place and its directory synced (Writer.Commit), so a crash or a kill
// never leaves a partial file under the final name. A block device is
// written in place; Options.DeviceZeroed says it already reads as zeros (a
// fresh EBS volume), so zeros need not be written to it.
//
// Writers that produce a volume once, each byte in any order, use Fill and
// FillZero: whole 4 KiB blocks of zeros are then skipped where the volume
// already reads as zeros (a file keeps them as holes), and written where it
// does not (a device that is not known to be zeroed). CopyFrom fills a
// range the same way from bytes stored verbatim in another host file: it
// reads them into the caller's buffer to find the zero blocks, and has the
// kernel copy the data blocks from that file (copy_file_range, on Linux)
// rather than writing them from the buffer. WriteAt and Zero write
// unconditionally. Writes into a file are made one at a time: the file
// system holds the inode's lock through a buffered write's copy, and a
// second writer would spin in the kernel for it. Writeback starts the kernel writing a finished
// range while later ones are still being produced, so the final flush has
// little left to do.
//
// A file volume may keep a resume journal (Options.Journal): the set of
// finished segments, recorded by Journal.Checkpoint after the volume is
// flushed, so the journal never claims more than the file holds. A run
// that was killed at any point is continued with Options.Resume: when the
// journal is missing, unreadable or does not match the temporary file, the
// writer starts again from zero and says so (Writer.StartedOver), and the
// volume always has its full size.
//
// Unless NoSync, the volume is flushed before each checkpoint and before
// the rename, and the journal and directory are synced, so the guarantees
// hold across a crash of the machine; with NoSync they hold across a kill
// of the process only.
//
// The API's users: package convert (image to volume), bundle's
// Reader.ExtractVolume (unbundle), and the API server's volumes.
package volume
