#!/usr/bin/env bash
# Training with equal-length sentences (`uce train --equal-lengths`) against the default
# (sentences as the release builds them, micro-batches padded to their longest sentence and an
# attention key mask), on the CPU: bench/train_ab.sh with B = --equal-lengths. default / equal
# lengths > 1: equal lengths are faster. On CUDA, bench/gpu_train.sh's l4_eq and l33_eq runs
# compare the same on a GPU, where the mask also decides the attention kernel.
# usage: bash bench/equal_lengths.sh   env: as bench/train_ab.sh (W: /tmp/uce-equal-lengths)
set -euo pipefail
W=${W:-/tmp/uce-equal-lengths} B_NAME="equal lengths" B_FLAGS=--equal-lengths exec bash "$(dirname "$0")/train_ab.sh"
