// Package bundle makes and reads AMI bundles (manifest version
// 2007-10-10, the format of ec2-bundle-image, ec2-bundle-vol and
// euca-bundle-image) and stores them in S3 the way EC2 BundleInstance
// does: with POST Object form uploads under an upload policy.
//
// # Upload policies
//
// [NewPolicy] builds the policy BundleInstance needs (bucket, acl
// ec2-bundle-read, keys starting with the prefix), [Policy.Encode] gives
// Storage.S3.UploadPolicy and [SignPolicy] its signature,
// base64(HMAC-SHA1(secret, base64 policy)). [CheckPolicy] checks a policy as
// BundleInstance receives it and names every condition that fails.
//
// # Bundles
//
// [Write] bundles any [disk.Image] in one streaming pass: a tar stream
// holding the volume as one file, SHA-1 digested; gzip, compressed in
// parallel blocks; AES-128-CBC with a random key and IV; cut into parts of
// [DefaultPartSize] named PREFIX.part.NN, each SHA-1 digested and stored
// in a [Sink] as it fills; then PREFIX.manifest.xml, whose key and IV are
// RSA-encrypted (PKCS#1 v1.5) for the EC2 certificate and the user's, and
// whose machine_configuration and image elements are signed with RSA-SHA1.
// [Dir] stores a bundle in a directory, [PostSink] in S3 under a policy.
//
// [Open] reads a bundle back from a [Source] ([Dir], [S3]): it validates
// the manifest, verifies its signature and decrypts the key;
// [Reader.Extract] checks every part digest before using the part,
// decrypts, gunzips, checks the tar digest and restores the volume.
//
// # Tasks
//
// [Runner] runs a bundle task through the states BundleInstance and
// DescribeBundleTasks report ([Pending], [Bundling], [Storing], [Complete],
// [Failed], [Cancelling]), with progress, errors and cancellation that
// removes what was stored. The task's EC2 XML is the API server's
// (package server).
package bundle

import "github.com/diskport/diskport/disk"

// DefaultPartSize is the size of every part but the last: 10 MiB, as
// ec2-bundle-image (Bundle::CHUNK_SIZE) and euca2ools cut them.
const DefaultPartSize = 10 << 20

// The package's doc comment links to disk.Image.
var _ disk.Image = nil
