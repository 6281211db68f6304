package manifest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
)

// ExampleOpenImage splits an image into an import manifest's parts and
// opens the image the parts hold, in one call, as a disk.Image that owns
// its storage: what `diskport convert --manifest` reads. A URL
// (ImportManifestUrl) or, with ImageOptions.S3, s3://bucket/key works the
// same.
func ExampleOpenImage() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "manifest-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(src, append([]byte("boot"), make([]byte, 3<<20-4)...), 0o644); err != nil {
		log.Fatal(err)
	}
	m, path, err := manifest.Create(ctx, src, filepath.Join(dir, "parts"), manifest.SplitOptions{PartSize: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(path), m.FileFormat, len(m.Parts), "parts")

	img, err := manifest.OpenImage(ctx, manifest.Source{Manifest: path}, manifest.ImageOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	b := make([]byte, 4)
	if _, err := img.ReadAt(b, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Info().Format, img.Size(), string(b))
	// Output:
	// disk.img.manifest.xml RAW 3 parts
	// raw 3145728 boot
}

// ExampleUpload uploads an image's parts and its manifest to a bucket and
// prints the presigned manifest URL that ImportVolume takes. It needs an
// S3 endpoint and credentials, so go test compiles it without running it.
func ExampleUpload() {
	cfg := parts.S3ConfigFromEnv("https://s3.eu-west-1.amazonaws.com")
	res, err := manifest.Upload(context.Background(), cfg, "disk.vmdk", manifest.UploadOptions{
		Bucket:        "my-imports",
		RequireBucket: true,
		Prefix:        "vm-42",
		Expires:       72 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.ManifestURL)
}

// ExampleManifest_Format reads a manifest's file-format in the one
// spelling of formats across packages, diskport.Format.
func ExampleManifest_Format() {
	m := &manifest.Manifest{FileFormat: "VHD"}
	fmt.Println(m.Format() == diskport.VHD, m.Format(), m.Format().EC2Name())
	// Output: true vhd VHD
}
