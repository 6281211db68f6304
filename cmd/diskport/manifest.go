package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest"
)

const manifestUsage = `manifest create [--part-size 10MiB] [--format F] [--volume-size GIB] [--naming aws|euca2ools] IMAGE OUTDIR
       diskport manifest verify [--parallel N] PATH_OR_URL
       diskport manifest show PATH_OR_URL`

func init() {
	register(&command{
		name:    "manifest",
		summary: "create, verify or show an EC2 import manifest and its parts",
		usage:   manifestUsage,
		run:     runManifest,
	})
}

// runManifest runs `diskport manifest`.
func runManifest(c *command, args []string) error {
	if len(args) == 0 {
		return usageError("missing subcommand (create, verify or show)")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprintf(stdout, "usage: diskport %s\n\n%s\n", c.usage, c.summary)
		return flag.ErrHelp
	case "create":
		return manifestCreate(args[1:])
	case "verify":
		return manifestVerify(args[1:])
	case "show":
		return manifestShow(args[1:])
	}
	return usageError("unknown subcommand %q (want create, verify or show)", args[0])
}

func manifestCreate(args []string) error {
	c := &command{name: "manifest create", summary: "split an image into parts and write NAME.manifest.xml with checksums", usage: "manifest create [flags] IMAGE OUTDIR"}
	fs := c.flags()
	var sf splitFlags
	sf.register(fs)
	progress := fs.Bool("progress", false, "show progress on stderr (default: when stderr is a terminal)")
	pos, err := c.parse(fs, args, 2, 2)
	if err != nil {
		return err
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
	st, err := os.Stat(pos[0])
	if err != nil {
		return err
	}
	bar := newBar(*progress, st.Size())
	opts.Progress = bar.add
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, path, err := manifest.Create(ctx, pos[0], pos[1], opts)
	bar.finish()
	if err != nil {
		return mismatchHint(err)
	}
	fmt.Fprintf(stdout, "%s: %s, %d bytes in %d parts, volume %d GiB\n", path, m.FileFormat, m.Size, len(m.Parts), m.VolumeSize)
	return nil
}

func manifestVerify(args []string) error {
	c := &command{name: "manifest verify", summary: "check a manifest's structure, its parts' sizes and every checksum", usage: "manifest verify [--parallel N] [--bucket B [--endpoint URL]] PATH_OR_URL"}
	fs := c.flags()
	par := fs.Int("parallel", 4, "parts fetched at once")
	bucket := fs.String("bucket", "", "read the parts by key from this bucket with the S3 API (credentials from the AWS environment variables) instead of their URLs")
	endpoint := fs.String("endpoint", "", "S3 endpoint URL for --bucket (default: https://s3.REGION.amazonaws.com)")
	progress := fs.Bool("progress", false, "show progress on stderr (default: when stderr is a terminal)")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *par < 1 {
		return usageError("--parallel must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *endpoint != "" && *bucket == "" {
		return usageError("--endpoint needs --bucket")
	}
	m, store, err := manifest.Open(ctx, pos[0], nil)
	if err != nil {
		return err
	}
	if *bucket != "" {
		if store, err = manifest.NewS3Store(s3Config(*endpoint, "", false), *bucket); err != nil {
			return err
		}
	}
	bar := newBar(*progress, m.FileSize())
	rep, err := manifest.Verify(ctx, m, store, manifest.VerifyOptions{Parallel: *par, Progress: bar.add})
	bar.finish()
	if err != nil {
		return err
	}
	what := "sizes and SHA-256 checksums"
	if !rep.Checksums {
		what = "sizes only: the manifest carries no checksums"
	}
	fmt.Fprintf(stdout, "ok: %d parts, %d bytes (%s); sha256 %s\n", rep.Parts, rep.Bytes, what, rep.SHA256)
	return nil
}

func manifestShow(args []string) error {
	c := &command{name: "manifest show", summary: "print a manifest readably", usage: "manifest show PATH_OR_URL"}
	fs := c.flags()
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	m, store, err := manifest.Open(context.Background(), pos[0], nil)
	if err != nil {
		return err
	}
	showManifest(stdout, m, store)
	return nil
}

func showManifest(w io.Writer, m *manifest.Manifest, store manifest.PartStore) {
	fmt.Fprintf(w, "version:      %s\n", m.Version)
	fmt.Fprintf(w, "file format:  %s\n", m.FileFormat)
	fmt.Fprintf(w, "importer:     %s %s (%s)\n", m.Importer.Name, m.Importer.Version, m.Importer.Release)
	fmt.Fprintf(w, "size:         %d bytes (%s)\n", m.Size, disk.FormatSize(m.Size))
	if fs := m.FileSize(); fs != m.Size {
		fmt.Fprintf(w, "parts hold:   %d bytes (size is the virtual disk size, as euca2ools writes for VMDK)\n", fs)
	}
	fmt.Fprintf(w, "volume size:  %d GiB\n", m.VolumeSize)
	if m.SHA256 != "" {
		fmt.Fprintf(w, "sha256:       %s\n", m.SHA256)
	} else {
		fmt.Fprintf(w, "sha256:       none (no checksum extension)\n")
	}
	if m.SelfDestructURL != "" {
		fmt.Fprintf(w, "self-destruct: %s\n", redactURL(m.SelfDestructURL))
	}
	fmt.Fprintf(w, "parts:        %d\n", len(m.Parts))
	for i := range m.Parts {
		p := &m.Parts[i]
		fmt.Fprintf(w, "  %4d  %12d-%-12d %10d  %s", p.Index, p.Offset, p.End()-1, p.Length, p.Key)
		if p.SHA256 != "" {
			fmt.Fprintf(w, "  sha256:%s", p.SHA256[:16])
		}
		fmt.Fprintf(w, "\n        from %s\n", store.Where(p))
	}
}

// redactURL drops the query (the signature) from a presigned URL and says
// when it expires, when it can tell.
func redactURL(u string) string {
	base, q, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "Expires":
			return base + " (SigV2, expires at Unix time " + v + ")"
		case "X-Amz-Expires":
			return base + " (SigV4, valid " + v + " s from signing)"
		}
	}
	return base + " (presigned)"
}
