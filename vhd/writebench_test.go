package vhd

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/raw"
)

// discardWriterAt accepts and drops every write.
type discardWriterAt struct{}

func (discardWriterAt) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// benchSource is a 64 MiB source: a hole, blocks of data, blocks of zeros
// stored as data, and a partly written block.
func benchSource() *sparseSource {
	return newSparseSource(benchSize,
		segment{2 << 20, pattern(1, 40<<20)},
		segment{42 << 20, make([]byte, 16<<20)},
		segment{60 << 20, pattern(2, 1<<20)})
}

// BenchmarkWriteDynamic writes a dynamic disk from memory to nowhere: the
// reading, zero testing and ordering the writer itself costs.
func BenchmarkWriteDynamic(b *testing.B) {
	src := benchSource()
	b.SetBytes(src.Size())
	for b.Loop() {
		if _, err := WriteDynamic(context.Background(), discardWriterAt{}, src, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFixed streams a fixed disk from memory to io.Discard.
func BenchmarkWriteFixed(b *testing.B) {
	src := benchSource()
	b.SetBytes(src.Size())
	for b.Loop() {
		if _, err := WriteFixed(context.Background(), io.Discard, src, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteDynamicFile writes a dynamic disk from a raw host file to
// a host file: the blocks are copied inside the kernel.
func BenchmarkWriteDynamicFile(b *testing.B) {
	dir := b.TempDir()
	srcPath := rawFile(b, dir, benchSource())
	src, err := raw.OpenFile(srcPath)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(dir, "out.vhd")
	b.SetBytes(src.Size())
	for b.Loop() {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WriteDynamic(context.Background(), f, src, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
