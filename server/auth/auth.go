// Package auth verifies the signatures of EC2 Query API requests:
// Signature Version 4 (the Authorization header, or a presigned query
// string) for today's clients and Signature Version 2 for older ones.
//
// SigV4 is verified over exactly the headers the client lists in
// SignedHeaders: boto3 signs content-type;host;x-amz-date, aws-sdk-go-v2
// nearly every header it sends. Any region is accepted; the service must
// be the verifier's (ec2). A request dated more than MaxSkew (15 minutes)
// from the server's clock is RequestExpired, as EC2 answers. Signatures are
// compared in constant time, and no error message repeats a signature or a
// secret.
package auth

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// MaxSkew is how far a request's date may be from the server's clock.
const MaxSkew = 15 * time.Minute

// An Error is a refused request, with EC2's error code.
type Error struct {
	// Code is EC2's error code: AuthFailure, SignatureDoesNotMatch,
	// RequestExpired or IncompleteSignature.
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status EC2 answers the error with.
func (e *Error) Status() int {
	switch e.Code {
	case "AuthFailure":
		return http.StatusUnauthorized
	case "SignatureDoesNotMatch":
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

func fail(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// ErrUnknownKey is what a Lookup returns for an access key id it does not
// know.
var ErrUnknownKey = errors.New("auth: unknown access key")

// Lookup returns the secret key of an access key id and the account it
// belongs to, or ErrUnknownKey.
type Lookup func(ctx context.Context, accessKeyID string) (secret, account string, err error)

// An Identity is who signed a request.
type Identity struct {
	AccountID, AccessKeyID string
	// Method is "SigV4", "SigV4-query" or "SigV2".
	Method string
	// Region is the region of a SigV4 credential scope.
	Region string
}

// A Verifier checks request signatures.
type Verifier struct {
	// Lookup finds secret keys.
	Lookup Lookup
	// Service is the SigV4 service name; "" means "ec2".
	Service string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) service() string {
	if v.Service == "" {
		return "ec2"
	}
	return v.Service
}

// Verify checks the signature of r, whose body (already read) is body and
// whose parameters (query string and form body together) are params. It
// returns the signer, an *Error for a refused request, or another error
// when the key lookup failed.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte, params url.Values) (*Identity, error) {
	switch {
	case r.Header.Get("Authorization") != "":
		return v.verifyV4Header(ctx, r, body)
	case r.URL.Query().Get("X-Amz-Algorithm") != "":
		return v.verifyV4Query(ctx, r, body)
	case params.Get("Signature") != "" || params.Get("SignatureVersion") != "":
		return v.verifyV2(ctx, r, params)
	}
	return nil, fail("AuthFailure", "The request is not signed: send a Signature Version 4 Authorization header (or Signature Version 2 parameters).")
}

// secret looks the access key up, turning an unknown key into AuthFailure.
func (v *Verifier) secret(ctx context.Context, akid string) (secret, account string, err error) {
	if akid == "" {
		return "", "", fail("AuthFailure", "The request names no access key.")
	}
	secret, account, err = v.Lookup(ctx, akid)
	if errors.Is(err, ErrUnknownKey) {
		return "", "", fail("AuthFailure", "AWS was not able to validate the provided access credentials.")
	}
	return secret, account, err
}

// checkTime refuses a request dated outside the allowed skew.
func (v *Verifier) checkTime(t time.Time) error {
	now := v.now()
	if t.Before(now.Add(-MaxSkew)) || t.After(now.Add(MaxSkew)) {
		return fail("RequestExpired", "Request has expired: it is dated "+t.UTC().Format(time.RFC3339)+
			", more than 15 minutes from the server's time "+now.UTC().Format(time.RFC3339)+".")
	}
	return nil
}

// equal compares two signatures in constant time.
func equal(got, want string) bool {
	return hmac.Equal([]byte(got), []byte(want))
}
