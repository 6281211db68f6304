#!/bin/sh
# Runs every fuzz target (or those of the packages named) for a while each.
# usage: fuzz/run.sh [FUZZTIME] [PACKAGE...]
set -eu
cd "$(dirname "$0")/.."
time=${1:-60s}
[ $# -gt 0 ] && shift
pkgs=${*:-". vmdk vhd vhdx manifest bundle ova"}
for p in $pkgs; do
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$p"/*_test.go | sed 's/^func //'); do
		echo "== $p $target ($time)"
		go test -run '^$' -fuzz "^$target\$" -fuzztime "$time" "./$p"
	done
done
