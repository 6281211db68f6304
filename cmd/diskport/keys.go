package main

import (
	"crypto/rsa"
	"fmt"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/disk"
)

// maxKeyFile is the largest PEM key file read (an RSA-16384 key is under
// 13 KB).
const maxKeyFile = 1 << 20

func readPublicKey(file string) (*rsa.PublicKey, error) {
	b, err := disk.ReadSmallFile(file, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := bundle.ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

func readPrivateKey(file string) (*rsa.PrivateKey, error) {
	b, err := disk.ReadSmallFile(file, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := bundle.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}
