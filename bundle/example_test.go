package bundle_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/volume"
)

// readKey returns read options with a PEM private key of the package's test data.
func readKey(name string) *bundle.ReadOptions {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		log.Fatal(err)
	}
	k, err := bundle.ParsePrivateKeyPEM(b)
	if err != nil {
		log.Fatal(err)
	}
	return &bundle.ReadOptions{Key: k}
}

// ExampleWrite bundles a volume as an AMI bundle into a directory (an S3
// POST-policy sink works the same), its AES key encrypted for EC2's key
// and the user's, its manifest signed with the user's key; then restores
// it, as `diskport unbundle` does, checking every part, the signature and
// the image digest, into a volume written under a temporary name.
func ExampleWrite() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bundle-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "volume.raw")
	if err := os.WriteFile(src, append([]byte("boot"), make([]byte, 3<<20-4)...), 0o644); err != nil {
		log.Fatal(err)
	}
	img, err := diskport.Open(src, diskport.Options{Format: "raw"})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	ec2, user := readKey("ec2-key.pem"), readKey("user-key.pem")
	m, err := bundle.Write(ctx, img, bundle.Dir(filepath.Join(dir, "b")), bundle.Options{
		Prefix: "image", EC2Key: &ec2.Key.PublicKey, UserKey: &user.Key.PublicKey, SignKey: user.Key,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Image.Size, "bytes in", len(m.Image.Parts.Part), "part(s)")

	// Unbundling: with the user's key, which also checks the signature.
	r, err := bundle.Open(ctx, bundle.Dir(filepath.Join(dir, "b")), bundle.ManifestName("image"), *user)
	if err != nil {
		log.Fatal(err)
	}
	w, err := volume.Create(filepath.Join(dir, "restored.raw"), r.Manifest.Image.Size, volume.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := r.ExtractVolume(ctx, w); err != nil {
		w.Abort()
		log.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("restored, signed:", r.Signed)
	// Output:
	// 3145728 bytes in 1 part(s)
	// restored, signed: true
}
