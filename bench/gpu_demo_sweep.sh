#!/usr/bin/env bash
# Demo-model recipe search on a GPU (issue 4): trains the demo model's shape (2 layers,
# d_model 64, the bundled model's recipe) on the demo world's 4 corpus datasets for far more
# steps than 15 CPU minutes allow, to see where cell-type separation and batch mixing go with
# training length and the encoder's learning-rate scale, embeds the 2
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
LIMIT=${SWEEP_SECONDS:-420}
THREADS=$(nproc)
rm -rf "$DEST"
mkdir -p "$W" "$DEST"
t0=$(date +%s)
[ -d "$W/world" ] || "$UCE" synth --out "$W/world" --cells 18000 --genes 2000 --seed 7 --type-genes 80 \
  --gene-positions resources/human_gene_positions.csv --quiet >/dev/null || exit 1
printf 'path,species\nworld/human_kidney.h5ad,human\nworld/human_lung.h5ad,human\nworld/mouse_kidney.h5ad,mouse\nworld/mouse_heart.h5ad,mouse\n' \
  >"$W/corpus.csv"
SHAPE=(--nlayers 2 --d-model 64 --nhead 4 --d-hid 128 --output-dim 64)
RECIPE=(--sample-size 128 --batch-size 32 --lr 2e-3 --warmup 100 --n-loss 128 --head-hidden 256,128,64
        --downsample-to 1000 --no-dropout)
embed() {  # label model
  for ds in human_heart mouse_lung; do
    "$UCE" embed --adata "$W/world/$ds.h5ad" --out "$W/${1}_$ds.h5ad" --assets "$W/world/assets" --model "$2" \
      --species "${ds%%_*}" --nhead 4 --sample-size 1024 --device "$DEVICE" --precision fp32 --quiet >/dev/null &&
      "$BUILD"/bench/bench_obsm_npy "$W/${1}_$ds.h5ad" "$DEST/${1}_$ds.npy" >/dev/null || echo "embed $1 $ds FAILED"
  done
}
"$UCE" init-model --assets "$W/world/assets" --out "$W/random.torch" --layers 2 --d-model 64 --nhead 4 --d-hid 128 \
  --output-dim 64 --head-hidden 256,128,64 --seed 1 >/dev/null && embed random "$W/random.torch"
run() {  # label steps args...
  local label=$1 steps=$(( $2 / ${STEP_DIV:-1} ))
  shift 2
  if [ $(( $(date +%s) - t0 )) -gt "$LIMIT" ]; then echo "[$label: skipped, sweep time limit]"; return; fi
  local t=$(date +%s)
  rm -rf "$W/$label"
  if ! "$UCE" train --corpus "$W/corpus.csv" --assets "$W/world/assets" --out "$W/$label" "${SHAPE[@]}" \
      "${RECIPE[@]}" --validate-every 1000 --val-cells 256 --checkpoint-every 100000 \
      --threads "$THREADS" --seed 1 --device "$DEVICE" --max-steps "$steps" --quiet "$@" >"$W/$label.log" 2>&1; then
    echo "[$label: train FAILED]"; tail -3 "$W/$label.log"; return
  fi
  grep val_ "$W/$label/metrics.jsonl" >"$DEST/$label.val.jsonl"
  embed "$label" "$W/$label/model.torch"
  echo "[$label: $steps steps $* : $(( $(date +%s) - t )) s; last validation: $(tail -1 "$DEST/$label.val.jsonl" | cut -c1-160)]"
}
run s6900 6900 --encoder-lr-scale 0.1      # the bundled model's recipe (812 s on 2 CPU cores)
run s20k 20000 --encoder-lr-scale 0.1
run s20k_e05 20000 --encoder-lr-scale 0.05
run s50k 50000 --encoder-lr-scale 0.1
tar -C "$DEST" -czf "${OUT:-/tmp}/sweep.tgz" .
echo "sweep: $(( $(date +%s) - t0 )) s; $(ls "$DEST" | wc -l) files packed into ${OUT:-/tmp}/sweep.tgz"
