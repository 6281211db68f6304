package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"syscall"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/volume"
)

func init() {
	c := &command{
		name:    "bundle",
		summary: "bundle a volume as an AMI bundle into S3 under a BundleInstance upload policy",
		usage: "bundle [--format F] --endpoint URL --bucket B --prefix P --access-key-id K --upload-policy B64 " +
			"--upload-policy-signature S --ec2-cert PEM [--user-cert PEM --user-key PEM] [--out DIR] VOLUME",
	}
	c.run = func(args []string) error {
		fs := c.flags()
		var img imageFlags
		img.register(fs)
		endpoint := fs.String("endpoint", "", "S3 endpoint URL, e.g. https://s3.amazonaws.com")
		bucket := fs.String("bucket", "", "Storage.S3.Bucket")
		prefix := fs.String("prefix", "", "Storage.S3.Prefix: objects are PREFIX.part.NN and PREFIX.manifest.xml")
		keyID := fs.String("access-key-id", "", "Storage.S3.AWSAccessKeyId")
		policy := fs.String("upload-policy", "", "Storage.S3.UploadPolicy (base64)")
		sig := fs.String("upload-policy-signature", "", "Storage.S3.UploadPolicySignature")
		ec2Cert := fs.String("ec2-cert", "", "PEM certificate of the EC2 bundling key (encrypts the AES key)")
		userCert := fs.String("user-cert", "", "PEM certificate of your key (encrypts the AES key for you)")
		userKey := fs.String("user-key", "", "PEM private key signing the manifest (default: UNSIGNED)")
		out := fs.String("out", "", "write the bundle to this directory instead of S3")
		user := fs.String("user", "", "account ID recorded in the manifest")
		arch := fs.String("arch", "x86_64", "architecture recorded in the manifest")
		instance := fs.String("instance-id", "", "instance ID recorded in the task")
		partMiB := fs.Int64("part-size", bundle.DefaultPartSize>>20, "part size in MiB")
		level := fs.Int("level", 6, "gzip level 1..9")
		uploads := fs.Int("uploads", 4, "parts stored at once (each holds a part in memory)")
		taskXML := fs.Bool("task-xml", false, "print the final task as a BundleInstance response")
		progress := fs.Bool("progress", false, "show a progress bar on stderr (default: when stderr is a terminal)")
		pos, err := c.parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		if *prefix == "" || path.Base(*prefix) == "." || path.Base(*prefix) == "/" {
			return usageError("--prefix is required and must end in a name")
		}
		if *ec2Cert == "" {
			return usageError("--ec2-cert is required")
		}
		if (*userCert == "") != (*userKey == "") {
			return usageError("--user-cert and --user-key go together")
		}
		if *partMiB <= 0 || *partMiB > 1024 {
			return usageError("--part-size must be 1..1024 MiB")
		}
		if *level < 1 || *level > 9 {
			return usageError("--level must be 1..9")
		}
		if *uploads < 1 || *uploads > 32 {
			return usageError("--uploads must be 1..32")
		}
		partSize := *partMiB << 20
		opt := bundle.Options{Prefix: *prefix, User: *user, Architecture: *arch, PartSize: partSize, Level: *level, Uploads: *uploads}
		if opt.EC2Key, err = readPublicKey(*ec2Cert); err != nil {
			return err
		}
		if *userCert != "" {
			if opt.UserKey, err = readPublicKey(*userCert); err != nil {
				return err
			}
		}
		if *userKey != "" {
			if opt.SignKey, err = readPrivateKey(*userKey); err != nil {
				return err
			}
		}

		var sink bundle.Sink
		where := ""
		if *out != "" {
			if err := os.MkdirAll(*out, 0o755); err != nil {
				return err
			}
			sink, where = bundle.Dir(*out), *out+"/"
		} else {
			for name, v := range map[string]string{"--endpoint": *endpoint, "--bucket": *bucket, "--access-key-id": *keyID, "--upload-policy": *policy, "--upload-policy-signature": *sig} {
				if v == "" {
					return usageError("%s is required without --out", name)
				}
			}
			// Refuse before any byte is sent what the policy does not grant.
			secret := os.Getenv(secretEnv)
			if _, err := bundle.CheckPolicy(*policy, bundle.Grant{Bucket: *bucket, Prefix: *prefix, Signature: *sig, Secret: secret, MaxObjectSize: partSize}); err != nil {
				return err
			}
			ps := &bundle.PostSink{Endpoint: *endpoint, Bucket: *bucket, AccessKeyID: *keyID, Policy: *policy, Signature: *sig}
			if id := os.Getenv("AWS_ACCESS_KEY_ID"); id != "" && secret != "" {
				// With credentials of its own, a cancelled run deletes what it stored.
				if s3, err := bundle.NewS3(*endpoint, *bucket, id, secret, os.Getenv("AWS_REGION")); err == nil {
					ps.Remover = s3
				}
			}
			sink, where = ps, fmt.Sprintf("s3://%s/", *bucket)
		}

		im, err := img.open(pos[0])
		if err != nil {
			return err
		}
		defer im.Close()
		r := bundle.NewRunner(*instance, bundle.S3Storage{Bucket: *bucket, Prefix: *prefix, AWSAccessKeyID: *keyID, UploadPolicy: *policy, UploadPolicySignature: *sig})
		var bar *progressReporter
		if *progress || stderrIsTerminal() {
			bar = newProgress("bar", stderr, im.Size(), "bundling")
			r.OnUpdate = func(t bundle.Task) { bar.update(im.Size()*int64(t.Progress)/100, im.Size()) }
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		m, err := r.Run(ctx, im, sink, opt)
		bar.finish()
		if *taskXML {
			doc, xerr := r.Task().ResponseXML("")
			if xerr != nil {
				return xerr
			}
			stdout.Write(doc)
		}
		if err != nil {
			if t := r.Task(); t.Error != nil {
				return fmt.Errorf("bundle task %s failed: %s: %s", t.BundleID, t.Error.Code, t.Error.Message)
			}
			return err
		}
		if !*taskXML {
			fmt.Fprintf(stdout, "bundled %s (%d bytes) into %s%s: %d parts, %d bytes, image digest %s\n",
				pos[0], m.Image.Size, where, bundle.ManifestName(*prefix), len(m.Image.Parts.Part), m.Image.BundledSize, m.Image.Digest.Hex)
		}
		return nil
	}
	register(c)

	u := &command{
		name:    "unbundle",
		summary: "check and decrypt an AMI bundle and restore its volume",
		usage:   "unbundle --private-key PEM (--dir DIR | --endpoint URL --bucket B) --manifest NAME [--user-cert PEM] [--allow-unsigned] [--force] DST",
	}
	u.run = func(args []string) error {
		fs := u.flags()
		keyPath := fs.String("private-key", "", "PEM private key decrypting the bundle key (yours or the EC2 key)")
		dir := fs.String("dir", "", "read the bundle from this directory")
		endpoint := fs.String("endpoint", "", "read the bundle from this S3 endpoint (credentials from AWS_ACCESS_KEY_ID and "+secretEnv+")")
		bucket := fs.String("bucket", "", "the bundle's bucket")
		manifest := fs.String("manifest", "", "the manifest's name, PREFIX.manifest.xml")
		signer := fs.String("user-cert", "", "PEM certificate verifying the manifest signature (default: the private key's public half)")
		unsigned := fs.Bool("allow-unsigned", false, "accept an UNSIGNED manifest")
		force := fs.Bool("force", false, "overwrite an existing DST")
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
		if err := r.ExtractVolume(ctx, w); err != nil {
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
	register(u)
}

// maxKeyFile is the largest PEM key file read (an RSA-16384 key is under
// 13 KB).
const maxKeyFile = 1 << 20

func readPublicKey(file string) (*rsa.PublicKey, error) {
	b, err := disk.ReadSmallFile(file, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := bundle.ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

func readPrivateKey(file string) (*rsa.PrivateKey, error) {
	b, err := disk.ReadSmallFile(file, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := bundle.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

// stderrIsTerminal reports whether the progress bar has a terminal to
// draw on.
func stderrIsTerminal() bool {
	if stderr != os.Stderr {
		return false
	}
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
