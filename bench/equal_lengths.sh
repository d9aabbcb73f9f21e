#!/usr/bin/env bash
# Training with equal-length sentences (`uce train --equal-lengths`) against the default
# (sentences as the release builds them, micro-batches padded to their longest sentence and an
# attention key mask), on the CPU: the same run alternated ROUNDS times. Prints each run's wall
# time, tokens a cell (real tokens; the default's batches are padded beyond them) and
# default / equal (> 1: equal lengths are faster). On CUDA, bench/gpu_train.sh's l4_eq and
# l33_eq runs compare the same on a GPU, where the mask also decides the attention kernel.
# usage: bash bench/equal_lengths.sh   env: UCE (build/app/uce), W (/tmp/uce-equal-lengths),
#   STEPS (150), ROUNDS (2), LAYERS (2), DMODEL (64), SAMPLE (128), BATCH (32), THREADS (2)
set -euo pipefail
UCE=${UCE:-build/app/uce}
W=${W:-/tmp/uce-equal-lengths}
STEPS=${STEPS:-150}
ROUNDS=${ROUNDS:-2}
LAYERS=${LAYERS:-2}
DMODEL=${DMODEL:-64}
SAMPLE=${SAMPLE:-128}
BATCH=${BATCH:-32}
THREADS=${THREADS:-2}
mkdir -p "$W"
if [ ! -f "$W/data/corpus.csv" ]; then
  "$UCE" synth --out "$W/data" --cells 6000 --genes 2000 --token-dim 64 --species human --tissues kidney,lung \
    --gene-positions resources/human_gene_positions.csv --seed 3 --quiet >/dev/null
  { echo "path,species"; for f in "$W"/data/*.h5ad; do echo "$(basename "$f"),human"; done; } >"$W/data/corpus.csv"
fi
run() {  # $1 = label, then extra flags; prints "seconds tokens-a-cell"
  local label=$1
  shift
  local out=$W/run-$label
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
declare -a D E
for ((r = 0; r < ROUNDS; r++)); do
  read -r td pd < <(run default)
  read -r te pe < <(run equal --equal-lengths)
  D+=("$td")
  E+=("$te")
  printf 'round %d: default %.2f s (%s real tokens a cell)   equal lengths %.2f s (%s tokens a cell)\n' \
    "$((r + 1))" "$td" "$pd" "$te" "$pe"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
md=$(median "${D[@]}")
me=$(median "${E[@]}")
printf 'median: default %.2f s, equal lengths %.2f s for %d steps; default / equal = %.3f\n' "$md" "$me" "$STEPS" \
  "$(echo "$md / $me" | bc -l)"
last() { tail -1 "$W/run-$1/metrics.jsonl" | grep -o '"loss":[0-9.e+-]*' | cut -d: -f2; }
printf 'loss at step %d: default %s, equal lengths %s\n' "$STEPS" "$(last default)" "$(last equal)"
