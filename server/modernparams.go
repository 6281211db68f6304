package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/server/store"
)

// retention is how long an ended modern task is still listed.
const retention = 7 * 24 * time.Hour

// statusPending is a new modern task's status message.
const statusPending = "pending"

// paramsHash is a digest of the request's action and parameters but those
// of the protocol (signature, version) and ClientToken: the same token
// with a different digest is IdempotentParameterMismatch.
func paramsHash(c *call) string {
	var keys []string
	for k := range c.params {
		switch {
		case k == "Version" || k == "ClientToken" || k == "DryRun" || k == "AWSAccessKeyId" ||
			k == "Timestamp" || k == "Expires" || strings.HasPrefix(k, "Signature") || strings.HasPrefix(k, "X-Amz-"):
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\n", k, c.params[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// idempotent returns the task an earlier call with the same ClientToken
// made (nil when there is none), or IdempotentParameterMismatch when that
// call's parameters differ.
func (s *Server) idempotent(ctx context.Context, c *call, token, hash string) (*store.Task, error) {
	if token == "" {
		return nil, nil
	}
	t, err := s.st.TaskByToken(ctx, c.account, token)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if t.ParamsHash != hash {
		return nil, errorf("IdempotentParameterMismatch", "The client token %s was used with different parameters (by %s).", clip(token), t.ID)
	}
	return t, nil
}

// earlierTask reads ClientToken and returns the task an earlier call with
// the same token created (nil when there is none, or no token), with the
// token and the parameters' hash that a new task records.
func (s *Server) earlierTask(ctx context.Context, c *call) (prev *store.Task, token, hash string, err error) {
	if token, err = clientToken(c); err != nil {
		return nil, "", "", err
	}
	hash = paramsHash(c)
	prev, err = s.idempotent(ctx, c, token, hash)
	return prev, token, hash, err
}

// clientToken reads ClientToken (at most 64 ASCII characters, as EC2).
func clientToken(c *call) (string, error) {
	tok := c.get("ClientToken")
	if err := maxLength("ClientToken", tok, 64); err != nil {
		return "", err
	}
	return tok, nil
}

// tagSpecs reads TagSpecification.N.{ResourceType,Tag.M.Key,Tag.M.Value}
// for a resource of type want with id.
func tagSpecs(c *call, want, id string) ([]store.Tag, error) {
	idx, err := indexes(c.params, "TagSpecification")
	if err != nil {
		return nil, err
	}
	var tags []store.Tag
	for _, n := range idx {
		prefix := fmt.Sprintf("TagSpecification.%d.", n)
		if rt := c.get(prefix + "ResourceType"); rt != want {
			return nil, errorf("InvalidParameterValue", "Value (%s) for parameter %sResourceType is invalid: want %s.", clip(rt), prefix, want)
		}
		more, err := tagList(c, prefix+"Tag", id)
		if err != nil {
			return nil, err
		}
		tags = append(tags, more...)
	}
	return tags, nil
}

// tagList reads PREFIX.M.Key and PREFIX.M.Value as tags of id.
func tagList(c *call, prefix, id string) ([]store.Tag, error) {
	idx, err := indexes(c.params, prefix)
	if err != nil {
		return nil, err
	}
	var tags []store.Tag
	for _, m := range idx {
		p := fmt.Sprintf("%s.%d.", prefix, m)
		key := c.get(p + "Key")
		if key == "" {
			return nil, errorf("InvalidParameterValue", "Tag keys must not be empty (%sKey).", p)
		}
		if err := maxLength(p+"Key", key, 128); err != nil {
			return nil, err
		}
		if strings.HasPrefix(strings.ToLower(key), "aws:") {
			return nil, errorf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use.")
		}
		if err := maxLength(p+"Value", c.get(p+"Value"), 256); err != nil {
			return nil, err
		}
		tags = append(tags, store.Tag{ResourceID: id, Key: key, Value: c.get(p + "Value")})
	}
	if len(tags) > 50 {
		return nil, errorf("TagLimitExceeded", "A resource takes at most 50 tags, not %d.", len(tags))
	}
	return tags, nil
}

// A filter is one Filter.N (or Filters.N) of a Describe call.
type filter struct {
	name   string
	values []string
}

// filters reads PREFIX.N.Name and PREFIX.N.Value.M, refusing names not
// in known (a name ending in ':' admits any suffix, as tag:KEY).
func filters(c *call, prefix string, known ...string) ([]filter, error) {
	idx, err := indexes(c.params, prefix)
	if err != nil {
		return nil, err
	}
	var out []filter
	for _, n := range idx {
		p := fmt.Sprintf("%s.%d.", prefix, n)
		name := c.get(p + "Name")
		ok := false
		for _, k := range known {
			if name == k || strings.HasSuffix(k, ":") && strings.HasPrefix(name, k) && len(name) > len(k) {
				ok = true
			}
		}
		if !ok {
			return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid: this call takes %s.", clip(name), strings.Join(known, ", "))
		}
		values, err := c.list(p + "Value")
		if err != nil {
			return nil, err
		}
		out = append(out, filter{name, values})
	}
	return out, nil
}

// match says whether a resource passes every filter: field returns its
// values for a filter's name (tag:KEY and tag-key answered from tags).
func match(fs []filter, tags []store.Tag, id string, field func(name string) []string) bool {
	for _, f := range fs {
		var have []string
		switch {
		case strings.HasPrefix(f.name, "tag:"):
			for _, t := range tags {
				if t.ResourceID == id && t.Key == f.name[4:] {
					have = append(have, t.Value)
				}
			}
		case f.name == "tag-key":
			for _, t := range tags {
				if t.ResourceID == id {
					have = append(have, t.Key)
				}
			}
		default:
			have = field(f.name)
		}
		if !anyMatch(f.values, have) {
			return false
		}
	}
	return true
}

// anyMatch says whether one of have matches one of the patterns, which
// take EC2's wildcards * and ? (matchAny).
func anyMatch(patterns, have []string) bool {
	for _, h := range have {
		if matchAny(h, patterns) {
			return true
		}
	}
	return false
}

// page cuts ids (in listing order) at NextToken (the first id of the
// page) and MaxResults (lo to 1000; 0 means all), returning the page and
// the next page's token.
func page[T any](c *call, items []T, id func(T) string, lo int64) ([]T, string, error) {
	maxResults, err := c.integer("MaxResults", lo, 1000, false)
	if err != nil {
		return nil, "", err
	}
	if tok := c.get("NextToken"); tok != "" {
		i := slices.IndexFunc(items, func(x T) bool { return id(x) == tok })
		if i < 0 {
			return nil, "", errorf("InvalidParameterValue", "The NextToken %s is not valid (or the item it names is gone).", clip(tok))
		}
		items = items[i:]
	}
	if maxResults == 0 || int64(len(items)) <= maxResults {
		return items, "", nil
	}
	return items[:maxResults], id(items[maxResults]), nil
}

// listed says whether a modern task is still listed: active, or ended
// less than retention ago.
func (s *Server) listed(t *store.Task) bool {
	return t.State == store.TaskActive || t.State == store.TaskCancelling || s.cfg.Clock().Sub(t.Updated) < retention
}

// diskContainer reads one disk of ImportSnapshot (PREFIX "DiskContainer.")
// or ImportImage ("DiskContainer.N."): its image's Url (https://, or
// s3://bucket/key for UserBucket.S3Bucket and S3Key) and its optional
// Format among formats, into the record of a snapshot to make.
func (s *Server) diskContainer(c *call, prefix string, now time.Time, formats ...string) (*store.Volume, error) {
	v := &store.Volume{ID: newID("snap-", 17), Kind: store.KindSnapshotDisk, State: store.VolumeCreating, Created: now,
		Status: store.ConversionActive, StatusMessage: statusPending, AvailabilityZone: s.cfg.Region + "a"}
	if f := c.get(prefix + "Format"); f != "" {
		format, err := oneOf(prefix+"Format", f, formats...)
		if err != nil {
			return nil, err
		}
		v.Format = format
	}
	u, bucket, key := c.get(prefix+"Url"), c.get(prefix+"UserBucket.S3Bucket"), c.get(prefix+"UserBucket.S3Key")
	switch {
	case u != "" && (bucket != "" || key != ""):
		return nil, errorf("InvalidParameterCombination", "Give %sUrl or %sUserBucket, not both.", prefix, prefix)
	case u == "" && bucket == "" && key == "":
		return nil, errorf("MissingParameter", "The request must contain the parameter %sUrl or %sUserBucket.", prefix, prefix)
	case u == "" && (bucket == "" || key == ""):
		return nil, errorf("MissingParameter", "The request must contain the parameters %sUserBucket.S3Bucket and %sUserBucket.S3Key.", prefix, prefix)
	case u == "":
		u = "s3://" + bucket + "/" + key
	}
	if err := maxLength(prefix+"Url", u, 2048); err != nil {
		return nil, err
	}
	if _, _, ok := splitS3URL(u); ok {
		if s.cfg.S3Endpoint == "" {
			return nil, errorf("InvalidParameterValue", "This server reads no S3 buckets (it was started without --s3-endpoint): give %sUrl as an https:// URL.", prefix)
		}
	} else if strings.HasPrefix(u, "s3://") {
		return nil, errorf("InvalidParameterValue", "Value (%s) for parameter %sUrl is invalid: want s3://BUCKET/KEY.", clip(u), prefix)
	} else if err := s.fetch.checkURL(u); err != nil {
		return nil, errorf("InvalidParameterValue", "Value for parameter %sUrl is invalid: %v.", prefix, err)
	}
	v.ManifestURL = u
	v.Description = c.get(prefix + "Description")
	if err := maxLength(prefix+"Description", v.Description, 255); err != nil {
		return nil, err
	}
	return v, nil
}

// encryption refuses Encrypted=true and KmsKeyId: diskport stores
// snapshots as plain raw files (encrypt the file system they are on).
func encryption(c *call) error {
	enc, err := c.boolean("Encrypted")
	if err != nil {
		return err
	}
	if c.get("KmsKeyId") != "" && !enc {
		return errorf("InvalidParameterCombination", "KmsKeyId requires Encrypted=true.")
	}
	if enc {
		return errorf("InvalidParameterValue", "Encrypted=true is not supported: diskport stores snapshots as unencrypted raw files (encrypt the file system of its data directory instead).")
	}
	return nil
}

// roleName checks RoleName (the service role; diskport reads buckets with
// its own S3 credentials, which stand for it).
func roleName(c *call) error {
	return maxLength("RoleName", c.get("RoleName"), 64)
}

// snapshotFormats are the Formats ImportSnapshot takes; imageFormats
// ImportImage's.
var (
	snapshotFormats = []string{manifest.FormatVHD, manifest.FormatVMDK, manifest.FormatRAW, "VHDX"}
	imageFormats    = []string{manifest.FormatOVA, manifest.FormatVHD, "VHDX", manifest.FormatVMDK, manifest.FormatRAW}
)
