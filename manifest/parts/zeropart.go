package parts

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
)

// A part whose SHA-256 is that of its length in zero bytes holds zeros
// (finding other bytes with that checksum would break SHA-256), so a
// [Storage] knows its bytes without fetching them. Disk images are often
// mostly empty: a raw image read from a manifest with checksums then
// costs neither transfer nor hashing for its empty stretches, and the
// converter sees them as holes.

// zeroSums caches the hex SHA-256 of n zero bytes, by n.
var zeroSums sync.Map

// zeroSum returns the hex SHA-256 of n zero bytes.
func zeroSum(n int64) string {
	if v, ok := zeroSums.Load(n); ok {
		return v.(string)
	}
	h := sha256.New()
	hashZeros(h, n)
	sum := hex.EncodeToString(h.Sum(nil))
	zeroSums.Store(n, sum)
	return sum
}

// knownZero reports whether part p's checksum says it holds only zeros.
func knownZero(p *Part) bool {
	return p.SHA256 != "" && strings.EqualFold(p.SHA256, zeroSum(p.Length))
}
