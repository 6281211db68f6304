package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/diskport/diskport/internal/logtext"
)

// fetchPolicy is what the server may fetch: http(s) URLs whose host:port
// is on the allow list, over connections to addresses that are not
// link-local, multicast, unspecified or a cloud metadata service.
type fetchPolicy struct {
	allow  map[string]bool // lower-case host:port
	client *http.Client
}

// maxRedirects bounds a redirect chain (each hop is checked too).
const maxRedirects = 5

func newFetchPolicy(allow []string) (*fetchPolicy, error) {
	p := &fetchPolicy{allow: map[string]bool{}}
	for _, a := range allow {
		hp := strings.ToLower(strings.TrimSpace(a))
		if hp == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return nil, fmt.Errorf("server: allow-fetch entry %q is not HOST:PORT", a)
		}
		p.allow[hp] = true
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: controlDial}
	transport := &http.Transport{
		Proxy:                 nil, // never through a proxy from the environment
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
	p.client = &http.Client{
		Transport: &checkedTransport{p: p, next: transport},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if err := p.check(req.URL); err != nil {
				return fmt.Errorf("redirected off the allow list: %w", err)
			}
			return nil
		},
	}
	return p, nil
}

// hostPort returns u's lower-case host:port, with the scheme's default
// port when none is given.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return strings.ToLower(net.JoinHostPort(u.Hostname(), port))
}

// check says why the server may not fetch u, or nil.
func (p *fetchPolicy) check(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("only http and https URLs are fetched, not %q", u.Scheme)
	}
	if u.User != nil {
		return errors.New("URLs with user information are not fetched")
	}
	if hp := hostPort(u); !p.allow[hp] {
		return fmt.Errorf("%s is not on the server's fetch allow list (--allow-fetch)", hp)
	}
	return nil
}

// checkURL parses and checks a client's URL.
func (p *fetchPolicy) checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if err := p.check(u); err != nil {
		return err
	}
	if u.Host == "" {
		return errors.New("not an absolute http(s) URL")
	}
	return nil
}

// checkedTransport checks every request, the parts' URLs included, before
// sending it.
type checkedTransport struct {
	p    *fetchPolicy
	next http.RoundTripper
}

func (t *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.p.check(req.URL); err != nil {
		return nil, err
	}
	return t.next.RoundTrip(req)
}

// metadata are the cloud metadata services' addresses outside the
// link-local ranges.
var metadata = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IMDS over IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// controlDial refuses a connection to a link-local, multicast,
// unspecified or metadata address, whatever name resolved to it.
func controlDial(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing to connect to %s: %v", address, err)
	}
	a := ap.Addr().Unmap()
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() {
		return fmt.Errorf("refusing to connect to %s: a link-local, multicast or unspecified address", a)
	}
	for _, m := range metadata {
		if a == m {
			return fmt.Errorf("refusing to connect to %s: a cloud metadata address", a)
		}
	}
	return nil
}

// redact removes the query strings (presigned signatures) of the URLs in
// a message meant for a log or a status message.
func redact(msg string) string { return logtext.RedactURLs(msg) }
