package main

import (
	"flag"
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
}

func (f *imageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.format, "format", "", "declared image format: raw, vmdk or vhd (default: detect)")
	fs.StringVar(&f.format, "f", "", "short for --format")
	fs.BoolVar(&f.trust, "trust-format", false, "read the image as --format even when its bytes look like another format")
	fs.Var(&f.parents, "parent", "a parent image of a delta image, nearest first (repeatable)")
	fs.Int64Var(&f.maxSize, "max-virtual-size", 0, "refuse sparse images larger than this many bytes (0: the readers' defaults)")
}

func (f *imageFlags) open(path string) (disk.Image, error) {
	return diskport.Open(path, diskport.Options{
		Format:         f.format,
		TrustFormat:    f.trust,
		Parents:        f.parents,
		MaxVirtualSize: f.maxSize,
	})
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }
