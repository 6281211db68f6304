package disk

import "testing"

func TestFormatSize(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {512, "512 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536 << 10, "1.5 MiB"},
		{10445, "10.2 KiB"}, {3 << 30, "3 GiB"}, {1<<30 + 1, "1 GiB"}, {4 << 40, "4 TiB"}, {1<<63 - 1, "8 EiB"},
	} {
		if got := FormatSize(c.n); got != c.want {
			t.Errorf("FormatSize(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
