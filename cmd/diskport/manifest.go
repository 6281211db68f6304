package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest"
	"golang.org/x/sys/unix"
)

const manifestUsage = `manifest create [--part-size 10MiB] [--format F] [--volume-size GIB] [--naming aws|euca2ools] IMAGE OUTDIR
       diskport manifest verify [--parallel N] PATH_OR_URL
       diskport manifest show PATH_OR_URL`

func init() {
	c := &command{
		name:    "manifest",
		summary: "create, verify or show an EC2 import manifest and its parts",
		usage:   manifestUsage,
	}
	c.run = func(args []string) error {
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
	register(c)
}

// splitFlags are the flags that say how an image is cut into parts, shared
// by manifest create and upload.
type splitFlags struct {
	partSize   byteSize
	format     string
	trust      bool
	volumeSize int64
	naming     string
	name       string
}

func (f *splitFlags) register(fs *flag.FlagSet) {
	f.partSize = manifest.DefaultPartSize
	fs.Var(&f.partSize, "part-size", "size of each part (bytes, or with a KiB, MiB or GiB suffix)")
	fs.StringVar(&f.format, "format", "", "declared image format: "+diskport.FormatNames()+" (default: from the bytes)")
	fs.BoolVar(&f.trust, "trust-format", false, "take --format even when the image's bytes look like another format")
	fs.Int64Var(&f.volumeSize, "volume-size", 0, "volume size in GiB (default: the virtual size rounded up)")
	fs.StringVar(&f.naming, "naming", "aws", "part names: aws (NAME.partN) or euca2ools (NAME.part.N)")
	fs.StringVar(&f.name, "name", "", "base name of the parts and manifest (default: the image's file name)")
}

func (f *splitFlags) options() (manifest.SplitOptions, error) {
	naming, err := manifest.ParseNaming(f.naming)
	if err != nil {
		return manifest.SplitOptions{}, usageError("%v", err)
	}
	if f.partSize <= 0 || f.partSize > manifest.MaxPartSize {
		return manifest.SplitOptions{}, usageError("--part-size must be between 1 byte and 1 GiB")
	}
	if f.volumeSize < 0 {
		return manifest.SplitOptions{}, usageError("--volume-size must be positive")
	}
	return manifest.SplitOptions{PartSize: int64(f.partSize), Format: f.format, TrustFormat: f.trust, VolumeSize: f.volumeSize, Naming: naming, Name: f.name}, nil
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

// openManifestImage opens the image a manifest's parts hold, for `convert
// --manifest`: the declared file-format is checked against the bytes.
// Closing the returned image also drops the parts cache.
func openManifestImage(ctx context.Context, pathOrURL string, progress func(int64)) (disk.Image, error) {
	m, store, err := manifest.Open(ctx, pathOrURL, nil)
	if err != nil {
		return nil, err
	}
	s, err := manifest.OpenStorage(ctx, m, store, manifest.StorageOptions{Name: pathOrURL, Progress: progress})
	if err != nil {
		return nil, err
	}
	img, err := diskport.OpenStorage(s, diskport.Options{Format: m.FileFormat})
	if err != nil {
		s.Close()
		var me *diskport.MismatchError
		if errors.As(err, &me) {
			return nil, &hinted{fmt.Sprintf("%s (the manifest's file-format is wrong: EC2 would import these bytes as %s; write the manifest again with the right --format)", me.Reason(), me.Declared.EC2Name()), err}
		}
		return nil, err
	}
	return &closeBoth{img, s}, nil
}

type closeBoth struct {
	disk.Image
	s *manifest.Storage
}

func (c *closeBoth) Close() error {
	err := c.Image.Close()
	if err2 := c.s.Close(); err == nil {
		err = err2
	}
	return err
}

// byteSize is a flag holding a byte count written as 10485760, 10MiB, 10M,
// 512KiB, 1GiB.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("not a byte size: " + s)
	}
	return n * mult, nil
}

// bar is a progress line shown on stderr when asked for or when stderr is
// a terminal; its methods do nothing otherwise.
type bar struct {
	mu    sync.Mutex
	line  *progressLine
	total int64
	done  int64
}

func newBar(asked bool, total int64) *bar {
	if !asked && !isTerminal(os.Stderr) {
		return &bar{}
	}
	return &bar{line: newProgressLine(stderr), total: total}
}

func (b *bar) add(n int64) {
	if b.line == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.line.update(b.done, b.total)
}

func (b *bar) finish() {
	if b.line != nil {
		b.line.finish()
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
