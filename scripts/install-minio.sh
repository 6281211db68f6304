#!/bin/sh
# Builds the pinned MinIO server used by the S3 integration tests
# (internal/s3test) into the same cache directory the tests look in:
# ${XDG_CACHE_HOME:-$HOME/.cache}/diskport/minio-$VERSION/minio.
# Does nothing when the binary is already there. Takes ~5 minutes the first time.
set -eu
VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # keep in step with s3test.MinioVersion
DIR="${XDG_CACHE_HOME:-$HOME/.cache}/diskport/minio-$VERSION"
if [ -x "$DIR/minio" ]; then
	echo "minio: $DIR/minio"
	exit 0
fi
mkdir -p "$DIR"
TMP=$(mktemp -d "$DIR/build-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "building MinIO $VERSION into $DIR (a few minutes)"
# flock serialises against a test binary building at the same moment.
(
	flock 9
	if [ ! -x "$DIR/minio" ]; then
		cd "$TMP"
		GOBIN="$TMP" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install "github.com/minio/minio@$VERSION"
		mv "$TMP/minio" "$DIR/minio"
	fi
) 9>"$DIR/.lock"
echo "minio: $DIR/minio"
