package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/ova"
)

// imageSynopsis and sourceSynopsis are the synopsis of the image flags
// and the image argument, in every verb that opens an image.
const (
	imageSynopsis  = "[-f|--format F [--trust-format]] [--parent FILE]... [--max-virtual-size SIZE] [--disk N] [--no-verify-manifest]"
	sourceSynopsis = "(IMAGE | --manifest MANIFEST [--endpoint URL])"
)

// imageFlags are the flags every verb that opens an image takes.
type imageFlags struct {
	format   string
	trust    bool
	parents  stringList
	maxSize  byteSize
	manifest string // --manifest: the image is the one a manifest's parts hold
	endpoint string // --endpoint of an s3:// --manifest, for the verbs that register it
	ova      ovaFlags
}

// registerEndpoint registers --endpoint, the S3 endpoint of an
// s3://bucket/key --manifest (verbs whose --endpoint means nothing else).
func (f *imageFlags) registerEndpoint(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoint, "endpoint", "", "S3 endpoint of an s3://BUCKET/KEY --manifest, read with the AWS environment's credentials (default: https://s3.REGION.amazonaws.com)")
}

func (f *imageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.format, "format", "", "declared image format: "+diskport.FormatNames()+", or ova for an OVA appliance's disk (--disk picks it) (default: detect)")
	fs.StringVar(&f.format, "f", "", "short for --format")
	fs.BoolVar(&f.trust, "trust-format", false, "read the image as --format even when its bytes look like another format")
	fs.Var(&f.parents, "parent", "a parent image `file` of a delta image, nearest first (repeatable)")
	fs.StringVar(&f.manifest, "manifest", "", "read the image an EC2 import manifest's parts hold (a manifest path, a directory holding one, a URL, or s3://BUCKET/KEY), without reassembling it")
	fs.Var(&f.maxSize, "max-virtual-size", "refuse sparse images larger than this `size` (2048GiB, 500G, or bytes; 0: the readers' defaults)")
	f.ova.register(fs)
}

// split checks a verb's positional arguments, IMAGE and then outs more
// (DST), or with --manifest the outs alone, and returns the image's
// name and the rest.
func (f *imageFlags) split(pos []string, outs int) (string, []string, error) {
	if f.manifest == "" {
		if len(pos) != outs+1 {
			return "", nil, usageError("wrong number of arguments (%d)", len(pos))
		}
		return pos[0], pos[1:], nil
	}
	if len(pos) != outs {
		return "", nil, usageError("with --manifest, the image is the manifest's: give %d more argument(s), not %d", outs, len(pos))
	}
	if f.format != "" || len(f.parents) > 0 {
		return "", nil, usageError("with --manifest the format is the manifest's file-format, and there are no parents")
	}
	return f.manifest, pos, nil
}

// open opens the image at path, or with --manifest the image the
// manifest's parts hold (path is then the manifest's), through the one
// import path: every checksum the source carries (a manifest's part and
// whole-file SHA-256s, an OVA disk's .mf entry) is checked by its
// Verify, which convert and check call before they finish. ctx bounds
// the image's fetches (a manifest's parts): the verbs pass the context
// their signals end, so that an interrupt stops the fetches in flight.
func (f *imageFlags) open(ctx context.Context, path string) (*manifest.Image, error) {
	if f.manifest != "" {
		if f.ova.disk != 0 || f.ova.noVerify {
			return nil, usageError("--disk and --no-verify-manifest are for an OVA, not a manifest")
		}
		return openManifestImageAt(ctx, f.manifest, f.endpoint, nil)
	}
	format := f.format
	if strings.EqualFold(strings.TrimSpace(format), "ova") {
		// An OVA is read as it is without --format: its disk --disk
		// picks, checked against its .mf.
		if !isOVA(path) {
			return nil, fmt.Errorf("--format ova: %s is not an OVA (a tar archive)", path)
		}
		format = ""
	}
	img, err := manifest.OpenImage(ctx, manifest.Source{Path: path, Disk: f.ova.disk}, manifest.ImageOptions{
		Image: diskport.Options{
			Format:         format,
			TrustFormat:    f.trust,
			Parents:        f.parents,
			MaxVirtualSize: int64(f.maxSize),
		},
		NoVerifyManifest: f.ova.noVerify,
	})
	var ce *ova.CoverageError
	if errors.As(err, &ce) {
		return nil, &hinted{err.Error() + " (--no-verify-manifest reads it anyway)", err}
	}
	if errors.Is(err, disk.ErrUnsupported) && (f.ova.disk != 0 || f.ova.noVerify) && !isOVA(path) {
		return nil, usageError("--disk and --no-verify-manifest are for an OVA, and %s is not one", path)
	}
	return img, parentHint(mismatchHint(err))
}

// parentWords rewrites the readers' advice about parents, which names
// library fields, in the flag a user gives.
var parentWords = strings.NewReplacer(
	"; pass the opened parent in Options.Parent", "; give it with --parent FILE",
	", which must be supplied by the caller", ": give it with --parent FILE",
	"a parent was supplied but", "--parent was given, but",
	"a parent was given, but", "--parent was given, but",
	"supplied parent", "--parent",
	"were given", "were given with --parent",
)

// parentHint gives an error about a delta image's parent the CLI's
// wording: the --parent flag, never Options.Parent or "the caller".
func parentHint(err error) error {
	if err == nil || !errors.Is(err, disk.ErrUnsafe) && !errors.Is(err, disk.ErrCorrupt) {
		return err
	}
	if msg := parentWords.Replace(err.Error()); msg != err.Error() {
		return &hinted{msg, err}
	}
	return err
}

// mismatchHint gives a declared format the bytes contradict the CLI's
// advice, in flags (the library's advice names Options fields).
func mismatchHint(err error) error {
	var me *diskport.MismatchError
	if errors.As(err, &me) && me.Found == diskport.Tar {
		// A tar is an appliance to open, never bytes to read as a disk.
		return &hinted{fmt.Sprintf("%s (give --format ova, or no --format, to read the appliance's disks; --disk N picks one)", me.Reason()), err}
	}
	if errors.As(err, &me) {
		fix := ""
		if me.Found.Readable() {
			fix = "give --format " + me.Found.EC2Name() + ", or "
		}
		return &hinted{fmt.Sprintf("%s (%s--trust-format to read them as %s anyway)", me.Reason(), fix, me.Declared.EC2Name()), err}
	}
	return err
}

// hinted is an error with the CLI's wording.
type hinted struct {
	msg string
	err error
}

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Unwrap() error { return h.err }

// openWithOutput parses the flags of a verb that reads one image and prints
// it as human text or JSON (info, map), and opens the image under ctx.
func (c *command) openWithOutput(ctx context.Context, args []string) (img *manifest.Image, path, output string, err error) {
	fs := c.flags()
	var f imageFlags
	f.register(fs)
	f.registerEndpoint(fs)
	out := choiceFlag(fs, "output", "output `format`: human or json", "human", "json")
	pos, err := c.parse(fs, args, 0, 1)
	if err != nil {
		return nil, "", "", err
	}
	if path, _, err = f.split(pos, 0); err != nil {
		return nil, "", "", err
	}
	if img, err = f.open(ctx, path); err != nil {
		return nil, "", "", err
	}
	return img, manifest.RedactURL(path), *out, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }
