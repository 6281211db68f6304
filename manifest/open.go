package manifest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/logtext"
	"github.com/diskport/diskport/manifest/parts"
)

// IsURL reports whether s is an http or https URL rather than a path.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// Open reads the manifest at a local path or an http(s) URL (such as an
// ImportManifestUrl) and picks the store to read its parts from:
//   - for a URL, a [parts.HTTPStore] using the parts' get-urls (relative ones
//     resolved against the manifest's URL) with the given client (nil for
//     the default);
//   - for a path, a [parts.DirStore] on the manifest's directory when the
//     part files are there, else an HTTPStore when the parts have get-urls;
//   - for a directory, the same for the one NAME.manifest.xml in it (more
//     than one, or none, is an error naming them).
func Open(ctx context.Context, pathOrURL string, client *http.Client) (*Manifest, parts.Store, error) {
	if IsURL(pathOrURL) {
		u, err := url.Parse(pathOrURL)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest: bad URL %s", RedactURL(pathOrURL)) // url.Parse's error quotes it whole
		}
		store := &parts.HTTPStore{Client: client, Base: u}
		b, err := store.Fetch(ctx, pathOrURL, maxManifestSize)
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
	dir := parts.DirStore{Dir: filepath.Dir(pathOrURL)}
	if m.Parts[0].GetURL != "" {
		if path, err := dir.Path(&m.Parts[0]); err != nil || !exists(path) {
			return m, &parts.HTTPStore{Client: client}, nil
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

// IsS3URL reports whether s names an object as s3://bucket/key.
func IsS3URL(s string) bool { return strings.HasPrefix(s, "s3://") }

// OpenS3 reads the manifest at s3://bucket/key with the S3 API and
// credentials (for a manifest whose presigned URLs have expired), and
// returns it with a [parts.S3Store] reading its parts by key from the same
// bucket.
func OpenS3(ctx context.Context, cfg parts.S3Config, s3url string) (*Manifest, *parts.S3Store, error) {
	bucket, key, ok := strings.Cut(strings.TrimPrefix(s3url, "s3://"), "/")
	if !IsS3URL(s3url) || !ok || bucket == "" || key == "" {
		return nil, nil, fmt.Errorf("manifest: %q is not s3://BUCKET/KEY", s3url)
	}
	store, err := parts.NewS3Store(cfg, bucket)
	if err != nil {
		return nil, nil, err
	}
	b, err := store.Fetch(ctx, key, maxManifestSize)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest: fetching %s: %w", s3url, err)
	}
	m, err := ParseBytes(b)
	if err != nil {
		return nil, nil, err
	}
	return m, store, nil
}

// RedactURL drops a URL's query string, where presigned URLs keep their
// credentials (the signature, and for SigV4 the access key ID). Anything
// that is not an http(s) URL (a local path) is returned unchanged. Every
// name, summary and error this package makes from a URL goes through it.
func RedactURL(s string) string {
	if !IsURL(s) {
		return s
	}
	return logtext.RedactURL(s)
}
