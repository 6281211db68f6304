package main

import (
	"context"
	"flag"
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
		usage: "bundle " + imageSynopsis + " --endpoint URL --bucket B --prefix P --access-key-id K --upload-policy B64 " +
			"--upload-policy-signature S --ec2-cert PEM [--user-cert PEM --user-key PEM] [--user ID] [--arch A] [--instance-id ID] [--level 1-9] " +
			"[--out DIR] [--part-size 10MiB] [--workers N] [--task-xml] [-p] (VOLUME | --manifest MANIFEST)",
		run: runBundle,
	})

}

// bundleFlags are the flags of `diskport bundle`.
type bundleFlags struct {
	img                             imageFlags
	endpoint, bucket, prefix, keyID *string
	policy, sig                     *string
	ec2Cert, userCert, userKey      *string
	out, user, arch, instance       *string
	partSize                        byteSize
	level, uploads                  *int
	taskXML, progress               *bool
}

func (f *bundleFlags) register(fs *flag.FlagSet) {
	f.img.register(fs)
	f.endpoint = fs.String("endpoint", "", "S3 endpoint URL, e.g. https://s3.amazonaws.com")
	f.bucket = fs.String("bucket", "", "Storage.S3.Bucket")
	f.prefix = fs.String("prefix", "", "Storage.S3.Prefix: objects are PREFIX.part.NN and PREFIX.manifest.xml")
	f.keyID = fs.String("access-key-id", "", "Storage.S3.AWSAccessKeyId")
	f.policy = fs.String("upload-policy", "", "Storage.S3.UploadPolicy (base64)")
	f.sig = fs.String("upload-policy-signature", "", "Storage.S3.UploadPolicySignature")
	f.ec2Cert = fs.String("ec2-cert", "", "PEM certificate of the EC2 bundling key (encrypts the AES key)")
	f.userCert = fs.String("user-cert", "", "PEM certificate of your key (encrypts the AES key for you)")
	f.userKey = fs.String("user-key", "", "PEM private key signing the manifest (default: UNSIGNED)")
	f.out = fs.String("out", "", "write the bundle to this directory instead of S3")
	f.user = fs.String("user", "", "account ID recorded in the manifest")
	f.arch = fs.String("arch", "x86_64", "architecture recorded in the manifest")
	f.instance = fs.String("instance-id", "", "instance ID recorded in the task")
	f.partSize = byteSize(bundle.DefaultPartSize)
	fs.Var(&f.partSize, "part-size", "part `size`: 10MiB, 10M or bytes, 1 MiB to 1 GiB")
	f.level = fs.Int("level", 6, "gzip level 1..9")
	f.uploads = workersFlag(fs, 4, "parts stored at once (each holds a part in memory)", "uploads")
	f.taskXML = fs.Bool("task-xml", false, "print the final task as a BundleInstance response")
	f.progress = progressFlags(fs)
}

// options checks the flags that shape the bundle and reads its keys.
func (f *bundleFlags) options() (bundle.Options, error) {
	var opt bundle.Options
	switch {
	case *f.prefix == "" || path.Base(*f.prefix) == "." || path.Base(*f.prefix) == "/":
		return opt, usageError("--prefix is required and must end in a name")
	case *f.ec2Cert == "":
		return opt, usageError("--ec2-cert is required")
	case (*f.userCert == "") != (*f.userKey == ""):
		return opt, usageError("--user-cert and --user-key go together")
	case f.partSize < 1<<20 || f.partSize > 1<<30:
		return opt, usageError("--part-size must be 1 MiB to 1 GiB, not %d bytes", f.partSize)
	case *f.level < 1 || *f.level > 9:
		return opt, usageError("--level must be 1..9")
	case *f.uploads < 1 || *f.uploads > 32:
		return opt, usageError("--workers must be 1..32")
	}
	opt = bundle.Options{Prefix: *f.prefix, User: *f.user, Architecture: *f.arch, PartSize: int64(f.partSize), Level: *f.level, Uploads: *f.uploads}
	var err error
	if opt.EC2Key, err = readPublicKey(*f.ec2Cert); err != nil {
		return opt, err
	}
	if *f.userCert != "" {
		if opt.UserKey, err = readPublicKey(*f.userCert); err != nil {
			return opt, err
		}
	}
	if *f.userKey != "" {
		if opt.SignKey, err = readPrivateKey(*f.userKey); err != nil {
			return opt, err
		}
	}
	return opt, nil
}

// sink returns where the bundle goes, --out's directory or S3 under the
// upload policy, and its name for messages. The policy is checked before
// any byte is sent.
func (f *bundleFlags) sink() (bundle.Sink, string, error) {
	if *f.out != "" {
		if err := os.MkdirAll(*f.out, 0o755); err != nil {
			return nil, "", err
		}
		return bundle.Dir(*f.out), *f.out + "/", nil
	}
	// The first missing flag in the usage line's order.
	for _, fl := range []struct{ name, v string }{{"--endpoint", *f.endpoint}, {"--bucket", *f.bucket}, {"--access-key-id", *f.keyID},
		{"--upload-policy", *f.policy}, {"--upload-policy-signature", *f.sig}} {
		if fl.v == "" {
			return nil, "", usageError("%s is required without --out", fl.name)
		}
	}
	secret := os.Getenv(secretEnv)
	if _, err := bundle.CheckPolicy(*f.policy, bundle.Grant{Bucket: *f.bucket, Prefix: *f.prefix, Signature: *f.sig, Secret: secret, MaxObjectSize: int64(f.partSize)}); err != nil {
		return nil, "", err
	}
	ps := &bundle.PostSink{Endpoint: *f.endpoint, Bucket: *f.bucket, AccessKeyID: *f.keyID, Policy: *f.policy, Signature: *f.sig}
	if id := os.Getenv("AWS_ACCESS_KEY_ID"); id != "" && secret != "" {
		// With credentials of its own, a cancelled run deletes what it stored.
		if s3, err := bundle.NewS3(*f.endpoint, *f.bucket, id, secret, os.Getenv("AWS_REGION")); err == nil {
			ps.Remover = s3
		}
	}
	return ps, fmt.Sprintf("s3://%s/", *f.bucket), nil
}

// runBundle runs `diskport bundle`.
func runBundle(c *command, args []string) error {
	fs := c.flags()
	var f bundleFlags
	f.register(fs)
	pos, err := c.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	src, _, err := f.img.split(pos, 0)
	if err != nil {
		return err
	}
	opt, err := f.options()
	if err != nil {
		return err
	}
	sink, where, err := f.sink()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	im, err := f.img.open(ctx, src)
	if err != nil {
		return err
	}
	defer im.Close()
	r := bundle.NewRunner(*f.instance, bundle.S3Storage{Bucket: *f.bucket, Prefix: *f.prefix, AWSAccessKeyID: *f.keyID, UploadPolicy: *f.policy, UploadPolicySignature: *f.sig})
	bar := newBar(*f.progress, im.Size(), "bundling")
	r.OnUpdate = func(t bundle.Task) { bar.set(im.Size()*int64(t.Progress)/100, im.Size()) }
	m, err := r.Run(ctx, im, sink, opt)
	bar.finish()
	if *f.taskXML {
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
	if !*f.taskXML {
		fmt.Fprintf(stdout, "bundled %s, %s, into %s%s: %s, %s, image digest %s\n",
			manifest.RedactURL(src), sizeText(m.Image.Size), where, bundle.ManifestName(*f.prefix), count(len(m.Image.Parts.Part), "part"), sizeText(m.Image.BundledSize), m.Image.Digest.Hex)
	}
	return nil
}
