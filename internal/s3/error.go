package s3

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// An Error is an S3 server's refusal: the HTTP status and the Code and
// Message of its XML error document.
type Error struct {
	Status  int    // HTTP status code
	Code    string // S3 error code, such as AccessDenied or NoSuchKey
	Message string // S3's explanation, such as "Request has expired"
}

// Error returns "HTTP 403 Forbidden: AccessDenied: Request has expired"
// (the parts the server gave).
func (e *Error) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if t := e.text(); t != "" {
		s += ": " + t
	}
	return s
}

// text returns "Code: Message", or whichever of them is set.
func (e *Error) text() string {
	msg := strings.TrimSpace(e.Message)
	switch {
	case e.Code != "" && msg != "":
		return e.Code + ": " + msg
	case e.Code != "":
		return e.Code
	}
	return msg
}

// HasCode reports whether err is (or wraps) an S3 error with the given
// code, as an *Error or as minio-go reports it.
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(Parse(err), &e) && e.Code == code
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// ReadError reads the body of a failed response (at most 64 KiB; the
// caller closes it) into an *Error.
func ReadError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode}
	e.Code, e.Message, _ = parseBody(body)
	return e
}

// ErrorText returns the "Code: Message" of an S3 XML error document, or,
// when body is not one, its text trimmed of space (an HTML page, a proxy's
// message).
func ErrorText(body []byte) string {
	if code, msg, ok := parseBody(body); ok {
		return (&Error{Code: code, Message: msg}).text()
	}
	return strings.TrimSpace(string(body))
}

// parseBody parses an S3 error document: <Error><Code>…</Code><Message>…
// </Message>…</Error>.
func parseBody(body []byte) (code, message string, ok bool) {
	var x struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}
	if xml.Unmarshal(body, &x) != nil || x.Code == "" {
		return "", "", false
	}
	return x.Code, strings.TrimSpace(x.Message), true
}
