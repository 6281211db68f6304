#!/bin/sh
# Installs what diskport's demo and tests need on a fresh Debian machine with
# Go: qemu-img (Debian's qemu-utils), openssl, losetup (mount), libdeflate's
# headers (libdeflate-dev: the cgo build inflates with it), staticcheck
# (pinned, from the Go module proxy) and, with --test, the pinned MinIO
# server the S3 integration tests run against. bench/compare also needs
# mke2fs (e2fsprogs: the real-content corpus) and nbdcopy (libnbd-bin: the
# qemu-nbd + nbdcopy anchor); qemu-nbd comes with qemu-utils.
set -eu
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

need_apt=""
command -v qemu-img >/dev/null 2>&1 || need_apt="$need_apt qemu-utils"
command -v openssl >/dev/null 2>&1 || need_apt="$need_apt openssl"
command -v losetup >/dev/null 2>&1 || need_apt="$need_apt mount"
command -v bzip2 >/dev/null 2>&1 || need_apt="$need_apt bzip2"
[ -f /usr/include/libdeflate.h ] || need_apt="$need_apt libdeflate-dev"
command -v mke2fs >/dev/null 2>&1 || [ -x /usr/sbin/mke2fs ] || [ -x /sbin/mke2fs ] || need_apt="$need_apt e2fsprogs"
command -v nbdcopy >/dev/null 2>&1 || need_apt="$need_apt libnbd-bin"
command -v qemu-nbd >/dev/null 2>&1 || need_apt="$need_apt qemu-utils"
# The API server's tests drive it with boto3 (Debian's, for /usr/bin/python3) and the aws CLI.
[ "${1:-}" = "--test" ] && { { /usr/bin/python3 -c 'import boto3' || python3 -c 'import boto3'; } >/dev/null 2>&1 || need_apt="$need_apt python3-boto3"; command -v aws >/dev/null 2>&1 || need_apt="$need_apt awscli"; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt="$need_apt postgresql"; }
# The portable build's test traces the CLI's system calls with strace.
[ "${1:-}" = "--test" ] && { command -v strace >/dev/null 2>&1 || need_apt="$need_apt strace"; }
# The image writers' tests read their output with libyal's vmdkinfo and vhdiinfo too.
[ "${1:-}" = "--test" ] && { command -v vmdkinfo >/dev/null 2>&1 || need_apt="$need_apt libvmdk-utils"; command -v vhdiinfo >/dev/null 2>&1 || need_apt="$need_apt libvhdi-utils"; }
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
