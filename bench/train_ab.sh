#!/usr/bin/env bash
# One CPU training run with two sets of `uce train` flags, A (the baseline) and B, alternated
# ROUNDS times on the same data and seed. Prints each run's wall time and tokens a cell (real
# tokens; padded batches hold more), the medians, A / B (> 1: B is faster) and both runs' last
# losses. bench/equal_lengths.sh and bench/bf16_layers.sh are runs of it.
# usage: B_FLAGS="--equal-lengths" bash bench/train_ab.sh
#   env: A_FLAGS (none), B_FLAGS, A_NAME (default), B_NAME (B), UCE (build/app/uce),
#   W (/tmp/uce-train-ab), STEPS (150), ROUNDS (2), LAYERS (2), DMODEL (64), SAMPLE (128),
#   BATCH (32), THREADS (2)
set -euo pipefail
UCE=${UCE:-build/app/uce}
W=${W:-/tmp/uce-train-ab}
STEPS=${STEPS:-150}
ROUNDS=${ROUNDS:-2}
LAYERS=${LAYERS:-2}
DMODEL=${DMODEL:-64}
SAMPLE=${SAMPLE:-128}
BATCH=${BATCH:-32}
THREADS=${THREADS:-2}
A_NAME=${A_NAME:-default}
B_NAME=${B_NAME:-B}
read -ra AF <<<"${A_FLAGS:-}"
read -ra BF <<<"${B_FLAGS:-}"
mkdir -p "$W"
if [ ! -f "$W/data/corpus.csv" ]; then
  "$UCE" synth --out "$W/data" --cells 6000 --genes 2000 --token-dim 64 --species human --tissues kidney,lung \
    --gene-positions resources/human_gene_positions.csv --seed 3 --quiet >/dev/null
  { echo "path,species"; for f in "$W"/data/*.h5ad; do echo "$(basename "$f"),human"; done; } >"$W/data/corpus.csv"
fi
run() {  # $1 = run folder name, then extra flags; prints "seconds tokens-a-cell"
  local out=$W/run-$1
  shift
  rm -rf "$out"
  local t0 t1
  t0=$(date +%s.%N)
  "$UCE" train --corpus "$W/data/corpus.csv" --assets "$W/data/assets" --out "$out" --nlayers "$LAYERS" \
    --d-model "$DMODEL" --nhead 4 --sample-size "$SAMPLE" --batch-size "$BATCH" --max-steps "$STEPS" --warmup 10 \
    --lr 1e-3 --seed 1 --val-fraction 0 --checkpoint-every 0 --threads "$THREADS" --quiet "$@" >/dev/null
  t1=$(date +%s.%N)
  local tpc
  tpc=$(tail -1 "$out/metrics.jsonl" | grep -o '"tokens_per_s":[0-9.e+-]*\|"cells_per_s":[0-9.e+-]*' |
    cut -d: -f2 | paste -sd' ' | awk '{printf "%.1f", $2 / $1}')
  echo "$(echo "$t1 - $t0" | bc -l) $tpc"
}
declare -a TA TB
for ((r = 0; r < ROUNDS; r++)); do
  read -r ta pa < <(run a ${AF[@]+"${AF[@]}"})
  read -r tb pb < <(run b ${BF[@]+"${BF[@]}"})
  TA+=("$ta")
  TB+=("$tb")
  printf 'round %d: %s %.2f s (%s real tokens a cell)   %s %.2f s (%s tokens a cell)\n' \
    "$((r + 1))" "$A_NAME" "$ta" "$pa" "$B_NAME" "$tb" "$pb"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ma=$(median "${TA[@]}")
mb=$(median "${TB[@]}")
printf 'median: %s %.2f s, %s %.2f s for %d steps; %s / %s = %.3f\n' "$A_NAME" "$ma" "$B_NAME" "$mb" "$STEPS" \
  "$A_NAME" "$B_NAME" "$(echo "$ma / $mb" | bc -l)"
last() { tail -1 "$W/run-$1/metrics.jsonl" | grep -o '"loss":[0-9.e+-]*' | cut -d: -f2; }
printf 'loss at step %d: %s %s, %s %s\n' "$STEPS" "$A_NAME" "$(last a)" "$B_NAME" "$(last b)"
