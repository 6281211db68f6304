package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path"
	"syscall"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/server"
)

func init() {
	register(&command{
		name:    "bundle",
		summary: "bundle a volume as an AMI bundle into S3 under a BundleInstance upload policy",
		usage: "bundle [--format F] --endpoint URL --bucket B --prefix P --access-key-id K --upload-policy B64 " +
			"--upload-policy-signature S --ec2-cert PEM [--user-cert PEM --user-key PEM] [--out DIR] [--part-size 10MiB] [--workers N] [-p] (VOLUME | --manifest MANIFEST)",
		run: runBundle,
	})

}

// runBundle runs `diskport bundle`.
func runBundle(c *command, args []string) error {
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
	partSize := byteSize(bundle.DefaultPartSize)
	fs.Var(&partSize, "part-size", "part `size`: 10MiB, 10M or bytes, 1 MiB to 1 GiB")
	level := fs.Int("level", 6, "gzip level 1..9")
	uploads := workersFlag(fs, 4, "parts stored at once (each holds a part in memory)", "uploads")
	taskXML := fs.Bool("task-xml", false, "print the final task as a BundleInstance response")
	progress := progressFlags(fs)
	pos, err := c.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	src, _, err := img.split(pos, 0)
	if err != nil {
		return err
	}
	pos = []string{src}
	if *prefix == "" || path.Base(*prefix) == "." || path.Base(*prefix) == "/" {
		return usageError("--prefix is required and must end in a name")
	}
	if *ec2Cert == "" {
		return usageError("--ec2-cert is required")
	}
	if (*userCert == "") != (*userKey == "") {
		return usageError("--user-cert and --user-key go together")
	}
	if partSize < 1<<20 || partSize > 1<<30 {
		return usageError("--part-size must be 1 MiB to 1 GiB, not %d bytes", partSize)
	}
	if *level < 1 || *level > 9 {
		return usageError("--level must be 1..9")
	}
	if *uploads < 1 || *uploads > 32 {
		return usageError("--workers must be 1..32")
	}
	opt := bundle.Options{Prefix: *prefix, User: *user, Architecture: *arch, PartSize: int64(partSize), Level: *level, Uploads: *uploads}
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
		// The first missing flag in the usage line's order.
		for _, f := range []struct{ name, v string }{{"--endpoint", *endpoint}, {"--bucket", *bucket}, {"--access-key-id", *keyID},
			{"--upload-policy", *policy}, {"--upload-policy-signature", *sig}} {
			if f.v == "" {
				return usageError("%s is required without --out", f.name)
			}
		}
		// Refuse before any byte is sent what the policy does not grant.
		secret := os.Getenv(secretEnv)
		if _, err := bundle.CheckPolicy(*policy, bundle.Grant{Bucket: *bucket, Prefix: *prefix, Signature: *sig, Secret: secret, MaxObjectSize: int64(partSize)}); err != nil {
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

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	im, err := img.open(ctx, pos[0])
	if err != nil {
		return err
	}
	defer im.Close()
	r := bundle.NewRunner(*instance, bundle.S3Storage{Bucket: *bucket, Prefix: *prefix, AWSAccessKeyID: *keyID, UploadPolicy: *policy, UploadPolicySignature: *sig})
	bar := newBar(*progress, im.Size(), "bundling")
	r.OnUpdate = func(t bundle.Task) { bar.set(im.Size()*int64(t.Progress)/100, im.Size()) }
	m, err := r.Run(ctx, im, sink, opt)
	bar.finish()
	if *taskXML {
		doc, xerr := server.BundleInstanceResponse(r.Task(), "")
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
	// The checksums the source carries, known once every byte has passed.
	if err := im.Verify(); err != nil {
		return fmt.Errorf("%w: the bundle stored in %s holds these bytes; delete it", err, where)
	}
	if !*taskXML {
		fmt.Fprintf(stdout, "bundled %s (%d bytes) into %s%s: %d parts, %d bytes, image digest %s\n",
			manifest.RedactURL(pos[0]), m.Image.Size, where, bundle.ManifestName(*prefix), len(m.Image.Parts.Part), m.Image.BundledSize, m.Image.Digest.Hex)
	}
	return nil
}
