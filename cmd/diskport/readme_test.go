package main

import (
	"os"
	"regexp"
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

// TestReadmeRunsAsPasted: the README states the Go version go.mod
// requires, every aws CLI command names its region (the CLI refuses to
// run without one), "bit-identical" says what is identical, and `diskport
// help` and --format's help name every format the tool reads.
func TestReadmeRunsAsPasted(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(mod))
	if m == nil || !strings.Contains(readme, "Go "+m[1]+" or later") {
		t.Errorf("README does not say it needs Go %v or later", m)
	}
	for _, l := range strings.Split(readme, "\n") {
		if (strings.HasPrefix(l, "aws ") || strings.Contains(l, "| aws ")) && !strings.Contains(l, "--region ") {
			t.Errorf("an aws CLI command without --region: %s", l)
		}
	}
	intro := readme[:strings.Index(readme, "\n## ")]
	if strings.Contains(intro, "bit-identical to") || !strings.Contains(intro, "virtual disk bit for bit") || !strings.Contains(intro, "--exact-size") {
		t.Errorf("the introduction does not say what is identical to qemu-img's output:\n%s", intro)
	}
	_, help, _ := call(t, "help")
	_, conv, _ := call(t, "convert", "--help")
	formatLine := conv[strings.Index(conv, "  -format"):]
	formatLine = formatLine[:3+strings.Index(formatLine[3:], "\n  -")]
	for _, f := range []string{"vmdk", "vhd", "vpc", "vhdx", "raw", "ova"} {
		if !strings.Contains(strings.ToLower(help), f) {
			t.Errorf("diskport help does not name %s:\n%s", f, help)
		}
		if !strings.Contains(formatLine, f) {
			t.Errorf("--format's help does not name %s: %s", f, formatLine)
		}
	}
}
