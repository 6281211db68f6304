// Package logtext shapes text bound for a log, an API status message or
// a terminal: on one line, and with no credential in it. A presigned URL's
// query string is a credential (its signature, and for SigV4 the access
// key ID), and so is a connection string's password.
package logtext

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// OneLine folds every run of white space in s, newlines included, into
// one space, and trims both ends: a message from a wrapped error or an
// S3 error document prints on one line.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// RedactURL drops the query string of u, an absolute or a relative URL.
func RedactURL(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// urlInText matches an http(s) URL in a message.
var urlInText = regexp.MustCompile(`https?://[^\s"'<>]+`)

// RedactURLs replaces the query string of every http(s) URL in msg with
// "?…", which says that something was there. The punctuation that ends
// a sentence after a URL is kept.
func RedactURLs(msg string) string {
	return urlInText.ReplaceAllStringFunc(msg, func(u string) string {
		base, q, ok := strings.Cut(u, "?")
		if !ok {
			return u
		}
		tail := q[len(strings.TrimRight(q, ":,;.)")):]
		return base + "?…" + tail
	})
}

// RedactErr drops the query string from the URL net/http puts in its
// errors ("Get \"https://…?X-Amz-Signature=…\": dial tcp …"), in place,
// and returns err.
func RedactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}

// RedactPassword hides the password of a connection string
// (postgres://user:password@host/db); anything else is returned
// unchanged.
func RedactPassword(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return s
}
