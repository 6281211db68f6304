package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/diskport/diskport/manifest"
)

func init() {
	register(&command{
		name:    "upload",
		summary: "upload an image to S3 as import-manifest parts and print the ImportManifestUrl",
		usage:   "upload --endpoint URL --bucket B [--prefix P] [--sigv2] [--expires 7d] [--part-size 10MiB] IMAGE",
		run:     runUpload,
	})
}

// runUpload runs `diskport upload`.
func runUpload(c *command, args []string) error {
	fs := c.flags()
	endpoint := fs.String("endpoint", "", "S3 endpoint URL (default: https://s3.REGION.amazonaws.com)")
	bucket := fs.String("bucket", "", "bucket for the parts and the manifest (created if missing)")
	prefix := fs.String("prefix", "", "key prefix for the parts and the manifest")
	region := fs.String("region", "", "bucket region (default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1)")
	sigv2 := fs.Bool("sigv2", false, "sign requests and presigned URLs with signature version 2, for old endpoints")
	expires := fs.Duration("expires", 0, "lifetime of the presigned URLs, e.g. 72h (default: 168h with SigV4, the maximum; 720h with SigV2)")
	par := fs.Int("parallel", 4, "parts uploaded at once")
	progress := fs.Bool("progress", false, "show progress on stderr (default: when stderr is a terminal)")
	var sf splitFlags
	sf.register(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *bucket == "" {
		return usageError("--bucket is required")
	}
	if *par < 1 {
		return usageError("--parallel must be at least 1")
	}
	if *expires < 0 || (!*sigv2 && *expires > 7*24*time.Hour) {
		return usageError("--expires must be positive and, with SigV4, at most 168h")
	}
	opts, err := sf.options()
	if err != nil {
		return err
	}
	done, err := sf.ovaSource(pos[0], &opts) // an OVA: one of its disks, in place
	if err != nil {
		return err
	}
	defer done()
	cfg := s3Config(*endpoint, *region, *sigv2)
	st, err := os.Stat(pos[0])
	if err != nil {
		return err
	}
	b := newBar(*progress, st.Size())
	opts.Progress = b.add
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := manifest.Upload(ctx, cfg, pos[0], manifest.UploadOptions{
		SplitOptions: opts,
		Bucket:       *bucket,
		Prefix:       strings.Trim(*prefix, "/"),
		Parallel:     *par,
		Expires:      *expires,
	})
	b.finish()
	if err != nil {
		if res != nil && res.Uploaded+res.Skipped > 0 {
			return fmt.Errorf("%w (%d parts stored; run the same command again to resume)", err, res.Uploaded+res.Skipped)
		}
		return mismatchHint(err)
	}
	m := res.Manifest
	fmt.Fprintf(stderr, "uploaded %s (%s, %d bytes) to s3://%s/%s: %d parts sent, %d already there; volume %d GiB\n",
		pos[0], m.FileFormat, m.Size, *bucket, res.ManifestKey, res.Uploaded, res.Skipped, m.VolumeSize)
	fmt.Fprintln(stdout, res.ManifestURL)
	return nil
}
