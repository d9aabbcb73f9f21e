"""How much UCE's masked-gene objective rewards knowing the cell's type, on labelled .h5ad
files: scores the loss genes of held-out cells (32 expressed vs 32 unexpressed genes a cell, as
`uce train --n-loss 64` draws them; uniform or detection-frequency negatives) with two oracles
built on the other half of the cells: the gene's overall detection rate (the "gene prior", which
needs no cell embedding at all) and its detection rate within the cell's type (what a perfect
cell embedding could add). A small gap means a model can reach a high masked-gene AUROC while
ignoring the cell (issue 4's collapsed demo-model candidates).

Loss genes are drawn as `uce train` draws them: only genes detected in >= 10 cells of the file
(its --min-cells-per-gene default; the trainer ignores the others, so they are never negatives).
Until 2026-11-26 (session 6) this script drew negatives from all genes, including genes no cell
expresses, which made the gene prior look stronger and the type's gain smaller than in training.
A third oracle scores by the gene's rate within the cell's batch (donor), and --downsample-to N
first thins every deeper cell to ~N UMIs, as `uce train --downsample-to N` does.

usage: /usr/bin/python3 bench/objective_signal.py [--label COLUMN (cell_type)] [--downsample-to N]
       FILE.h5ad [FILE2.h5ad ...]
"""
import sys

import anndata
import numpy as np
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score


def main():
    rng = np.random.default_rng(0)
    args = sys.argv[1:]
    label, target = "cell_type", 0.0
    while args[:1] in (["--label"], ["--downsample-to"]):
        if args[0] == "--label":
            label = args[1]
        else:
            target = float(args[1])
        args = args[2:]
    for path in args:
        ad = anndata.read_h5ad(path)
        x = ad.X.tocsr() if sp.issparse(ad.X) else sp.csr_matrix(ad.X)
        if target > 0:  # binomial thinning of the deeper cells, as the trainer does
            x = x.astype(np.float64).tocsr()
            x.data = np.rint(x.data)
            lib = np.asarray(x.sum(1)).ravel()
            for i in np.flatnonzero(lib > target):
                a, b = x.indptr[i], x.indptr[i + 1]
                x.data[a:b] = rng.binomial(x.data[a:b].astype(np.int64), target / lib[i])
            x.eliminate_zeros()
        det = (x > 0).astype(np.float32)
        usable = np.asarray((ad.X > 0).sum(0)).ravel() >= 10
        types = ad.obs[label].astype(str).values
        n = det.shape[0]
        order = rng.permutation(n)  # files may be sorted by label
        train, test = order[: n // 2], order[n // 2:]
        prior = np.asarray(det[train].mean(0)).ravel()
        by_type = {t: np.asarray(det[train][types[train] == t].mean(0)).ravel() for t in np.unique(types[train])}
        batches = ad.obs["batch"].astype(str).values if "batch" in ad.obs else np.zeros(n, dtype=str)
        by_batch = {b: np.asarray(det[train][batches[train] == b].mean(0)).ravel() for b in np.unique(batches[train])}
        for negatives in ("uniform", "frequency"):
            ys, s_prior, s_type, s_batch = [], [], [], []
            for i in rng.choice(test, min(400, len(test)), replace=False):
                row = det[i].toarray().ravel()
                pos, neg = np.flatnonzero((row > 0) & usable), np.flatnonzero((row == 0) & usable)
                if len(pos) < 2:
                    continue
                w = None
                if negatives == "frequency":
                    w = prior[neg] + 1e-9
                    w = w / w.sum()
                p = rng.choice(pos, min(32, len(pos)), replace=False)
                q = rng.choice(neg, 32, replace=False, p=w)
                genes = np.concatenate([p, q])
                ys.append(np.r_[np.ones(len(p)), np.zeros(len(q))])
                s_prior.append(prior[genes])
                s_type.append(by_type.get(types[i], prior)[genes])
                s_batch.append(by_batch.get(batches[i], prior)[genes])
            y = np.concatenate(ys)
            print(f"{path}: {negatives} negatives: AUROC gene prior {roc_auc_score(y, np.concatenate(s_prior)):.4f}, "
                  f"batch known {roc_auc_score(y, np.concatenate(s_batch)):.4f}, "
                  f"cell type known {roc_auc_score(y, np.concatenate(s_type)):.4f} "
                  f"({float(det.sum(1).mean()):.0f} genes detected a cell)")


if __name__ == "__main__":
    main()
