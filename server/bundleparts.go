package server

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/server/store"
)

// bundleSecretSize is a bundle's AES-128 key and IV together.
const bundleSecretSize = 32

// newBundleSecret gives a bundle task its AES key and IV and its tar
// member's time (now, to the second), kept with the task so that a
// restart regenerates the same encrypted parts.
func newBundleSecret(b *store.BundleTask, now time.Time) {
	var k [bundleSecretSize]byte
	rand.Read(k[:])
	b.Secret, b.ModTime = hex.EncodeToString(k[:]), now.UTC().Truncate(time.Second)
}

// bundleSecret returns the task's key and IV, or nil when it has none (a
// task created before schema version 3) or an unreadable one.
func bundleSecret(b *store.BundleTask) []byte {
	k, err := hex.DecodeString(b.Secret)
	if err != nil || len(k) != bundleSecretSize || b.ModTime.IsZero() {
		return nil
	}
	return k
}

// partSink stores a bundle's objects through a PostSink and records each
// part stored (index and SHA-1) in the store right after its POST
// succeeds; a part recorded with the same digest by an earlier run of the
// task is not sent again. The upload policy grants no listing, so the
// store's record is the only knowledge of what the bucket holds.
type partSink struct {
	sink   *bundle.PostSink
	st     store.Store
	log    *slog.Logger
	id     string
	prefix string
	stored map[int]string // read only
	// skipped and resent count the parts not sent again and those sent
	// again because their bytes differ from the record.
	skipped, resent atomic.Int64
}

// partIndex returns n when name is bundle.PartName(prefix, n).
func partIndex(prefix, name string) (int, bool) {
	s, ok := strings.CutPrefix(name, prefix+".part.")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || bundle.PartName(prefix, n) != name {
		return 0, false
	}
	return n, true
}

// Put stores name unless it is a part already stored with these bytes.
func (p *partSink) Put(ctx context.Context, name string, data []byte) error {
	n, ok := partIndex(p.prefix, name)
	if !ok {
		return p.sink.Put(ctx, name, data)
	}
	sum := sha1.Sum(data)
	digest := hex.EncodeToString(sum[:])
	if d, ok := p.stored[n]; ok {
		if d == digest {
			p.skipped.Add(1)
			return nil
		}
		p.resent.Add(1)
		p.log.Warn("bundle", "event", "part-differs", "bundle", p.id, "part", n, "stored_sha1", d, "sha1", digest)
	}
	if err := p.sink.Put(ctx, name, data); err != nil {
		return err
	}
	if err := p.st.StoreBundlePart(context.WithoutCancel(ctx), p.id, n, digest); err != nil {
		// Stored but not recorded: a restart sends it again, no worse.
		p.log.Warn("bundle", "event", "part-not-recorded", "bundle", p.id, "part", n, "error", err.Error())
	}
	return nil
}

// Remove deletes name and forgets it was stored.
func (p *partSink) Remove(ctx context.Context, name string) error {
	if err := p.sink.Remove(ctx, name); err != nil {
		return err
	}
	if n, ok := partIndex(p.prefix, name); ok {
		return p.st.ForgetBundlePart(ctx, p.id, n)
	}
	return nil
}
