package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/logtext"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
)

// manifestUsage is the synopsis of the manifest verb. A MANIFEST is a
// path, a directory holding one manifest, an http(s) URL or
// s3://BUCKET/KEY.
const manifestUsage = manifestCreateUsage + "\n       diskport " + manifestVerifyUsage + "\n       diskport " + manifestShowUsage

// The synopses of manifest's subcommands.
const (
	manifestCreateUsage = "manifest create " + splitSynopsis + " [--force] [-p] IMAGE OUTDIR"
	manifestVerifyUsage = "manifest verify [--workers N] [--bucket B] [--endpoint URL] [-p] MANIFEST"
	manifestShowUsage   = "manifest show [--output human|json] [--endpoint URL] MANIFEST"
)

func init() {
	register(&command{
		name:    "manifest",
		summary: "create, verify or show an EC2 import manifest and its parts",
		usage:   manifestUsage,
		run:     runManifest,
		subs:    []string{"create", "verify", "show"},
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
	c := &command{name: "manifest create", summary: "split an image into parts and write NAME.manifest.xml with checksums", usage: manifestCreateUsage}
	fs := c.flags()
	var sf splitFlags
	sf.register(fs)
	progress := progressFlags(fs)
	force := fs.Bool("force", false, "write into an OUTDIR that already holds files")
	pos, err := c.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	opts, err := sf.options()
	if err != nil {
		return err
	}
	opts.Force = *force
	done, err := sf.ovaSource(pos[0], &opts) // an OVA: one of its disks, in place
	if err != nil {
		return err
	}
	defer done()
	st, err := os.Stat(pos[0])
	if err != nil {
		return err
	}
	bar := newBar(*progress, st.Size(), "splitting")
	opts.Progress = bar.set
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, path, err := manifest.Create(ctx, pos[0], pos[1], opts)
	bar.finish()
	if errors.Is(err, manifest.ErrDirNotEmpty) {
		return &hinted{err.Error() + "; give an empty or new directory, or --force", err}
	}
	if err != nil {
		return mismatchHint(err)
	}
	fmt.Fprintf(stdout, "%s: %s, %s in %s, volume %d GiB\n", path, m.FileFormat, sizeText(m.Size), count(len(m.Parts), "part"), m.VolumeSize)
	return nil
}

func manifestVerify(args []string) error {
	c := &command{name: "manifest verify", summary: "check a manifest's structure, its parts' sizes and every checksum", usage: manifestVerifyUsage}
	fs := c.flags()
	par := workersFlag(fs, 4, "parts fetched at once", "parallel")
	bucket := fs.String("bucket", "", "read the parts by key from this bucket with the S3 API (credentials from the AWS environment variables) instead of their URLs")
	endpoint := fs.String("endpoint", "", "S3 endpoint URL for --bucket or an s3://BUCKET/KEY manifest (default: https://s3.REGION.amazonaws.com)")
	progress := progressFlags(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *par < 1 {
		return usageError("--workers must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *endpoint != "" && *bucket == "" && !manifest.IsS3URL(pos[0]) {
		return usageError("--endpoint needs --bucket or an s3:// manifest")
	}
	m, store, err := openManifest(ctx, pos[0], *endpoint)
	if err != nil {
		return err
	}
	if *bucket != "" {
		if store, err = parts.NewS3Store(s3Config(*endpoint, "", false), *bucket); err != nil {
			return err
		}
	}
	bar := newBar(*progress, m.FileSize(), "verifying")
	rep, err := parts.Verify(ctx, m.File(), store, parts.VerifyOptions{Parallel: *par, Progress: bar.set})
	bar.finish()
	if err != nil {
		return err
	}
	what := "sizes and SHA-256 checksums"
	if !rep.Checksums {
		what = "sizes only: the manifest carries no checksums"
	}
	fmt.Fprintf(stdout, "ok: %s, %s (%s); sha256 %s\n", count(rep.Parts, "part"), sizeText(rep.Bytes), what, rep.SHA256)
	return nil
}

func manifestShow(args []string) error {
	c := &command{name: "manifest show", summary: "print a manifest readably", usage: manifestShowUsage}
	fs := c.flags()
	out := choiceFlag(fs, "output", "output `format`: human or json", "human", "json")
	endpoint := fs.String("endpoint", "", "S3 endpoint URL of an s3://BUCKET/KEY manifest (default: https://s3.REGION.amazonaws.com)")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	m, store, err := openManifest(context.Background(), pos[0], *endpoint)
	if err != nil {
		return err
	}
	if *out == "json" {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "    ")
		return e.Encode(m.Summarize(store))
	}
	showManifest(stdout, m, store)
	return nil
}

func showManifest(w io.Writer, m *manifest.Manifest, store parts.Store) {
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
		fmt.Fprintf(w, "self-destruct: %s\n", presignedURL(m.SelfDestructURL))
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

// presignedURL names a presigned URL without its query (the signature)
// and says when it expires, when it can tell.
func presignedURL(u string) string {
	_, q, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	base := logtext.RedactURL(u)
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
