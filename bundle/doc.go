package bundle

// DefaultPartSize is the size of every part but the last: 10 MiB, as
// ec2-bundle-image (Bundle::CHUNK_SIZE) and euca2ools cut them.
const DefaultPartSize = 10 << 20
