#!/bin/sh
# Installs what diskport's demo and tests need on a fresh Debian machine with
# Go: qemu-img (Debian's qemu-utils), openssl, losetup (mount), staticcheck
# (pinned, from the Go module proxy) and, with --test, the pinned MinIO
# server the S3 integration tests run against.
set -eu
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

need_apt=""
command -v qemu-img >/dev/null 2>&1 || need_apt="$need_apt qemu-utils"
command -v openssl >/dev/null 2>&1 || need_apt="$need_apt openssl"
command -v losetup >/dev/null 2>&1 || need_apt="$need_apt mount"
command -v bzip2 >/dev/null 2>&1 || need_apt="$need_apt bzip2"
[ "${1:-}" = "--test" ] && { python3 -c 'import boto3' >/dev/null 2>&1 || need_apt="$need_apt python3-boto3"; command -v aws >/dev/null 2>&1 || need_apt="$need_apt awscli"; }
if [ -n "$need_apt" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "installing:$need_apt"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq $need_apt >/dev/null
	elif command -v sudo >/dev/null 2>&1; then
		sudo apt-get update -qq
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt >/dev/null
	else
		echo "diskport needs:$need_apt — install them with apt-get as root" >&2
		exit 1
	fi
fi

if [ "${1:-}" = "--test" ]; then
	GOBIN_DIR="$(go env GOPATH)/bin"
	if [ ! -x "$GOBIN_DIR/staticcheck" ]; then
		echo "installing $STATICCHECK"
		go install "$STATICCHECK"
	fi
	sh "$(dirname "$0")/install-minio.sh"
fi
