#!/usr/bin/env bash
# Issue 3, one device call: where the embedding pass loses time against the layers' own
# speed, and what `uce embed` gives end to end on datasets large enough that start-up costs
# are spread. Builds `uce` as bench/gpu_all.sh does, then, with bf16 layers and auto kernels:
#   4 layers : 20,000 cells (as sessions 2-3), the same with UCE_EMBED_TRACE=1 (a per-batch
#              time line), then SCALE4 cells (default 100,000)
#   33 layers: 3,000 cells traced, then SCALE33 cells (default 10,000)
# and, time permitting (TRAIN=1), bench/gpu_train.sh. Logs and traces go to $LOG ($OUT when set).
# RUNS picks among l4_20k l4_trace l33_trace scale4 scale33 (default all).
# usage (device machine, repository root): bash bench/gpu_scale.sh
set -uo pipefail
PY=${PY:-python3}
BUILD=${BUILD:-build-gpu}
LOG=${LOG:-${OUT:-/tmp}}
RUNS=${RUNS:-all}
want() { [[ " $RUNS " == *" all "* || " $RUNS " == *" $1 "* ]]; }
W=${W:-/tmp/uce-gpu-scale}
SCALE4=${SCALE4:-100000}
SCALE33=${SCALE33:-10000}
UCE=$BUILD/app/uce
T=$(nproc)
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
source bench/gpu_build.sh
echo "[build: $(( $(date +%s) - t0 )) s]"
mkdir -p "$W"
synth() {  # dir cells seed [--no-assets]
  [ -d "$W/$1" ] || $UCE synth --out "$W/$1" --cells "$2" --genes 20000 --token-dim 5120 --single-dataset \
    --seed "$3" --threads "$T" --quiet "${@:4}" >/dev/null || exit 1
  ls "$W/$1"/*.h5ad | head -1
}
A=$(synth a 400 1)
ASSETS=$W/a/assets
want l4_20k || want l4_trace && D20=$(synth d20 20000 2 --no-assets)
want l33_trace && D3=$(synth d3 3000 4 --no-assets)
for L in 4 33; do
  if [ $L = 4 ]; then want l4_20k || want l4_trace || want scale4 || continue
  else want l33_trace || want scale33 || continue; fi
  [ -f "$W/m$L.torch" ] || $UCE init-model --assets "$ASSETS" --out "$W/m$L.torch" --layers $L --d-model 1280 \
    --nhead 20 --d-hid 5120 --output-dim 1280 --seed 1 >/dev/null || exit 1
done
echo "[data and models: $(( $(date +%s) - t0 )) s]"
run() {  # label model data batch [env...]
  local out=$W/out_$1.h5ad
  rm -f "$out" "$out".uce-resume*
  if ! env "${@:5}" $UCE embed --adata "$3" --out "$out" --assets "$ASSETS" --model "$2" --species human --nhead 20 \
      --device cuda --precision bf16 --batch-size "$4" --threads "$T" >"$LOG/$1.log" 2>&1; then
    echo "$1 FAILED:"; tail -5 "$LOG/$1.log"; return 1
  fi
  echo "$1 (batch $4): $(grep -E 'embedding pass|before the pass|wrote' "$LOG/$1.log" | tr '\n' ' ' | cut -c1-600)"
}
traced() {  # label: summary of a trace
  local f=$LOG/$1.log
  echo "  batches: $(grep -c '^trace: batch' "$f"); lengths: $(grep '^trace: batch' "$f" | sed 's/.*of length \([0-9]*\).*/\1/' | sort -u | tr '\n' ' ')"
  echo "  first 4 batches:"; grep '^trace: batch' "$f" | head -4 | sed 's/^/    /'
  echo "  waits over 5 ms:"; grep '^trace: waited' "$f" | awk '$3 > 5' | head -6 | sed 's/^/    /'
  grep '^trace: batch' "$f" | awk '{t += $11; n += $4} END {printf "  sum of batch times %.0f ms for %d cells\n", t, n}'
  grep '^trace: batch' "$f" | awk -v full="$2" '$4 == full {print $11 * 1000 / $4}' | sort -n |
    awk '{a[NR] = $1} END {printf "  full batches: %d, us a cell: min %.1f, median %.1f, max %.1f\n", NR, a[1], a[int((NR + 1) / 2)], a[NR]}'
}
echo "== 4 layers"
want l4_20k && run l4_20k "$W/m4.torch" "$D20" 256
want l4_trace && run l4_20k_trace "$W/m4.torch" "$D20" 256 UCE_EMBED_TRACE=1 && traced l4_20k_trace 256
echo "== 33 layers"
want l33_trace && run l33_3k_trace "$W/m33.torch" "$D3" 128 UCE_EMBED_TRACE=1 && traced l33_3k_trace 128
echo "[$(( $(date +%s) - t0 )) s]"
echo "== at scale"
if want scale4; then
  DS4=$(synth d100 "$SCALE4" 5 --no-assets)
  echo "[synth $SCALE4: $(( $(date +%s) - t0 )) s]"
  run l4_scale "$W/m4.torch" "$DS4" 256
fi
if want scale33; then
  DS33=$(synth d10 "$SCALE33" 6 --no-assets)
  run l33_scale "$W/m33.torch" "$DS33" 128
fi
echo "[$(( $(date +%s) - t0 )) s]"
[ "${TRAIN:-0}" = 1 ] && BUILD=$BUILD PY=$PY CELLS=4000 STEPS=12 RUNS="l4 l33" bash bench/gpu_train.sh 2>&1 | tee "$LOG/train.log"
echo "total: $(( $(date +%s) - t0 )) s"
