#!/usr/bin/env bash
# Scores the embeddings bench/gpu_demo_sweep.sh brought back (.npy per recipe and held-out
# dataset) against the same demo world rebuilt here (same seed, same cells), with
# bench/eval_embeddings.py (cell-type ASW, batch ASW, PCA baseline).
# usage: bash bench/eval_sweep.sh SWEEP_DIR [UCE=build/app/uce]
set -euo pipefail
D=$1
UCE=${2:-build/app/uce}
W=${W:-/tmp/uce-demo-world-tg80}
[ -d "$W" ] || "$UCE" synth --out "$W" --cells 18000 --genes 2000 --seed 7 --type-genes 80 \
  --gene-positions resources/human_gene_positions.csv --quiet >/dev/null
for f in "$D"/*_human_heart.npy; do
  label=$(basename "$f" _human_heart.npy)
  pairs="$label=$W/human_heart.h5ad@$f"
  [ -f "$D/${label}_mouse_lung.npy" ] && pairs="$pairs,$label=$W/mouse_lung.h5ad@$D/${label}_mouse_lung.npy"
  echo "== $label: $(tail -1 "$D/$label.val.jsonl" 2>/dev/null | grep -o '"val_auroc":[0-9.]*')"
  /usr/bin/python3 bench/eval_embeddings.py "$D/$label.eval.json" "$pairs" | grep -v "^  pca_\|cells)$" || true
  /usr/bin/python3 -c "
import numpy as np, sys
for ds in ('human_heart', 'mouse_lung'):
    try: x = np.load('$D/${label}_' + ds + '.npy')
    except OSError: continue
    x = x[~np.isnan(x).any(1)]; x = x / np.linalg.norm(x, axis=1, keepdims=True); m = x.mean(0)
    print(f'  {ds}: mean pairwise cosine {float(m @ m):.6f}')"
done
