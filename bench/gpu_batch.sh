#!/usr/bin/env bash
# Issue 3, one device call: does the 4-layer embedding pass depend on the batch size? Builds
# `uce` as bench/gpu_scale.sh does (same data seeds), embeds 20,000 cells with bf16 layers at
# each of BATCHES, traced (UCE_EMBED_TRACE=1: steady-state microseconds a cell of the full
# batches), then profiles one layer alone at batch 64 and 256 (bench/gpu_layer_profile.py).
# usage (device machine, repository root): bash bench/gpu_batch.sh
set -uo pipefail
PY=${PY:-python3}
BUILD=${BUILD:-build-gpu}
LOG=${OUT:-/tmp}
W=${W:-/tmp/uce-gpu-scale}
BATCHES=${BATCHES:-64 128 256 512}
UCE=$BUILD/app/uce
T=$(nproc)
t0=$(date +%s)
source bench/gpu_build.sh
echo "[build: $(( $(date +%s) - t0 )) s]"
mkdir -p "$W"
[ -d "$W/a" ] || $UCE synth --out "$W/a" --cells 400 --genes 20000 --token-dim 5120 --single-dataset --seed 1 --threads "$T" --quiet >/dev/null || exit 1
[ -d "$W/d20" ] || $UCE synth --out "$W/d20" --cells 20000 --genes 20000 --token-dim 5120 --single-dataset --seed 2 --no-assets --threads "$T" --quiet >/dev/null || exit 1
[ -f "$W/m4.torch" ] || $UCE init-model --assets "$W/a/assets" --out "$W/m4.torch" --layers 4 --d-model 1280 --nhead 20 --d-hid 5120 --output-dim 1280 --seed 1 >/dev/null || exit 1
D20=$(ls "$W"/d20/*.h5ad | head -1)
echo "[data and model: $(( $(date +%s) - t0 )) s]"
for b in $BATCHES; do
  for trace in 0 1; do
    f=$LOG/l4_b${b}_t$trace.log
    rm -f "$W/o.h5ad" "$W"/o.h5ad.uce-resume*
    UCE_EMBED_TRACE=$trace $UCE embed --adata "$D20" --out "$W/o.h5ad" --assets "$W/a/assets" --model "$W/m4.torch" --species human \
      --nhead 20 --device cuda --precision bf16 --batch-size "$b" --threads "$T" >"$f" 2>&1 || { echo "batch $b FAILED"; tail -3 "$f"; continue; }
    echo "batch $b trace $trace: $(grep -E 'embedding pass' "$f")"
    [ $trace = 1 ] && grep '^trace: batch' "$f" | awk -v full="$b" '$4 == full {print $11 * 1000 / $4}' | sort -n |
      awk '{a[NR] = $1} END {printf "  full batches: %d, us a cell: min %.1f, median %.1f, max %.1f\n", NR, a[1], a[int((NR + 1) / 2)], a[NR]}'
  done
done
echo "[$(( $(date +%s) - t0 )) s]"
for b in 64 256; do NO_COMPILE=1 $PY bench/gpu_layer_profile.py $b 1073 2>&1 | grep -v "^$" | head -30; done
echo "total: $(( $(date +%s) - t0 )) s"
