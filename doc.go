// Package diskport opens virtual-machine disk images — VMDK, VHD and RAW —
// as [disk.Image]s, ready to convert into raw cloud volumes.
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
// The subpackages do the work: disk (the common interface), raw, vmdk and
// vhd (the readers), convert (image to raw volume), manifest (EC2 import
// manifests) and bundle (AMI bundles under a BundleInstance policy).
package diskport
