package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest"
)

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
