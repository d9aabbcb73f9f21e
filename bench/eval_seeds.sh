#!/usr/bin/env bash
# Issue 4: cell-type ASW and batch ASW of models over several sentence seeds (session 9 found
# that one seed's batch ASW moves as much as the gap between models). Embeds the held-out human
# heart and mouse lung of the demo recipe's world (rebuilt if missing: the same seed, the same
# cells) with each model at `uce embed --seed S` for S in SEEDS, scores each with
# bench/eval_embeddings.py and prints each score's mean and standard deviation over the seeds.
# usage: bash bench/eval_seeds.sh LABEL=MODEL.torch [LABEL2=MODEL2.torch ...]
#   env: SEEDS ("0 1 2 3 4"), NHEAD (4), UCE (build/app/uce), W (the world), OUTDIR, THREADS (2)
set -euo pipefail
UCE=${UCE:-build/app/uce}
W=${W:-/tmp/uce-demo-world-tg80}
SEEDS=${SEEDS:-0 1 2 3 4}
NHEAD=${NHEAD:-4}
THREADS=${THREADS:-2}
OUTDIR=${OUTDIR:-/tmp/uce-eval-seeds}
PY=${PY:-/usr/bin/python3}
[ -d "$W" ] || "$UCE" synth --out "$W" --cells 18000 --genes 2000 --seed 7 --type-genes 80 \
  --gene-positions resources/human_gene_positions.csv --quiet >/dev/null
mkdir -p "$OUTDIR"
for spec in "$@"; do
  label=${spec%%=*}
  model=${spec#*=}
  for s in $SEEDS; do
    pairs=()
    for ds in human_heart mouse_lung; do
      out=$OUTDIR/${label}_${ds}_s$s.h5ad
      [ -f "$out" ] || "$UCE" embed --adata "$W/$ds.h5ad" --out "$out" --assets "$W/assets" --model "$model" \
        --species "${ds%%_*}" --nhead "$NHEAD" --sample-size 1024 --seed "$s" --threads "$THREADS" --quiet >/dev/null
      pairs+=("$label=$out")
    done
    (IFS=,; "$PY" bench/eval_embeddings.py "$OUTDIR/${label}_s$s.json" "${pairs[*]}" >/dev/null)
  done
done
"$PY" - "$OUTDIR" "$SEEDS" "$@" <<'PYEOF'
import json, sys
import numpy as np
outdir, seeds, specs = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
def ms(x):
    return f"{x.mean():+.3f} ({x.std(ddof=1) if len(x) > 1 else 0:.3f})"


print(f"mean (sd) over seeds {' '.join(seeds)}; PCA of log-normalised counts as computed with the first model")
print(f"{'model':14s} {'dataset':12s} {'cell-type ASW':>15s} {'batch ASW':>15s} {'shuffled donors':>15s} {'same condition':>15s}")
pca_done = set()
for spec in specs:
    label = spec.split("=", 1)[0]
    runs = [json.load(open(f"{outdir}/{label}_s{s}.json"))["datasets"] for s in seeds]
    for ds in runs[0]:
        rows = [(label, [r[ds][label] for r in runs])]
        if ds not in pca_done:
            rows.append(("pca", [runs[0][ds]["pca"]]))
            pca_done.add(ds)
        for name, vals in rows:
            cols = [np.array([v[k] for v in vals]) for k in ("type_asw", "batch_asw")]
            shuf = np.array([v.get("batch_asw_shuffled", np.nan) for v in vals])
            cond = np.array([v.get("batch_asw_condition", np.nan) for v in vals])
            print(f"{name:14s} {ds:12s} {ms(cols[0]):>15s} {ms(cols[1]):>15s} {ms(shuf):>15s} {ms(cond):>15s}")
PYEOF
