package bundle

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/diskport/diskport/disk"
)

// ParsePublicKeyPEM returns the RSA public key of a PEM certificate (the
// EC2 certificate, a user's X.509 certificate) or PEM public key.
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("bundle: no CERTIFICATE or PUBLIC KEY PEM block")
		}
		var pub any
		var err error
		switch b.Type {
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = c.PublicKey
			}
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bundle: %s: %w", strings.ToLower(b.Type), err)
		}
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("bundle: %s holds a %T key, not RSA", strings.ToLower(b.Type), pub)
		}
		return k, nil
	}
}

// ParsePrivateKeyPEM returns the RSA private key of a PEM "RSA PRIVATE KEY"
// (PKCS#1) or "PRIVATE KEY" (PKCS#8) block.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("bundle: no RSA PRIVATE KEY or PRIVATE KEY PEM block")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("bundle: private key is %T, not RSA", k)
			}
			return rk, nil
		}
	}
}

// encryptHex encrypts the 32-hex-digit text of secret (an AES key or IV)
// for pub with RSA PKCS#1 v1.5, as `openssl rsautl -encrypt -pkcs` does in
// ec2-bundle-image and euca2ools, and returns the ciphertext in hex.
func encryptHex(pub *rsa.PublicKey, secret []byte) (string, error) {
	//lint:ignore SA1019 the AMI bundle format fixes PKCS#1 v1.5 encryption.
	ct, err := rsa.EncryptPKCS1v15(nil, pub, []byte(hex.EncodeToString(secret)))
	if err != nil {
		return "", fmt.Errorf("bundle: encrypting the AES key: %w", err)
	}
	return hex.EncodeToString(ct), nil
}

// decryptHex reverses encryptHex: the plaintext must be 32 hex digits.
func decryptHex(priv *rsa.PrivateKey, ctHex string) ([]byte, error) {
	ct, err := hex.DecodeString(strings.TrimSpace(ctHex))
	if err != nil || len(ct) == 0 {
		return nil, errors.New("empty or not hex")
	}
	//lint:ignore SA1019 the AMI bundle format fixes PKCS#1 v1.5 encryption.
	pt, err := rsa.DecryptPKCS1v15(nil, priv, ct)
	if err != nil {
		return nil, errors.New("does not decrypt with this private key")
	}
	if len(pt) != 32 {
		return nil, fmt.Errorf("decrypts to %d bytes, not 32 hex digits", len(pt))
	}
	b, err := hex.DecodeString(string(pt))
	if err != nil {
		return nil, errors.New("decrypts to text that is not hex")
	}
	return b, nil
}

// DecryptKey returns the bundle's AES key and IV, decrypted with priv: the
// user's copies are tried first, then EC2's, as euca2ools does.
func (m *Manifest) DecryptKey(priv *rsa.PrivateKey) (key, iv []byte, err error) {
	var why []string
	for _, who := range []struct{ name, key, iv string }{
		{"user", m.Image.UserEncryptedKey.Hex, m.Image.UserEncryptedIV},
		{"ec2", m.Image.EC2EncryptedKey.Hex, m.Image.EC2EncryptedIV},
	} {
		if strings.TrimSpace(who.key) == "" {
			continue
		}
		k, err := decryptHex(priv, who.key)
		if err != nil {
			why = append(why, fmt.Sprintf("%s_encrypted_key %v", who.name, err))
			continue
		}
		v, err := decryptHex(priv, who.iv)
		if err != nil {
			why = append(why, fmt.Sprintf("%s_encrypted_iv %v", who.name, err))
			continue
		}
		return k, v, nil
	}
	if len(why) == 0 {
		why = append(why, "manifest holds no encrypted key")
	}
	return nil, nil, disk.Errorf("bundle", disk.ErrUnsafe, "cannot decrypt the bundle key: %s", strings.Join(why, "; "))
}

// Sign sets the manifest's signature: RSA PKCS#1 v1.5 over the SHA-1 of
// SignedText, in hex; with a nil key, "UNSIGNED".
func (m *Manifest) Sign(priv *rsa.PrivateKey) error {
	if priv == nil {
		m.Signature = Unsigned
		return nil
	}
	h := sha1.Sum(m.SignedText())
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA1, h[:])
	if err != nil {
		return fmt.Errorf("bundle: signing the manifest: %w", err)
	}
	m.Signature = hex.EncodeToString(sig)
	return nil
}

// A SignatureError is a manifest signature refused by [Manifest.Verify]:
// an UNSIGNED manifest (class disk.ErrUnsafe) or a signature that does
// not verify with the key given (disk.ErrCorrupt).
type SignatureError struct {
	// Unsigned: the manifest's signature is UNSIGNED.
	Unsigned bool
	err      error
}

func (e *SignatureError) Error() string { return e.err.Error() }

// Unwrap returns the *disk.Error, so errors.Is(err, disk.ErrUnsafe) works.
func (e *SignatureError) Unwrap() error { return e.err }

// Verify checks the manifest's signature with pub. An UNSIGNED manifest is
// refused. The error is a *SignatureError.
func (m *Manifest) Verify(pub *rsa.PublicKey) error {
	s := strings.TrimSpace(m.Signature)
	if s == Unsigned {
		return &SignatureError{Unsigned: true, err: disk.Errorf("bundle", disk.ErrUnsafe, "manifest is UNSIGNED")}
	}
	sig, err := hex.DecodeString(s)
	if err != nil {
		return corrupt("manifest signature is not hex")
	}
	h := sha1.Sum(m.SignedText())
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, h[:], sig); err != nil {
		return &SignatureError{err: disk.Errorf("bundle", disk.ErrCorrupt, "manifest signature does not verify with the signer's key (%d-bit)", pub.N.BitLen())}
	}
	return nil
}
