#!/usr/bin/env bash
# Compares one app benchmark across commits on a shared, noisy machine: runs
# it once per commit per round, interleaved (A B A B ...), so that a change
# in the machine's load falls on every commit alike, and logs the load
# average before each run. Compare the ratio against pg_recvlogical each run
# prints: it is measured in the same run, under the same load.
#
#   scripts/bench-interleave.sh [-n ROUNDS] [-b BENCH] WORKTREE...
#
# Each WORKTREE is a checkout of the repository (e.g. made with
# `git worktree add --detach /tmp/before COMMIT^`); its app test binary is
# built once, before the first round. REPLICATOR_BENCH_ROWS is passed on.
set -euo pipefail

rounds=3
bench=BenchmarkStreamVersusRecvlogical
while getopts n:b: opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	b) bench=$OPTARG ;;
	*) echo "usage: $0 [-n ROUNDS] [-b BENCH] WORKTREE..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-n ROUNDS] [-b BENCH] WORKTREE..." >&2; exit 2; }

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
for dir in "$@"; do
	label=$(basename "$dir")
	(cd "$dir" && go test -c -o "$bin/$label.test" ./app/)
	echo "built $label at $(git -C "$dir" rev-parse --short HEAD)"
done

for round in $(seq 1 "$rounds"); do
	for dir in "$@"; do
		label=$(basename "$dir")
		echo "round $round $label load: $(cut -d' ' -f1-3 /proc/loadavg)"
		# The test binary runs in its package directory, as go test runs it.
		(cd "$dir/app" && "$bin/$label.test" -test.run '^$' -test.bench "^$bench\$" -test.benchtime 1x \
			-test.timeout 60m 2>&1) | grep -E '^(rows=|feishu e2e:|Benchmark|FAIL|---)' || true
	done
done
