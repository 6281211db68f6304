package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/server/store"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// TestPartSinkResume stores parts in MinIO under an upload policy through
// a partSink holding an earlier run's record: a part recorded with the
// same digest is not POSTed again, one recorded with another digest is
// (and logged), a new one is, and each POSTed part is recorded.
func TestPartSinkResume(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	ctx := context.Background()
	mc, err := minio.New(s3.Host, &minio.Options{Creds: miniocreds.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	bucket := s3.Bucket(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3.Region}); err != nil {
		t.Fatal(err)
	}
	const prefix = "resume/image"
	policy := bundle.NewPolicy(bucket, prefix, time.Now().Add(time.Hour)).Encode()

	st, err := store.OpenFile(filepath.Join(t.TempDir(), "diskport.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.CreateAccount(ctx, &store.Account{ID: "000000000001", Name: "alice", Created: now},
		&store.AccessKey{ID: "AKIAALICE", Secret: "s", Created: now}); err != nil {
		t.Fatal(err)
	}
	const id = "bun-0000abcd"
	if err := st.CreateBundle(ctx, &store.BundleTask{ID: id, AccountID: "000000000001", InstanceID: "i-1", State: "storing",
		Bucket: bucket, Prefix: prefix, Started: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	data := make([][]byte, 3)
	sums := make([]string, 3)
	for i := range data {
		data[i] = make([]byte, 64<<10)
		rand.Read(data[i])
		s := sha1.Sum(data[i])
		sums[i] = hex.EncodeToString(s[:])
	}
	// The earlier run stored part 0 as it is now and part 1 with other bytes.
	if err := st.StoreBundlePart(ctx, id, 0, sums[0]); err != nil {
		t.Fatal(err)
	}
	if err := st.StoreBundlePart(ctx, id, 1, strings.Repeat("0", 40)); err != nil {
		t.Fatal(err)
	}
	stored, err := st.BundleParts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	ps := &partSink{sink: &bundle.PostSink{Endpoint: s3.Endpoint, Bucket: bucket, AccessKeyID: s3.AccessKey,
		Policy: policy, Signature: bundle.SignPolicy(s3.SecretKey, policy)},
		st: st, log: slog.New(slog.NewJSONHandler(&log, nil)), id: id, prefix: prefix, stored: stored}
	for i := range data {
		if err := ps.Put(ctx, bundle.PartName(prefix, i), data[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.Put(ctx, bundle.ManifestName(prefix), []byte("<manifest/>")); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.StatObject(ctx, bucket, bundle.PartName(prefix, 0), minio.StatObjectOptions{}); err == nil {
		t.Error("part 0, recorded stored with its digest, was POSTed again")
	}
	for i := 1; i < 3; i++ {
		o, err := mc.GetObject(ctx, bucket, bundle.PartName(prefix, i), minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		if err != nil || !bytes.Equal(got, data[i]) {
			t.Errorf("part %d in the bucket: %d bytes, %v", i, len(got), err)
		}
	}
	if ps.skipped.Load() != 1 || ps.resent.Load() != 1 {
		t.Errorf("skipped %d, resent %d; want 1 and 1", ps.skipped.Load(), ps.resent.Load())
	}
	if !strings.Contains(log.String(), `"event":"part-differs"`) {
		t.Errorf("resending part 1 was not logged: %s", log.String())
	}
	got, err := st.BundleParts(ctx, id)
	if want := map[int]string{0: sums[0], 1: sums[1], 2: sums[2]}; err != nil || !maps.Equal(got, want) {
		t.Errorf("recorded parts %v, %v; want %v", got, err, want)
	}
}
