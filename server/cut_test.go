package server

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCut: a clipped name never ends in half a character.
func TestCut(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("é", 200) // 2 bytes each
	for n := range 20 {
		got := cut(s, n)
		if !utf8.ValidString(got) || len(got) > n || len(got) < n-1 {
			t.Errorf("cut(%d) = %q (%d bytes)", n, got, len(got))
		}
	}
	if got := clipMessage(strings.Repeat("日本", 300)); !utf8.ValidString(got) {
		t.Errorf("clipMessage cut a character: %q", got[len(got)-8:])
	}
	if got := cut("abc", 10); got != "abc" {
		t.Errorf("cut of a short string = %q", got)
	}
}
