#!/usr/bin/env bash
# Data-parallel gradient averaging overlapped with the backward pass (issue 4): the same
# `uce train --nproc 2` run with --grad-sync after (all-reduce once the backward pass is done,
# the baseline) and --grad-sync overlap (buckets all-reduced from the gradient hooks while the
# backward pass goes on), alternated ROUNDS times, on the CPU with Gloo over 127.0.0.1. Prints
# each run's wall time, the medians, and after / overlap (> 1: the overlap is faster).
# usage: bash bench/ddp_overlap.sh      env: UCE (build/app/uce), W (/tmp/uce-ddp-overlap),
#   STEPS (30), ROUNDS (3), LAYERS (4), DMODEL (256), BATCH (8 per rank), BUCKET_MB (4),
#   THREADS (1 per rank)
set -euo pipefail
UCE=${UCE:-build/app/uce}
W=${W:-/tmp/uce-ddp-overlap}
STEPS=${STEPS:-30}
ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-4}
DMODEL=${DMODEL:-256}
BATCH=${BATCH:-8}
BUCKET_MB=${BUCKET_MB:-4}
THREADS=${THREADS:-1}
mkdir -p "$W"
if [ ! -f "$W/data/corpus.csv" ]; then
  "$UCE" synth --out "$W/data" --cells 2000 --genes 2000 --token-dim 128 --species human --tissues kidney,lung \
    --seed 3 --quiet >/dev/null
  { echo "path,species"; for f in "$W"/data/*.h5ad; do echo "$(basename "$f"),human"; done; } >"$W/data/corpus.csv"
fi
run() {  # $1 = after | overlap; prints the wall seconds
  local out=$W/run-$1
  rm -rf "$out"
  local t0 t1
  t0=$(date +%s.%N)
  "$UCE" train --corpus "$W/data/corpus.csv" --assets "$W/data/assets" --out "$out" --nlayers "$LAYERS" \
    --d-model "$DMODEL" --nhead 8 --sample-size 256 --batch-size "$BATCH" --max-steps "$STEPS" --warmup 1 \
    --lr 1e-4 --seed 1 --val-fraction 0 --checkpoint-every 0 --no-dropout --nproc 2 --threads "$THREADS" \
    --grad-sync "$1" --grad-bucket-mb "$BUCKET_MB" --quiet >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
declare -a A O
for ((r = 0; r < ROUNDS; r++)); do
  A+=("$(run after)")
  O+=("$(run overlap)")
  printf 'round %d: after %.2f s   overlap %.2f s\n' "$((r + 1))" "${A[-1]}" "${O[-1]}"
done
cmp -s "$W/run-after/model.torch" "$W/run-overlap/model.torch" && echo "weights: identical" ||
  echo "weights: DIFFER (a bug: both must average the same gradients)"
grep -o '"sync_buckets_in_backward":[0-9]*,"sync_buckets":[0-9]*' "$W/run-overlap/metrics.jsonl" | tail -1
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ma=$(median "${A[@]}")
mo=$(median "${O[@]}")
printf 'median: after %.2f s, overlap %.2f s for %d steps; after / overlap = %.3f\n' "$ma" "$mo" "$STEPS" \
  "$(echo "$ma / $mo" | bc -l)"
