package s3

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PresignV2 returns a URL for method on bucket/key at endpoint (path
// style: endpoint/bucket/key) authenticated with S3's signature version 2
// query string (AWSAccessKeyId, Expires, Signature), valid until expires.
// Old S3-compatible endpoints and the 2010-era import tools use it; the
// string signed is
//
//	METHOD \n \n \n EXPIRES \n /bucket/key
//
// (no Content-MD5, Content-Type or x-amz-* headers in a presigned GET,
// HEAD or DELETE).
func PresignV2(method string, endpoint *url.URL, bucket, key, accessKey, secretKey string, expires time.Time) string {
	resource := "/" + bucket + "/" + PathEscape(key)
	exp := strconv.FormatInt(expires.Unix(), 10)
	sig := SignV2(secretKey, method+"\n\n\n"+exp+"\n"+resource)
	q := "AWSAccessKeyId=" + url.QueryEscape(accessKey) + "&Expires=" + exp + "&Signature=" + url.QueryEscape(sig)
	base := strings.TrimSuffix(endpoint.Scheme+"://"+endpoint.Host+endpoint.Path, "/")
	return base + resource + "?" + q
}

// SignV2 returns base64(HMAC-SHA1(secretKey, stringToSign)): the signature
// of S3's version 2 authentication, of presigned URLs and of POST policies
// (where the string signed is the base64 policy text).
func SignV2(secretKey, stringToSign string) string {
	h := hmac.New(sha1.New, []byte(secretKey))
	h.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// PathEscape percent-encodes an object key for a URL path the way S3
// expects: every byte but the unreserved characters and '/'.
func PathEscape(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
		}
	}
	return b.String()
}
