#!/usr/bin/env bash
# The UCE paper's Norn-cell workflow on the synthetic demo world: embed every dataset with the
# bundled demo model, train a Norn-vs-rest classifier on the human kidney, apply it to the
# mouse kidney and to the lungs and hearts of both species, and report precision / recall
# against the generator's truth (obs cell_type == "Norn cell") and the predicted cells' marker
# log fold changes (mean log1p(counts / library size * 1e4), predicted Norn vs the rest).
# Run from the repository root after a build:
#   bash bench/norn_transfer.sh            # MODEL=... UCE=... W=... to override
# The world is the demo model's own (`uce synth --seed 7 --genes 2000 --cells 18000 --type-genes 80`, 3,000
# cells per dataset); the model saw human kidney/lung and mouse kidney/heart in training,
# never their labels.
set -euo pipefail
UCE=${UCE:-build/app/uce}
MODEL=${MODEL:-resources/demo_model/model.torch}
W=${W:-/tmp/uce-norn-transfer}
PY=${PY:-/usr/bin/python3}
MIN_PROB=${MIN_PROB:-0.5}
THREADS=${THREADS:-2}
if [ ! -f "$MODEL" ]; then
  echo "norn_transfer: no embedding model at $MODEL; train the demo model first" \
       "(bash resources/demo_model/train_demo_model.sh) or set MODEL=path/to/model.torch" >&2
  exit 1
fi
[ -x "$UCE" ] || { echo "norn_transfer: $UCE not built (cmake --build build)" >&2; exit 1; }
mkdir -p "$W"
if [ ! -f "$W/world/human_kidney.h5ad" ]; then
  "$UCE" synth --out "$W/world" --cells 18000 --genes 2000 --seed 7 --gene-positions resources/human_gene_positions.csv --type-genes 80 \
    --quiet >/dev/null
fi
# The first is the training set. DATASETS="human_kidney mouse_kidney human_heart" for a shorter run.
read -r -a DATASETS <<<"${DATASETS:-human_kidney mouse_kidney human_heart human_lung mouse_lung mouse_heart}"
start=$(date +%s)
for ds in "${DATASETS[@]}"; do
  [ -f "$W/${ds}_uce.h5ad" ] && continue
  "$UCE" embed --adata "$W/world/$ds.h5ad" --out "$W/${ds}_uce.h5ad" --assets "$W/world/assets" --model "$MODEL" \
    --species "${ds%%_*}" --nhead 4 --sample-size 1024 --threads "$THREADS" --quiet >/dev/null
done
echo "embedding: $(( $(date +%s) - start )) s"

# Baseline representation with no model: log-normalised counts of the genes all datasets share
# (mouse symbols upper-cased onto human ones), PCA (50) fitted on the training dataset only.
"$PY" - "$W" "${DATASETS[@]}" <<'PYEOF'
import sys, numpy as np, anndata as ad, scipy.sparse as sp
from sklearn.decomposition import PCA
w, datasets = sys.argv[1], sys.argv[2:]
data = [ad.read_h5ad(f'{w}/{ds}_uce.h5ad') for ds in datasets]
shared = sorted(set.intersection(*[set(g.upper() for g in a.var_names) for a in data]))
def lognorm(a):
    X = sp.csr_matrix(a.X, dtype=np.float64)
    lib = np.asarray(X.sum(1)).ravel(); lib[lib == 0] = 1
    L = sp.diags(1e4 / lib) @ X; L.data = np.log1p(L.data)
    pos = {g.upper(): i for i, g in enumerate(a.var_names)}
    return np.asarray(L[:, [pos[g] for g in shared]].todense())
pca = PCA(50, random_state=0).fit(lognorm(data[0]))
for ds, a in zip(datasets, data):
    a.obsm['X_pca_shared'] = pca.transform(lognorm(a)).astype(np.float32)
    a.write_h5ad(f'{w}/{ds}_pca.h5ad')
print(f'PCA baseline: {len(shared)} shared genes, 50 components fitted on {datasets[0]}')
PYEOF

# Classifiers: Norn cell vs rest on the first dataset; name:input suffix:obsm key:extra options.
VARIANTS=("uce:uce:X_uce:" "uce_balanced:uce:X_uce:--class-weight balanced" "pca:pca:X_pca_shared:")
for v in "${VARIANTS[@]}"; do
  IFS=: read -r name suffix key extra <<<"$v"
  # shellcheck disable=SC2086
  "$UCE" classify train --adata "$W/${DATASETS[0]}_$suffix.h5ad" --label cell_type --positive "Norn cell" \
    --use-rep "$key" $extra --cv 5 --seed 0 --out "$W/norn_$name.json" --threads "$THREADS" | sed "s/^/$name: /" | grep -E "cross|fit:"
  for ds in "${DATASETS[@]}"; do
    "$UCE" classify apply --model "$W/norn_$name.json" --adata "$W/${ds}_$suffix.h5ad" --out "$W/${ds}_norn_$name.h5ad" \
      --min-prob "$MIN_PROB" >/dev/null
  done
done

"$PY" - "$W" "${DATASETS[@]}" <<'EOF'
import sys, numpy as np, anndata as ad, scipy.sparse as sp
w, datasets = sys.argv[1], sys.argv[2:]
markers = ['EPO', 'DCN', 'LPAR1', 'COL1A1', 'CXCL12', 'CFH', 'CXCL14']
for clf in ['norn_uce', 'norn_uce_balanced', 'norn_pca']:
    print(f'\nclassifier {clf} (trained on {datasets[0]}, Norn cell vs rest; * = the training cells themselves)')
    print(f"{'dataset':<13} {'cells':>5} {'Norn':>5} {'pred':>5} {'TP':>4} {'precision':>9} {'recall':>6}  "
          + ' '.join(f'{m:>6}' for m in markers))
    for ds in datasets:
        a = ad.read_h5ad(f'{w}/{ds}_{clf}.h5ad')
        truth = (a.obs['cell_type'].astype(str) == 'Norn cell').values
        pred = (a.obs['predicted_cell_type'].astype(str) == 'Norn cell').values
        tp = int((truth & pred).sum())
        prec = tp / pred.sum() if pred.sum() else float('nan')
        rec = tp / truth.sum() if truth.sum() else float('nan')
        X = sp.csr_matrix(a.X, dtype=np.float64)
        lib = np.asarray(X.sum(1)).ravel(); lib[lib == 0] = 1
        L = sp.diags(1e4 / lib) @ X; L.data = np.log1p(L.data)
        upper = [g.upper() for g in a.var_names]
        lfc = []
        for m in markers:
            if m not in upper or pred.sum() == 0 or (~pred).sum() == 0:
                lfc.append(float('nan')); continue
            col = np.asarray(L[:, upper.index(m)].todense()).ravel()
            lfc.append(col[pred].mean() - col[~pred].mean())
        name = ds + ('*' if ds == datasets[0] else '')
        print(f'{name:<13} {a.n_obs:>5} {int(truth.sum()):>5} {int(pred.sum()):>5} {tp:>4} {prec:>9.3f} {rec:>6.3f}  '
              + ' '.join(f'{v:>6.2f}' for v in lfc))
EOF
