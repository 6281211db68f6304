package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/diskport/diskport/server/store"
)

// maxUploadPoll is the longest wait between two looks for a manifest or
// parts not uploaded yet.
const maxUploadPoll = 30 * time.Second

// partChecks is how many parts are looked for at once.
const partChecks = 8

// awaitUpload fetches the volume's manifest once it and all its parts are
// uploaded: ec2-import-volume and euca2ools call ImportVolume first and
// upload afterwards. While waiting, with back-off, the status message says
// what is missing ("Pending: 3 of 12 parts uploaded"); at the task's
// expirationTime it gives up with errExpired.
func (p *pool) awaitUpload(ctx context.Context, t *store.Task, v *store.Volume) (*manifest.Manifest, parts.Store, error) {
	wait := p.cfg.UploadPoll
	timer := time.NewTimer(0)
	defer timer.Stop()
	present := map[int]bool{}
	for {
		m, ps, err := manifest.Open(ctx, v.ManifestURL, p.fetch.client)
		var msg string
		switch {
		case err == nil:
			n, err := p.partsPresent(ctx, m, ps, present)
			if err != nil {
				return nil, nil, err
			}
			if n == len(m.Parts) {
				return m, ps, nil
			}
			msg = fmt.Sprintf("Pending: %d of %d parts uploaded", n, len(m.Parts))
		case isNotFound(err):
			msg = "Pending: the manifest is not uploaded yet"
		default:
			return nil, nil, err
		}
		p.status(ctx, t, v, 0, msg)
		left := t.Expiration.Sub(p.now())
		if left <= 0 {
			return nil, nil, errExpired
		}
		timer.Reset(min(wait, left))
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-timer.C:
		}
		wait = min(2*wait, maxUploadPoll)
	}
}

// isNotFound reports whether err is an HTTP 404 (S3's NoSuchKey).
func isNotFound(err error) bool {
	var he *parts.HTTPError
	return errors.As(err, &he) && he.StatusCode == http.StatusNotFound
}

// partsPresent counts the parts that can be fetched, remembering those
// found in present so they are not asked for again.
func (p *pool) partsPresent(ctx context.Context, m *manifest.Manifest, ps parts.Store, present map[int]bool) (int, error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	var todo []int
	for i := range m.Parts {
		if !present[i] {
			todo = append(todo, i)
		}
	}
	sem := make(chan struct{}, partChecks)
	for _, i := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := ps.OpenPart(ctx, &m.Parts[i], 0, 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				r.Close()
				present[i] = true
			case !isNotFound(err) && first == nil:
				first = err
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return len(present), nil
}
