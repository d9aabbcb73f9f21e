#!/usr/bin/env bash
# What a background checkpoint costs the training thread, for two `uce` builds: UCE_A (the
# baseline, for example a build of an older commit) and UCE_B (default build/app/uce). Each
# trains the same traced run (UCE_TRAIN_TRACE=1: 4 layers, d_model 512, batch 16, a checkpoint
# every EVERY steps) ROUNDS times, alternating, and the script prints the median of the
# "copied and serialised ... on the training thread" times of every background checkpoint, the
# median write time, and A / B (> 1: B stalls the training less).
# usage: UCE_A=/tmp/uce_old bash bench/checkpoint_stall.sh   env: UCE_B, W (/tmp/uce-checkpoint-stall),
#   STEPS (40), EVERY (5), ROUNDS (2), LAYERS (4), DMODEL (512), BATCH (16), THREADS (2)
set -euo pipefail
: "${UCE_A:?UCE_A: the baseline uce binary}"
UCE_B=${UCE_B:-build/app/uce}
W=${W:-/tmp/uce-checkpoint-stall}
STEPS=${STEPS:-40} EVERY=${EVERY:-5} ROUNDS=${ROUNDS:-2} LAYERS=${LAYERS:-4} DMODEL=${DMODEL:-512}
BATCH=${BATCH:-16} THREADS=${THREADS:-2}
mkdir -p "$W"
if [ ! -f "$W/data/corpus.csv" ]; then
  "$UCE_B" synth --out "$W/data" --cells 6000 --genes 2000 --token-dim 64 --species human --tissues kidney,lung \
    --gene-positions resources/human_gene_positions.csv --seed 3 --quiet >/dev/null
  { echo "path,species"; for f in "$W"/data/*.h5ad; do echo "$(basename "$f"),human"; done; } >"$W/data/corpus.csv"
fi
run() {  # label binary
  rm -rf "${W:?}/run-$1"
  UCE_TRAIN_TRACE=1 "$2" train --corpus "$W/data/corpus.csv" --assets "$W/data/assets" --out "$W/run-$1" \
    --nlayers "$LAYERS" --d-model "$DMODEL" --nhead 4 --sample-size 128 --batch-size "$BATCH" --max-steps "$STEPS" \
    --warmup 10 --lr 1e-3 --seed 1 --val-fraction 0 --checkpoint-every "$EVERY" --threads "$THREADS" --quiet \
    2>>"$W/$1.trace" >/dev/null
}
rm -f "$W"/A.trace "$W"/B.trace
for r in $(seq "$ROUNDS"); do
  run A "$UCE_A"
  run B "$UCE_B"
  echo "round $r done"
done
/usr/bin/python3 - "$W" <<'PY'
import re, statistics, sys
w = sys.argv[1]
def figures(name):
    text = open(f"{w}/{name}.trace").read()
    stall = [float(x) for x in re.findall(r"copied and serialised ([0-9.]+) ms on the training thread", text)]
    write = [float(x) for x in re.findall(r"written ([0-9.]+) ms in the background", text)]
    return stall, write
a, b = figures("A"), figures("B")
for name, (stall, write) in (("A (baseline)", a), ("B", b)):
    print(f"{name}: {len(stall)} background checkpoints, on the training thread median {statistics.median(stall):.1f} ms "
          f"(min {min(stall):.1f}, max {max(stall):.1f}); written in the background median {statistics.median(write):.1f} ms")
print(f"A / B, training-thread cost a checkpoint: {statistics.median(a[0]) / statistics.median(b[0]):.2f}")
PY
