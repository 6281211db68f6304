package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// imageFlags are the flags every verb that opens an image takes.
type imageFlags struct {
	format  string
	trust   bool
	parents stringList
	maxSize int64
	ova     ovaFlags
}

func (f *imageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.format, "format", "", "declared image format: "+diskport.FormatNames()+" (default: detect)")
	fs.StringVar(&f.format, "f", "", "short for --format")
	fs.BoolVar(&f.trust, "trust-format", false, "read the image as --format even when its bytes look like another format")
	fs.Var(&f.parents, "parent", "a parent image of a delta image, nearest first (repeatable)")
	fs.Int64Var(&f.maxSize, "max-virtual-size", 0, "refuse sparse images larger than this many bytes (0: the readers' defaults)")
	f.ova.register(fs)
}

func (f *imageFlags) open(path string) (disk.Image, error) {
	if f.format == "" && len(f.parents) == 0 && isOVA(path) {
		return openOVADisk(path, f.ova, f.maxSize)
	}
	if f.ova != (ovaFlags{}) {
		return nil, usageError("--disk and --no-verify-manifest are for an OVA, and %s is not one", path)
	}
	img, err := diskport.Open(path, diskport.Options{
		Format:         f.format,
		TrustFormat:    f.trust,
		Parents:        f.parents,
		MaxVirtualSize: f.maxSize,
	})
	return img, mismatchHint(err)
}

// mismatchHint gives a declared format the bytes contradict the CLI's
// advice, in flags (the library's advice names Options fields).
func mismatchHint(err error) error {
	var me *diskport.MismatchError
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
// it as human text or JSON (info, map), and opens the image.
func (c *command) openWithOutput(args []string) (img disk.Image, path, output string, err error) {
	fs := c.flags()
	var f imageFlags
	f.register(fs)
	out := fs.String("output", "human", "output format: human or json")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return nil, "", "", err
	}
	if *out != "human" && *out != "json" {
		return nil, "", "", usageError("--output must be human or json, not %q", *out)
	}
	img, err = f.open(pos[0])
	if err != nil {
		return nil, "", "", err
	}
	return img, pos[0], *out, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }
