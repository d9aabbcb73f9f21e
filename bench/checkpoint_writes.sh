#!/usr/bin/env bash
# Checkpoints written on the training thread (`uce train --sync-checkpoints`, the baseline) against
# the default, which writes them on a background thread while training goes on: bench/train_ab.sh
# with a checkpoint every EVERY steps (default 5) at a shape whose checkpoint is large enough to
# cost something (4 layers, d_model 512: about 150 MB of weights and AdamW state a checkpoint).
# sync / background > 1: the background writes are faster. Both runs write the same checkpoints.
# usage: bash bench/checkpoint_writes.sh   env: as bench/train_ab.sh (W: /tmp/uce-checkpoint-writes), EVERY
set -euo pipefail
EVERY=${EVERY:-5}
W=${W:-/tmp/uce-checkpoint-writes} LAYERS=${LAYERS:-4} DMODEL=${DMODEL:-512} STEPS=${STEPS:-40} BATCH=${BATCH:-16} \
  A_NAME=sync B_NAME=background A_FLAGS="--checkpoint-every $EVERY --sync-checkpoints" \
  B_FLAGS="--checkpoint-every $EVERY" exec bash "$(dirname "$0")/train_ab.sh"
