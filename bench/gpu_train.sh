#!/usr/bin/env bash
# GPU training benchmark: one device call (see ../shared/gpu/README.md and bench/gpu_all.sh).
# Trains the release's 4- and 33-layer shapes (d_model 1280, 20 heads, d_hid 5120, token_dim
# 5120, sample 1024) in bf16 autocast on one GPU for a few steps each on a synthetic dataset
# and prints cells/s, tokens/s and model FLOPs utilisation (bench/gpu_train_mfu.py).
# usage (device machine, repository root): BUILD=build-gpu bash bench/gpu_train.sh
# CPU dry run: DEVICE=cpu BUILD=build DMODEL=64 NHEAD=4 TOKDIM=64 B4=4 B33=2 B33CK=4 STEPS=4 \
#   CELLS=400 PY=/usr/bin/python3 bash bench/gpu_train.sh
set -uo pipefail
W=${W:-/tmp/uce-gpu-train}
DEVICE=${DEVICE:-cuda}
DMODEL=${DMODEL:-1280}
NHEAD=${NHEAD:-20}
TOKDIM=${TOKDIM:-5120}
CELLS=${CELLS:-6000}
STEPS=${STEPS:-14}
B4=${B4:-64}
B33=${B33:-24}
B33CK=${B33CK:-64}
SAMPLE=${SAMPLE:-1024}
PEAK=${PEAK:-989}   # H100 SXM / H200 bf16 dense TFLOP/s
PY=${PY:-python3}
BUILD=${BUILD:-build-gpu}
UCE=$BUILD/app/uce
THREADS=$(nproc)
mkdir -p "$W"
if [ ! -f "$W/data/corpus.csv" ]; then
  $UCE synth --out "$W/data" --cells "$CELLS" --genes 20000 --token-dim "$TOKDIM" --single-dataset --seed 3 \
    --threads "$THREADS" --quiet >/dev/null || exit 1
  printf 'path,species\n%s,human\n' "$(ls "$W"/data/*.h5ad | head -1)" >"$W/data/corpus.csv"
fi
train() {  # label layers batch extra-flags...
  local label=$1 layers=$2 batch=$3
  shift 3
  rm -rf "$W/$label"
  local t0=$(date +%s)
  if ! $UCE train --corpus "$W/data/corpus.csv" --assets "$W/data/assets" --out "$W/$label" --nlayers "$layers" \
      --d-model "$DMODEL" --nhead "$NHEAD" --d-hid $((4 * DMODEL)) --output-dim "$DMODEL" --batch-size "$batch" \
      --max-steps "$STEPS" --sample-size "$SAMPLE" --validate-every 1000000 --checkpoint-every 1000000 --val-cells 16 --device "$DEVICE" \
      --threads "$THREADS" --quiet "$@" >"$W/$label.log" 2>&1; then
    echo "train $label FAILED:"; tail -5 "$W/$label.log"; return 1
  fi
  echo "[$label: batch $batch $*; $(( $(date +%s) - t0 )) s incl. start-up]"
  $PY bench/gpu_train_mfu.py "$W/$label/metrics.jsonl" "$layers" "$DMODEL" $((4 * DMODEL)) "$TOKDIM" "$DMODEL" 64 "$PEAK"
}
RUNS=${RUNS:-all}
want() { [[ " $RUNS " == *" all "* || " $RUNS " == *" $1 "* ]]; }
want l4 && train l4 4 "$B4"
want l33 && train l33 33 "$B33"
want l33_ckpt && train l33_ckpt 33 "$B33CK" --activation-checkpointing
# Equal-length sentences: no padding, no attention mask, so the fused (flash / cuDNN) attention
# kernels run in the forward and backward passes; compare with l4 and l33 above.
want l4_eq && train l4_eq 4 "$B4" --equal-lengths
want l33_eq && train l33_eq 33 "$B33" --equal-lengths
