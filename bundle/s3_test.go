package bundle

import (
	"context"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// minioBucket starts (or reuses) the MinIO server and makes a fresh bucket.
func minioBucket(t *testing.T) (*s3test.Server, *S3) {
	t.Helper()
	srv := s3test.Shared(t)
	s, err := NewS3(srv.Endpoint, srv.Bucket(t), srv.AccessKey, srv.SecretKey, srv.Region)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t).MakeBucket(context.Background(), s.Bucket, minio.MakeBucketOptions{Region: srv.Region}); err != nil {
		t.Fatalf("MakeBucket %s: %v", s.Bucket, err)
	}
	return srv, s
}

func listObjects(t *testing.T, s *S3) []string {
	t.Helper()
	var names []string
	for o := range s3test.Shared(t).Client(t).ListObjects(context.Background(), s.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		names = append(names, o.Key)
	}
	sort.Strings(names)
	return names
}

// TestPostPolicyRoundTrip stores a bundle in MinIO with POST form uploads
// under a policy (MinIO checks the policy and its signature itself), lists
// what was stored, and unbundles it from the bucket.
func TestPostPolicyRoundTrip(t *testing.T) {
	srv, s := minioBucket(t)
	golden := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 21})
	prefix := "bundles/vol"
	policy := NewPolicy(s.Bucket, prefix, time.Now().Add(time.Hour)).Encode()
	sig := SignPolicy(srv.SecretKey, policy)
	if _, err := CheckPolicy(policy, Grant{Bucket: s.Bucket, Prefix: prefix, Signature: sig, Secret: srv.SecretKey, MaxObjectSize: 256 << 10}); err != nil {
		t.Fatal(err)
	}
	sink := &PostSink{Endpoint: srv.Endpoint, Bucket: s.Bucket, AccessKeyID: srv.AccessKey, Policy: policy, Signature: sig}
	opt := testOptions(prefix)
	opt.PartSize = 256 << 10
	m, err := Write(context.Background(), openRaw(t, golden), sink, opt)
	if err != nil {
		t.Fatalf("Write to MinIO: %v", err)
	}
	want := []string{ManifestName(prefix)}
	for _, p := range m.Image.Parts.Part {
		want = append(want, "bundles/"+p.Filename)
	}
	sort.Strings(want)
	if got := listObjects(t, s); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("bucket holds %q, want %q", got, want)
	}
	got := unbundleToFile(t, s, ManifestName(prefix), ReadOptions{Key: userKey()})
	sameFile(t, got, golden)
}

// TestPostPolicyRefusals: a wrong signature, an expired policy, a key
// outside the prefix and another bucket are refused by CheckPolicy before
// any byte is sent, and by MinIO when sent anyway.
func TestPostPolicyRefusals(t *testing.T) {
	srv, s := minioBucket(t)
	other := s.Bucket + "-other"
	if err := srv.Client(t).MakeBucket(context.Background(), other, minio.MakeBucketOptions{Region: srv.Region}); err != nil {
		t.Fatal(err)
	}
	prefix := "bundles/vol"
	good := NewPolicy(s.Bucket, prefix, time.Now().Add(time.Hour)).Encode()
	expired := NewPolicy(s.Bucket, prefix, time.Now().Add(-time.Minute)).Encode()
	tests := []struct {
		name           string
		policy, sig    string
		bucket, prefix string
		check          string // what CheckPolicy says
	}{
		{"wrong signature", good, SignPolicy("not-the-secret", good), s.Bucket, prefix, "signature"},
		{"expired", expired, SignPolicy(srv.SecretKey, expired), s.Bucket, prefix, "expired"},
		{"key outside the prefix", good, SignPolicy(srv.SecretKey, good), s.Bucket, "elsewhere/vol", "does not cover"},
		{"another bucket", good, SignPolicy(srv.SecretKey, good), other, prefix, "bucket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckPolicy(tc.policy, Grant{Bucket: tc.bucket, Prefix: tc.prefix, Signature: tc.sig, Secret: srv.SecretKey})
			if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.check) {
				t.Errorf("CheckPolicy = %v, want a refusal mentioning %q", err, tc.check)
			}
			sink := &PostSink{Endpoint: srv.Endpoint, Bucket: tc.bucket, AccessKeyID: srv.AccessKey, Policy: tc.policy, Signature: tc.sig, Attempts: 1}
			err = sink.Put(context.Background(), PartName(tc.prefix, 0), []byte("bundle part"))
			var se *S3Error
			if !errors.As(err, &se) || se.Status != 403 && se.Status != 400 {
				t.Errorf("MinIO answered %v, want a 403 refusal", err)
			} else {
				t.Logf("MinIO: %v", se)
			}
		})
	}
	for _, b := range []string{s.Bucket, other} {
		if got := listObjects(t, &S3{client: s.client, Bucket: b}); len(got) != 0 {
			t.Errorf("bucket %s holds %q after refused uploads", b, got)
		}
	}
}

// TestPostCancelRemoves cancels a task storing to MinIO and checks the
// parts already uploaded are deleted.
func TestPostCancelRemoves(t *testing.T) {
	srv, s := minioBucket(t)
	prefix := "c/vol"
	policy := NewPolicy(s.Bucket, prefix, time.Now().Add(time.Hour)).Encode()
	sink := &PostSink{Endpoint: srv.Endpoint, Bucket: s.Bucket, AccessKeyID: srv.AccessKey, Policy: policy,
		Signature: SignPolicy(srv.SecretKey, policy), Remover: s}
	r := NewRunner("i-1", S3Storage{Bucket: s.Bucket, Prefix: prefix, AWSAccessKeyID: srv.AccessKey, UploadPolicy: policy})
	opt := testOptions(prefix)
	opt.PartSize, opt.Level, opt.Uploads = 256<<10, 1, 1
	stored := 0
	r.OnUpdate = func(task Task) {
		if task.Progress > 0 && stored == 0 {
			stored = len(listObjects(t, s))
			go r.Cancel()
		}
	}
	_, err := r.Run(context.Background(), memImage(t, randomImage(t, 4<<20)), sink, opt)
	if !errors.Is(err, errCancelled) {
		t.Fatalf("Run = %v, want cancelled", err)
	}
	if stored == 0 {
		t.Fatal("nothing was stored before the cancel")
	}
	if task := r.Task(); task.State != Failed || task.Error.Code != CodeCancelled || !strings.Contains(task.Error.Message, "removed") {
		t.Errorf("task %+v, error %+v", task, task.Error)
	}
	if got := listObjects(t, s); len(got) != 0 {
		t.Errorf("bucket holds %q after the cancel", got)
	}
}

// TestFormatsRoundTripS3 bundles RAW, VMDK and VHD sources (read through
// diskport.Open, no raw copy first) into MinIO under a policy and unbundles
// each from the bucket: the volume comes back identical to qemu-img's own
// raw conversion of the source.
func TestFormatsRoundTripS3(t *testing.T) {
	srv, s := minioBucket(t)
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 3*512, Seed: 33})
	for _, tc := range []struct{ name, format, qemuFormat, opts string }{
		{"raw", "raw", "raw", ""},
		{"vmdk monolithicSparse", "vmdk", "vmdk", ""},
		{"vmdk streamOptimized", "vmdk", "vmdk", "subformat=streamOptimized"},
		{"vhd dynamic", "vhd", "vpc", ""},
		{"vhd fixed", "vhd", "vpc", "subformat=fixed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := golden
			if tc.format != "raw" {
				src = testimg.Make(t, golden, tc.qemuFormat, tc.opts)
			}
			want := testimg.QemuRaw(t, src, "-f", tc.qemuFormat)
			img, err := diskport.Open(src, diskport.Options{Format: tc.format})
			if err != nil {
				t.Fatalf("diskport.Open: %v", err)
			}
			defer img.Close()
			prefix := strings.ReplaceAll(tc.name, " ", "-") + "/vol"
			policy := NewPolicy(s.Bucket, prefix, time.Now().Add(time.Hour)).Encode()
			sink := &PostSink{Endpoint: srv.Endpoint, Bucket: s.Bucket, AccessKeyID: srv.AccessKey, Policy: policy, Signature: SignPolicy(srv.SecretKey, policy)}
			opt := testOptions(prefix)
			opt.PartSize = 256 << 10
			if _, err := Write(context.Background(), img, sink, opt); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got := unbundleToFile(t, s, ManifestName(prefix), ReadOptions{Key: userKey()})
			sameFile(t, got, want)
		})
	}
}
