package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/volume"
)

func init() {
	register(&command{
		name:    "unbundle",
		summary: "check and decrypt an AMI bundle and restore its volume",
		usage:   "unbundle --private-key PEM (--dir DIR | --endpoint URL --bucket B) --manifest NAME [--user-cert PEM] [--allow-unsigned] [--force] DST",
		run:     runUnbundle,
	})
}

// runUnbundle runs `diskport unbundle`.
func runUnbundle(u *command, args []string) error {
	fs := u.flags()
	keyPath := fs.String("private-key", "", "PEM private key decrypting the bundle key (yours or the EC2 key)")
	dir := fs.String("dir", "", "read the bundle from this directory")
	endpoint := fs.String("endpoint", "", "read the bundle from this S3 endpoint (credentials from AWS_ACCESS_KEY_ID and "+secretEnv+")")
	bucket := fs.String("bucket", "", "the bundle's bucket")
	manifest := fs.String("manifest", "", "the manifest's name, PREFIX.manifest.xml")
	signer := fs.String("user-cert", "", "PEM certificate verifying the manifest signature (default: the private key's public half)")
	unsigned := fs.Bool("allow-unsigned", false, "accept an UNSIGNED manifest")
	force := fs.Bool("force", false, "overwrite an existing DST")
	progress := progressFlags(fs)
	pos, err := u.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *keyPath == "" || *manifest == "" {
		return usageError("--private-key and --manifest are required")
	}
	if (*dir == "") == (*endpoint == "") {
		return usageError("give one of --dir and --endpoint")
	}
	if *endpoint != "" && *bucket == "" {
		return usageError("--endpoint needs --bucket")
	}
	opt := bundle.ReadOptions{AllowUnsigned: *unsigned}
	if opt.Key, err = readPrivateKey(*keyPath); err != nil {
		return err
	}
	if *signer != "" {
		if opt.Signer, err = readPublicKey(*signer); err != nil {
			return err
		}
	}
	var src bundle.Source = bundle.Dir(*dir)
	if *endpoint != "" {
		id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv(secretEnv)
		if id == "" || secret == "" {
			return errors.New("unbundle from S3: set AWS_ACCESS_KEY_ID and " + secretEnv)
		}
		if src, err = bundle.NewS3(*endpoint, *bucket, id, secret, os.Getenv("AWS_REGION")); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	r, err := bundle.Open(ctx, src, *manifest, opt)
	if err != nil {
		return err
	}
	// Written under a temporary name, flushed and renamed into place
	// only once complete and verified: a crash or a signal never
	// leaves a partial volume under the final name.
	w, err := volume.Create(pos[0], r.Manifest.Image.Size, volume.Options{Force: *force})
	if err != nil {
		return err
	}
	bar := newBar(*progress, r.Manifest.Image.Size, "restoring")
	r.Progress = bar.set
	err = r.ExtractVolume(ctx, w)
	bar.finish()
	if err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		return err
	}
	m := r.Manifest
	fmt.Fprintf(stdout, "restored %s (%d bytes) from %d parts: parts, manifest signature and image digest %s verified\n",
		pos[0], m.Image.Size, len(m.Image.Parts.Part), m.Image.Digest.Hex)
	return nil
}
