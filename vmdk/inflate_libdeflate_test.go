//go:build cgo && !purego

package vmdk

import (
	"strings"
	"testing"
)

// A cgo build inflates with libdeflate: a build that silently fell back to
// the Go decoder would lose the speed without a word.
func TestInflaterIsLibdeflate(t *testing.T) {
	if got := Inflater(); !strings.HasPrefix(got, "libdeflate ") {
		t.Fatalf("Inflater() = %q in a cgo build, want libdeflate", got)
	}
}
