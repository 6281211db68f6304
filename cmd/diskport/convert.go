package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/manifest"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "convert an image to a raw, EBS-sized volume, or to a VMDK, VHD or OVA image",
		usage: "convert " + imageSynopsis + " [-O raw|vmdk|vhd|ova [--subformat S | -o subformat=S]] [--volume-size GIB | --exact-size] " +
			"[-p | --progress[=json]] [--checksum sha256] [--resume] [--no-sync] [--force] [--device-zeroed] [--workers N] " +
			"(SRC | --manifest MANIFEST [--endpoint URL]) (DST | -) | --all DSTDIR OVA",
		run: runConvert,
	})
}

// runConvert runs `diskport convert`.
func runConvert(c *command, args []string) error {
	fs := c.flags()
	var img imageFlags
	img.register(fs)
	img.registerEndpoint(fs)
	var volGiB volumeGiB
	fs.Var(&volGiB, "volume-size", "volume `size` in GiB: 12 or 12GiB (default: the virtual size rounded up to a whole GiB)")
	exact := fs.Bool("exact-size", false, "make the volume exactly the virtual size")
	force := fs.Bool("force", false, "overwrite an existing destination file")
	var progress progressMode
	fs.Var(&progress, "progress", "show progress: a bar on stderr, or --progress=json for JSON lines on stdout")
	fs.Var(&progress, "p", "short for --progress")
	checksum := fs.String("checksum", "", "print a checksum of the volume: sha256 (any case)")
	resume := fs.Bool("resume", false, "continue an interrupted (even killed) conversion into the same destination, or start over when it left nothing usable; "+
		"with --resume, a run stopped by SIGINT, SIGTERM or SIGHUP keeps its partial output for the next --resume (without it, the partial output is removed)")
	noSync := fs.Bool("no-sync", false, "do not flush the volume to stable storage (benchmarks, scratch work)")
	zeroed := fs.Bool("device-zeroed", false, "a block-device destination already reads as zeros; skip zeroing it")
	workers := fs.Int("workers", 0, "segments read and written at once (with -O vmdk, vhd or ova: read and compressed) (default: one per CPU, at most 8)")
	all := fs.String("all", "", "for an OVA: convert every disk into this directory, as NAME-N.raw in boot order")
	var output outputFlags
	output.register(fs)
	pos, err := c.parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	exp, err := output.parse()
	if err != nil {
		return err
	}
	if exp != nil && (*all != "" || *resume || *exact || volGiB != 0 || *zeroed) {
		return usageError("--all, --resume, --exact-size, --volume-size and --device-zeroed are for a raw volume, not -O %s", exp.what())
	}
	if *all != "" {
		if len(pos) != 1 || *resume || img.manifest != "" {
			return usageError("with --all DSTDIR, give only the OVA (and no --resume or --manifest)")
		}
		pos = append(pos, *all)
	}
	src, rest, err := img.split(pos, 1)
	if err != nil {
		return err
	}
	pos = []string{src, rest[0]}
	if *exact && volGiB != 0 {
		return usageError("--exact-size and --volume-size exclude each other")
	}
	*checksum = strings.ToLower(*checksum)
	if *checksum != "" && *checksum != "sha256" {
		return usageError("--checksum supports sha256, not %q", *checksum)
	}
	// SIGHUP too: an SSH session that drops must not leave the partial
	// output behind, or kill the run before it can keep its journal.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	opts := convert.Options{
		VolumeSize:   int64(volGiB) * convert.GiB,
		ExactSize:    *exact,
		Force:        *force,
		NoSync:       *noSync,
		DeviceZeroed: *zeroed,
		Resume:       *resume,
		Checksum:     *checksum != "",
		Workers:      *workers,
	}
	if *all != "" {
		return convertAllOVA(ctx, pos[0], *all, img, opts)
	}
	im, err := img.open(ctx, pos[0])
	if err != nil {
		return err
	}
	defer im.Close()
	if pos[1] == "-" && exp == nil {
		return convertToStdout(ctx, im, pos[0], progress, opts)
	}
	if exp != nil {
		return runExport(ctx, im, pos[0], pos[1], exp, exportOptions{force: *force, noSync: *noSync, checksum: *checksum != "", workers: *workers, progress: progress})
	}
	if im.Sequential() {
		opts.Workers = 1 // a gzip-compressed member is read as a stream
	}
	if !*resume && !*force {
		if err := partialLeft(pos[1]); err != nil {
			return err
		}
	}
	var rep *progressReporter
	switch progress {
	case "bar":
		rep = newProgress(progress, stderr, im.Size(), "converting")
	case "json":
		rep = newProgress(progress, stdout, im.Size(), "")
	}
	if rep != nil {
		opts.Progress = rep.update
	}
	res, err := convert.Convert(ctx, im, pos[1], opts)
	rep.finish()
	if err != nil {
		if ctx.Err() != nil {
			return stoppedError(ctx, *resume)
		}
		return destError(existsHint(err), pos[1])
	}
	return printConverted(manifest.RedactURL(pos[0]), pos[1], progress, *resume, res) // a presigned URL's query is a credential
}

// convertToStdout writes the raw volume of im to standard output, front to
// back, and its summary to stderr.
func convertToStdout(ctx context.Context, im *manifest.Image, src string, progress progressMode, opts convert.Options) error {
	switch {
	case opts.Resume || opts.Force || opts.DeviceZeroed:
		return usageError("--resume, --force and --device-zeroed are for a file or device destination, not - (standard output)")
	case progress == "json":
		return usageError("--progress=json prints to standard output, where the volume goes: use -p")
	}
	var rep *progressReporter
	if progress == "bar" {
		rep = newProgress(progress, stderr, im.Size(), "converting")
		opts.Progress = rep.update
	}
	res, err := streamVolume(ctx, im, stdout, opts)
	rep.finish()
	if err != nil {
		return err
	}
	saved := stdout
	defer func() { stdout = saved }()
	stdout = stderr // standard output holds the volume
	return printConverted(manifest.RedactURL(src), "-", "", false, res)
}

// printConverted reports a finished conversion of src to dst: a JSON line
// on stdout with --progress=json, else lines of text. With --resume it
// says whether the run continued an interrupted one or started over.
func printConverted(src, dst string, progress progressMode, resume bool, res *convert.Result) error {
	if progress == "json" {
		return json.NewEncoder(stdout).Encode(convertedJSON{
			Done: true, Source: src, Destination: dst,
			VirtualSize: res.VirtualSize, VolumeSize: res.VolumeSize,
			WrittenBytes: res.WrittenBytes, ResumedBytes: res.ResumedBytes,
			StartedOver: res.StartedOver != "", StartedOverReason: res.StartedOver,
			SHA256: hex.EncodeToString(res.SHA256), VirtualSHA256: hex.EncodeToString(res.VirtualSHA256),
		})
	}
	if res.StartedOver != "" {
		fmt.Fprintf(stdout, "resume: %s\n", res.StartedOver)
	}
	fmt.Fprintf(stdout, "converted %s, %s, to %s: volume %s\n", src, sizeText(res.VirtualSize), dst, sizeText(res.VolumeSize))
	if resume && res.StartedOver == "" {
		fmt.Fprintf(stdout, "resumed: %s were already converted by the interrupted run\n", sizeText(res.ResumedBytes))
	}
	if res.SHA256 != nil {
		fmt.Fprintf(stdout, "sha256 %x  volume (%s)\n", res.SHA256, count(res.VolumeSize, "byte"))
		fmt.Fprintf(stdout, "sha256 %x  virtual disk (first %s)\n", res.VirtualSHA256, count(res.VirtualSize, "byte"))
	}
	return nil
}

// stoppedError says that a signal stopped the conversion, and what became
// of its partial output.
func stoppedError(ctx context.Context, resume bool) error {
	kept := "the partial output was removed"
	if resume {
		kept = "the partial output and its journal were kept: run the same command again to continue"
	}
	return fmt.Errorf("convert stopped: %v; %s", context.Cause(ctx), kept)
}
