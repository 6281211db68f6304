package ova

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"

	"github.com/diskport/diskport/disk"
)

// maxCert bounds the .cert member: a signature line and a certificate
// chain.
const maxCert = 256 << 10

// A Signature is what the .cert says of the .mf: who signed it, and
// whether the signature matches. The certificate's chain of trust is not
// checked: diskport has no trust anchors for appliance signers.
type Signature struct {
	// Subject is the signing certificate's subject.
	Subject string `json:"subject"`
	// Verified reports that the signature over the .mf is the
	// certificate's key's; Note says why not when it is false.
	Verified bool   `json:"verified"`
	Note     string `json:"note,omitempty"`
}

var certHashes = map[string]crypto.Hash{"SHA1": crypto.SHA1, "SHA256": crypto.SHA256, "SHA512": crypto.SHA512}

// checkCert reads the .cert as ovftool writes it (`SHA256(NAME.mf)= hex`
// of the signature, then the PEM certificate) and checks the signature
// over the .mf bytes mf. A signature that does not match is a
// disk.ErrCorrupt error; a .cert diskport cannot read (another layout, a
// key type other than RSA or ECDSA) is reported in the Note, unverified.
func checkCert(name string, b []byte, mfName string, mf []byte) (*Signature, error) {
	text := string(b)
	line, rest, _ := strings.Cut(text, "\n")
	sig := &Signature{}
	block, _ := pem.Decode([]byte(rest))
	if block == nil || block.Type != "CERTIFICATE" {
		sig.Note = "no PEM certificate after the signature line"
		return sig, nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		sig.Note = "the certificate does not parse: " + err.Error()
		return sig, nil
	}
	sig.Subject = cert.Subject.String()
	alg, after, ok := strings.Cut(strings.TrimSpace(line), "(")
	file, sum, ok2 := strings.Cut(after, ")=")
	h, known := certHashes[alg]
	raw, herr := hex.DecodeString(strings.TrimSpace(sum))
	switch {
	case !ok || !ok2 || !known || herr != nil:
		sig.Note = "the first line is not ALGORITHM(file)= signature"
		return sig, nil
	case file != mfName:
		return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s signs %q, not the manifest %q", name, file, mfName)
	}
	d := h.New()
	d.Write(mf)
	digest := d.Sum(nil)
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		err = rsa.VerifyPKCS1v15(pub, h, digest, raw)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, raw) {
			err = rsa.ErrVerification
		}
	default:
		sig.Note = "the certificate's key type is neither RSA nor ECDSA"
		return sig, nil
	}
	if err != nil {
		return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: the signature of %q does not match the certificate of %s: the manifest was altered or signed by another key", name, mfName, sig.Subject)
	}
	sig.Verified = true
	sig.Note = "signature matches the certificate; its chain of trust is not checked"
	return sig, nil
}
