#!/bin/sh
# Runs Go fuzz targets one after another and reports, per target, what the
# fuzzer did: executions, executions a second, new interesting inputs and
# crashes. Exits non-zero when a target crashed, failed to run, or fuzzed
# slower than the floor.
#
# usage: scripts/fuzz.sh [-t FUZZTIME] [-p PARALLEL] [-r MINRATE] [-P PKGTIME] [-m MINIMIZE] [-l LOGDIR] [-x TARGETRE] [PACKAGE...]
#   -t  time per target (go test -fuzztime; default $FUZZTIME or 60s)
#   -P  time per package instead, split evenly between its targets (a
#       campaign: -P 1h -p 1 gives every package one CPU-hour)
#   -p  fuzzing workers per target (go test -parallel; default $FUZZPARALLEL or 1)
#   -r  the slowest acceptable executions a second (default 1000; 0: no floor)
#   -m  go test -fuzzminimizetime (default $FUZZMINIMIZE or 1000x): Go
#       minimises every new interesting input, and its byte-subset pass is
#       quadratic in the input's length, so its 60s default stalls a worker
#       for up to a minute on each kilobyte-sized input it finds
#   -l  where the go test logs go (default $FUZZLOG or ${TMPDIR:-/tmp}/diskport-fuzz)
#   -x  only targets whose name matches this extended regexp
#   PACKAGE  directories holding fuzz targets (default: every one that does)
#
# The rate is measured after the first minute when the target ran for at
# least two, so the start (seed coverage, early minimisation) does not
# count; a shorter run is measured from the end of the seed corpus's
# baseline to the end, and says so ("whole").
set -eu
cd "$(dirname "$0")/.."

time=${FUZZTIME:-60s}
pkgtime=
par=${FUZZPARALLEL:-1}
floor=1000
logdir=${FUZZLOG:-${TMPDIR:-/tmp}/diskport-fuzz}
only=
minimize=${FUZZMINIMIZE:-1000x}
while getopts t:p:r:P:m:l:x: opt; do
	case $opt in
	t) time=$OPTARG ;;
	p) par=$OPTARG ;;
	r) floor=$OPTARG ;;
	P) pkgtime=$OPTARG ;;
	m) minimize=$OPTARG ;;
	l) logdir=$OPTARG ;;
	x) only=$OPTARG ;;
	*) sed -n '6,18s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

# seconds turns a Go duration (1h30m, 90s, 2m) into seconds.
seconds() {
	echo "$1" | awk '{
		s = 0; t = $0
		while (match(t, /^[0-9.]+(h|ms|m|s)/)) {
			u = substr(t, RSTART, RLENGTH); t = substr(t, RLENGTH + 1)
			n = u + 0
			if (u ~ /ms$/) s += n / 1000
			else if (u ~ /h$/) s += n * 3600
			else if (u ~ /m$/) s += n * 60
			else s += n
		}
		if (t != "") { print "bad duration: " $0 > "/dev/stderr"; exit 1 }
		printf "%d\n", s
	}'
}

targets() { # the fuzz targets of package directory $1
	grep -ho '^func Fuzz[A-Za-z0-9_]*' "$1"/*_test.go 2>/dev/null | sed 's/^func //' |
		{ if [ -n "$only" ]; then grep -E "$only" || true; else cat; fi; }
}

if [ $# -eq 0 ]; then
	set -- $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sed 's|^\./||' | sort -u)
fi

mkdir -p "$logdir"
summary=$logdir/summary.tsv
: >"$summary"
printf '%-10s %-20s %12s %9s %-6s %11s %8s  %s\n' package target execs exec/s over interesting crashes result
status=0
for p in "$@"; do
	ts=$(targets "$p")
	[ -n "$ts" ] || continue
	n=$(echo "$ts" | wc -l)
	t=$time
	if [ -n "$pkgtime" ]; then
		t=$(( $(seconds "$pkgtime") / n ))s
	fi
	for target in $ts; do
		log=$logdir/$(echo "$p" | sed "s|^\.$|root|" | tr / _)-$target.log
		rc=0
		go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" -timeout "$(( $(seconds "$t") + 600 ))s" -fuzzminimizetime "$minimize" -parallel "$par" "./$p" >"$log" 2>&1 || rc=$?
		# The log's status lines: "fuzz: elapsed: 1m3s, execs: 123 (45/sec), new interesting: 6 (total: 7)".
		line=$(awk -v rc="$rc" -v floor="$floor" -v pkg="$p" -v target="$target" '
			function secs(d,   s, u, n) {
				s = 0
				while (match(d, /^[0-9]+(h|m|s)/)) {
					u = substr(d, RSTART, RLENGTH); d = substr(d, RLENGTH + 1); n = u + 0
					if (u ~ /h$/) s += n * 3600; else if (u ~ /m$/) s += n * 60; else s += n
				}
				return s
			}
			/^fuzz: elapsed: .*now fuzzing/ {
				e = $3; sub(/,$/, "", e); t0 = secs(e); c0 = 0; base = 1
			}
			/^fuzz: elapsed: .*execs: / {
				e = $3; sub(/,$/, "", e); el = secs(e)
				x = $0; sub(/.*execs: /, "", x); execs = x + 0
				x = $0; sub(/.*new interesting: /, "", x); interesting = x + 0
				if (el >= 60 && m0 == "") { m0 = el; mc = execs }
			}
			/Failing input written to/ { crash = crash " " $NF }
			/^--- FAIL/ { failed = 1 }
			/^panic:|fuzzing process hung or terminated unexpectedly|^failure while testing seed corpus/ { failed = 1; hard = 1 }
			/^ +context deadline exceeded$/ { deadline = 1 }
			END {
				if (m0 != "" && el - m0 >= 60) { rate = (execs - mc) / (el - m0); over = "m2+" }
				else if (base && el > t0) { rate = (execs - c0) / (el - t0); over = "whole" }
				else { rate = 0; over = "-" }
				crashes = crash == "" ? 0 : split(crash, _, " ")
				result = "ok"
				# Go before 1.27 can fail a run that found nothing with
				# "context deadline exceeded" when -fuzztime ends while a
				# worker is busy (go.dev/issue/75804): not a crash.
				if (crashes) result = "FAIL" crash
				else if ((rc != 0 || failed) && !(deadline && !hard)) result = "FAIL (see log)"
				else if (rate < floor) result = "SLOW"
				else if (rc != 0) result = "ok (deadline, go.dev/issue/75804)"
				printf "%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\n", pkg, target, execs, rate, over, interesting, crashes, result
			}' "$log")
		echo "$line" >>"$summary"
		echo "$line" | awk -F'\t' '{ printf "%-10s %-20s %12d %9d %-6s %11d %8d  %s\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
		case $(echo "$line" | cut -f8) in
		ok*) ;;
		*) status=1 ;;
		esac
	done
done
echo "per package:"
awk -F'\t' '{ e[$1] += $3; i[$1] += $6; c[$1] += $7; n[$1]++ }
	END { for (p in e) printf "  %-10s %2d targets %14d execs %7d interesting %3d crashes\n", p, n[p], e[p], i[p], c[p] }' "$summary" | sort
echo "logs and summary.tsv in $logdir"
exit $status
