#!/bin/sh
# How the two traces of results/side-effect.md were made (valgrind 3.19,
# x86-64 Debian 12): a compressor (xz -0 of a 10 KiB Go source file) and a
# compiler (gcc 12's cc1 -O2 on hello.c), each traced whole with lackey,
# then cut to the second million lines (past the dynamic loader's start-up)
# and compressed. mmubench reads .gz traces directly.
set -eu
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=${1:-../../mm/fault.go}
valgrind --tool=lackey --trace-mem=yes --log-file="$work/xz.full" xz -0 -c "$input" >/dev/null
cc1=$(gcc -print-prog-name=cc1)
valgrind --tool=lackey --trace-mem=yes --log-file="$work/cc1.full" "$cc1" -quiet -O2 hello.c -o "$work/hello.s"
for p in xz cc1; do
	{ head -n 3 "$work/$p.full"; tail -n +1000001 "$work/$p.full" | head -n 1000000; } | gzip -9 >"$p.trace.gz"
done
