"""How much UCE's masked-gene objective rewards knowing the cell's type, on labelled .h5ad
files: scores the loss genes of held-out cells (32 expressed vs 32 unexpressed genes a cell, as
`uce train --n-loss 64` draws them; uniform or detection-frequency negatives) with two oracles
built on the other half of the cells: the gene's overall detection rate (the "gene prior", which
needs no cell embedding at all) and its detection rate within the cell's type (what a perfect
cell embedding could add). A small gap means a model can reach a high masked-gene AUROC while
ignoring the cell (issue 4's collapsed demo-model candidates).

usage: /usr/bin/python3 bench/objective_signal.py [--label COLUMN (cell_type)] FILE.h5ad [FILE2.h5ad ...]
"""
import sys

import anndata
import numpy as np
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score


def main():
    rng = np.random.default_rng(0)
    args = sys.argv[1:]
    label = "cell_type"
    if args[:1] == ["--label"]:
        label, args = args[1], args[2:]
    for path in args:
        ad = anndata.read_h5ad(path)
        x = ad.X.tocsr() if sp.issparse(ad.X) else sp.csr_matrix(ad.X)
        det = (x > 0).astype(np.float32)
        types = ad.obs[label].astype(str).values
        n = det.shape[0]
        order = rng.permutation(n)  # files may be sorted by label
        train, test = order[: n // 2], order[n // 2:]
        prior = np.asarray(det[train].mean(0)).ravel()
        by_type = {t: np.asarray(det[train][types[train] == t].mean(0)).ravel() for t in np.unique(types[train])}
        for negatives in ("uniform", "frequency"):
            ys, s_prior, s_type = [], [], []
            for i in rng.choice(test, min(400, len(test)), replace=False):
                row = det[i].toarray().ravel()
                pos, neg = np.flatnonzero(row), np.flatnonzero(row == 0)
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
            y = np.concatenate(ys)
            print(f"{path}: {negatives} negatives: AUROC gene prior {roc_auc_score(y, np.concatenate(s_prior)):.4f}, "
                  f"cell type known {roc_auc_score(y, np.concatenate(s_type)):.4f} "
                  f"({float(det.sum(1).mean()):.0f} genes detected a cell)")


if __name__ == "__main__":
    main()
