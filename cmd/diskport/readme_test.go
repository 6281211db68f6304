package main

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeMatchesHelp: the README's usage section has every verb's
// synopsis exactly as `diskport VERB --help` prints it, and its library
// snippet is ExampleConvert, whole.
func TestReadmeMatchesHelp(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for name := range commands {
		code, out, _ := call(t, name, "--help")
		first := strings.SplitN(out, "\n\n", 2)[0]
		if code != 0 || !strings.HasPrefix(first, "usage: diskport "+name) {
			t.Fatalf("%s --help: exit %d, %q", name, code, out)
		}
		if synopsis := strings.TrimPrefix(first, "usage: "); !strings.Contains(readme, "\n"+synopsis+"\n") {
			t.Errorf("README lacks the synopsis of %s as --help prints it:\n%s", name, synopsis)
		}
	}
	ex, err := os.ReadFile("../../convert/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(ex)
	body := s[strings.Index(s, "func ExampleConvert() {"):strings.Index(s, "// ExampleCheck")]
	body = strings.Replace(strings.TrimSpace(body), "func ExampleConvert() {", "func main() {", 1)
	if !strings.Contains(readme, body+"\n```") {
		t.Errorf("README's library snippet is not ExampleConvert, whole:\n%s", body)
	}
}
