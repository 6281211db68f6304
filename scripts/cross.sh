#!/bin/sh
# cross.sh: the library, the CLI and the server build and vet without cgo
# on every platform diskport supports besides Linux, and the portable side
# of the Linux-only code (the `portable` build tag) passes the same tests
# as the Linux fast paths, and is staticcheck clean. `make test` runs it.
set -eu
GO=${GO:-go}
STATICCHECK=${STATICCHECK:-$($GO env GOPATH)/bin/staticcheck}

for target in darwin/amd64 darwin/arm64 windows/amd64 freebsd/amd64; do
	echo "cross: $target"
	GOOS=${target%/*} GOARCH=${target#*/} CGO_ENABLED=0 $GO build ./...
	GOOS=${target%/*} GOARCH=${target#*/} CGO_ENABLED=0 $GO vet ./...
done

echo "cross: linux -tags portable"
$GO vet -tags portable ./...
$STATICCHECK -tags portable ./...
$GO test -count=1 -tags portable . ./disk/... ./raw ./vmdk ./vhd ./vhdx ./ova ./convert ./volume
