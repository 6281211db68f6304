package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	pathpkg "path"
	"path/filepath"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/ova"
)

// ovaFlags are the flags of the verbs that read an image, for an OVA: which
// of its disks, and whether its .mf must cover them.
type ovaFlags struct {
	disk     int
	noVerify bool
}

func (f *ovaFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.disk, "disk", 0, "for an OVA: the `N`th disk to read, by its number in boot order (info lists them; default 0, the boot disk)")
	fs.BoolVar(&f.noVerify, "no-verify-manifest", false, "for an OVA: read it even when its .mf is missing, lacks a disk or lists a file the OVA lacks")
}

// isOVA reports whether the file at path is a tar archive, as an OVA is.
// Any error is left to the open that follows.
func isOVA(path string) bool {
	h, err := disk.OpenHostFile(path)
	if err != nil {
		return false
	}
	defer h.Close()
	f, err := diskport.Detect(h)
	return err == nil && f == diskport.Tar
}

// openOVA opens the OVA at path, with the CLI's advice for an .mf that
// does not cover it.
func openOVA(path string, f ovaFlags, maxSize int64) (*ova.Appliance, error) {
	a, err := ova.OpenFile(path, ova.Options{NoVerifyManifest: f.noVerify, MaxVirtualSize: maxSize})
	var ce *ova.CoverageError
	if errors.As(err, &ce) {
		return nil, &hinted{err.Error() + " (--no-verify-manifest reads it anyway)", err}
	}
	return a, err
}

// printAppliance lists the virtual system and disks of a, the OVA at path
// whose disk n img is.
func printAppliance(w io.Writer, path string, img *manifest.Image) {
	a, n := img.Appliance()
	fmt.Fprintf(w, "appliance: %s (OVF %s, descriptor %s", path, a.Version, a.Descriptor)
	if a.Manifest != "" {
		fmt.Fprintf(w, ", manifest %s", a.Manifest)
	}
	fmt.Fprintln(w, ")")
	if a.Cert != "" {
		switch sig := a.Signature; {
		case sig == nil:
			fmt.Fprintf(w, "certificate: %s (no .mf to sign: not checked)\n", a.Cert)
		case sig.Verified:
			fmt.Fprintf(w, "certificate: %s, signed by %s: %s\n", a.Cert, sig.Subject, sig.Note)
		default:
			fmt.Fprintf(w, "certificate: %s: not checked: %s\n", a.Cert, sig.Note)
		}
	}
	for _, u := range a.Unverified {
		fmt.Fprintf(w, "not checked against the .mf (not a disk, over 1 MiB): %s\n", u)
	}
	fmt.Fprintf(w, "virtual system: %s\ndisks, in boot order:\n", a.System)
	for i, k := range a.Disks {
		mark := ""
		if i == n {
			mark = "  <- described above"
		}
		at := ""
		if k.Controller != "" {
			at = fmt.Sprintf(" on %s:%s", k.Controller, k.Address)
		}
		comp := ""
		if k.Compression != "" {
			comp = ", " + k.Compression + "-compressed"
		}
		fmt.Fprintf(w, "  %d: %s %s, capacity %s (%d bytes)%s%s%s\n", i, k.File, k.Format, disk.FormatSize(k.Capacity), k.Capacity, comp, at, mark)
	}
}

// applianceJSON is the appliance part of `info --output json` for an OVA.
func applianceJSON(path string, img *manifest.Image) map[string]any {
	a, _ := img.Appliance()
	return kebab(map[string]any{
		"path": path, "ovf_version": a.Version, "descriptor": a.Descriptor, "manifest": a.Manifest,
		"certificate": a.Cert, "signature": a.Signature, "unverified": a.Unverified, "virtual_system": a.System, "disks": a.Disks,
	})
}

// convertAllOVA converts every disk of the OVA at path into dir, as
// NAME-N.raw in boot order, each checked against the .mf.
func convertAllOVA(ctx context.Context, path, dir string, f imageFlags, opts convert.Options) error {
	boot, err := f.open(ctx, path)
	if err != nil {
		return err
	}
	defer boot.Close()
	a, _ := boot.Appliance()
	if a == nil {
		return usageError("--all is for an OVA, and %s is not one", path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--all: %w", err)
	}
	base := filepath.Base(path)
	base = base[:len(base)-len(filepath.Ext(base))]
	for i, d := range a.Disks {
		img := boot
		if i > 0 {
			if img, err = boot.Disk(i); err != nil {
				return err
			}
		}
		dst := filepath.Join(dir, fmt.Sprintf("%s-%d.raw", base, i))
		o := opts
		if img.Sequential() {
			o.Workers = 1 // a gzip-compressed member is read as a stream
		}
		err := partialLeft(dst)
		var res *convert.Result
		if o.Force || o.Resume || err == nil {
			res, err = convert.Convert(ctx, img, dst, o)
		}
		if i > 0 {
			img.Close()
		}
		if err != nil {
			return fmt.Errorf("disk %d (%s): %w", i, d.File, destError(existsHint(err), dst))
		}
		fmt.Fprintf(stdout, "converted %s disk %d (%s), %s, to %s: volume %s\n",
			path, i, d.File, sizeText(res.VirtualSize), dst, sizeText(res.VolumeSize))
	}
	return nil
}

// ovaSource points opts at disk f.ova.disk of the OVA at path, when path
// is one and no format was declared: the parts are cut from the disk
// member in place, named NAME-N.EXT after the OVA, and the member's .mf
// checksum is checked once every byte has been read. A declared --format
// ova cuts the whole appliance instead (for ImportInstance, which makes a
// volume of each disk). It returns what closes the OVA.
func (f *splitFlags) ovaSource(path string, opts *manifest.SplitOptions) (func(), error) {
	if strings.EqualFold(strings.TrimSpace(f.format), manifest.FormatOVA) {
		if f.ova != (ovaFlags{}) {
			return nil, usageError("--format ova cuts the whole appliance into parts; --disk and --no-verify-manifest pick and read one of its disks, without --format")
		}
		return func() {}, nil
	}
	if f.format != "" || !isOVA(path) {
		if f.ova != (ovaFlags{}) {
			return nil, usageError("--disk and --no-verify-manifest are for an OVA, and %s is not one", path)
		}
		return func() {}, nil
	}
	a, err := openOVA(path, f.ova, 0)
	if err != nil {
		return nil, err
	}
	d, err := a.OpenDisk(f.ova.disk)
	if err != nil {
		a.Close()
		return nil, err
	}
	done := func() { d.Close(); a.Close() }
	if d.Sequential() {
		done()
		return nil, fmt.Errorf("ova: disk %d of %s is gzip-compressed, which EC2 does not import; unpack the OVA and gunzip %q first", f.ova.disk, path, d.Disk.File)
	}
	opts.Source, opts.Verify = d.Storage(), d.Verify
	if opts.Name == "" {
		base := filepath.Base(path)
		opts.Name = fmt.Sprintf("%s-%d%s", base[:len(base)-len(filepath.Ext(base))], f.ova.disk, pathpkg.Ext(d.Disk.File))
	}
	return done, nil
}
