package main

import (
	"flag"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/manifest"
)

// splitSynopsis is the synopsis of the split flags.
const splitSynopsis = "[--format F|ova [--trust-format]] [--disk N] [--no-verify-manifest] [--volume-size GIB] [--part-size 10MiB] [--naming aws|euca2ools] [--name NAME]"

// splitFlags are the flags that say how an image is cut into parts, shared
// by manifest create and upload.
type splitFlags struct {
	partSize   byteSize
	format     string
	trust      bool
	volumeSize volumeGiB
	naming     string
	name       string
	ova        ovaFlags
}

func (f *splitFlags) register(fs *flag.FlagSet) {
	f.partSize = manifest.DefaultPartSize
	fs.Var(&f.partSize, "part-size", "`size` of each part: 10MiB, 10M, 512K, or bytes")
	fs.StringVar(&f.format, "format", "", "declared image format: "+diskport.FormatNames()+", or ova to cut a whole OVA appliance for ImportInstance (default: from the bytes; an .ova without --format gives the disk --disk picks)")
	fs.BoolVar(&f.trust, "trust-format", false, "take --format even when the image's bytes look like another format")
	fs.Var(&f.volumeSize, "volume-size", "volume `size` in GiB: 12 or 12GiB (default: the virtual size rounded up)")
	fs.StringVar(&f.naming, "naming", "aws", "part names: aws (NAME.partN) or euca2ools (NAME.part.N)")
	fs.StringVar(&f.name, "name", "", "base name of the parts and manifest (default: the image's file name)")
	f.ova.register(fs)
}

func (f *splitFlags) options() (manifest.SplitOptions, error) {
	naming, err := manifest.ParseNaming(strings.ToLower(f.naming))
	if err != nil {
		return manifest.SplitOptions{}, usageError("%v", err)
	}
	if f.partSize <= 0 || f.partSize > manifest.MaxPartSize {
		return manifest.SplitOptions{}, usageError("--part-size must be between 1 byte and 1 GiB")
	}
	return manifest.SplitOptions{PartSize: int64(f.partSize), Format: f.format, TrustFormat: f.trust, VolumeSize: int64(f.volumeSize) << 30, Naming: naming, Name: f.name}, nil
}
