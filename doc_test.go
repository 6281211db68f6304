package diskport_test

import (
	"go/doc/comment"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport"
)

// TestPackageDocListsEverything: `go doc` of this package names every
// format the module reads (and OVA) and every package of the module.
func TestPackageDocListsEverything(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, l := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(l, "//"); ok {
			text = append(text, s)
		}
	}
	var p comment.Parser
	doc := string((&comment.Printer{}).Text(p.Parse(strings.Join(text, "\n"))))
	doc = strings.Join(strings.Fields(doc), " ")
	for _, f := range diskport.Formats() {
		if !strings.Contains(doc, f.EC2Name()) {
			t.Errorf("the package doc does not name %s", f.EC2Name())
		}
	}
	if !strings.Contains(doc, "OVA") {
		t.Error("the package doc does not name OVA")
	}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") && path != "." {
			return filepath.SkipDir
		}
		if path == "." {
			return nil
		}
		gos, _ := filepath.Glob(filepath.Join(path, "*.go"))
		for _, g := range gos {
			if !strings.HasSuffix(g, "_test.go") {
				if !strings.Contains(doc, filepath.ToSlash(path)) {
					t.Errorf("the package doc does not list the package %s", filepath.ToSlash(path))
				}
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
