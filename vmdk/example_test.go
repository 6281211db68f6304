package vmdk_test

import (
	"io"
	"os"
	"sync"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/vmdk"
)

// Inflating the grains of a streamOptimized image in parallel and writing
// them to a raw target: Grains lists them with their markers checked,
// InflateGrain decompresses each one with its bounds enforced.
func ExampleImage_Grains() {
	src, err := disk.OpenHostFile("disk.vmdk")
	if err != nil {
		return
	}
	defer src.Close()
	img, err := vmdk.Open(src, vmdk.Options{})
	if err != nil {
		return
	}
	defer img.Close()
	out, err := os.Create("disk.raw")
	if err != nil {
		return
	}
	defer out.Close()
	out.Truncate(img.Size())

	grains := make(chan vmdk.Grain)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			raw, dst := []byte(nil), []byte(nil)
			for g := range grains {
				raw = append(raw[:0], make([]byte, g.CompressedSize)...)
				dst = append(dst[:0], make([]byte, g.Size)...)
				if _, err := g.Storage.ReadAt(raw, g.StoredOffset); err != nil {
					continue // a real converter reports the error
				}
				if err := vmdk.InflateGrain(dst, raw, g); err != nil {
					continue
				}
				out.WriteAt(dst[:g.Length], g.Offset)
			}
		})
	}
	for g, err := range img.Grains() {
		if err != nil {
			break
		}
		grains <- g
	}
	close(grains)
	wg.Wait()
}

// Converting a stream read from a pipe, without seeking: the reader gives
// the capacity first, then each grain's compressed bytes.
func ExampleStreamReader() {
	sr, err := vmdk.NewStreamReader(os.Stdin)
	if err != nil {
		return
	}
	out, err := os.Create("disk.raw")
	if err != nil {
		return
	}
	defer out.Close()
	if err := out.Truncate(sr.Size()); err != nil {
		return
	}
	buf := make([]byte, sr.GrainSize())
	for {
		g, err := sr.Next()
		if err == io.EOF {
			return // the end of the stream, verified
		}
		if err != nil {
			return // truncated or corrupt: the output is incomplete
		}
		if err := vmdk.InflateGrain(buf, g.Data, g); err != nil {
			return
		}
		if _, err := out.WriteAt(buf[:g.Length], g.Offset); err != nil {
			return
		}
	}
}
