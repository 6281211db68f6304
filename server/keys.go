package server

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/internal/atomicfile"
)

// BundleKeyFile and BundleCertFile are the server's bundle key pair in
// the data directory: with them it plays EC2's part in BundleInstance,
// signing each bundle's manifest and encrypting its AES key. An operator
// unbundles with them: diskport unbundle --key DIR/bundle.key.
const (
	BundleKeyFile  = "bundle.key"
	BundleCertFile = "bundle.crt"
)

// loadBundleKey reads the bundle key pair, creating it (RSA 2048, a
// self-signed certificate valid 20 years) on the first start.
func loadBundleKey(dir string) (*rsa.PrivateKey, error) {
	keyPath, certPath := filepath.Join(dir, BundleKeyFile), filepath.Join(dir, BundleCertFile)
	b, err := os.ReadFile(keyPath)
	if err == nil {
		k, err := bundle.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("server: %s: %w", keyPath, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server: %w", err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "diskport serve bundles"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(20, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	// The certificate first, then the key under its final name last: a
	// crash in between leaves no key, and the next start makes both anew.
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// writeFileAtomic writes data to path by atomicfile's rule, naming the
// file in its error.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("server: writing %s: %w", path, err)
	}
	return nil
}
