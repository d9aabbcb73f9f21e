#!/usr/bin/env bash
# Demo-model recipe search on a GPU (issue 4): trains the demo model's shape (4 layers,
# d_model 128) on the demo world's 4 corpus datasets under several recipes, embeds the 2
# held-out datasets with each (and with a random-init model of the same shape), and writes
# the embeddings as .npy plus the validation metrics to $OUT/sweep. Score them where anndata
# and sklearn are installed (the device tool brings back only a few files, so everything is
# packed into one $OUT/sweep.tgz):
#   mkdir S && tar -C S -xzf sweep.tgz && bash bench/eval_sweep.sh S   (same world rebuilt locally)
# The chosen recipe is then run on 2 CPU cores by resources/demo_model/train_demo_model.sh.
# usage (device machine, repository root, after bench/gpu_all.sh built $BUILD):
#   BUILD=build-gpu SWEEP_SECONDS=200 bash bench/gpu_demo_sweep.sh
# CPU dry run: DEVICE=cpu BUILD=build STEP_DIV=100 OUT=/tmp/dry bash bench/gpu_demo_sweep.sh
set -uo pipefail
BUILD=${BUILD:-build-gpu}
UCE=$BUILD/app/uce
DEVICE=${DEVICE:-cuda}
W=${W:-/tmp/uce-demo-sweep}
DEST=$W/sweep
LIMIT=${SWEEP_SECONDS:-200}
THREADS=$(nproc)
rm -rf "$DEST"
mkdir -p "$W" "$DEST"
t0=$(date +%s)
[ -d "$W/world" ] || "$UCE" synth --out "$W/world" --cells 18000 --genes 2000 --seed 7 \
  --gene-positions resources/human_gene_positions.csv --quiet >/dev/null || exit 1
printf 'path,species\nworld/human_kidney.h5ad,human\nworld/human_lung.h5ad,human\nworld/mouse_kidney.h5ad,mouse\nworld/mouse_heart.h5ad,mouse\n' \
  >"$W/corpus.csv"
SHAPE=(--nlayers 4 --d-model 128 --nhead 4 --d-hid 256 --output-dim 128)
embed() {  # label model
  for ds in human_heart mouse_lung; do
    "$UCE" embed --adata "$W/world/$ds.h5ad" --out "$W/${1}_$ds.h5ad" --assets "$W/world/assets" --model "$2" \
      --species "${ds%%_*}" --nhead 4 --sample-size 256 --device "$DEVICE" --precision fp32 --quiet >/dev/null &&
      "$BUILD"/bench/bench_obsm_npy "$W/${1}_$ds.h5ad" "$DEST/${1}_$ds.npy" >/dev/null || echo "embed $1 $ds FAILED"
  done
}
"$UCE" init-model --assets "$W/world/assets" --out "$W/random.torch" --layers 4 --d-model 128 --nhead 4 --d-hid 256 \
  --output-dim 128 --seed 1 >/dev/null && embed random "$W/random.torch"
run() {  # label steps args...
  local label=$1 steps=$(( $2 / ${STEP_DIV:-1} ))
  shift 2
  if [ $(( $(date +%s) - t0 )) -gt "$LIMIT" ]; then echo "[$label: skipped, sweep time limit]"; return; fi
  local t=$(date +%s)
  rm -rf "$W/$label"
  if ! "$UCE" train --corpus "$W/corpus.csv" --assets "$W/world/assets" --out "$W/$label" "${SHAPE[@]}" \
      --sample-size 256 --batch-size 32 --warmup 20 --validate-every 100 --val-cells 256 --checkpoint-every 100000 \
      --threads "$THREADS" --seed 1 --device "$DEVICE" --max-steps "$steps" --quiet "$@" >"$W/$label.log" 2>&1; then
    echo "[$label: train FAILED]"; tail -3 "$W/$label.log"; return
  fi
  grep val_ "$W/$label/metrics.jsonl" >"$DEST/$label.val.jsonl"
  embed "$label" "$W/$label/model.torch"
  echo "[$label: $steps steps $* : $(( $(date +%s) - t )) s; last validation: $(tail -1 "$DEST/$label.val.jsonl" | cut -c1-160)]"
}
run u300 300 --lr 1e-3
run f300 300 --lr 1e-3 --negatives frequency
run f1500 1500 --lr 1e-3 --negatives frequency
run u1500 1500 --lr 1e-3
run f1000n256 1000 --lr 1e-3 --negatives frequency --n-loss 256
run f1500lr3 1500 --lr 3e-4 --negatives frequency
tar -C "$DEST" -czf "${OUT:-/tmp}/sweep.tgz" .
echo "sweep: $(( $(date +%s) - t0 )) s; $(ls "$DEST" | wc -l) files packed into ${OUT:-/tmp}/sweep.tgz"
