#!/usr/bin/env bash
# Each data-parallel rank reads its own shard of the corpus (issue 4): the same global batch
# trained by one rank (batch 2B, the baseline) and by two Gloo ranks (batch B each) for STEPS
# steps. Prints the corpus rows read for the training stream (metrics.jsonl `rows_read`, all
# ranks together), the wall time of each run and the ratios. One rank reads whole shuffle
# groups; two ranks read only the rows of the cells each trains on, so together they read no
# more than one rank (every rank reading every group, as before issue 4's shard reading, would
# give 2x). Both runs must reach the same loss on every step (the same cells, split in two).
# usage: bash bench/ddp_shard_reads.sh   env: UCE (build/app/uce), W (/tmp/uce-ddp-shard),
#   CELLS (20000), STEPS (60), BATCH (64 per rank), THREADS (1 per rank)
set -euo pipefail
UCE=${UCE:-build/app/uce}
W=${W:-/tmp/uce-ddp-shard}
CELLS=${CELLS:-20000}
STEPS=${STEPS:-60}
BATCH=${BATCH:-64}
THREADS=${THREADS:-1}
mkdir -p "$W"
if [ ! -f "$W/data/corpus.csv" ]; then
  "$UCE" synth --out "$W/data" --cells "$CELLS" --genes 2000 --token-dim 64 --species human --tissues kidney,lung \
    --seed 3 --quiet >/dev/null
  { echo "path,species"; for f in "$W"/data/*.h5ad; do echo "$(basename "$f"),human"; done; } >"$W/data/corpus.csv"
fi
run() {  # $1 = label, $2 = nproc, $3 = batch per rank; prints "seconds rows"
  local out=$W/run-$1
  rm -rf "$out"
  local t0 t1
  t0=$(date +%s.%N)
  "$UCE" train --corpus "$W/data/corpus.csv" --assets "$W/data/assets" --out "$out" --nlayers 1 \
    --d-model 32 --nhead 4 --sample-size 128 --batch-size "$3" --max-steps "$STEPS" --warmup 1 \
    --lr 1e-4 --seed 1 --checkpoint-every 0 --no-dropout --nproc "$2" --threads "$THREADS" --quiet >/dev/null
  t1=$(date +%s.%N)
  local rows
  rows=$(grep -o '"rows_read":[0-9]*' "$out/metrics.jsonl" | cut -d: -f2 | paste -sd+ | bc)
  echo "$(echo "$t1 - $t0" | bc -l) $rows"
}
read -r t1 r1 < <(run one 1 $((2 * BATCH)))
read -r t2 r2 < <(run two 2 "$BATCH")
printf '1 rank,  batch %d: %.2f s, %d corpus rows read\n' $((2 * BATCH)) "$t1" "$r1"
printf '2 ranks, batch %d each: %.2f s, %d corpus rows read (both ranks)\n' "$BATCH" "$t2" "$r2"
printf 'rows read, 2 ranks / 1 rank = %.3f (each rank reading every group: 2.000)\n' "$(echo "$r2 / $r1" | bc -l)"
printf 'cells trained: %d; wall time 1 rank / 2 ranks = %.3f\n' $((2 * BATCH * STEPS)) "$(echo "$t1 / $t2" | bc -l)"
paste -d' ' <(grep -o '"loss":[0-9.e-]*' "$W/run-one/metrics.jsonl") <(grep -o '"loss":[0-9.e-]*' "$W/run-two/metrics.jsonl") |
  awk '{split($1,a,":"); split($2,b,":"); d=a[2]-b[2]; if (d<0) d=-d; if (d>m) m=d} END {printf "largest per-step loss difference: %.2g\n", m}'
