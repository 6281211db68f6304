package server

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
)

// FuzzQuery parses fuzzed query strings and form bodies as serve does and
// reads them with every parameter reader the handlers use (lists,
// indexes, integers, booleans, one-of values, the disk image parameters
// of ImportVolume and ImportInstance, DescribeBundleTasks' filters): a
// value is read or refused with an *apiError of a 400 status, never a
// panic, and what is read keeps its bounds.
func FuzzQuery(f *testing.F) {
	f.Add("Action=ImportVolume&Version=2016-11-15&Image.Format=VMDK&Image.Bytes=1234&Image.ImportManifestUrl=https%3A%2F%2Fs3.example%2Fb%2Fm.xml%3FX-Amz-Signature%3Dab&Volume.Size=8&AvailabilityZone=us-east-1a", "")
	f.Add("Action=ImportInstance&Version=2016-11-15", "Platform=Linux&LaunchSpecification.Architecture=x86_64&LaunchSpecification.Monitoring.Enabled=true&DiskImage.1.Image.Format=RAW&DiskImage.1.Image.Bytes=1073741824&DiskImage.1.Image.ImportManifestUrl=http%3A%2F%2F127.0.0.1%3A9000%2Fm&DiskImage.1.Volume.Size=1&DiskImage.2.Image.Format=vhd")
	f.Add("Action=DescribeBundleTasks&BundleId.1=bun-1&BundleId.3=bun-3&Filter.1.Name=state&Filter.1.Value.1=comp*&Filter.2.Name=s3-prefix&Filter.2.Value.1=a%3Fb", "")
	f.Add("VolumeId.0=x&VolumeId.1001=y&VolumeId.a=z&DryRun=TRUE", "Image.Bytes=-1&Volume.Size=99999999999999999999")
	f.Add("a=%zz", "")
	fp, err := newFetchPolicy([]string{"127.0.0.1:9000", "s3.example:443"})
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{fetch: fp}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, query, body string) {
		if len(query)+len(body) > 4096 {
			return
		}
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		if form, err := url.ParseQuery(body); err == nil {
			for k, v := range form {
				params[k] = append(params[k], v...)
			}
		}
		c := &call{params: params}
		refused := func(what string, err error) bool {
			if err == nil {
				return false
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Code == "" {
				t.Fatalf("%s: %v is not a 400 *apiError", what, err)
			}
			if utf8.ValidString(query+body) && !utf8.ValidString(ae.Message) {
				t.Fatalf("%s: message %q is not UTF-8", what, ae.Message)
			}
			return true
		}
		for _, prefix := range []string{"VolumeId", "InstanceId", "BundleId", "ConversionTaskId"} {
			vs, err := c.list(prefix)
			if refused(prefix, err) {
				continue
			}
			for _, v := range vs {
				if v == "" || v != strings.TrimSpace(v) {
					t.Fatalf("%s: value %q", prefix, v)
				}
			}
		}
		for _, prefix := range []string{"DiskImage", "Filter"} {
			idx, err := indexes(params, prefix)
			if refused(prefix, err) {
				continue
			}
			if !slices.IsSorted(idx) || len(slices.Compact(slices.Clone(idx))) != len(idx) || len(idx) > 0 && (idx[0] < 1 || idx[len(idx)-1] > 1000) {
				t.Fatalf("%s indexes %v", prefix, idx)
			}
			for _, n := range idx {
				if prefix == "DiskImage" {
					checkDiskImage(t, s, c, fmt.Sprintf("DiskImage.%d.", n), now, refused)
					continue
				}
				values, err := c.list(fmt.Sprintf("Filter.%d.Value", n))
				if refused("filter values", err) {
					continue
				}
				for _, field := range []string{c.get(fmt.Sprintf("Filter.%d.Name", n)), "bun-0123abcd", ""} {
					if matchAny(field, values) != slices.ContainsFunc(values, func(p string) bool { return globMatch(p, field) }) {
						t.Fatalf("matchAny(%q, %q) disagrees with globMatch", field, values)
					}
				}
			}
		}
		checkDiskImage(t, s, c, "", now, refused)
		if n, err := c.integer("Volume.Size", 1, maxVolumeGiB, false); !refused("integer", err) && (n < 0 || n > maxVolumeGiB) {
			t.Fatalf("Volume.Size %d", n)
		}
		_, err = c.boolean("LaunchSpecification.Monitoring.Enabled")
		refused("boolean", err)
		if v, err := oneOf("Platform", c.get("Platform"), "Windows", "Linux"); !refused("oneOf", err) && v != "Windows" && v != "Linux" {
			t.Fatalf("Platform %q", v)
		}
		if _, err := s.zone(c, "AvailabilityZone"); err != nil {
			refused("zone", err)
		}
		for _, vs := range params {
			for _, v := range vs {
				if c := clip(v); len(c) > 64+len("…") || utf8.ValidString(v) && !utf8.ValidString(c) {
					t.Fatalf("clip(%q) = %q", v, c)
				}
			}
		}
	})
}

// checkDiskImage reads one disk image's parameters: refused, or a volume
// whose format, sizes and description are within bounds.
func checkDiskImage(t *testing.T, s *Server, c *call, prefix string, now time.Time, refused func(string, error) bool) {
	v, err := s.diskImage(c, prefix, now)
	if refused(prefix+"Image", err) {
		return
	}
	if !slices.Contains([]string{manifest.FormatVMDK, manifest.FormatRAW, manifest.FormatVHD, manifest.FormatOVA}, v.Format) ||
		v.Bytes < 1 || v.Bytes > parts.MaxFileSize || v.Size < 1 || v.Size > maxVolumeGiB || len(v.Description) > 255 ||
		v.Format == manifest.FormatRAW && v.Bytes > v.Size*GiB {
		t.Fatalf("%sImage read as %+v", prefix, v)
	}
	if err := s.fetch.checkURL(v.ManifestURL); err != nil {
		t.Fatalf("manifest URL %q accepted, then refused: %v", v.ManifestURL, err)
	}
}

// globMatch is wildcard written out the slow, obvious way: a table of
// which prefixes of p match which prefixes of v.
func globMatch(p, v string) bool {
	m := make([][]bool, len(p)+1)
	for i := range m {
		m[i] = make([]bool, len(v)+1)
	}
	m[0][0] = true
	for i := 1; i <= len(p); i++ {
		for j := 0; j <= len(v); j++ {
			switch p[i-1] {
			case '*':
				m[i][j] = m[i-1][j] || j > 0 && m[i][j-1]
			case '?':
				m[i][j] = j > 0 && m[i-1][j-1]
			default:
				m[i][j] = j > 0 && m[i-1][j-1] && p[i-1] == v[j-1]
			}
		}
	}
	return m[len(p)][len(v)]
}

// FuzzWildcard checks DescribeBundleTasks' filter matching against
// globMatch. Seeded with patterns of many stars, which made a matcher that
// tried every split at every star run for minutes.
func FuzzWildcard(f *testing.F) {
	f.Add("comp*", "complete")
	f.Add("*a*a*a*a*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 40))
	f.Add("?*?x", "abx")
	f.Add("**", "")
	f.Add("a*b?c", "a*bxc")
	f.Fuzz(func(t *testing.T, p, v string) {
		if len(p) > 256 || len(v) > 256 {
			return
		}
		if got, want := wildcard(p, v), globMatch(p, v); got != want {
			t.Fatalf("wildcard(%q, %q) = %v, want %v", p, v, got, want)
		}
	})
}

// TestWildcardManyStars: a filter value of many stars against a long
// field answers at once.
func TestWildcardManyStars(t *testing.T) {
	p := strings.Repeat("*a", 40) + "*b"
	if wildcard(p, strings.Repeat("a", 4000)) {
		t.Fatal("matched")
	}
}
