#!/usr/bin/env bash
# Sourced by the device scripts (bench/gpu_scale.sh, gpu_batch.sh, gpu_pending.sh, gpu_all.sh):
# builds `uce` (and the other targets TARGETS names) into $BUILD against the machine's PyTorch
# LibTorch (CUDA) unless `uce` is there already. Needs PY, BUILD, UCE and LOG set; exits the
# calling script on a failed configure or build.
if [ ! -x "$UCE" ]; then
  TORCH_PREFIX=$($PY -c 'import torch;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUCE_BUILD_GUI=OFF -DUCE_BUILD_TESTS=OFF \
    -DUCE_BUILD_FUZZERS=OFF -DUCE_BUILD_DEMO=OFF -DUCE_BUILD_ANALYSIS=OFF -DUCE_BUILD_BENCH=ON -DUCE_WERROR=OFF \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" >"$LOG/cmake.log" 2>&1 || { tail -40 "$LOG/cmake.log"; exit 1; }
  cmake --build "$BUILD" --target ${TARGETS:-uce} >"$LOG/build.log" 2>&1 || { grep -E "error|Error" -A3 "$LOG/build.log" | head -60; exit 1; }
fi
