package manifest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/atomicfile"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/diskport/diskport/ova"
)

// Naming is a convention for naming part objects.
type Naming int

const (
	// NamingAWS names parts NAME.part0, NAME.part1, ... as the AWS tools
	// do.
	NamingAWS Naming = iota
	// NamingEuca2ools names parts NAME.part.0, NAME.part.1, ... as
	// euca2ools does.
	NamingEuca2ools
)

// PartName returns the name of part i of the file named base.
func (n Naming) PartName(base string, i int) string {
	if n == NamingEuca2ools {
		return base + ".part." + strconv.Itoa(i)
	}
	return base + ".part" + strconv.Itoa(i)
}

// ParseNaming parses "aws" or "euca2ools".
func ParseNaming(s string) (Naming, error) {
	switch strings.ToLower(s) {
	case "aws", "":
		return NamingAWS, nil
	case "euca2ools", "euca":
		return NamingEuca2ools, nil
	}
	return 0, fmt.Errorf("part naming %q: want aws (NAME.partN) or euca2ools (NAME.part.N)", s)
}

// ManifestName returns the manifest's file or object name for the file
// named base: base + ".manifest.xml".
func ManifestName(base string) string { return base + manifestSuffix }

// DefaultImporter is the importer element diskport writes.
var DefaultImporter = Importer{Name: "diskport", Version: "1", Release: Version}

// SplitOptions say how a file is cut into parts and described.
type SplitOptions struct {
	// PartSize is the size of every part but the last; 0 means
	// DefaultPartSize (10 MiB).
	PartSize int64
	// Format is the declared file-format, any name diskport.ParseFormat
	// takes ("RAW", "vhd", "vpc", ...), or "OVA" for a whole appliance;
	// "" means detected from the bytes (an OVA is never taken for one
	// without being declared). A declared format the bytes contradict is
	// an error (disk.ErrFormatMismatch), as in diskport.Open: a VMDK
	// declared RAW too. A declared OVA must be one package ova opens (a
	// tar with an .ovf descriptor and an .mf covering its disks); its
	// manifest's volume-size is its boot disk's.
	Format string
	// TrustFormat takes the declared Format even when the bytes look like
	// another format, as diskport.Options.TrustFormat does.
	TrustFormat bool
	// VolumeSize is the volume size in bytes, as convert.Options.VolumeSize:
	// a whole number of GiB (EC2's unit, that of the manifest's
	// volume-size); 0 means the virtual disk size
	// rounded up to a whole GiB (at least 1).
	VolumeSize int64
	// Naming is the part naming convention.
	Naming Naming
	// Name is the base name of parts and manifest; "" means the image
	// file's base name.
	Name string
	// KeyPrefix is put before every part key ("" for none; a "/" is added
	// when missing).
	KeyPrefix string
	// Progress, when set, is called as parts are done (written; for
	// Upload, sent or found already stored) with the bytes of the file
	// done so far and the file's size. Calls are serialised.
	Progress func(done, total int64)
	// Force lets Create write into an output directory that already holds
	// files (which parts and a manifest of the same names replace);
	// without it such a directory is refused with ErrDirNotEmpty, so two
	// images' parts are never mixed. Upload ignores it.
	Force bool
	// Source, when set, holds the image's bytes instead of the file the
	// image argument names (a disk member read in place inside an OVA);
	// Name must then be set. The caller closes it.
	Source disk.Storage
	// Verify, when set, is called once every byte has been read, before
	// the manifest is written: the source's own end-to-end check (an OVA
	// member's .mf checksum). Its error fails the call.
	Verify func() error
}

// source returns the storage the image is read from (Source, or the file
// at image) and the function that closes what it opened.
func (o *SplitOptions) source(image string) (disk.Storage, func(), error) {
	if o.Source != nil {
		if o.Name == "" {
			return nil, nil, errors.New("manifest: SplitOptions.Source without a Name")
		}
		return o.Source, func() {}, nil
	}
	f, err := openImage(image)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// ErrDirNotEmpty is Create's error for an output directory that holds
// files, without SplitOptions.Force.
var ErrDirNotEmpty = errors.New("output directory is not empty")

func (o *SplitOptions) partSize() int64 {
	if o.PartSize <= 0 {
		return DefaultPartSize
	}
	return o.PartSize
}

// MaxPartSize is the largest part size [Create] and [Upload] cut (1 GiB:
// parts are held in memory while they are hashed and sent; S3 takes up to
// 5 GiB in one PUT, and every known writer uses 10 MiB).
const MaxPartSize = 1 << 30

// imageFormat tells the manifest file-format of the image in s and the
// size of the virtual disk it holds, by the rule [diskport.Open] applies:
// the format detected from the bytes, or the declared o.Format, which the
// bytes must not contradict (disk.ErrFormatMismatch, a declared RAW for a
// VMDK too) unless o.TrustFormat. The image is opened to check it and to
// read its virtual size; a VMDK descriptor, which keeps its data in other
// files, is refused (diskport.Options.SingleFile).
func imageFormat(s disk.Storage, o *SplitOptions) (format string, virtual int64, err error) {
	if strings.EqualFold(strings.TrimSpace(o.Format), FormatOVA) {
		return applianceFormat(s)
	}
	// The readers' default size limits, as convert applies them.
	opts := diskport.Options{Format: o.Format, TrustFormat: o.TrustFormat, SingleFile: true}
	f, err := diskport.FormatOf(s, opts)
	if err != nil {
		return "", 0, err
	}
	if f.EC2Name() == "" {
		return "", 0, errorf(disk.ErrUnsupported, "%s images are not an import format (one of %s)", f, ec2Names())
	}
	opts.Format, opts.TrustFormat = f.String(), true // FormatOf has checked it
	img, err := diskport.OpenStorage(s, opts)
	if err != nil {
		return "", 0, err
	}
	defer img.Close()
	return f.EC2Name(), img.Size(), nil
}

// applianceFormat checks that s, declared OVA, is an appliance package
// ova opens, with its default limits and its .mf required (as the API
// server opens it), and returns its boot disk's capacity as the virtual
// size.
func applianceFormat(s disk.Storage) (string, int64, error) {
	f, err := diskport.Detect(s)
	if err != nil {
		return "", 0, err
	}
	if f != diskport.Tar {
		return "", 0, &diskport.MismatchError{Name: s.Name(), Declared: diskport.Tar, Found: f}
	}
	a, err := ova.Open(s, ova.Options{})
	if err != nil {
		return "", 0, fmt.Errorf("manifest: declared OVA: %w", err)
	}
	defer a.Close()
	if len(a.Disks) == 0 {
		return "", 0, errorf(disk.ErrUnsupported, "%s: declared OVA, but the appliance has no disks", s.Name())
	}
	return FormatOVA, a.Disks[0].Capacity, nil
}

// describe checks the image and builds the manifest skeleton: format,
// sizes, part ranges and keys, without checksums or URLs.
func describe(s disk.Storage, name string, o *SplitOptions) (*Manifest, error) {
	size := s.Size()
	ps := o.partSize()
	if ps > MaxPartSize {
		return nil, errorf(disk.ErrTooLarge, "part size %d larger than %d", ps, int64(MaxPartSize))
	}
	if size > parts.MaxFileSize {
		return nil, errorf(disk.ErrTooLarge, "file of %d bytes larger than %d", size, int64(parts.MaxFileSize))
	}
	if (size+ps-1)/ps > parts.MaxParts {
		return nil, errorf(disk.ErrTooLarge, "%d-byte parts of a %d-byte file are more than %d parts", ps, size, parts.MaxParts)
	}
	if size == 0 {
		return nil, errorf(disk.ErrCorrupt, "the image is empty")
	}
	format, virtual, err := imageFormat(s, o)
	if err != nil {
		return nil, err
	}
	gib := (virtual + 1<<30 - 1) >> 30
	vol := max(gib, 1)
	if o.VolumeSize > 0 {
		if o.VolumeSize%(1<<30) != 0 {
			return nil, fmt.Errorf("manifest: volume size %d bytes is not a whole number of GiB", o.VolumeSize)
		}
		if o.VolumeSize>>30 < gib {
			return nil, errorf(disk.ErrTooLarge, "volume of %d GiB is smaller than the %d-byte virtual disk", o.VolumeSize>>30, virtual)
		}
		vol = o.VolumeSize >> 30
	}
	prefix := o.KeyPrefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	m := &Manifest{Version: Version, FileFormat: format, Importer: DefaultImporter, Size: size, VolumeSize: vol}
	for off, i := int64(0), 0; off < size; off, i = off+ps, i+1 {
		m.Parts = append(m.Parts, parts.Part{Index: i, Offset: off, Length: min(ps, size-off), Key: prefix + o.Naming.PartName(name, i)})
	}
	return m, nil
}

// Create splits the image file into parts in outDir (named by
// opts.Naming), hashing them in the same pass, and writes the manifest
// outDir/NAME.manifest.xml with the checksum extension. The manifest's URLs
// are empty: the parts are read back with a [parts.DirStore]. It returns
// the manifest and the manifest file's path.
func Create(ctx context.Context, image, outDir string, opts SplitOptions) (*Manifest, string, error) {
	f, done, err := opts.source(image)
	if err != nil {
		return nil, "", err
	}
	defer done()
	name := opts.Name
	if name == "" {
		name = filepath.Base(image)
	}
	m, err := describe(f, name, &opts)
	if err != nil {
		return nil, "", err
	}
	if !opts.Force {
		if ents, err := os.ReadDir(outDir); err == nil && len(ents) > 0 {
			return nil, "", fmt.Errorf("manifest: %s: %w (it holds %s)", outDir, ErrDirNotEmpty, ents[0].Name())
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, "", err
	}
	file := m.File()
	if err := (parts.DirStore{Dir: outDir}).Write(ctx, f, &file, opts.Progress); err != nil {
		return nil, "", err
	}
	m.SHA256 = file.SHA256
	if opts.Verify != nil {
		if err := opts.Verify(); err != nil {
			return nil, "", err
		}
	}
	mpath := filepath.Join(outDir, ManifestName(name))
	if err := atomicfile.WriteFile(mpath, m.Marshal(), 0o644); err != nil {
		return nil, "", err
	}
	return m, mpath, nil
}

// openImage opens the image file a manifest describes: a regular file,
// opened without blocking (disk.OpenFile).
func openImage(path string) (*disk.HostFile, error) {
	f, err := disk.OpenFile(path, disk.FileOptions{})
	if err != nil {
		return nil, err
	}
	h, err := disk.NewHostFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return h, nil
}
