package ova

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"strings"

	"github.com/diskport/diskport/disk"
)

// maxManifestLine bounds a line of the .mf: "SHA512(" + a member name + ")= "
// + 128 hex digits is far shorter.
const maxManifestLine = 4096

// A Digest is one checksum the .mf manifest lists for a member.
type Digest struct {
	// Algorithm is "SHA1", "SHA256" or "SHA512", as the .mf spells it.
	Algorithm string
	// Sum is the checksum, lowercase hex.
	Sum string
}

// newHash returns the hash of d's algorithm.
func (d Digest) newHash() hash.Hash {
	switch d.Algorithm {
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return sha512.New()
}

// digestLen is each algorithm's checksum length in hex digits.
var digestLen = map[string]int{"SHA1": 40, "SHA256": 64, "SHA512": 128}

// parseManifest reads an .mf: lines `SHA1(name)= hex` or `SHA256(name)= hex`
// as ovftool and VirtualBox write them (SHA512 too), blank lines ignored.
// Anything else, an over-long line, a bad checksum or a name listed twice
// is an error naming the line.
func parseManifest(name string, b []byte) (map[string]Digest, error) {
	ds := map[string]Digest{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 512), maxManifestLine)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" {
			continue
		}
		alg, rest, ok := strings.Cut(l, "(")
		close := strings.LastIndex(rest, ")")
		if !ok || digestLen[alg] == 0 || close < 0 {
			return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s line %d: want ALGORITHM(file)= checksum with SHA1, SHA256 or SHA512, got %.80q", name, line, l)
		}
		file, sum := rest[:close], strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest[close+1:]), "="))
		sum = strings.ToLower(sum)
		if _, err := hex.DecodeString(sum); err != nil || len(sum) != digestLen[alg] {
			return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s line %d: %s of %q is not %d hex digits: %.80q", name, line, alg, file, digestLen[alg], sum)
		}
		if _, dup := ds[file]; dup {
			return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s line %d: %q listed twice", name, line, file)
		}
		ds[file] = Digest{Algorithm: alg, Sum: sum}
	}
	if err := sc.Err(); err != nil {
		return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: a line longer than %d bytes (%v)", name, maxManifestLine, err)
	}
	return ds, nil
}
