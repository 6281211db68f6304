package manifest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest/parts"
)

// TestOpenURL opens a manifest by URL, its relative get-urls resolved
// against it, and by path, its parts beside it; an expired URL's error
// gives S3's reason.
func TestOpenURL(t *testing.T) {
	m, dir, data := created(t, 700<<10, 256<<10)
	// A manifest with relative get-urls, served beside its parts.
	for i := range m.Parts {
		m.Parts[i].GetURL = m.Parts[i].Key + "?sig=1"
	}
	os.WriteFile(filepath.Join(dir, "disk.img.manifest.xml"), m.Marshal(), 0o644)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Base(r.URL.Path) == "gone.xml" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, path.Base(r.URL.Path)))
	}))
	defer srv.Close()
	m2, store, err := Open(context.Background(), srv.URL+"/b/disk.img.manifest.xml?X-Amz-Signature=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := parts.OpenStorage(context.Background(), m2.File(), store, parts.StorageOptions{})
	defer s.Close()
	if !bytes.Equal(testimg.ReadAll(t, s), data) {
		t.Fatal("read differs")
	}
	// From the local path, the parts are read from the directory.
	_, store, err = Open(context.Background(), filepath.Join(dir, "disk.img.manifest.xml"), nil)
	if _, ok := store.(parts.DirStore); err != nil || !ok {
		t.Fatalf("local open: %T %v", store, err)
	}
	if _, _, err := Open(context.Background(), srv.URL+"/b/gone.xml", nil); err == nil || !strings.Contains(err.Error(), "Request has expired") {
		t.Fatalf("err = %v", err)
	}
}
