#!/bin/sh
# The demo: builds diskport, makes a small example disk with qemu-img (a
# streamOptimized VMDK of a 96 MiB disk with some data and holes), prints
# `diskport info`, converts it to an EBS-sized raw volume, and prints
# `info` of the volume.
set -eu
cd "$(dirname "$0")/.."
mkdir -p demo bin
go build -o bin/diskport ./cmd/diskport
rm -f demo/example.raw demo/example.vmdk demo/volume.raw
# An example disk: a few MiB of text and random bytes among zeros.
truncate -s 96M demo/example.raw
head -c 4M /dev/urandom | dd of=demo/example.raw bs=1M seek=1 conv=notrunc status=none
yes "diskport demo" | head -c 3M | dd of=demo/example.raw bs=1M seek=40 conv=notrunc status=none
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized demo/example.raw demo/example.vmdk
echo "== diskport info demo/example.vmdk"
bin/diskport info demo/example.vmdk
echo
echo "== diskport convert --progress demo/example.vmdk demo/volume.raw"
bin/diskport convert --progress demo/example.vmdk demo/volume.raw
echo
echo "== diskport info demo/volume.raw"
bin/diskport info demo/volume.raw
echo
if cmp -s -n "$(stat -c %s demo/example.raw)" demo/example.raw demo/volume.raw; then
	echo "demo: the volume holds the example disk, zero-padded to $(stat -c %s demo/volume.raw) bytes (allocated: $(du -h demo/volume.raw | cut -f1))"
else
	echo "demo: the volume differs from the example disk" >&2
	exit 1
fi
