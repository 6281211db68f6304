package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/ova"
)

// outputFlags pick what convert writes: a raw volume (the default), or
// an image file of another format.
type outputFlags struct {
	format    string // -O: raw, vmdk, vhd (vpc), ova
	subformat string // --subformat
	options   string // -o, qemu-img's option list: subformat=X,...
}

func (o *outputFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.format, "O", "raw", "output `format`: raw (a volume), vmdk, vhd (alias vpc) or ova")
	fs.StringVar(&o.subformat, "subformat", "", "output layout: streamOptimized (default) or monolithicSparse for -O vmdk; dynamic (default) or fixed for -O vhd")
	fs.StringVar(&o.options, "o", "", "qemu-img's output options, for a ported command line: subformat=S (others qemu-img takes, such as adapter_type or force_size, are accepted and ignored)")
}

// export is what an -O other than raw writes.
type export struct {
	format    diskport.Format // "" for an OVA
	subformat string
	ova       bool
}

// parse checks the output flags: nil for a raw volume.
func (o *outputFlags) parse() (*export, error) {
	sub := o.subformat
	for _, kv := range strings.Split(o.options, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, "subformat") {
			if sub != "" && !strings.EqualFold(sub, v) {
				return nil, usageError("--subformat %s and -o subformat=%s disagree", sub, v)
			}
			sub = v
		}
	}
	name := strings.ToLower(strings.TrimSpace(o.format))
	switch name {
	case "raw", "img", "":
		if sub != "" {
			return nil, usageError("-O raw has no subformat (%q)", sub)
		}
		return nil, nil
	case "ova":
		if sub != "" && !strings.EqualFold(sub, "streamOptimized") {
			return nil, usageError("-O ova holds a streamOptimized VMDK; --subformat %s does not fit it", sub)
		}
		return &export{ova: true, subformat: "streamOptimized"}, nil
	}
	f, err := diskport.ParseFormat(name)
	if err != nil || len(f.Subformats()) == 0 {
		return nil, usageError("-O %s: diskport writes raw, vmdk, vhd and ova", o.format)
	}
	if _, err := f.Stream(sub); err != nil {
		return nil, usageError("--subformat %s does not fit -O %s: it takes %s", sub, f, strings.Join(f.Subformats(), " or "))
	}
	if sub == "" {
		sub = f.Subformats()[0]
	}
	return &export{format: f, subformat: sub}, nil
}

// what names the output for messages: "vmdk streamOptimized", "ova".
func (e *export) what() string {
	if e.ova {
		return "ova"
	}
	return string(e.format) + " " + e.subformat
}

// stream reports whether the output is written front to back (so it may
// go to standard output).
func (e *export) stream() bool {
	if e.ova {
		return true // spooled
	}
	s, _ := e.format.Stream(e.subformat)
	return s
}

// exportOptions are convert's flags that apply to an image file.
type exportOptions struct {
	force, noSync, checksum bool
	workers                 int
	progress                progressMode
}

// runExport writes img as the image e describes to dst ("-": standard
// output, for a layout written front to back).
func runExport(ctx context.Context, img *manifest.Image, src, dst string, e *export, o exportOptions) error {
	if dst == "-" && !e.stream() {
		return usageError("-O %s is written with its tables after its data: give a file, not -", e.what())
	}
	if dst == "-" {
		if f, ok := stdout.(*os.File); ok && isTerminal(f) {
			return usageError("not writing a %s image to a terminal: give a file, or redirect standard output", e.what())
		}
		// A reader that closes the pipe early makes the write fail with
		// EPIPE, reported in one line, instead of killing the process.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	}
	workers := o.workers
	if img.Sequential() {
		workers = 1 // a gzip-compressed member is read as a stream
	}
	var rep *progressReporter
	switch o.progress {
	case "bar":
		rep = newProgress(o.progress, stderr, img.Size(), "writing "+e.what())
	case "json":
		if dst == "-" {
			return usageError("--progress=json prints to standard output, where the image goes: use -p")
		}
		rep = newProgress(o.progress, stdout, img.Size(), "")
	}
	var progress func(done, total int64)
	if rep != nil {
		progress = rep.update
	}
	name := filepath.Base(dst)
	if dst == "-" {
		name = ""
	}
	write := func(w io.Writer) (int64, error) {
		var n int64
		var err error
		if e.ova {
			base := strings.TrimSuffix(name, filepath.Ext(name))
			n, err = ova.Write(ctx, w, img, ova.WriteOptions{Name: base, Workers: workers, Progress: progress})
		} else {
			n, err = diskport.Write(ctx, e.format, w, img, diskport.WriteOptions{Subformat: e.subformat, Name: name, Workers: workers, Progress: progress})
		}
		if err == nil {
			err = img.Verify() // the checksums the source carries
		}
		return n, err
	}
	var size int64
	var sum []byte
	if dst == "-" {
		var h hash.Hash
		w := stdout
		if o.checksum {
			h = sha256.New()
			w = io.MultiWriter(stdout, h)
		}
		n, err := write(w)
		rep.finish()
		if err != nil {
			return fmt.Errorf("writing %s to standard output: %w (what was written is incomplete)", e.what(), err)
		}
		size = n
		if h != nil {
			sum = h.Sum(nil)
		}
	} else {
		res, err := convert.WriteFile(ctx, dst, convert.FileOptions{Force: o.force, NoSync: o.noSync, Checksum: o.checksum},
			func(f *os.File) (int64, error) { return write(f) })
		rep.finish()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("convert stopped: %v; nothing was left at %s", context.Cause(ctx), dst)
			}
			return destError(existsHint(err), dst)
		}
		size, sum = res.Size, res.SHA256
	}
	src = manifest.RedactURL(src)
	out := stdout
	if dst == "-" {
		out = stderr // standard output holds the image
	}
	if o.progress == "json" {
		return json.NewEncoder(out).Encode(exportedJSON{
			Done: true, Source: src, Destination: dst, Format: e.what(),
			VirtualSize: img.Size(), ImageSize: size, SHA256: hex.EncodeToString(sum),
		})
	}
	fmt.Fprintf(out, "wrote %s, %s, as %s to %s: %s\n", src, sizeText(img.Size()), e.what(), dst, sizeText(size))
	if e.format == diskport.VHD && img.Size()%512 != 0 {
		fmt.Fprintf(out, "the VHD's current size is %d bytes: the virtual size rounded up to a whole sector\n", (img.Size()+511)/512*512)
	}
	if sum != nil {
		fmt.Fprintf(out, "sha256 %x  %s (%d bytes)\n", sum, dst, size)
	}
	return nil
}
