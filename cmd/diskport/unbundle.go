package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/volume"
)

func init() {
	register(&command{
		name:    "unbundle",
		summary: "check and decrypt an AMI bundle and restore its volume",
		usage:   "unbundle --private-key PEM (--dir DIR | --endpoint URL --bucket B) --manifest NAME [--user-cert PEM] [--allow-unsigned] [--force] [-p] DST",
		run:     runUnbundle,
	})
}

// runUnbundle runs `diskport unbundle`: its errors say "unbundle: ", and
// name the flags that change the outcome.
func runUnbundle(u *command, args []string) error {
	err := unbundle(u, args)
	var ue *usageErr
	if err == nil || errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &hinted{"unbundle: " + strings.TrimPrefix(err.Error(), "bundle: "), err}
}

func unbundle(u *command, args []string) error {
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
	if pos[0] == "-" {
		// The volume is checked whole before it is committed: standard
		// output would hold it before its digest is known.
		return usageError("unbundle restores into a file or block device, not - (standard output): its digest is checked before the volume is committed")
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
	var se *bundle.SignatureError
	switch {
	case errors.As(err, &se) && se.Unsigned:
		return fmt.Errorf("%w: give --allow-unsigned to accept a bundle no one signed", err)
	case errors.As(err, &se) && *signer == "":
		return fmt.Errorf("%w: it was checked against the public half of --private-key %s; give the bundler's certificate with --user-cert", err, *keyPath)
	case errors.As(err, &se):
		return fmt.Errorf("%w: it was checked against --user-cert %s", err, *signer)
	case err != nil:
		return err
	}
	// Written under a temporary name, flushed and renamed into place
	// only once complete and verified: a crash or a signal never
	// leaves a partial volume under the final name.
	if !*force {
		if err := partialLeft(pos[0]); err != nil {
			return err
		}
	}
	w, err := volume.Create(pos[0], r.Manifest.Image.Size, volume.Options{Force: *force})
	if err != nil {
		return destError(existsHint(err), pos[0])
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
	what := "parts, manifest signature and image digest verified"
	if !r.Signed {
		what = "parts and image digest verified; the manifest is UNSIGNED (accepted with --allow-unsigned)"
	}
	fmt.Fprintf(stdout, "restored %s, %s, from %s: %s; image digest %s\n",
		pos[0], sizeText(m.Image.Size), count(len(m.Image.Parts.Part), "part"), what, m.Image.Digest.Hex)
	return nil
}
