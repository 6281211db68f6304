package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
)

func init() {
	register(&command{
		name:    "upload",
		summary: "upload an image to S3 as import-manifest parts and print the ImportManifestUrl",
		usage:   "upload --endpoint URL --bucket B [--create-bucket] [--region R] [--prefix P] [--sigv2] [--expires 7d] " + splitSynopsis + " [--workers N] [-p] IMAGE",
		run:     runUpload,
	})
}

// runUpload runs `diskport upload`.
func runUpload(c *command, args []string) error {
	fs := c.flags()
	endpoint := fs.String("endpoint", "", "S3 endpoint URL (default: https://s3.REGION.amazonaws.com)")
	bucket := fs.String("bucket", "", "bucket for the parts and the manifest: it must exist, unless --create-bucket")
	create := fs.Bool("create-bucket", false, "create --bucket when it does not exist")
	prefix := fs.String("prefix", "", "key prefix for the parts and the manifest")
	region := fs.String("region", "", "bucket region (default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1)")
	sigv2 := fs.Bool("sigv2", false, "sign requests and presigned URLs with signature version 2, for old endpoints")
	var expires duration
	fs.Var(&expires, "expires", "lifetime of the presigned URLs: a `duration` such as 72h or 7d (default: 7d with SigV4, the maximum; 30d with SigV2)")
	par := workersFlag(fs, 4, "parts uploaded at once", "parallel")
	progress := progressFlags(fs)
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
		return usageError("--workers must be at least 1")
	}
	if expires < 0 || (!*sigv2 && time.Duration(expires) > 7*24*time.Hour) {
		return usageError("--expires must be positive and, with SigV4, at most 7d")
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
	b := newBar(*progress, st.Size(), "uploading")
	opts.Progress = b.set
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := manifest.Upload(ctx, cfg, pos[0], manifest.UploadOptions{
		SplitOptions:  opts,
		Bucket:        *bucket,
		RequireBucket: !*create,
		Prefix:        strings.Trim(*prefix, "/"),
		Parallel:      *par,
		Expires:       time.Duration(expires),
	})
	b.finish()
	if err != nil {
		if res != nil && res.Uploaded+res.Skipped > 0 {
			return fmt.Errorf("%w (%s stored; run the same command again to resume)", err, count(res.Uploaded+res.Skipped, "part"))
		}
		if errors.Is(err, parts.ErrNoBucket) {
			return &hinted{err.Error() + " (check the name, or give --create-bucket to create it)", err}
		}
		return mismatchHint(err)
	}
	m := res.Manifest
	fmt.Fprintf(stderr, "uploaded %s (%s), %s, to s3://%s/%s: %s sent, %d already there; volume %d GiB\n",
		pos[0], m.FileFormat, sizeText(m.Size), *bucket, res.ManifestKey, count(res.Uploaded, "part"), res.Skipped, m.VolumeSize)
	fmt.Fprintln(stdout, res.ManifestURL)
	return nil
}
