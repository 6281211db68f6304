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
	"github.com/diskport/diskport/internal/logtext"
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
//     files are there, else an HTTPStore when the parts have get-urls;
//   - for a directory, the same for the one NAME.manifest.xml in it (more
//     than one, or none, is an error naming them).
func Open(ctx context.Context, pathOrURL string, client *http.Client) (*Manifest, PartStore, error) {
	if IsURL(pathOrURL) {
		u, err := url.Parse(pathOrURL)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest: bad URL %s", RedactURL(pathOrURL)) // url.Parse's error quotes it whole
		}
		store := &HTTPStore{Client: client, Base: u}
		b, err := store.get(ctx, pathOrURL)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest: fetching %s: %w", logtext.RedactURL(pathOrURL), err)
		}
		m, err := ParseBytes(b)
		if err != nil {
			return nil, nil, err
		}
		return m, store, nil
	}
	if st, err := os.Stat(pathOrURL); err == nil && st.IsDir() {
		one, err := FindManifest(pathOrURL)
		if err != nil {
			return nil, nil, err
		}
		pathOrURL = one
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

// FindManifest returns the path of the one import manifest
// (NAME.manifest.xml) in dir: what `manifest create` writes there.
func FindManifest(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	var found []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), manifestSuffix) && !e.IsDir() {
			found = append(found, filepath.Join(dir, e.Name()))
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("manifest: no *%s in directory %s", manifestSuffix, dir)
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = filepath.Base(f)
	}
	return "", fmt.Errorf("manifest: directory %s holds %d manifests (%s): name one", dir, len(found), strings.Join(names, ", "))
}

// manifestSuffix ends the name of every manifest Create writes.
const manifestSuffix = ".manifest.xml"

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
		return nil, logtext.RedactErr(err)
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
