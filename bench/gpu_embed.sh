#!/usr/bin/env bash
# GPU embedding benchmark: one device call (see ../shared/gpu/README.md; bench/gpu_all.sh runs
# it with the training benchmark). Writes synthetic human datasets with release-sized tokens
# (5,120-d), random 4- and 33-layer weights of the released shapes, then prints:
#   ours, end to end from .h5ad on disk: fp32, bf16 (bf16 layers) and bf16-autocast, cells/s
#     (the embedding pass, and the whole command including loading the model)
#   the PyTorch reference forward pass of the same network (fp32 and bf16 autocast), cells/s
#   cosine of our bf16 embeddings to our fp32 ones (target >= 0.999)
# usage (device machine, repository root): BUILD=build-gpu bash bench/gpu_embed.sh
# CPU dry run with an existing build (small sizes, no GPU):
#   DEVICE=cpu BUILD=build SMALL4=200 BIG4=300 SMALL33=60 BIG33=100 DMODEL=64 NHEAD=4 TOKDIM=64 \
#     REF_B4=8 REF_B33=4 PY=/usr/bin/python3 bash bench/gpu_embed.sh
set -uo pipefail
SMALL4=${SMALL4:-3000}   # fp32 vs bf16 comparison (fp32 is slow)
BIG4=${BIG4:-30000}      # bf16 throughput
SMALL33=${SMALL33:-1000}
BIG33=${BIG33:-5000}
W=${W:-/tmp/uce-gpu-bench}
DEVICE=${DEVICE:-cuda}
DMODEL=${DMODEL:-1280}
NHEAD=${NHEAD:-20}
TOKDIM=${TOKDIM:-5120}
BUILD=${BUILD:-build-gpu}
PY=${PY:-python3}
UCE=$BUILD/app/uce
THREADS=$(nproc)
RUNS=${RUNS:-all}   # or a subset of: l4_fp32 l4_bf16 l4_bf16ac l4_bf16_big l4_bf16ac_big ref4 l33_fp32 ... ref33
want() { [[ " $RUNS " == *" all "* || " $RUNS " == *" $1 "* ]]; }
mkdir -p "$W"
synth() {  # dir cells seed [--no-assets]
  [ -d "$W/$1" ] || $UCE synth --out "$W/$1" --cells "$2" --genes 20000 --token-dim "$TOKDIM" --single-dataset \
    --seed "$3" --threads "$THREADS" --quiet "${@:4}" >/dev/null || exit 1
  ls "$W/$1"/*.h5ad | head -1
}
t0=$(date +%s)
S4=$(synth s4 "$SMALL4" 1)
B4=$(synth b4 "$BIG4" 2 --no-assets)
S33=$(synth s33 "$SMALL33" 3 --no-assets)
B33=$(synth b33 "$BIG33" 4 --no-assets)
ASSETS="$W/s4/assets"
for L in 4 33; do
  [ -f "$W/m$L.torch" ] || $UCE init-model --assets "$ASSETS" --out "$W/m$L.torch" --layers "$L" --d-model "$DMODEL" \
    --nhead "$NHEAD" --d-hid $((4 * DMODEL)) --output-dim "$DMODEL" --seed 1 >/dev/null || exit 1
done
echo "[data and models: $(( $(date +%s) - t0 )) s]"
run() {  # label model data precision batch [extra embed flags...]
  want "$1" || return 0
  local out="$W/out_$1.h5ad"
  rm -f "$out" "$out".uce-resume*
  if ! $UCE embed --adata "$3" --out "$out" --assets "$ASSETS" --model "$2" --species human --nhead "$NHEAD" \
      --device "$DEVICE" --precision "$4" --batch-size "$5" "${@:6}" --quiet >"$W/$1.log" 2>&1; then
    echo "ours $1 FAILED:"; tail -5 "$W/$1.log"; return 1
  fi
  echo "ours $1 (batch $5): $(grep -E 'embedding pass|end to end' "$W/$1.log" | sed 's/wrote .* in/whole command/' | tr '\n' ' ')"
}
cosine() { [ -f "$W/out_$1.h5ad" ] && [ -f "$W/out_$2.h5ad" ] || return 0; "$BUILD"/bench/bench_cosine "$W/out_$1.h5ad" "$W/out_$2.h5ad" X_uce | sed "s/^/$2 vs $1: /"; }
echo "== 4 layers"
run l4_fp32 "$W/m4.torch" "$S4" fp32 64
run l4_bf16 "$W/m4.torch" "$S4" bf16 256
run l4_bf16ac "$W/m4.torch" "$S4" bf16-autocast 256
cosine l4_fp32 l4_bf16
cosine l4_fp32 l4_bf16ac
run l4_bf16_big "$W/m4.torch" "$B4" bf16 256
run l4_bf16_big_flash "$W/m4.torch" "$B4" bf16 256 --attention-kernels flash
run l4_bf16_big_cudnn "$W/m4.torch" "$B4" bf16 256 --attention-kernels cudnn
run l4_bf16ac_big "$W/m4.torch" "$B4" bf16-autocast 256
want ref4 && $PY bench/gpu_reference.py "$W/m4.torch" "$NHEAD" "${REF_B4:-100}" 256 "$((SMALL4 / 2))" "$DEVICE"
echo "== 33 layers"
run l33_fp32 "$W/m33.torch" "$S33" fp32 16
run l33_bf16 "$W/m33.torch" "$S33" bf16 64
run l33_bf16ac "$W/m33.torch" "$S33" bf16-autocast 64
cosine l33_fp32 l33_bf16
cosine l33_fp32 l33_bf16ac
run l33_bf16_big "$W/m33.torch" "$B33" bf16 128
run l33_bf16_big_flash "$W/m33.torch" "$B33" bf16 128 --attention-kernels flash
want ref33 && $PY bench/gpu_reference.py "$W/m33.torch" "$NHEAD" "${REF_B33:-25}" 64 "$((SMALL33 / 2))" "$DEVICE"
