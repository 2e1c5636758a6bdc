#!/bin/bash
# Submits a sweep as an array of SHARDS tasks and its merge as a job that
# runs once they all succeeded; prints the two job ids.
#   deploy/slurm/submit.sh SWEEP.json SHARDS OUTDIR OUT.csv
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sweep=${1:?sweep file}
shards=${2:?number of shards}
outdir=${3:?output directory}
out=${4:?merged CSV}
mkdir -p "$outdir"
array=$(sbatch --parsable --array=0-$((shards - 1)) --chdir="$outdir" "$here/sweep.sbatch" "$sweep" "$outdir")
merge=$(sbatch --parsable --dependency=afterok:"$array" --chdir="$outdir" "$here/merge.sbatch" "$outdir" "$shards" "$out")
echo "$array $merge"
