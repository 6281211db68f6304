package diskport

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/raw"
	"github.com/diskport/diskport/vhd"
	"github.com/diskport/diskport/vhdx"
	"github.com/diskport/diskport/vmdk"
)

// A Format names an image format. It has one spelling per context:
//
//   - the Format value itself, and [Format.String], is the lowercase name
//     ("raw", "vmdk", "vhd", "vhdx"): what human and JSON output print;
//   - [Format.EC2Name] is EC2's spelling ("RAW", "VMDK", "VHD", "VHDX"): what goes
//     on the wire (DiskImage.N.Image.Format) and in import manifests
//     (file-format). Tar's is "OVA": EC2 imports a whole OVA appliance,
//     which package ova reads (a disk image reader does not);
//   - [ParseFormat] reads any of those, in any case, and the aliases
//     [Format.Aliases] lists (qemu's "vpc" for VHD, "img" for RAW). It is
//     the one parser of a declared format, in the library and every verb.
type Format string

// The formats of the table. Raw, VMDK, VHD and VHDX are read. The others
// are recognised so that they are never mistaken for RAW, and refused with
// what they are and how to get at the disk: the disk formats QCOW2, QED
// and VDI, the archives Tar (an OVA is one; package ova reads those) and
// Zip, and the compressed streams Gzip, XZ, Bzip2 and Zstd.
const (
	Raw   Format = "raw"
	VMDK  Format = "vmdk"
	VHD   Format = "vhd"
	VHDX  Format = "vhdx"
	QCOW2 Format = "qcow2"
	QED   Format = "qed"
	VDI   Format = "vdi"
	Tar   Format = "tar"
	Zip   Format = "zip"
	Gzip  Format = "gzip"
	XZ    Format = "xz"
	Bzip2 Format = "bzip2"
	Zstd  Format = "zstd"
)

// A formatEntry is one row of the format table.
type formatEntry struct {
	format  Format
	ec2     string   // EC2's name; "" when EC2 does not import the format
	aliases []string // other names ParseFormat accepts
	what    string   // the format in a phrase: "a VHD image"
	// probe tells whether s is of the format: true, false, or an error
	// when s carries the format's signature but fails its checks. nil for
	// RAW, which is what matches nothing else.
	probe func(s disk.Storage) (bool, error)
	// open parses s, opened from path ("" when not from a file), with its
	// parent already open (nil for none); nil when the format is
	// recognised but not read.
	open func(s disk.Storage, path string, opts Options, parent disk.Image) (disk.Image, error)
	// stream reads an image of the format from a reader in one pass (see
	// OpenStream), size being the caller's for a format that does not
	// record it; nil when the format cannot be read that way.
	stream func(name string, r io.Reader, size int64) (*Stream, error)
	// parents: an image of the format can be a delta of a parent image.
	parents bool
	// container marks an archive or a compressed stream, not a disk
	// format: its signature is short, so it is claimed only when no disk
	// format matches (it replaces the RAW fallback), and a declared RAW
	// reads the bytes as RAW without Options.TrustFormat.
	container bool
	// advice says how to get at the disk inside a format that is
	// recognised but not read; "" for the generic advice.
	advice string
	// writers are the layouts [Write] writes the format in, the default
	// first; none when diskport does not write it. (RAW is written by
	// package convert as a volume, and an OVA by package ova, which
	// writes its disk through this table.)
	writers []layout
}

// table is the closed set of formats, in probe order. Everything that
// knows which formats exist (ParseFormat, Detect, Open, the CLI's help,
// the manifest writer) reads it.
var table = []formatEntry{
	{format: VMDK, ec2: "VMDK", what: "a VMDK image or descriptor", probe: vmdk.Probe, open: openVMDK, stream: streamVMDK, parents: true, writers: vmdkWriters},
	{format: VHD, ec2: "VHD", aliases: []string{"vpc"}, what: "a VHD image", probe: vhd.Probe, open: openVHD, parents: true, writers: vhdWriters},
	{format: VHDX, ec2: "VHDX", what: "a VHDX image", probe: vhdx.Probe, open: openVHDX, parents: true},
	{format: QCOW2, what: "a QCOW2 image", probe: magic(0, "QFI\xfb")},
	{format: QED, what: "a QED image", probe: magic(0, "QED\x00"), advice: "convert it with qemu-img convert -O raw first"},
	{format: VDI, what: "a VirtualBox VDI image", probe: magic(64, "\x7f\x10\xda\xbe"), advice: "convert it first (qemu-img convert -O raw, or VBoxManage clonemedium to a VHD)"},
	{format: Tar, ec2: "OVA", what: "a tar archive (an OVA appliance is one)", probe: tarProbe, container: true,
		advice: "an OVA is read by package ova (the diskport CLI's info and convert take an .ova directly); from any other tar, extract the disk image first"},
	{format: Zip, what: "a zip archive", probe: magic(0, "PK\x03\x04"), container: true, advice: "unzip it and convert the disk image inside"},
	{format: Gzip, what: "a gzip-compressed file", probe: magic(0, "\x1f\x8b\x08"), container: true, advice: "decompress it first (gzip -dk FILE)"},
	{format: XZ, what: "an xz-compressed file", probe: magic(0, "\xfd7zXZ\x00"), container: true, advice: "decompress it first (xz -dk FILE)"},
	{format: Bzip2, what: "a bzip2-compressed file", probe: bzip2Probe, container: true, advice: "decompress it first (bzip2 -dk FILE)"},
	{format: Zstd, what: "a zstd-compressed file", probe: magic(0, "\x28\xb5\x2f\xfd"), container: true, advice: "decompress it first (zstd -dk FILE)"},
	{format: Raw, ec2: "RAW", aliases: []string{"img"}, what: "a RAW disk", open: openRaw, stream: streamRaw},
}

// entry returns f's row of the table, or nil.
func entry(f Format) *formatEntry {
	for i := range table {
		if table[i].format == f {
			return &table[i]
		}
	}
	return nil
}

// Formats returns the formats [Open] reads, in the table's order: VMDK,
// VHD, VHDX and RAW. Callers list them in help text and messages. An OVA
// is not among them: it is an appliance (a tar), whose disks package ova
// opens through these.
func Formats() []Format {
	var fs []Format
	for _, e := range table {
		if e.open != nil {
			fs = append(fs, e.format)
		}
	}
	return fs
}

// ImportFormats returns the formats EC2 imports, those with an
// [Format.EC2Name], in the table's order: VMDK, VHD, VHDX, Tar (as "OVA")
// and RAW. Import manifests and the API server take these; all but Tar
// are [Format.Readable], and an OVA is read by package ova.
func ImportFormats() []Format {
	var fs []Format
	for _, e := range table {
		if e.ec2 != "" {
			fs = append(fs, e.format)
		}
	}
	return fs
}

// String returns the lowercase name ("vmdk"), the spelling of human and
// JSON output.
func (f Format) String() string { return string(f) }

// EC2Name returns EC2's name of the format ("VMDK"), the spelling on the
// wire and in import manifests; "" for a format EC2 does not import.
func (f Format) EC2Name() string {
	if e := entry(f); e != nil {
		return e.ec2
	}
	return ""
}

// Aliases returns the other names [ParseFormat] accepts for f ("vpc" for
// VHD).
func (f Format) Aliases() []string {
	if e := entry(f); e != nil {
		return slices.Clone(e.aliases)
	}
	return nil
}

// Readable reports whether [Open] reads images of the format.
func (f Format) Readable() bool {
	e := entry(f)
	return e != nil && e.open != nil
}

// HasParents reports whether an image of the format can be a delta of a
// parent image (a VMDK delta link, a differencing VHD), which
// [Options.Parents] supplies.
func (f Format) HasParents() bool {
	e := entry(f)
	return e != nil && e.parents
}

// ParseFormat parses a declared format name, case-insensitively: the
// lowercase name, EC2's name or an alias ("vpc" for VHD) of a format
// [Open] reads. A format diskport only recognises (qcow2) or does
// not know is an ErrUnsupported error naming the formats it reads.
func ParseFormat(name string) (Format, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, e := range table {
		if n == string(e.format) || n == strings.ToLower(e.ec2) || slices.Contains(e.aliases, n) {
			if e.open == nil {
				return "", disk.Errorf("", disk.ErrUnsupported, "image format %q is recognised but not read; diskport reads %s", name, FormatNames())
			}
			return e.format, nil
		}
	}
	return "", disk.Errorf("", disk.ErrUnsupported, "unknown image format %q; diskport reads %s", name, FormatNames())
}

// FormatNames lists the formats [Open] reads, with their aliases, for help
// text and messages:
// "vmdk, vhd (alias vpc), vhdx and raw (alias img)".
func FormatNames() string {
	var names []string
	for _, f := range Formats() {
		n := string(f)
		if a := f.Aliases(); len(a) > 0 {
			n += " (alias " + strings.Join(a, ", ") + ")"
		}
		names = append(names, n)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func openRaw(s disk.Storage, _ string, _ Options, _ disk.Image) (disk.Image, error) {
	return raw.Open(s)
}

func openVHD(s disk.Storage, _ string, opts Options, parent disk.Image) (disk.Image, error) {
	img, err := vhd.Open(s, vhd.Options{Parent: parent, MaxVirtualSize: opts.MaxVirtualSize})
	if err != nil {
		return nil, err
	}
	return img, nil
}

func openVHDX(s disk.Storage, _ string, opts Options, parent disk.Image) (disk.Image, error) {
	img, err := vhdx.Open(s, vhdx.Options{Parent: parent, MaxVirtualSize: opts.MaxVirtualSize})
	if err != nil {
		return nil, err // not a typed nil *vhdx.Image
	}
	return img, nil
}

func openVMDK(s disk.Storage, path string, opts Options, parent disk.Image) (disk.Image, error) {
	if opts.SingleFile && vmdk.IsDescriptor(s) {
		return nil, disk.Errorf("vmdk", disk.ErrUnsupported, "%s is a VMDK descriptor file, which keeps its data in other files; convert it to a single-file (streamOptimized or monolithicSparse) VMDK or to RAW first", s.Name())
	}
	vo := vmdk.Options{MaxVirtualSize: opts.MaxVirtualSize, OpenExtent: extentOpener(path, opts), Parent: parent}
	img, err := vmdk.Open(s, vo)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// extentOpener resolves the extent files a VMDK descriptor names: through
// opts.ExtentFiles when given, else inside the descriptor's directory.
func extentOpener(path string, opts Options) func(string) (disk.Storage, error) {
	switch {
	case opts.ExtentFiles != nil:
		return vmdk.MapExtents(opts.ExtentFiles)
	case path != "":
		return vmdk.DirExtents(filepath.Dir(path))
	}
	return nil
}

// Inflater names the zlib inflater the VMDK reader uses for
// streamOptimized grains: libdeflate through cgo, or the pure-Go path of a
// build without cgo or with the purego tag.
func Inflater() string { return vmdk.Inflater() }

// A layout is one way a format is written: a row's writers list them, the
// default first.
type layout struct {
	// subformat is its name, as qemu-img's subformat option spells it
	// ("streamOptimized", "dynamic").
	subformat string
	// write writes src to w. A layout that is not stream writes to an
	// io.WriterAt (w is one), its tables after its data.
	write func(ctx context.Context, w io.Writer, src disk.Image, opts WriteOptions) (int64, error)
	// stream: written front to back, nothing seeks back, so it can go to
	// a pipe.
	stream bool
}

// WriteOptions configure [Write].
type WriteOptions struct {
	// Subformat picks the layout, case-insensitively, from those
	// [Format.Subformats] lists; "" means the format's default (the
	// first).
	Subformat string
	// Workers is how many goroutines read (and compress) the source; 0
	// means one per CPU.
	Workers int
	// Progress, when set, is called with the bytes of the virtual disk
	// written so far and its size.
	Progress func(done, total int64)
	// Name is the image file's own name, which a VMDK's descriptor names
	// ("": the writer's default).
	Name string
}

// Write writes src as an image of format f to w and returns the bytes
// written: a streamOptimized (the default) or monolithicSparse VMDK, a
// dynamic (the default) or fixed VHD. A layout that is not written front
// to back ([Format.Stream] says which) needs a w that is an io.WriterAt,
// such as an *os.File. Writing a format the table has no writer for is
// disk.ErrUnsupported; so is a subformat the format does not have.
func Write(ctx context.Context, f Format, w io.Writer, src disk.Image, opts WriteOptions) (int64, error) {
	l, err := f.layout(opts.Subformat)
	if err != nil {
		return 0, err
	}
	if _, ok := w.(io.WriterAt); !l.stream && !ok {
		return 0, disk.Errorf("", disk.ErrUnsupported, "a %s %s is written with its tables after its data: it needs a file, not a stream", l.subformat, f)
	}
	return l.write(ctx, w, src, opts)
}

// layout returns f's layout named sub ("" for the default).
func (f Format) layout(sub string) (*layout, error) {
	e := entry(f)
	if e == nil || len(e.writers) == 0 {
		return nil, disk.Errorf("", disk.ErrUnsupported, "diskport does not write %s images; it writes %s", f, writeNames())
	}
	if sub == "" {
		return &e.writers[0], nil
	}
	for i := range e.writers {
		if strings.EqualFold(e.writers[i].subformat, sub) {
			return &e.writers[i], nil
		}
	}
	return nil, disk.Errorf("", disk.ErrUnsupported, "%s has no subformat %q; diskport writes %s", f, sub, strings.Join(f.Subformats(), " or "))
}

// Subformats returns the layouts [Write] writes images of f in, the
// default first; nil when it does not write f.
func (f Format) Subformats() []string {
	var s []string
	if e := entry(f); e != nil {
		for _, l := range e.writers {
			s = append(s, l.subformat)
		}
	}
	return s
}

// Stream reports whether [Write] writes f's subformat sub ("" for the
// default) front to back, so that it can go to a pipe; an error when it
// does not write it.
func (f Format) Stream(sub string) (bool, error) {
	l, err := f.layout(sub)
	if err != nil {
		return false, err
	}
	return l.stream, nil
}

// WriteFormats returns the formats [Write] writes, in the table's order.
func WriteFormats() []Format {
	var fs []Format
	for _, e := range table {
		if len(e.writers) > 0 {
			fs = append(fs, e.format)
		}
	}
	return fs
}

// writeNames lists the formats Write writes with their subformats, for
// messages: "vmdk (streamOptimized, monolithicSparse) and vhd (dynamic,
// fixed)".
func writeNames() string {
	var names []string
	for _, f := range WriteFormats() {
		names = append(names, fmt.Sprintf("%s (%s)", f, strings.Join(f.Subformats(), ", ")))
	}
	return strings.Join(names, " and ")
}

// The table's writers.
var (
	vmdkWriters = []layout{
		{subformat: "streamOptimized", stream: true, write: func(ctx context.Context, w io.Writer, src disk.Image, o WriteOptions) (int64, error) {
			return vmdk.WriteStream(ctx, w, src, vmdkOptions(o))
		}},
		{subformat: "monolithicSparse", write: func(ctx context.Context, w io.Writer, src disk.Image, o WriteOptions) (int64, error) {
			return vmdk.WriteSparse(ctx, w.(io.WriterAt), src, vmdkOptions(o))
		}},
	}
	vhdWriters = []layout{
		{subformat: "dynamic", write: func(ctx context.Context, w io.Writer, src disk.Image, o WriteOptions) (int64, error) {
			return vhd.WriteDynamic(ctx, w.(io.WriterAt), src, vhd.WriteOptions{Workers: o.Workers, Progress: o.Progress})
		}},
		{subformat: "fixed", stream: true, write: func(ctx context.Context, w io.Writer, src disk.Image, o WriteOptions) (int64, error) {
			return vhd.WriteFixed(ctx, w, src, vhd.WriteOptions{Workers: o.Workers, Progress: o.Progress})
		}},
	}
)

func vmdkOptions(o WriteOptions) vmdk.WriteOptions {
	return vmdk.WriteOptions{Workers: o.Workers, Progress: o.Progress, Name: o.Name}
}

// A Stream is a disk image read in one pass from an io.Reader (a
// gzip-compressed OVA member, say), its data served in ascending order.
type Stream struct {
	// Size is the disk's virtual size in bytes.
	Size int64
	// Next returns the next run of data: its offset in the disk and its
	// bytes, valid until the next call. It returns io.EOF after the last.
	// Ranges no run covers read as zeros.
	Next func() (off int64, data []byte, err error)
	// Trailer bounds the bytes that may follow the image in the stream: a
	// VMDK stream's padding; none after a RAW disk, which ends at Size.
	// A reader that finds more is looking at something else (or a
	// decompression bomb).
	Trailer int64
}

// OpenStream reads the image of format f from r in one pass, as a
// [Stream]. Only formats whose data can come in ascending order stream: a
// streamOptimized VMDK (the only VMDK a stream can hold) and RAW, whose
// size the stream does not record and the caller gives as size. name
// names r in errors. Other formats ([Format.Streams] reports which) are
// disk.ErrUnsupported.
func OpenStream(f Format, name string, r io.Reader, size int64) (*Stream, error) {
	e := entry(f)
	if e == nil || e.stream == nil {
		return nil, disk.Errorf(string(f), disk.ErrUnsupported, "%s: %s is read only in place, not as a stream", name, describe(f))
	}
	return e.stream(name, r, size)
}

// Streams reports whether [OpenStream] reads images of the format.
func (f Format) Streams() bool {
	e := entry(f)
	return e != nil && e.stream != nil
}

// maxVMDKTrailer bounds the bytes after a VMDK stream's end-of-stream
// marker: padding to a sector or a block, never a second image.
const maxVMDKTrailer = 1 << 20

func streamVMDK(_ string, r io.Reader, _ int64) (*Stream, error) {
	sr, err := vmdk.NewStreamReader(r)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sr.GrainSize())
	next := func() (int64, []byte, error) {
		g, err := sr.Next()
		if err != nil {
			return 0, nil, err
		}
		if err := vmdk.InflateGrain(buf, g.Data, g); err != nil {
			return 0, nil, err
		}
		return g.Offset, buf[:g.Length], nil
	}
	return &Stream{Size: sr.Size(), Next: next, Trailer: maxVMDKTrailer}, nil
}

func streamRaw(name string, r io.Reader, size int64) (*Stream, error) {
	buf := make([]byte, 1<<20)
	var off int64
	next := func() (int64, []byte, error) {
		if off >= size {
			return 0, nil, io.EOF
		}
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-off)])
		if err != nil {
			return 0, nil, disk.Errorf("raw", disk.ErrCorrupt, "%s: the inflated disk ends at byte %d, before its capacity of %d bytes", name, off+int64(n), size)
		}
		at := off
		off += int64(n)
		return at, buf[:n], nil
	}
	return &Stream{Size: size, Next: next}, nil
}
