#!/usr/bin/env bash
# GPU embedding benchmark: one device call (see ../shared/gpu/README.md). Builds `uce` against
# the machine's PyTorch LibTorch (CUDA), writes a synthetic human dataset with release-sized
# tokens (5,120-d), random 4- and 33-layer weights of the released shapes, then prints:
#   ours, end to end from .h5ad on disk (fp32 and bf16), cells/s
#   the PyTorch reference forward pass of the same network (fp32 and bf16 autocast), cells/s
#   cosine of our bf16 embeddings to our fp32 ones (target >= 0.999)
# usage (on the device machine, from the repository root): bash bench/gpu_embed.sh
# Dry run of the flow on a CPU machine with an existing build (small sizes, no GPU):
#   DEVICE=cpu BUILD=build CELLS4=300 CELLS33=100 DMODEL=64 NHEAD=4 TOKDIM=64 REF_B4=8 REF_B33=4 \
#     PY=/usr/bin/python3 bash bench/gpu_embed.sh
set -euo pipefail
CELLS4=${CELLS4:-20000}
CELLS33=${CELLS33:-3000}
W=${W:-/tmp/uce-gpu-bench}
DEVICE=${DEVICE:-cuda}
DMODEL=${DMODEL:-1280}
NHEAD=${NHEAD:-20}
TOKDIM=${TOKDIM:-5120}
BUILD=${BUILD:-}
PY=${PY:-python3}
mkdir -p "$W"
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; fi
if [ -z "$BUILD" ]; then
  BUILD=build-gpu
  TORCH_PREFIX=$($PY -c 'import torch;print(torch.utils.cmake_prefix_path)')
  t0=$(date +%s)
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUCE_BUILD_GUI=OFF -DUCE_BUILD_TESTS=OFF \
    -DUCE_BUILD_FUZZERS=OFF -DUCE_BUILD_DEMO=OFF -DUCE_BUILD_BENCH=ON \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" >"$W/cmake.log" 2>&1 || { tail -30 "$W/cmake.log"; exit 1; }
  cmake --build "$BUILD" --target uce bench_cosine >"$W/build.log" 2>&1 || { tail -40 "$W/build.log"; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s"
fi
UCE=$BUILD/app/uce
$UCE synth --out "$W/data" --cells "$CELLS4" --genes 20000 --token-dim "$TOKDIM" --single-dataset --seed 1 --quiet
$UCE synth --out "$W/data33" --cells "$CELLS33" --genes 20000 --token-dim "$TOKDIM" --single-dataset --seed 1 --no-assets --quiet
DATA4=$(ls "$W"/data/*.h5ad | head -1)
DATA33=$(ls "$W"/data33/*.h5ad | head -1)
for L in 4 33; do
  $UCE init-model --assets "$W/data/assets" --out "$W/m$L.torch" --layers "$L" --d-model "$DMODEL" \
    --nhead "$NHEAD" --d-hid $((4 * DMODEL)) --output-dim "$DMODEL" --seed 1 >/dev/null
done
run() {  # label model data precision batch
  local out="$W/out_$1.h5ad"
  rm -f "$out" "$out.uce-resume"
  echo "ours $1:"
  $UCE embed --adata "$3" --out "$out" --assets "$W/data/assets" --model "$2" --species human \
    --device "$DEVICE" --precision "$4" --batch-size "$5" --quiet | tee "$W/$1.log" | grep -E "cells/s"
}
echo "== 4 layers, $CELLS4 cells"
run l4_fp32 "$W/m4.torch" "$DATA4" fp32 64
run l4_bf16 "$W/m4.torch" "$DATA4" bf16 256
"$BUILD"/bench/bench_cosine "$W/out_l4_fp32.h5ad" "$W/out_l4_bf16.h5ad" X_uce
$PY bench/gpu_reference.py "$W/m4.torch" "$NHEAD" "${REF_B4:-100}" 256 "$((CELLS4 / 5))" "$DEVICE"
echo "== 33 layers, $CELLS33 cells"
run l33_fp32 "$W/m33.torch" "$DATA33" fp32 16
run l33_bf16 "$W/m33.torch" "$DATA33" bf16 64
"$BUILD"/bench/bench_cosine "$W/out_l33_fp32.h5ad" "$W/out_l33_bf16.h5ad" X_uce
$PY bench/gpu_reference.py "$W/m33.torch" "$NHEAD" "${REF_B33:-25}" 64 "$((CELLS33 / 5))" "$DEVICE"
