package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// importedInstance imports image as an instance's root volume and waits
// for it.
func importedInstance(t *testing.T, c *ec2.Client, s3 *s3test.Server, image string) (instance, volume string) {
	t.Helper()
	res, murl := upload(t, s3, image)
	out, err := c.ImportInstance(context.Background(), &ec2.ImportInstanceInput{
		Platform: types.PlatformValuesWindows,
		DiskImages: []types.DiskImage{{Image: &types.DiskImageDetail{Format: types.DiskImageFormat(res.Manifest.FileFormat),
			Bytes: aws.Int64(res.Manifest.Size), ImportManifestUrl: aws.String(murl)}, Volume: &types.VolumeDetail{Size: aws.Int64(1)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if state, msg := waitTask(t, c, aws.ToString(out.ConversionTask.ConversionTaskId), time.Minute); state != "completed" {
		t.Fatalf("import ended %s: %s", state, msg)
	}
	ii := out.ConversionTask.ImportInstance
	return aws.ToString(ii.InstanceId), aws.ToString(ii.Volumes[0].Volume.Id)
}

func waitBundle(t *testing.T, c *ec2.Client, id string) types.BundleTask {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute) // a loaded machine under -race bundles slowly
	for {
		out, err := c.DescribeBundleTasks(context.Background(), &ec2.DescribeBundleTasksInput{BundleIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		bt := out.BundleTasks[0]
		if bt.State == types.BundleTaskStateComplete || bt.State == types.BundleTaskStateFailed {
			return bt
		}
		if time.Now().After(deadline) {
			t.Fatalf("bundle %s still %s", id, bt.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBundleInstance bundles an imported instance's root volume into
// MinIO under an upload policy: the stored bundle, opened with the
// server's bundle key, unbundles to the volume's bytes. A policy signed
// with the wrong secret fails the task with S3's refusal.
func TestBundleInstance(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ts := startServerWith(t, "", func(c *Config) { c.S3Endpoint = s3.Endpoint }, s3.Host)
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	golden := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 17})
	inst, vol := importedInstance(t, c, s3, golden)

	mc, err := minio.New(s3.Host, &minio.Options{Creds: miniocreds.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	bucket := s3.Bucket(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3.Region}); err != nil {
		t.Fatal(err)
	}
	bundleWith := func(prefix, secret string) string {
		policy := bundle.NewPolicy(bucket, prefix, time.Now().Add(time.Hour)).Encode()
		raw, _ := base64.StdEncoding.DecodeString(policy) // the SDK base64-encodes the blob itself
		out, err := c.BundleInstance(ctx, &ec2.BundleInstanceInput{InstanceId: aws.String(inst), Storage: &types.Storage{S3: &types.S3Storage{
			Bucket: aws.String(bucket), Prefix: aws.String(prefix), AWSAccessKeyId: aws.String(s3.AccessKey),
			UploadPolicy: raw, UploadPolicySignature: aws.String(bundle.SignPolicy(secret, policy))}}})
		if err != nil {
			t.Fatal(err)
		}
		bt := out.BundleTask
		if bt.State != types.BundleTaskStatePending || aws.ToString(bt.InstanceId) != inst || aws.ToString(bt.Storage.S3.Bucket) != bucket {
			t.Fatalf("BundleInstance answered %+v", bt)
		}
		return aws.ToString(bt.BundleId)
	}

	id := bundleWith("bundles/good", s3.SecretKey)
	// A second bundle of the same instance while one runs is refused.
	policy := bundle.NewPolicy(bucket, "bundles/x", time.Now().Add(time.Hour)).Encode()
	raw, _ := base64.StdEncoding.DecodeString(policy)
	_, err = c.BundleInstance(ctx, &ec2.BundleInstanceInput{InstanceId: aws.String(inst), Storage: &types.Storage{S3: &types.S3Storage{
		Bucket: aws.String(bucket), Prefix: aws.String("bundles/x"), AWSAccessKeyId: aws.String(s3.AccessKey),
		UploadPolicy: raw, UploadPolicySignature: aws.String(bundle.SignPolicy(s3.SecretKey, policy))}}})
	if code := apiCode(err); code != "BundlingInProgress" && code != "" {
		t.Fatalf("a second bundle: %v", err)
	}
	bt := waitBundle(t, c, id)
	if bt.State != types.BundleTaskStateComplete || aws.ToString(bt.Progress) != "100%" {
		t.Fatalf("bundle ended %s %s: %+v", bt.State, aws.ToString(bt.Progress), bt.BundleTaskError)
	}
	if !sameFiles(t, unbundle(t, ctx, ts, s3, bucket, "bundles/good"), ts.VolumePath(vol)) {
		t.Fatal("the unbundled volume differs from the imported one")
	}

	// Filters; an unknown id; a finished task cannot be cancelled.
	fo, err := c.DescribeBundleTasks(ctx, &ec2.DescribeBundleTasksInput{Filters: []types.Filter{
		{Name: aws.String("state"), Values: []string{"complete"}}, {Name: aws.String("s3-prefix"), Values: []string{"bundles/*"}}}})
	if err != nil || len(fo.BundleTasks) != 1 || aws.ToString(fo.BundleTasks[0].BundleId) != id {
		t.Fatalf("filtered DescribeBundleTasks: %+v %v", fo, err)
	}
	if _, err := c.DescribeBundleTasks(ctx, &ec2.DescribeBundleTasksInput{BundleIds: []string{"bun-00000000"}}); apiCode(err) != "InvalidBundleID.NotFound" {
		t.Fatalf("unknown bundle: %v", err)
	}
	if _, err := c.CancelBundleTask(ctx, &ec2.CancelBundleTaskInput{BundleId: aws.String(id)}); apiCode(err) != "IncorrectState" {
		t.Fatalf("cancel of a complete bundle: %v", err)
	}

	// Signed with the wrong secret: S3 refuses the upload, the task fails
	// with its error, and nothing is stored.
	id = bundleWith("bundles/bad", "not-the-secret")
	bt = waitBundle(t, c, id)
	if bt.State != types.BundleTaskStateFailed || bt.BundleTaskError == nil || aws.ToString(bt.BundleTaskError.Message) == "" {
		t.Fatalf("badly signed bundle: %s %+v", bt.State, bt.BundleTaskError)
	}
	t.Logf("badly signed bundle: %s: %s", aws.ToString(bt.BundleTaskError.Code), aws.ToString(bt.BundleTaskError.Message))
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "bundles/bad", Recursive: true}) {
		t.Fatalf("a refused bundle left %s (%v)", o.Key, o.Err)
	}
}

// unbundle restores the bundle stored under prefix in bucket with the
// server's bundle key and returns the volume's bytes.
func unbundle(t *testing.T, ctx context.Context, ts *testServer, s3 *s3test.Server, bucket, prefix string) string {
	t.Helper()
	key, err := bundle.ParsePrivateKeyPEM(readFile(t, filepath.Join(ts.dir, BundleKeyFile)))
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.NewS3(s3.Endpoint, bucket, s3.AccessKey, s3.SecretKey, s3.Region)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Open(ctx, src, bundle.ManifestName(prefix), bundle.ReadOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "unbundled.raw")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Extract(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return out
}

// sameFiles reports whether the files at a and b hold the same bytes,
// comparing their SHA-256s a read at a time: volumes are a GiB each, too
// much to hold in memory for tests that run side by side under -race.
func sameFiles(t *testing.T, a, b string) bool {
	t.Helper()
	sum := func(path string) string {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	return sum(a) == sum(b)
}
