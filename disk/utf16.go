package disk

import (
	"encoding/binary"
	"unicode/utf16"
)

// DecodeUTF16 decodes the UTF-16 string in b, in the given byte order,
// up to the first NUL or the end of b (an odd last byte is ignored). A
// leading byte order mark is dropped and unpaired surrogates become
// U+FFFD. Disk formats from Windows (VHD and VHDX parent locators, VHDX
// metadata) store their names this way.
func DecodeUTF16(b []byte, order binary.ByteOrder) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := order.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	if len(u) > 0 && u[0] == 0xFEFF {
		u = u[1:]
	}
	return string(utf16.Decode(u))
}
