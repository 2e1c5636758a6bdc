#!/bin/sh
# Regenerates the reports of this directory with the current code, each with
# the command results/README.md (or its own .md) names. With arguments, only
# those reports: correctness range-correctness pageout side-effect nested
# nested-small calibration catalogue-mremap catalogue-migrate catalogue-numa
# catalogue-mthp catalogue-x86. The CSVs are deterministic: re-running on the
# same code rewrites them byte for byte.
set -eu
cd "$(dirname "$0")/.."
go build -o /tmp/mmubench-regen ./cmd/mmubench
m=/tmp/mmubench-regen
sweep() { # name
	rm -f "results/$1.csv" "results/$1.csv.partial"
	$m sweep --quiet --reproducible --file "results/$1.json" --out "results/$1.csv" >/dev/null
}
all="nested-small nested pageout correctness range-correctness side-effect calibration catalogue-mremap catalogue-migrate catalogue-numa catalogue-mthp catalogue-x86"
for r in ${*:-$all}; do
	start=$(date +%s)
	case $r in
	correctness | range-correctness | nested-small | catalogue-*)
		sweep "$r" ;;
	nested)
		sweep nested
		$m report results/nested.csv --by workload,nested --metrics violations,lost_writes,tlbi,dsb,emu_cycles --plot results/nested.svg --plot-metric emu_cycles >/dev/null ;;
	pageout)
		sweep pageout
		$m report results/pageout.csv --by policy --metrics cycles_per_iter,tlbi,dsb,dsb_wait_cycles,emu_cycles --plot results/pageout.svg --plot-metric cycles_per_iter >/dev/null ;;
	side-effect)
		sweep side-effect
		$m report results/side-effect.csv --where victim=loop,cpus=16 --by policy,gap --metrics flush_overhead_pct --plot results/side-effect.svg --plot-metric flush_overhead_pct --plot-x pages >/dev/null ;;
	calibration)
		$m calibrate --quiet --format csv >results/calibration.csv.tmp
		mv results/calibration.csv.tmp results/calibration.csv ;;
	*)
		echo "regenerate.sh: unknown report $r (want: $all)" >&2
		exit 2 ;;
	esac
	echo "$r: $(($(date +%s) - start)) s" >&2
done
