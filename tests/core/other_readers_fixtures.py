"""Writes the inputs of test_other_readers into OUTDIR, and expected.json with what a Python
user would get from them (dense cells x genes values, names), for the C++ readers to match.

  10x.h5          CellRanger 3 layout, one "Antibody Capture" feature, repeated gene symbols
  mtx_v3/         matrix.mtx + features.tsv (3 columns) + barcodes.tsv, plain text
  mtx_v3_gz/      the same gzipped, with an "Antibody Capture" row
  mtx_v2/         matrix.mtx (real) + genes.tsv (2 columns) + barcodes.tsv
  cells.csv       pandas to_csv, cells as rows, index named "cell"
  genes.tsv.gz    genes as rows, tab separated, gzipped
  rstyle.csv      R write.table: header without the corner cell, quoted names
"""
import gzip
import json
import os
import shutil
import sys

import anndata.utils
import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

out = sys.argv[1]
rng = np.random.default_rng(7)
expected = {}


def counts(genes, cells, density=0.3):
    m = sp.random(genes, cells, density=density, format="csc", random_state=rng,
                  data_rvs=lambda n: rng.integers(1, 30, n))
    return m.astype(np.int32)


# ---- 10x HDF5 (CellRanger 3) ---------------------------------------------------------------
n_cells, n_feat = 40, 25
ab = 11  # the antibody feature
names = [f"GENE{i}" for i in range(n_feat)]
names[3] = names[8] = names[15] = "TP53"  # repeated symbols, as in real 10x references
names[ab] = "CD3_TotalSeqB"
ids = [f"ENSG{i:011d}" for i in range(n_feat)]
types = ["Gene Expression"] * n_feat
types[ab] = "Antibody Capture"
m = counts(n_feat, n_cells)  # features x cells, CSC = compressed by cell
m.sort_indices()
barcodes = [f"AAACCTGAG{i:04d}-1" for i in range(n_cells)]
with h5py.File(os.path.join(out, "10x.h5"), "w") as f:
    g = f.create_group("matrix")
    g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
    g.create_dataset("data", data=m.data.astype(np.int32), compression="gzip")
    g.create_dataset("indices", data=m.indices.astype(np.int64), compression="gzip")
    g.create_dataset("indptr", data=m.indptr.astype(np.int64))
    g.create_dataset("shape", data=np.array([n_feat, n_cells], dtype=np.int32))
    ft = g.create_group("features")
    ft.create_dataset("id", data=np.array(ids, dtype="S"))
    ft.create_dataset("name", data=np.array(names, dtype="S"))
    ft.create_dataset("feature_type", data=np.array(types, dtype="S"))
    ft.create_dataset("genome", data=np.array(["GRCh38"] * n_feat, dtype="S"))
    ft.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
    f.attrs["filetype"] = "matrix"
    f.attrs["version"] = 2
keep = [i for i in range(n_feat) if types[i] == "Gene Expression"]
dense = m.toarray().T[:, keep]  # cells x genes
expected["10x"] = {
    "obs": barcodes,
    "var": list(anndata.utils.make_index_unique(pd.Index([names[i] for i in keep]))),
    "gene_ids": [ids[i] for i in keep],
    "X": dense.tolist(),
}

# 10x file whose indices point past the features: readRows must refuse it.
with h5py.File(os.path.join(out, "10x_badindex.h5"), "w") as f:
    g = f.create_group("matrix")
    g.create_dataset("barcodes", data=np.array([b"A-1", b"B-1"]))
    g.create_dataset("data", data=np.array([1, 2, 3], dtype=np.int32))
    g.create_dataset("indices", data=np.array([0, 7, 1], dtype=np.int64))
    g.create_dataset("indptr", data=np.array([0, 1, 3], dtype=np.int64))
    g.create_dataset("shape", data=np.array([2, 2], dtype=np.int32))
    ft = g.create_group("features")
    ft.create_dataset("id", data=np.array([b"E1", b"E2"]))
    ft.create_dataset("name", data=np.array([b"G1", b"G2"]))
    ft.create_dataset("feature_type", data=np.array([b"Gene Expression"] * 2))


# ---- Matrix Market folders -----------------------------------------------------------------
def write_mtx_dir(name, genes_x_cells, gene_rows, barcodes, field="integer", gz=False, v2=False):
    d = os.path.join(out, name)
    os.makedirs(d)
    mtx = os.path.join(d, "matrix.mtx")
    scipy.io.mmwrite(mtx, sp.coo_matrix(genes_x_cells), field=field)
    feat = os.path.join(d, "genes.tsv" if v2 else "features.tsv")
    with open(feat, "w") as f:
        for row in gene_rows:
            f.write("\t".join(row) + "\n")
    with open(os.path.join(d, "barcodes.tsv"), "w") as f:
        f.write("\n".join(barcodes) + "\n")
    if gz:
        for p in (mtx, feat, os.path.join(d, "barcodes.tsv")):
            with open(p, "rb") as src, gzip.open(p + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.remove(p)


g3, c3 = 18, 30
m3 = counts(g3, c3).tocoo()
rows3 = [(f"ENSG{i:05d}", f"SYM{i}", "Gene Expression") for i in range(g3)]
bc3 = [f"CELL{i:03d}" for i in range(c3)]
write_mtx_dir("mtx_v3", m3, rows3, bc3)
expected["mtx_v3"] = {"obs": bc3, "var": [r[1] for r in rows3], "gene_ids": [r[0] for r in rows3],
                      "X": m3.toarray().T.tolist()}

rows3ab = list(rows3)
rows3ab[5] = ("CD4_ab", "CD4_TotalSeqB", "Antibody Capture")
write_mtx_dir("mtx_v3_gz", m3, rows3ab, bc3, gz=True)
keep3 = [i for i in range(g3) if rows3ab[i][2] == "Gene Expression"]
expected["mtx_v3_gz"] = {"obs": bc3, "var": [rows3ab[i][1] for i in keep3],
                         "gene_ids": [rows3ab[i][0] for i in keep3],
                         "X": m3.toarray().T[:, keep3].tolist()}

g2, c2 = 12, 9
m2 = (counts(g2, c2, 0.5).astype(np.float64) * 0.5).tocoo()  # real values, some fractional
rows2 = [(f"ENSMUSG{i:05d}", f"Gm{i}") for i in range(g2)]
bc2 = [f"BC{i}-1" for i in range(c2)]
write_mtx_dir("mtx_v2", m2, rows2, bc2, field="real", v2=True)
expected["mtx_v2"] = {"obs": bc2, "var": [r[1] for r in rows2], "gene_ids": [r[0] for r in rows2],
                      "X": m2.toarray().T.tolist()}

# ---- dense CSV / TSV -----------------------------------------------------------------------
cc, cg = 14, 10
vals = counts(cc, cg, 0.4).toarray().astype(np.float64)
vals[2, 3] = 2.5
df = pd.DataFrame(vals, index=pd.Index([f"c{i}" for i in range(cc)], name="cell"),
                  columns=[f"G{j}" for j in range(cg)])
df.to_csv(os.path.join(out, "cells.csv"))
expected["csv"] = {"obs": list(df.index), "var": list(df.columns), "X": vals.tolist()}

dfT = df.T
dfT.index.name = "gene"
dfT.to_csv(os.path.join(out, "genes.tsv.gz"), sep="\t")
expected["tsv_genes_as_rows"] = expected["csv"]

with open(os.path.join(out, "rstyle.csv"), "w") as f:  # R: write.table(m, sep=",")
    f.write(",".join(f'"{g}"' for g in df.columns) + "\n")
    for cell, row in df.iterrows():
        f.write(f'"{cell}",' + ",".join(repr(float(v)) for v in row) + "\n")
expected["rstyle"] = expected["csv"]

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f)
