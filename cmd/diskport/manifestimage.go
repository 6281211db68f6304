package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/manifest"
)

// openManifestImage opens the image a manifest's parts hold (convert, info
// and map --manifest): the declared file-format is checked against the
// bytes. Closing the returned image also drops the parts cache.
func openManifestImage(ctx context.Context, pathOrURL string, progress func(int64)) (*manifest.Image, error) {
	img, err := manifest.OpenImage(ctx, pathOrURL, manifest.ImageOptions{Storage: manifest.StorageOptions{Progress: progress}})
	var me *diskport.MismatchError
	if errors.As(err, &me) {
		return nil, &hinted{fmt.Sprintf("%s (the manifest's file-format is wrong: EC2 would import these bytes as %s; write the manifest again with the right --format)", me.Reason(), me.Declared.EC2Name()), err}
	}
	return img, err
}
