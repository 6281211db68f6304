package logtext

import (
	"errors"
	"net/url"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct {
		f        func(string) string
		in, want string
	}{
		{OneLine, " a\n\tb  c\n", "a b c"},
		{RedactURL, "https://h/b/k?X-Amz-Signature=s", "https://h/b/k"},
		{RedactURL, "k?Signature=s", "k"},
		{RedactURLs, `fetching http://h:1/b/k?X-Amz-Signature=abc&X-Amz-Credential=AK: 404`, "fetching http://h:1/b/k?…: 404"},
		{RedactURLs, "see https://h/k.", "see https://h/k."},
		{RedactPassword, "postgres://u:secret@h/db", "postgres://u:xxxxx@h/db"},
		{RedactPassword, "sqlite:f.db", "sqlite:f.db"},
	} {
		if got := c.f(c.in); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
	err := RedactErr(&url.Error{Op: "Get", URL: "https://h/k?Signature=s", Err: errors.New("refused")})
	if got := err.Error(); got != `Get "https://h/k": refused` {
		t.Errorf("RedactErr: %q", got)
	}
}
