package ova

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// WriteOptions configure [Write]. The zero value writes an appliance
// named "disk" with one CPU and 1 GiB of memory.
type WriteOptions struct {
	// Name names the virtual system and the archive's members: NAME.ovf,
	// NAME-disk1.vmdk and NAME.mf. It must be a bare file name of at most
	// 64 bytes without quotes or control characters; "" means "disk".
	Name string
	// CPUs and MemoryMiB are the virtual hardware the descriptor asks
	// for; 0 means 1 CPU and 1024 MiB.
	CPUs, MemoryMiB int
	// Workers is how many goroutines compress the disk's grains (0: one
	// per CPU).
	Workers int
	// Progress, when set, is called with the bytes of the virtual disk
	// written so far and its size.
	Progress func(done, total int64)
	// TempDir is where the disk is spooled when the destination cannot
	// seek (a pipe); "" means os.TempDir().
	TempDir string
}

// Write writes src as an OVA to w: a POSIX (ustar) tar archive holding
// the OVF 1.0 descriptor first, the disk as a streamOptimized VMDK written
// through diskport's format table, and an .mf manifest with the SHA-256
// of both, as ovftool lays an appliance out: what VMware, VirtualBox and
// EC2's ImportImage and ImportInstance take, and what [Open] reads back.
// The descriptor names the disk's file size, known only once it is
// written: to a w that can seek (an *os.File) the disk is streamed into
// the archive in place and the sizes filled in after it; to any other w
// the disk is first written to a temporary file in opts.TempDir, and the
// archive then streamed front to back. It returns the bytes of the
// archive.
func Write(ctx context.Context, w io.Writer, src disk.Image, opts WriteOptions) (int64, error) {
	if err := opts.defaults(); err != nil {
		return 0, err
	}
	a := &applianceWriter{opts: opts, src: src, diskName: opts.Name + "-disk1.vmdk", populated: populated(src)}
	if ws, ok := w.(io.WriteSeeker); ok && seekable(ws) {
		return a.writeInPlace(ctx, ws)
	}
	return a.writeSpooled(ctx, w)
}

// maxNameLen keeps every member name within ustar's 100 bytes.
const maxNameLen = 64

func (o *WriteOptions) defaults() error {
	if o.Name == "" {
		o.Name = "disk"
	}
	if len(o.Name) > maxNameLen || o.Name == "." || o.Name == ".." ||
		strings.ContainsAny(o.Name, "/\\:\"'<>&") || strings.IndexFunc(o.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Errorf("ova: appliance name %q is not a bare file name of at most %d bytes (no quotes, '<', '>', '&', '/', '\\', ':' or control characters)", o.Name, maxNameLen)
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 1024
	}
	if o.CPUs < 0 || o.CPUs > 768 || o.MemoryMiB < 0 || o.MemoryMiB > 24<<20 {
		return fmt.Errorf("ova: %d CPUs and %d MiB of memory are out of range", o.CPUs, o.MemoryMiB)
	}
	return nil
}

// seekable reports whether w really seeks: os.Stdout is an *os.File even
// when it is a pipe.
func seekable(w io.Seeker) bool {
	_, err := w.Seek(0, io.SeekCurrent)
	return err == nil
}

// An applianceWriter writes one OVA.
type applianceWriter struct {
	opts     WriteOptions
	src      disk.Image
	diskName string
	diskSize int64  // the VMDK's bytes, once written
	diskSum  []byte // its SHA-256
	// populated is the source's data bytes, walked once: the descriptor
	// is written twice in place, and a source read from parts may fetch
	// to answer its extent map.
	populated int64
}

// descriptor returns the OVF descriptor for a disk file of diskSize
// bytes. Its length does not depend on diskSize, so that the one written
// before the disk can be overwritten in place once the size is known.
func (a *applianceWriter) descriptor(diskSize int64) []byte {
	return []byte(ovfDescriptor(a.opts, a.diskName, diskSize, a.src.Size(), a.populated))
}

// writeInPlace writes the archive to a destination that seeks: the disk
// member is streamed into place and the sizes it could not know filled in
// after.
func (a *applianceWriter) writeInPlace(ctx context.Context, w io.WriteSeeker) (int64, error) {
	start, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	desc := a.descriptor(0)
	ovfName := a.opts.Name + ".ovf"
	tw := &tarWriter{w: w}
	if err := tw.member(ovfName, desc); err != nil {
		return 0, err
	}
	descAt := tw.n - pad512(int64(len(desc))) - int64(len(desc))
	diskHeaderAt := tw.n
	if err := tw.header(a.diskName, 0); err != nil {
		return 0, err
	}
	if err := a.writeDisk(ctx, tw); err != nil {
		return 0, err
	}
	if err := tw.pad(); err != nil {
		return 0, err
	}
	end := tw.n
	// Fill in the disk's size: its tar header, and the descriptor's File.
	desc = a.descriptor(a.diskSize)
	hdr, err := headerBlock(a.diskName, a.diskSize)
	if err != nil {
		return 0, err
	}
	for _, fix := range []struct {
		at int64
		b  []byte
	}{{diskHeaderAt, hdr}, {descAt, desc}} {
		if _, err := w.Seek(start+fix.at, io.SeekStart); err != nil {
			return 0, err
		}
		if _, err := w.Write(fix.b); err != nil {
			return 0, err
		}
	}
	if _, err := w.Seek(start+end, io.SeekStart); err != nil {
		return 0, err
	}
	if err := a.finish(tw, ovfName, desc); err != nil {
		return 0, err
	}
	return tw.n, nil
}

// writeSpooled writes the disk to a temporary file, then the archive to
// w front to back.
func (a *applianceWriter) writeSpooled(ctx context.Context, w io.Writer) (int64, error) {
	f, err := os.CreateTemp(a.opts.TempDir, ".diskport-ova-spool-*")
	if err != nil {
		return 0, fmt.Errorf("ova: a temporary file for the disk: %w", err)
	}
	defer f.Close()
	os.Remove(f.Name()) // the open file is all that is needed
	if err := a.writeDisk(ctx, &tarWriter{w: f}); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	desc := a.descriptor(a.diskSize)
	ovfName := a.opts.Name + ".ovf"
	tw := &tarWriter{w: w}
	if err := tw.member(ovfName, desc); err != nil {
		return 0, err
	}
	if err := tw.header(a.diskName, a.diskSize); err != nil {
		return 0, err
	}
	if n, err := io.Copy(tw, io.LimitReader(f, a.diskSize)); err != nil || n != a.diskSize {
		if err == nil {
			err = fmt.Errorf("the spooled disk is %d bytes, not %d", n, a.diskSize)
		}
		return 0, fmt.Errorf("ova: copying the disk into the archive: %w", err)
	}
	if err := tw.pad(); err != nil {
		return 0, err
	}
	if err := a.finish(tw, ovfName, desc); err != nil {
		return 0, err
	}
	return tw.n, nil
}

// writeDisk writes the disk as a streamOptimized VMDK to w, hashing it
// for the .mf.
func (a *applianceWriter) writeDisk(ctx context.Context, w io.Writer) error {
	h := sha256.New()
	n, err := diskport.Write(ctx, diskport.VMDK, io.MultiWriter(w, h), a.src, diskport.WriteOptions{
		Subformat: "streamOptimized", Name: a.diskName, Workers: a.opts.Workers, Progress: a.opts.Progress})
	if err != nil {
		return err
	}
	a.diskSize, a.diskSum = n, h.Sum(nil)
	return nil
}

// finish writes the .mf and the end of the archive.
func (a *applianceWriter) finish(tw *tarWriter, ovfName string, desc []byte) error {
	ds := sha256.Sum256(desc)
	mf := fmt.Sprintf("SHA256(%s)= %s\nSHA256(%s)= %s\n", ovfName, hex.EncodeToString(ds[:]), a.diskName, hex.EncodeToString(a.diskSum))
	if err := tw.member(a.opts.Name+".mf", []byte(mf)); err != nil {
		return err
	}
	_, err := tw.Write(make([]byte, 2*blockSize)) // the end-of-archive marker
	return err
}

// populated is the bytes of src's data runs: the disk's populatedSize
// (an estimate for the importer; zero blocks inside data runs count).
func populated(src disk.Image) int64 {
	var n int64
	for e, err := range src.Extents(0, src.Size()) {
		if err != nil {
			return 0
		}
		if e.Kind != disk.Zero {
			n += e.Length
		}
	}
	return n
}

// blockSize is tar's unit.
const blockSize = 512

func pad512(n int64) int64 { return (blockSize - n%blockSize) % blockSize }

// A tarWriter writes tar members and counts the bytes written.
type tarWriter struct {
	w io.Writer
	n int64
}

func (t *tarWriter) Write(p []byte) (int, error) {
	k, err := t.w.Write(p)
	t.n += int64(k)
	return k, err
}

// header writes a regular file's header.
func (t *tarWriter) header(name string, size int64) error {
	b, err := headerBlock(name, size)
	if err == nil {
		_, err = t.Write(b)
	}
	return err
}

// member writes a small member whole.
func (t *tarWriter) member(name string, b []byte) error {
	if err := t.header(name, int64(len(b))); err != nil {
		return err
	}
	if _, err := t.Write(b); err != nil {
		return err
	}
	return t.pad()
}

// pad pads the member just written to a whole block.
func (t *tarWriter) pad() error {
	_, err := t.Write(make([]byte, pad512(t.n)))
	return err
}

// headerBlock returns the one 512-byte header of a regular file: ustar,
// or GNU's base-256 size for a member of 8 GiB or more, so that a header
// written before the size is known can be overwritten in place.
func headerBlock(name string, size int64) ([]byte, error) {
	format := tar.FormatUSTAR
	if size >= 1<<33 {
		format = tar.FormatGNU
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644,
		ModTime: time.Unix(time.Now().Unix(), 0), Format: format, Uname: "someone", Gname: "someone"})
	if err == nil && b.Len() != blockSize {
		err = fmt.Errorf("%d bytes, not one block", b.Len())
	}
	if err != nil {
		// Names are checked short and plain, and sizes fit GNU's field:
		// this does not happen, but it must not be a panic if it does.
		return nil, fmt.Errorf("ova: the tar header of %q: %w", name, err)
	}
	return b.Bytes(), nil
}
