package parts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/logtext"
	"github.com/diskport/diskport/internal/s3"
)

// An HTTPStore fetches parts with GET requests to their get-url (resolved
// against Base when relative), using range requests for pieces of a part.
// Transient failures (connection errors, a body cut short, HTTP 429 and
// 5xx) are retried with exponential back-off, resuming a cut body where it
// stopped; other HTTP errors fail at once with the status and the start of
// the response body (S3's explanation of a 403, for instance).
type HTTPStore struct {
	// Client is the HTTP client; nil means a client with no overall
	// timeout but a 30-second limit on connecting and on waiting for
	// response headers.
	Client *http.Client
	// Base resolves relative get-urls; nil means absolute URLs only.
	Base *url.URL
	// Retries is how many times a transient failure is retried; 0 means
	// 4, negative means none.
	Retries int
	// Backoff is the first retry's delay, doubled each time; 0 means
	// 200ms.
	Backoff time.Duration
	// IdleTimeout is how long a response body may send nothing before the
	// request is abandoned and retried; 0 means 60s.
	IdleTimeout time.Duration
}

func (h *HTTPStore) idle() time.Duration {
	if h.IdleTimeout <= 0 {
		return 60 * time.Second
	}
	return h.IdleTimeout
}

var defaultHTTPClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	},
}

func (h *HTTPStore) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return defaultHTTPClient
}

func (h *HTTPStore) retries() int {
	switch {
	case h.Retries < 0:
		return 0
	case h.Retries == 0:
		return 4
	}
	return h.Retries
}

func (h *HTTPStore) backoff(attempt int) time.Duration {
	d := h.Backoff
	if d == 0 {
		d = 200 * time.Millisecond
	}
	return d << min(attempt, 10)
}

// URL returns the part's get-url, resolved against Base.
func (h *HTTPStore) URL(p *Part) (string, error) {
	if p.GetURL == "" {
		return "", errorf(disk.ErrCorrupt, "part %d has no get-url", p.Index)
	}
	u, err := url.Parse(p.GetURL)
	if err != nil {
		return "", errorf(disk.ErrCorrupt, "part %d get-url %s does not parse", p.Index, logtext.RedactURL(p.GetURL))
	}
	if !u.IsAbs() {
		if h.Base == nil {
			return "", errorf(disk.ErrCorrupt, "part %d get-url %q is relative", p.Index, logtext.RedactURL(p.GetURL))
		}
		u = h.Base.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errorf(disk.ErrUnsafe, "part %d get-url scheme %q is not http or https", p.Index, u.Scheme)
	}
	return u.String(), nil
}

// Where returns the part's URL without its query (which holds the
// signature).
func (h *HTTPStore) Where(p *Part) string {
	s, err := h.URL(p)
	if err != nil {
		return p.GetURL
	}
	return logtext.RedactURL(s)
}

// OpenPart starts a GET of [off, off+n) of the part.
func (h *HTTPStore) OpenPart(ctx context.Context, p *Part, off, n int64) (io.ReadCloser, error) {
	u, err := h.URL(p)
	if err != nil {
		return nil, err
	}
	r := &httpBody{ctx: ctx, h: h, url: u, part: p, off: off, n: n}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// An HTTPError is an unexpected HTTP response.
type HTTPError struct {
	StatusCode int
	Status     string
	// Body is what the response says: "Code: Message" for S3's XML error
	// document, else the start of the body.
	Body string
}

// newHTTPError reads the start of resp's body (the caller closes it).
func newHTTPError(resp *http.Response) *HTTPError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10)) // S3's error documents are under 1 KiB
	return &HTTPError{StatusCode: resp.StatusCode, Status: resp.Status, Body: s3.ErrorText(b)}
}

// Error returns "HTTP <status>: <body>".
func (e *HTTPError) Error() string {
	if e.Body == "" {
		return "HTTP " + e.Status
	}
	return "HTTP " + e.Status + ": " + e.Body
}

// transient reports whether the failure may pass on a retry: throttling
// (429) and server errors (5xx).
func (e *HTTPError) transient() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// httpBody reads [off, off+n) of a part, reconnecting with a range request
// when the connection breaks.
type httpBody struct {
	ctx     context.Context
	h       *HTTPStore
	url     string
	part    *Part
	off, n  int64 // what is left to read
	body    io.ReadCloser
	attempt int
	cancel  context.CancelFunc // cancels the current request
	watch   *time.Timer        // fires cancel when the body stalls
	stalled atomic.Bool
}

// open issues the request for what is left, retrying transient failures.
func (r *httpBody) open() error {
	for {
		err := r.try()
		if err == nil {
			return nil
		}
		if !r.retry(err) {
			return err
		}
	}
}

// retry waits before another attempt if err is transient and attempts
// remain.
func (r *httpBody) retry(err error) bool {
	var he *HTTPError
	transient := !errors.As(err, &he) || he.transient()
	var de *disk.Error
	if errors.As(err, &de) || r.ctx.Err() != nil || !transient || r.attempt >= r.h.retries() {
		return false
	}
	t := time.NewTimer(r.h.backoff(r.attempt))
	defer t.Stop()
	r.attempt++
	select {
	case <-r.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (r *httpBody) try() error {
	ctx, cancel := context.WithCancel(r.ctx)
	r.cancel = cancel
	r.stalled.Store(false)
	r.watch = time.AfterFunc(r.h.idle(), func() { r.stalled.Store(true); cancel() })
	err := r.request(ctx)
	if err != nil {
		r.drop()
		if r.stalled.Load() {
			err = fmt.Errorf("no response for %v", r.h.idle())
		}
	}
	return err
}

func (r *httpBody) request(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return fmt.Errorf("bad URL %s", logtext.RedactURL(r.url))
	}
	whole := r.off == 0 && r.n == r.part.Length
	if !whole {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r.off, r.off+r.n-1))
	}
	resp, err := r.h.client().Do(req)
	if err != nil {
		return logtext.RedactErr(err)
	}
	switch {
	case whole && resp.StatusCode == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != r.part.Length {
			resp.Body.Close()
			return lengthError(resp.ContentLength, r.part.Length)
		}
	case !whole && resp.StatusCode == http.StatusPartialContent:
		if total, ok := contentRangeTotal(resp.Header.Get("Content-Range")); ok && total != r.part.Length {
			resp.Body.Close()
			return lengthError(total, r.part.Length)
		}
	case !whole && resp.StatusCode == http.StatusOK:
		// The server ignored the range: skip to it.
		if resp.ContentLength >= 0 && resp.ContentLength != r.part.Length {
			resp.Body.Close()
			return lengthError(resp.ContentLength, r.part.Length)
		}
		if _, err := io.CopyN(io.Discard, resp.Body, r.off); err != nil {
			resp.Body.Close()
			return err
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return errorf(disk.ErrCorrupt, "truncated: server refuses bytes %d-%d (HTTP %s)", r.off, r.off+r.n-1, resp.Status)
	default:
		defer resp.Body.Close()
		return newHTTPError(resp)
	}
	r.body = resp.Body
	return nil
}

func lengthError(got, want int64) error {
	if got < want {
		return errorf(disk.ErrCorrupt, "truncated: server has %d bytes", got)
	}
	return errorf(disk.ErrCorrupt, "server has %d bytes, more than its byte range", got)
}

// contentRangeTotal parses the total of "bytes a-b/total".
func contentRangeTotal(s string) (int64, bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[i+1:], 10, 64)
	return n, err == nil
}

func (r *httpBody) Read(p []byte) (int, error) {
	for {
		if r.n == 0 {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		if int64(len(p)) > r.n {
			p = p[:r.n]
		}
		k, err := r.body.Read(p)
		r.off += int64(k)
		r.n -= int64(k)
		if k > 0 {
			r.watch.Reset(r.h.idle())
		}
		if err != nil && r.stalled.Load() {
			err = fmt.Errorf("no data for %v", r.h.idle())
		}
		if k > 0 || err == nil {
			if err == io.EOF && r.n > 0 {
				r.drop()
			}
			return k, nil
		}
		// A clean EOF before the range ends is a cut connection too.
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.drop()
		if !r.retry(err) {
			return 0, fmt.Errorf("connection lost at part byte %d after %d retries: %w", r.off, r.attempt, err)
		}
	}
}

func (r *httpBody) drop() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.watch != nil {
		r.watch.Stop()
		r.cancel()
		r.watch, r.cancel = nil, nil
	}
}

func (r *httpBody) Close() error {
	r.drop()
	return nil
}

// Fetch GETs the document at u whole (the manifest beside the parts),
// with the store's client and retries; a body larger than limit bytes is
// refused (disk.ErrTooLarge).
func (h *HTTPStore) Fetch(ctx context.Context, u string, limit int64) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		b, err := h.fetchOnce(ctx, u, limit)
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

func (h *HTTPStore) fetchOnce(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bad URL %s", logtext.RedactURL(u)) // url.Parse's error quotes the whole URL
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, logtext.RedactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, newHTTPError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errorf(disk.ErrTooLarge, "document larger than %d bytes", limit)
	}
	return b, nil
}
