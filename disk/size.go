package disk

import "fmt"

// FormatSize returns n bytes the way qemu-img prints sizes: three
// significant digits of the largest binary unit that fits ("3 GiB",
// "1.5 MiB", "10.2 KiB"), or the exact count below 1 KiB ("512 B").
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f, u := float64(n), 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.3g %s", f, units[u])
}
