#!/bin/sh
# Rebuilds cmd/mmubench/default.pgo, the CPU profile that `go build` and
# `go run ./cmd/mmubench` use for profile-guided optimisation (Go's -pgo=auto
# picks up default.pgo in a main package's directory). The profile is of
# what the CLI spends its time on — trace replay, the race workloads, the
# sweep's benchmarks — and of nothing else: a benchmark's loop in the
# profile would be optimised for the benchmark (inlined, aligned) as the
# CLI's own callers are not. Each piece is built and run without PGO, so
# the profile does not depend on an earlier one. Re-run it when the hot
# paths change; a stale profile only loses speed, never correctness.
set -eu
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -pgo=off -o "$tmp/mmubench" ./cmd/mmubench
m=$tmp/mmubench
gunzip -c results/traces/xz.trace.gz >"$tmp/xz.trace"
n=0
prof() { # mmubench arguments...
	n=$((n + 1))
	$m run --format csv --cpuprofile "$tmp/p$n.pprof" "$@" >/dev/null 2>&1
}
prof --workload "lackey:$tmp/xz.trace" --l1 64x4 --l2 off --walk-cache off --cpus 1
prof --workload "lackey:$tmp/xz.trace" --cpus 1
prof --workload reclaim-mprotect --policy flush-mm --runs 100
prof --workload madvfree-race --nested none --runs 100
prof --workload uniform --cpus 4
prof --workload seq --sched parallel --cpus 1
prof --workload mprotect-under-reclaim --policy flush-mm --cpus 4 --pages 256
prof --workload pageout-loop
prof --workload swap-bench
prof --workload unixbench-shell1
go tool pprof -proto "$tmp"/p*.pprof >"$tmp/default.pgo" 2>/dev/null
mv "$tmp/default.pgo" cmd/mmubench/default.pgo
echo "cmd/mmubench/default.pgo: $(wc -c <cmd/mmubench/default.pgo) bytes" >&2
