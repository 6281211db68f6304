package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/diskport/diskport/convert"
)

func init() {
	c := &command{
		name:    "convert",
		summary: "convert an image to a raw, EBS-sized volume",
		usage:   "convert [--format F] [--volume-size GIB | --exact-size] [--progress] [--force] SRC DST",
	}
	c.run = func(args []string) error {
		fs := c.flags()
		var img imageFlags
		img.register(fs)
		volGiB := fs.Int64("volume-size", 0, "volume size in GiB (default: the virtual size rounded up to a whole GiB)")
		exact := fs.Bool("exact-size", false, "make the volume exactly the virtual size")
		force := fs.Bool("force", false, "overwrite an existing destination file")
		progress := fs.Bool("progress", false, "show progress on stderr")
		noSync := fs.Bool("no-sync", false, "do not flush the volume to stable storage (benchmarks, scratch work)")
		zeroed := fs.Bool("device-zeroed", false, "a block-device destination already reads as zeros; skip zeroing it")
		pos, err := c.parse(fs, args, 2, 2)
		if err != nil {
			return err
		}
		if *exact && *volGiB != 0 {
			return usageError("--exact-size and --volume-size exclude each other")
		}
		if *volGiB < 0 {
			return usageError("--volume-size must be positive")
		}
		im, err := img.open(pos[0])
		if err != nil {
			return err
		}
		defer im.Close()
		opts := convert.Options{
			VolumeSize:   *volGiB * convert.GiB,
			ExactSize:    *exact,
			Force:        *force,
			NoSync:       *noSync,
			DeviceZeroed: *zeroed,
		}
		var bar *progressLine
		if *progress {
			bar = newProgressLine(os.Stderr)
			opts.Progress = bar.update
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		res, err := convert.Convert(ctx, im, pos[1], opts)
		if bar != nil {
			bar.finish()
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "converted %s (%d bytes) to %s: volume %d bytes (%d GiB)\n",
			pos[0], res.VirtualSize, pos[1], res.VolumeSize, convert.GiBs(res.VolumeSize))
		return nil
	}
	register(c)
}
