"""Runs umap-learn (Debian's package `umap-learn`) on the data and kNN graph bench_analysis_umap wrote.

usage: /usr/bin/python3 umap_learn_run.py DIR DIMS EPOCHS INIT [SEED]
  DIR   holds data.f32 [n, dim], knn_idx.i32 and knn_dist.f32 [n, k] (self first, as umap-learn's
        own kNN is) and shape.txt "n dim k", as `bench_analysis_umap --export DIR` writes them.
  INIT  spectral (umap-learn's default) or random (what ours falls back to on a disconnected graph).
  SEED  optional: umap-learn then runs its optimisation on one thread (its documented behaviour
        with random_state); without it, it uses every thread numba is given (NUMBA_NUM_THREADS).
Writes DIR/umaplearn_<INIT>.f32 [n, DIMS] and prints "umaplearn_seconds S": the fit alone (after
a small warm-up fit, so numba's one-off JIT compilation is not counted), the fastest of REPEATS
fits (environment, default 3; its times vary by up to 2x run to run here), each time listed.
"""
import os
import sys
import time
import warnings

import numpy as np


def main():
    d, dims, epochs, init = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else None
    n, dim, k = (int(v) for v in open(os.path.join(d, "shape.txt")).read().split())
    x = np.fromfile(os.path.join(d, "data.f32"), dtype=np.float32).reshape(n, dim)
    idx = np.fromfile(os.path.join(d, "knn_idx.i32"), dtype=np.int32).reshape(n, k).astype(np.int64)
    dist = np.fromfile(os.path.join(d, "knn_dist.f32"), dtype=np.float32).reshape(n, k)
    import numba
    import umap
    import umap.umap_ as impl

    warnings.filterwarnings("ignore")
    # umap-learn 0.5.3 takes a precomputed kNN only together with its own NNDescent index, so the
    # kNN step inside UMAP.fit is replaced by one that hands over the given graph; everything
    # after it (fuzzy graph, initialisation, optimisation) is umap-learn's own fit.
    given = {}

    def precomputed(data, *args, **kwargs):
        i, dd = given["knn"]
        assert i.shape[0] == data.shape[0], "kNN graph and data differ in cells"
        return i, dd, None

    impl.nearest_neighbors = precomputed
    kw = dict(n_components=dims, n_neighbors=k, min_dist=0.5, spread=1.0, n_epochs=epochs, init=init,
              metric="euclidean", random_state=seed, verbose=False)
    # Warm-up: the same code path (umap-learn's large-data path needs >= 4,096 cells) on the first
    # 4,096 cells with their exact kNN, so numba's JIT compilation is not in the timed fit.
    w = x[:4096].astype(np.float64)
    sq = (w * w).sum(1)
    wd = np.maximum(sq[:, None] + sq[None, :] - 2 * w @ w.T, 0)
    wi = np.argsort(wd, axis=1)[:, :k]
    given["knn"] = (wi.astype(np.int64), np.sqrt(np.take_along_axis(wd, wi, axis=1)).astype(np.float32))
    umap.UMAP(**dict(kw, n_epochs=5)).fit(x[:4096])

    given["knn"] = (idx, dist)
    times = []
    for _ in range(int(os.environ.get("REPEATS", "3"))):
        t0 = time.perf_counter()
        emb = umap.UMAP(**kw).fit_transform(x)
        times.append(time.perf_counter() - t0)
    secs = min(times)
    print("umaplearn_all_seconds " + " ".join(f"{t:.3f}" for t in times))
    emb.astype(np.float32).tofile(os.path.join(d, f"umaplearn_{init}.f32"))
    print(f"umaplearn_version {umap.__version__}")
    print(f"umaplearn_threads {numba.get_num_threads()}")
    print(f"umaplearn_seconds {secs:.3f}")


if __name__ == "__main__":
    main()
