package parts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
)

// TestVerifyDamage damages parts in a directory and checks every failure
// is reported with its index and byte range.
func TestVerifyDamage(t *testing.T) {
	f, dir, _ := created(t, 4<<20+100, 1<<20)
	ctx := context.Background()
	store := DirStore{dir}
	p := func(i int) string { return filepath.Join(dir, f.Parts[i].Key) }
	os.Remove(p(1))
	os.Truncate(p(2), 1000)
	b, _ := os.ReadFile(p(3))
	b[77] ^= 1
	os.WriteFile(p(3), b, 0o644)
	os.WriteFile(p(4), append(b[:100:100], 'x'), 0o644)
	_, err := Verify(ctx, f, store, VerifyOptions{Parallel: 2})
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, disk.ErrCorrupt) {
		t.Fatalf("err = %v", err)
	}
	if len(ve.Failures) != 4 {
		t.Fatalf("%d failures: %v", len(ve.Failures), err)
	}
	msg := err.Error()
	for _, s := range []string{
		"4 parts failed verification",
		"part 1 (bytes 1048576-2097151) from " + p(1) + ": missing",
		"part 2 (bytes 2097152-3145727) from " + p(2) + ": truncated: file has 1000 bytes",
		"part 3 (bytes 3145728-4194303) from " + p(3) + ": checksum mismatch: sha256 ",
		"part 4 (bytes 4194304-4194403) from " + p(4) + ": file has 101 bytes, more than its byte range",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error lacks %q:\n%s", s, msg)
		}
	}
	// A part of the right length with other bytes fails its checksum.
	os.WriteFile(p(1), make([]byte, 1<<20), 0o644)
	if _, err := Verify(ctx, f, store, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "part 1 (bytes 1048576-2097151)") {
		t.Fatalf("err = %v", err)
	}
}
