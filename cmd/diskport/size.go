package main

import (
	"errors"

	"github.com/diskport/diskport/disk"
	"strconv"
	"strings"
	"time"
)

// byteSize is a flag holding a byte count written as 10485760, 10MiB, 10M,
// 512KiB, 1GiB.
type byteSize int64

// String writes the size with the largest binary unit that divides it
// (10MiB), as --help shows defaults.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("not a byte size: " + s)
	}
	return n * mult, nil
}

// volumeGiB is the --volume-size flag: a volume size whose unit is the GiB,
// as EC2's: 12 and 12GiB (or 12G) are 12 GiB; a size with another unit
// must be a whole number of GiB (12288MiB).
type volumeGiB int64

func (v *volumeGiB) String() string { return strconv.FormatInt(int64(*v), 10) }

func (v *volumeGiB) Set(s string) error {
	t := strings.TrimSpace(s)
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 || n > 1<<32 {
			return errors.New("not a volume size in GiB: " + s)
		}
		*v = volumeGiB(n)
		return nil
	}
	n, err := parseByteSize(t)
	if err != nil {
		return errors.New("not a volume size (12, 12GiB): " + s)
	}
	if n%(1<<30) != 0 {
		return errors.New("a volume size is a whole number of GiB, not " + s)
	}
	*v = volumeGiB(n >> 30)
	return nil
}

// duration is a flag holding a time.Duration that also takes days: 72h,
// 90m, 7d, 1d12h.
type duration time.Duration

func (d *duration) String() string { return time.Duration(*d).String() }

func (d *duration) Set(s string) error {
	t := strings.TrimSpace(s)
	var days int64
	if i := strings.IndexByte(t, 'd'); i > 0 {
		n, err := strconv.ParseInt(t[:i], 10, 64)
		if err != nil || n < 0 || n > 3650 {
			return errors.New("not a duration (72h, 7d): " + s)
		}
		days, t = n, t[i+1:]
	}
	var rest time.Duration
	if t != "" {
		var err error
		if rest, err = time.ParseDuration(t); err != nil {
			return errors.New("not a duration (72h, 7d): " + s)
		}
	}
	*d = duration(time.Duration(days)*24*time.Hour + rest)
	return nil
}

// sizeText writes n bytes as qemu-img does, in binary units and then
// exactly: "64 MiB (67125248 bytes)".
func sizeText(n int64) string {
	return disk.FormatSize(n) + " (" + count(n, "byte") + ")"
}

// count writes n and the noun, in the plural unless n is 1: "1 part",
// "3 parts", "2 entries".
func count[N int | int64](n N, noun string) string {
	if n != 1 {
		if strings.HasSuffix(noun, "y") {
			noun = noun[:len(noun)-1] + "ie"
		}
		noun += "s"
	}
	return strconv.FormatInt(int64(n), 10) + " " + noun
}
