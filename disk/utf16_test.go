package disk

import (
	"encoding/binary"
	"testing"
)

func TestDecodeUTF16(t *testing.T) {
	for _, c := range []struct {
		b     []byte
		order binary.ByteOrder
		want  string
	}{
		{[]byte("a\x00b\x00\x00\x00c\x00"), binary.LittleEndian, "ab"},
		{[]byte("\x00a\x00b\x00"), binary.BigEndian, "ab"},
		{[]byte("\xff\xfea\x00"), binary.LittleEndian, "a"},       // byte order mark
		{[]byte("\x3d\xd8a\x00"), binary.LittleEndian, "\ufffda"}, // unpaired surrogate
	} {
		if got := DecodeUTF16(c.b, c.order); got != c.want {
			t.Errorf("%q: %q, want %q", c.b, got, c.want)
		}
	}
}
