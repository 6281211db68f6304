package diskport

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/vhd"
	"github.com/diskport/diskport/vmdk"
)

// A layout is one way a format is written: a row's writers list them, the
// default first.
type layout struct {
	// subformat is its name, as qemu-img's subformat option spells it
	// ("streamOptimized", "dynamic").
	subformat string
	// write writes src to w. A layout that is not stream writes to an
	// io.WriterAt (w is one), its tables after its data.
	write func(ctx context.Context, w io.Writer, src disk.Image, opts WriteOptions) (int64, error)
	// stream: written front to back, nothing seeks back, so it can go to
	// a pipe.
	stream bool
}

// WriteOptions configure [Write].
type WriteOptions struct {
	// Subformat picks the layout, case-insensitively, from those
	// [Format.Subformats] lists; "" means the format's default (the
	// first).
	Subformat string
	// Workers is how many goroutines read (and compress) the source; 0
	// means one per CPU.
	Workers int
	// Progress, when set, is called with the bytes of the virtual disk
	// written so far and its size.
	Progress func(done, total int64)
	// Name is the image file's own name, which a VMDK's descriptor names
	// ("": the writer's default).
	Name string
}

// Write writes src as an image of format f to w and returns the bytes
// written: a streamOptimized (the default) or monolithicSparse VMDK, a
// dynamic (the default) or fixed VHD. A layout that is not written front
// to back ([Format.Stream] says which) needs a w that is an io.WriterAt,
// such as an *os.File. Writing a format the table has no writer for is
// disk.ErrUnsupported; so is a subformat the format does not have.
func Write(ctx context.Context, f Format, w io.Writer, src disk.Image, opts WriteOptions) (int64, error) {
	l, err := f.layout(opts.Subformat)
	if err != nil {
		return 0, err
	}
	if _, ok := w.(io.WriterAt); !l.stream && !ok {
		return 0, disk.Errorf("", disk.ErrUnsupported, "a %s %s is written with its tables after its data: it needs a file, not a stream", l.subformat, f)
	}
	return l.write(ctx, w, src, opts)
}

// layout returns f's layout named sub ("" for the default).
func (f Format) layout(sub string) (*layout, error) {
	e := entry(f)
	if e == nil || len(e.writers) == 0 {
		return nil, disk.Errorf("", disk.ErrUnsupported, "diskport does not write %s images; it writes %s", f, writeNames())
	}
	if sub == "" {
		return &e.writers[0], nil
	}
	for i := range e.writers {
		if strings.EqualFold(e.writers[i].subformat, sub) {
			return &e.writers[i], nil
		}
	}
	return nil, disk.Errorf("", disk.ErrUnsupported, "%s has no subformat %q; diskport writes %s", f, sub, strings.Join(f.Subformats(), " or "))
}

// Subformats returns the layouts [Write] writes images of f in, the
// default first; nil when it does not write f.
func (f Format) Subformats() []string {
	var s []string
	if e := entry(f); e != nil {
		for _, l := range e.writers {
			s = append(s, l.subformat)
		}
	}
	return s
}

// Stream reports whether [Write] writes f's subformat sub ("" for the
// default) front to back, so that it can go to a pipe; an error when it
// does not write it.
func (f Format) Stream(sub string) (bool, error) {
	l, err := f.layout(sub)
	if err != nil {
		return false, err
	}
	return l.stream, nil
}

// WriteFormats returns the formats [Write] writes, in the table's order.
func WriteFormats() []Format {
	var fs []Format
	for _, e := range table {
		if len(e.writers) > 0 {
			fs = append(fs, e.format)
		}
	}
	return fs
}

// writeNames lists the formats Write writes with their subformats, for
// messages: "vmdk (streamOptimized, monolithicSparse) and vhd (dynamic,
// fixed)".
func writeNames() string {
	var names []string
	for _, f := range WriteFormats() {
		names = append(names, fmt.Sprintf("%s (%s)", f, strings.Join(f.Subformats(), ", ")))
	}
	return strings.Join(names, " and ")
}

// The table's writers.
var (
	vmdkWriters = []layout{
		{subformat: "streamOptimized", stream: true, write: func(ctx context.Context, w io.Writer, src disk.Image, o WriteOptions) (int64, error) {
			return vmdk.WriteStream(ctx, w, src, vmdkOptions(o))
		}},
		{subformat: "monolithicSparse", write: func(ctx context.Context, w io.Writer, src disk.Image, o WriteOptions) (int64, error) {
			return vmdk.WriteSparse(ctx, w.(io.WriterAt), src, vmdkOptions(o))
		}},
	}
	vhdWriters = []layout{
		{subformat: "dynamic", write: func(ctx context.Context, w io.Writer, src disk.Image, o WriteOptions) (int64, error) {
			return vhd.WriteDynamic(ctx, w.(io.WriterAt), src, vhd.WriteOptions{Workers: o.Workers, Progress: o.Progress})
		}},
		{subformat: "fixed", stream: true, write: func(ctx context.Context, w io.Writer, src disk.Image, o WriteOptions) (int64, error) {
			return vhd.WriteFixed(ctx, w, src, vhd.WriteOptions{Workers: o.Workers, Progress: o.Progress})
		}},
	}
)

func vmdkOptions(o WriteOptions) vmdk.WriteOptions {
	return vmdk.WriteOptions{Workers: o.Workers, Progress: o.Progress, Name: o.Name}
}
