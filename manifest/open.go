package manifest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskport/diskport/disk"
)

// IsURL reports whether s is an http or https URL rather than a path.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// Open reads the manifest at a local path or an http(s) URL (such as an
// ImportManifestUrl) and picks the store to read its parts from:
//   - for a URL, an [HTTPStore] using the parts' get-urls (relative ones
//     resolved against the manifest's URL) with the given client (nil for
//     the default);
//   - for a path, a [DirStore] on the manifest's directory when the part
//     files are there, else an HTTPStore when the parts have get-urls.
func Open(ctx context.Context, pathOrURL string, client *http.Client) (*Manifest, PartStore, error) {
	if IsURL(pathOrURL) {
		u, err := url.Parse(pathOrURL)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest: bad URL %s", RedactURL(pathOrURL)) // url.Parse's error quotes it whole
		}
		store := &HTTPStore{Client: client, Base: u}
		b, err := store.get(ctx, pathOrURL)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest: fetching %s: %w", redact(pathOrURL), err)
		}
		m, err := ParseBytes(b)
		if err != nil {
			return nil, nil, err
		}
		return m, store, nil
	}
	f, err := disk.OpenFile(pathOrURL, disk.FileOptions{})
	if err != nil {
		return nil, nil, err
	}
	m, err := Parse(f)
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	dir := DirStore{Dir: filepath.Dir(pathOrURL)}
	if m.Parts[0].GetURL != "" {
		if path, err := dir.Path(&m.Parts[0]); err != nil || !exists(path) {
			return m, &HTTPStore{Client: client}, nil
		}
	}
	return m, dir, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// get fetches a small document (a manifest) with the store's retries.
func (h *HTTPStore) get(ctx context.Context, u string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		b, err := h.getOnce(ctx, u)
		if err == nil {
			return b, nil
		}
		he, isHTTP := err.(*HTTPError)
		if ctx.Err() != nil || attempt >= h.retries() || (isHTTP && !he.transient()) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(h.backoff(attempt)):
		}
	}
}

func (h *HTTPStore) getOnce(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bad URL %s", RedactURL(u)) // url.Parse's error quotes the whole URL
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, redactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, newHTTPError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxManifestSize {
		return nil, errorf(disk.ErrTooLarge, "document larger than %d bytes", maxManifestSize)
	}
	return b, nil
}
