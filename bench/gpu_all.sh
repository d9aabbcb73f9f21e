#!/usr/bin/env bash
# Everything this project measures on a GPU, in one device call: builds `uce` against the
# machine's PyTorch LibTorch (CUDA), then runs bench/gpu_embed.sh, bench/gpu_train.sh and
# bench/gpu_train_profile.py (TRAIN_PROFILE=none skips it; it also runs alone, without a build).
# Logs go to $OUT (the device tool's output folder) when set.
# usage (device machine, repository root): bash bench/gpu_all.sh
set -uo pipefail
PY=${PY:-python3}
BUILD=${BUILD:-build-gpu}
LOG=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
t0=$(date +%s)
UCE=$BUILD/app/uce TARGETS="uce bench_cosine bench_obsm_npy" source bench/gpu_build.sh
[ -f "$LOG/build.log" ] && grep -c "warning:" "$LOG/build.log" | sed 's/^/build warnings: /'
echo "build: $(( $(date +%s) - t0 )) s"
"$BUILD"/app/uce --version
# CUDA (fused attention of LibTorch >= 2) against the CPU, fp32, on a small model.
if [ -z "${SKIP_PARITY:-}" ]; then
W=/tmp/uce-gpu-parity; mkdir -p $W
"$BUILD"/app/uce synth --out $W/d --cells 400 --genes 3000 --token-dim 128 --single-dataset --seed 5 --quiet >/dev/null
"$BUILD"/app/uce init-model --assets $W/d/assets --out $W/m.torch --layers 3 --d-model 256 --nhead 8 --d-hid 512 --seed 2 >/dev/null
for dev in cpu cuda; do
  "$BUILD"/app/uce embed --adata $W/d/human_kidney.h5ad --out $W/$dev.h5ad --assets $W/d/assets --model $W/m.torch \
    --species human --nhead 8 --device $dev --batch-size 32 --quiet >/dev/null || echo "parity embed on $dev FAILED"
done
"$BUILD"/bench/bench_cosine $W/cpu.h5ad $W/cuda.h5ad X_uce | sed 's/^/cuda fp32 vs cpu fp32: /'
fi
RUNS=${EMBED_RUNS:-all} BUILD=$BUILD PY=$PY SMALL33=600 BIG33=3000 BIG4=20000 bash bench/gpu_embed.sh 2>&1 | tee "$LOG/embed.log"
[ "${TRAIN_RUNS:-all}" = none ] || RUNS=${TRAIN_RUNS:-all} BUILD=$BUILD PY=$PY CELLS=4000 STEPS=12 bash bench/gpu_train.sh 2>&1 | tee "$LOG/train.log"
# Where a training step's time goes (Python only, no build; about a minute).
[ "${TRAIN_PROFILE:-1}" = none ] || $PY bench/gpu_train_profile.py 24 1075 2>&1 | tee "$LOG/train_profile.log"
echo "total: $(( $(date +%s) - t0 )) s"
