"""Cell-type separation and batch mixing of embeddings on labelled datasets (the demo model's
proof, issue 4): for each .h5ad, the embeddings in obsm[KEY] for each KEY given, and PCA of
log-normalised counts as the baseline computed here.

usage: eval_embeddings.py OUT.json LABEL=FILE.h5ad[,LABEL2=FILE2.h5ad...] [OBSM_KEY (X_uce)]
  Each FILE's obsm[OBSM_KEY] is scored under LABEL (or, for LABEL=FILE.h5ad@EMB.npy, the rows
  of EMB.npy against FILE's cells, e.g. embeddings brought back from another machine), grouped by dataset (uns["synth"]["dataset"]
  or the file name); cells without an embedding (NaN rows) are left out.

Metrics (scIB-style, on the representation as it is):
  cell-type ASW: silhouette of cell_type labels, Euclidean; higher = types better separated.
  batch ASW: for each cell type present in >= 2 batches, the silhouette s_i of the batch
    labels among that type's cells; score = mean over types of mean(1 - |s_i|); higher = the
    donors (batches) better mixed within a type. A representation that ignores the batch
    scores near 1.
  batch ASW, same condition (when obs has "disease"): the same, within each (cell type,
    disease) group instead of each cell type, so only batches of one condition are compared.
    In the synthetic atlas every dataset's third batch is its diseased donors (uce synth:
    `disease` is set per batch), so the plain batch ASW also counts the disease signal against
    a model; this one measures the technical batch effect alone.
  batch ASW, donors shuffled: the batch ASW of the same embedding with the batch labels
    permuted within each cell type (mean over 10 seeded permutations): what this geometry would
    score if the donors were perfectly mixed. Batch ASW is not 1 for a perfectly mixed
    embedding: small groups and uneven distances inside a type give silhouettes away from 0
    by chance, and the less evenly distances spread inside a type, the lower this ceiling.
    Session 16: the bundled demo model's ceiling on the held-out heart (0.919) is below the
    random-init model's actual batch ASW (0.925, five sentence seeds). "excess" = batch ASW -
    this; 0 = indistinguishable from perfectly mixed donors, negative = donors told apart.
  batch dispersion ratio: for each cell type present in >= 2 batches, the mean distance of each
    batch's cells to their own batch's centroid, largest over smallest; mean over types. 1 =
    every donor's cells equally spread. Session 13 found the trained models' batch-ASW deficit
    here rather than in the batch centroids: a model that reads the cell's state spreads
    shallow (or deep) donors' cells more, and batch ASW counts that against it.
  batch classifier margin (when obs has "disease"): within each (cell type, disease) group of
    >= 30 cells from >= 2 batches, the 5-fold cross-validated accuracy of a logistic regression
    (standardised inputs, C 0.1) predicting the batch, minus the majority-batch share; mean over
    groups. 0 = the donor cannot be told from the embedding.
PCA baseline: counts normalised to 10,000 per cell, log1p, 50 components; both unscaled and
z-scored genes (scanpy's two usual recipes) are computed and the better of the two reported.
"""
import json
import sys

import anndata
import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_samples, silhouette_score


def type_asw(x, types):
    return float(silhouette_score(x, types, metric="euclidean"))


def batch_asw(x, types, batches):
    scores = []
    for t in np.unique(types):
        m = types == t
        if len(np.unique(batches[m])) < 2 or m.sum() < 10:
            continue
        s = silhouette_samples(x[m], batches[m], metric="euclidean")
        scores.append(float(np.mean(1 - np.abs(s))))
    return float(np.mean(scores))


def batch_asw_shuffled(x, types, batches, repeats=10):
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(repeats):
        shuffled = batches.copy()
        for t in np.unique(types):
            idx = np.flatnonzero(types == t)
            shuffled[idx] = batches[rng.permutation(idx)]
        scores.append(batch_asw(x, types, shuffled))
    return float(np.mean(scores))


def batch_dispersion_ratio(x, types, batches):
    ratios = []
    for t in np.unique(types):
        m = types == t
        spreads = []
        for b in np.unique(batches[m]):
            mb = m & (batches == b)
            if mb.sum() < 5:
                continue
            xb = x[mb]
            spreads.append(float(np.linalg.norm(xb - xb.mean(0), axis=1).mean()))
        if len(spreads) >= 2 and min(spreads) > 0:
            ratios.append(max(spreads) / min(spreads))
    return float(np.mean(ratios)) if ratios else float("nan")


def batch_classifier_margin(x, groups, batches):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    margins = []
    for g in np.unique(groups):
        m = groups == g
        labels, counts = np.unique(batches[m], return_counts=True)
        if m.sum() < 30 or len(labels) < 2 or counts.min() < 5:
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        acc = cross_val_score(clf, x[m], batches[m], cv=5).mean()
        margins.append(float(acc - counts.max() / m.sum()))
    return float(np.mean(margins)) if margins else float("nan")


def pca_reps(ad, keep):
    x = ad.X
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    x = x.astype(np.float64)[keep]
    lib = x.sum(1, keepdims=True)
    lib[lib == 0] = 1
    x = np.log1p(x / lib * 1e4)
    out = {"pca_log": PCA(50, random_state=0).fit_transform(x)}
    sd = x.std(0)
    sd[sd == 0] = 1
    z = np.clip((x - x.mean(0)) / sd, -10, 10)
    out["pca_log_scaled"] = PCA(50, random_state=0).fit_transform(z)
    return out


def dataset_name(ad, path):
    synth = ad.uns.get("synth")
    if isinstance(synth, dict) and "dataset" in synth:
        return str(synth["dataset"])
    return path


def main():
    out_path = sys.argv[1]
    pairs = [p.split("=", 1) for p in sys.argv[2].split(",")]
    obsm_key = sys.argv[3] if len(sys.argv) > 3 else "X_uce"
    datasets = {}
    for label, path in pairs:
        path, _, npy = path.partition("@")
        ad = anndata.read_h5ad(path)
        name = dataset_name(ad, path)
        rep = np.asarray(np.load(npy) if npy else ad.obsm[obsm_key], dtype=np.float64)
        keep = ~np.isnan(rep).any(1)
        types = np.asarray(ad.obs["cell_type"].astype(str))[keep]
        batches = np.asarray(ad.obs["batch"].astype(str))[keep]
        entry = datasets.setdefault(name, {"cells": int(keep.sum())})
        entry[label] = {"type_asw": type_asw(rep[keep], types), "batch_asw": batch_asw(rep[keep], types, batches),
                        "batch_asw_shuffled": batch_asw_shuffled(rep[keep], types, batches),
                        "batch_dispersion_ratio": batch_dispersion_ratio(rep[keep], types, batches)}
        groups = None
        if "disease" in ad.obs:
            groups = np.char.add(np.char.add(types.astype(str), "|"),
                                 np.asarray(ad.obs["disease"].astype(str))[keep].astype(str))
            entry[label]["batch_asw_condition"] = batch_asw(rep[keep], groups, batches)
            entry[label]["batch_classifier_margin"] = batch_classifier_margin(rep[keep], groups, batches)
        if "pca" not in entry:
            best = None
            for k, r in pca_reps(ad, keep).items():
                m = {"type_asw": type_asw(r, types), "batch_asw": batch_asw(r, types, batches),
                     "batch_asw_shuffled": batch_asw_shuffled(r, types, batches),
                     "batch_dispersion_ratio": batch_dispersion_ratio(r, types, batches), "recipe": k}
                if groups is not None:
                    m["batch_asw_condition"] = batch_asw(r, groups, batches)
                    m["batch_classifier_margin"] = batch_classifier_margin(r, groups, batches)
                entry.setdefault("pca_variants", {})[k] = m
                if best is None or m["type_asw"] > best["type_asw"]:
                    best = m
            entry["pca"] = best
    with open(out_path, "w") as f:
        json.dump({"datasets": datasets}, f, indent=1)
    for name, e in datasets.items():
        print(f"{name} ({e['cells']} cells)")
        for k, v in e.items():
            if isinstance(v, dict) and "type_asw" in v:
                cond = f"   same condition {v['batch_asw_condition']:.3f}" if "batch_asw_condition" in v else ""
                shuf = (f" (shuffled donors {v['batch_asw_shuffled']:.3f}, excess {v['batch_asw'] - v['batch_asw_shuffled']:+.3f})"
                        if "batch_asw_shuffled" in v else "")
                disp = f"   dispersion ratio {v['batch_dispersion_ratio']:.3f}" if "batch_dispersion_ratio" in v else ""
                clf = f"   batch classifier margin {v['batch_classifier_margin']:+.3f}" if "batch_classifier_margin" in v else ""
                print(f"  {k:16s} cell-type ASW {v['type_asw']:+.3f}   batch ASW {v['batch_asw']:.3f}{shuf}{cond}{disp}{clf}")


if __name__ == "__main__":
    main()
