"""A two-type world for checking that a UCE training run can learn anything about the cell.

Writes an .h5ad whose cells are of type A or B: type A expresses only genes of one random half
of the source file's genes, type B only the other half (each cell GENES_PER_CELL genes, counts
geometric with mean 2.5). Knowing the type scores the masked-gene objective at AUROC ~0.78 with
uniform negatives; nothing else does better than 0.5, since every gene is equally common. A run
whose validation AUROC stays at 0.5 has collapsed its cell embeddings (bench/RESULTS.md,
session 7 of issue 4). obs: cell_type (A/B), batch.

usage: /usr/bin/python3 bench/two_type_world.py SOURCE.h5ad OUT.h5ad [CELLS=3000] [GENES_PER_CELL=200] [SEED=0]
       SOURCE: a `uce synth` file (its var_names match the asset bundle's genes)
"""
import sys

import anndata as ad
import numpy as np
import scipy.sparse as sp


def main():
    src, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    k = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    genes = np.array(ad.read_h5ad(src, backed="r").var_names)
    g = len(genes)
    if k > g // 2:
        sys.exit(f"{src}: {g} genes, too few for {k} genes a cell in one half")
    perm = rng.permutation(g)
    halves = [perm[: g // 2], perm[g // 2:]]
    types = rng.integers(0, 2, n)
    rows = np.repeat(np.arange(n), k)
    cols = np.concatenate([rng.choice(halves[t], k, replace=False) for t in types])
    vals = rng.geometric(0.4, n * k).astype(np.float32)
    a = ad.AnnData(X=sp.csr_matrix((vals, (rows, cols)), shape=(n, g)))
    a.var_names = genes
    a.obs_names = [f"cell{i}" for i in range(n)]
    a.obs["cell_type"] = np.array(["A", "B"])[types]
    a.obs["batch"] = "b0"
    a.write_h5ad(out)


if __name__ == "__main__":
    main()
