#!/usr/bin/env bash
# Training with the transformer layers wholly in bf16 (`uce train --bf16-layers`) against fp32, on
# the CPU: bench/train_ab.sh with B = --bf16-layers, at the demo model's shape (4 layers,
# d_model 128) by default. fp32 / bf16 layers > 1: bf16 is faster. The CPU's speed in bf16
# depends on its instructions (AVX512-BF16 or AMX: fast; without them emulated, possibly slower); the
# option is meant for GPUs, where bench/gpu_train.sh's l33_eq_bf16 and l4_bf16 runs measure it.
# usage: bash bench/bf16_layers.sh   env: as bench/train_ab.sh (W: /tmp/uce-bf16-layers)
set -euo pipefail
W=${W:-/tmp/uce-bf16-layers} LAYERS=${LAYERS:-4} DMODEL=${DMODEL:-128} STEPS=${STEPS:-100} A_NAME=fp32 \
  B_NAME="bf16 layers" B_FLAGS=--bf16-layers exec bash "$(dirname "$0")/train_ab.sh"
