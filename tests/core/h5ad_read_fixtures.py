"""Inputs and anndata references for tests/core/test_h5ad_read.cpp.

usage: h5ad_read_fixtures.py OUT_DIR [EXISTING.h5ad NAME ...]

Writes .h5ad files in every encoding the reader supports (anndata 0.8 plus h5py rewrites for
int64 indices, the anndata 0.7 h5sparse attributes, gzip chunks) and broken files for the
error tests. For every readable file, also writes NAME.json: what anndata.read_h5ad reports
(matrices as dense rows, obs/var columns, obsm/varm arrays, uns scalars), which the C++ test
compares value by value. Existing files given as (path, name) pairs are described too.
"""
import json
import math
import os
import shutil
import sys
import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")
out = sys.argv[1]
rng = np.random.default_rng(7)


def finite_or_none(v):
    v = float(v)
    return None if math.isnan(v) else v


def describe_frame(df):
    cols = []
    for name in df.columns:
        s = df[name]
        c = {"name": str(name)}
        if isinstance(s.dtype, pd.CategoricalDtype):
            c.update(kind="categorical", categories=[str(x) for x in s.cat.categories],
                     codes=[int(x) for x in s.cat.codes], ordered=bool(s.cat.ordered))
        elif isinstance(s.dtype, pd.BooleanDtype):
            c.update(kind="bool", values=[bool(x) if x is not pd.NA else False for x in s],
                     missing=[x is pd.NA for x in s])
        elif isinstance(s.dtype, pd.api.extensions.ExtensionDtype) and s.dtype.kind in "iu":
            c.update(kind="int", values=[int(x) if x is not pd.NA else 0 for x in s],
                     missing=[x is pd.NA for x in s])
        elif s.dtype == bool:
            c.update(kind="bool", values=[bool(x) for x in s])
        elif s.dtype.kind in "iu":
            c.update(kind="int", values=[int(x) for x in s])
        elif s.dtype.kind == "f":
            c.update(kind="float", values=[finite_or_none(x) for x in s])
        else:
            c.update(kind="string", values=[str(x) for x in s])
        cols.append(c)
    return {"index": [str(x) for x in df.index], "columns": cols}


def dense(m):
    m = m.toarray() if sp.issparse(m) else np.asarray(m)
    return [[float(v) for v in row] for row in m]


def flatten_uns(d, prefix, into):
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict):
            flatten_uns(v, key + "/", into)
        elif isinstance(v, (bool, np.bool_)):
            into[key] = {"kind": "bool", "value": bool(v)}
        elif isinstance(v, (int, np.integer)):
            into[key] = {"kind": "int", "value": int(v)}
        elif isinstance(v, (float, np.floating)):
            into[key] = {"kind": "float", "value": float(v)}
        elif isinstance(v, str):
            into[key] = {"kind": "string", "value": v}


def describe(path, name):
    a = ad.read_h5ad(path)
    ref = {"shape": list(a.shape), "obs": describe_frame(a.obs), "var": describe_frame(a.var),
           "matrices": {"X": dense(a.X)}, "obsm": {}, "varm": {}, "uns": {}}
    for k, v in a.layers.items():
        ref["matrices"]["layers/" + k] = dense(v)
    if a.raw is not None:
        ref["matrices"]["raw/X"] = dense(a.raw.X)
        ref["raw_var"] = describe_frame(a.raw.var)
    for src, dst in ((a.obsm, "obsm"), (a.varm, "varm")):
        for k, v in src.items():
            if isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype.kind in "iuf":
                ref[dst][k] = dense(v)
    flatten_uns(dict(a.uns), "", ref["uns"])
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(ref, f)


# ---- an AnnData with every column / obsm / uns encoding ---------------------------------------
n, g = 60, 25
counts = rng.poisson(0.8, size=(n, g)).astype(np.float32)
counts[4, :] = 0  # an empty cell
raw_counts = rng.poisson(0.8, size=(n, g + 5)).astype(np.float32)
obs_names = [f"cell{i}" for i in range(n)]
labels = ["B cell", "T cell", "NK", "Monocyte"]
float_col = rng.normal(size=n)
float_col[7] = np.nan


def make(X):
    obs = pd.DataFrame({
        "str_col": [f"donor-{i % 7}" for i in range(n)],
        "int_col": np.arange(n, dtype=np.int64) * 3 - 20,
        "uint8_col": (np.arange(n) * 5 % 256).astype(np.uint8),
        "float_col": float_col,
        "float32_col": np.linspace(0, 1, n, dtype=np.float32),
        "bool_col": np.arange(n) % 3 == 0,
        "cell_type": pd.Categorical([labels[i % 4] for i in range(n)]),
        "severity": pd.Categorical([["low", "mid", "high"][i % 3] for i in range(n)],
                                   categories=["low", "mid", "high"], ordered=True),
        "cat_with_nan": pd.Categorical([None if i % 5 == 0 else labels[i % 2] for i in range(n)]),
        "leiden_int": pd.Categorical([i % 4 for i in range(n)]),
        "dose_float": pd.Categorical([[0.5, 1.0, 2.25][i % 3] for i in range(n)]),
        "nullable_int": pd.array([None if i % 4 == 0 else i for i in range(n)], dtype="Int64"),
        "nullable_bool": pd.array([None if i % 6 == 0 else i % 2 == 0 for i in range(n)],
                                  dtype="boolean"),
    }, index=obs_names)
    var = pd.DataFrame({"gene_ids": [f"ENSG{i:011d}" for i in range(g)],
                        "n_cells": (counts > 0).sum(axis=0).astype(np.int64),
                        "highly_variable": np.arange(g) % 2 == 0},
                       index=[f"GENE{i}" for i in range(g)])
    a = ad.AnnData(X=X, obs=obs, var=var, dtype=X.dtype)  # anndata 0.8 casts to float32 by default
    a.layers["counts"] = sp.csr_matrix(counts)
    a.obsm["X_pca"] = rng.normal(size=(n, 5)).astype(np.float32)
    a.obsm["X_umap"] = rng.normal(size=(n, 2))
    a.obsm["frame"] = pd.DataFrame({"x": np.arange(n)}, index=obs_names)  # skipped by the reader
    a.obsm["sparse"] = sp.random(n, 4, density=0.3, format="csr", random_state=1)  # skipped
    a.varm["PCs"] = rng.normal(size=(g, 3))
    a.uns["title"] = "PBMC test"
    a.uns["seed"] = 42
    a.uns["ratio"] = 0.25
    a.uns["flag"] = True
    a.uns["provenance"] = {"tool": "uce", "version": {"major": 1, "minor": 2.5}, "arr": np.arange(3)}
    a.uns["colors"] = np.array(["red", "blue"])  # an array: skipped
    raw = ad.AnnData(X=sp.csr_matrix(raw_counts), obs=pd.DataFrame(index=obs_names),
                     var=pd.DataFrame({"symbol": [f"RAW{i}" for i in range(g + 5)]},
                                      index=[f"RAWGENE{i}" for i in range(g + 5)]))
    a.raw = raw
    return a


values = {"float32": counts * 1.37, "float64": counts.astype(np.float64) * 1.37,
          "int32": counts.astype(np.int32) * 3, "int64": counts.astype(np.int64) * 5}
files = []
for storage in ("dense", "csr", "csc"):
    for dtype, v in values.items():
        X = v if storage == "dense" else (sp.csr_matrix(v) if storage == "csr" else sp.csc_matrix(v))
        name = f"{storage}_{dtype}"
        make(X).write_h5ad(os.path.join(out, name + ".h5ad"))
        files.append(name)

make(sp.csr_matrix(values["float32"])).write_h5ad(os.path.join(out, "csr_gzip.h5ad"),
                                                  compression="gzip")
files.append("csr_gzip")
make(sp.csc_matrix(values["float64"])).write_h5ad(os.path.join(out, "csc_gzip.h5ad"),
                                                  compression="gzip")
files.append("csc_gzip")
make(sp.csr_matrix(values["float32"])).write_h5ad(os.path.join(out, "csr_lzf.h5ad"),
                                                  compression="lzf")
files.append("csr_lzf")
make(values["int32"]).write_h5ad(os.path.join(out, "dense_lzf.h5ad"), compression="lzf")
files.append("dense_lzf")


def rewrite(path, key, fn):
    with h5py.File(path, "r+") as f:
        old = f[key][...]
        attrs = dict(f[key].attrs)
        del f[key]
        f.create_dataset(key, data=fn(old))
        for k, v in attrs.items():
            f[key].attrs[k] = v


# int64 indices and indptr, as scipy produces for large matrices.
for storage in ("csr", "csc"):
    name = f"{storage}_int64_indices"
    path = os.path.join(out, name + ".h5ad")
    shutil.copy(os.path.join(out, f"{storage}_float32.h5ad"), path)
    for part in ("indices", "indptr"):
        rewrite(path, "X/" + part, lambda a: a.astype(np.int64))
    files.append(name)

# anndata 0.7-era sparse groups: h5sparse_format / h5sparse_shape instead of encoding-type.
for storage in ("csr", "csc"):
    name = f"{storage}_h5sparse"
    path = os.path.join(out, name + ".h5ad")
    shutil.copy(os.path.join(out, f"{storage}_float32.h5ad"), path)
    with h5py.File(path, "r+") as f:
        shape = f["X"].attrs["shape"]
        for k in ("encoding-type", "encoding-version", "shape"):
            del f["X"].attrs[k]
        f["X"].attrs["h5sparse_format"] = storage
        f["X"].attrs["h5sparse_shape"] = shape
    files.append(name)

# A user block before the HDF5 data (h5py userblock_size): file offsets shift.
with h5py.File(os.path.join(out, "csr_float32.h5ad"), "r") as src, \
        h5py.File(os.path.join(out, "csr_userblock.h5ad"), "w", userblock_size=1024) as dst:
    for k in src.keys():
        src.copy(src[k], dst, k)
    for k, v in src.attrs.items():
        dst.attrs[k] = v
files.append("csr_userblock")

for name in files:
    describe(os.path.join(out, name + ".h5ad"), name)
for path, name in zip(sys.argv[2::2], sys.argv[3::2]):
    describe(path, name)

# Large enough that one block holds several read slices (read on two threads): per-row
# checksums instead of every value. Then a NaN and a bad index deep inside.
big = sp.random(1500, 1200, density=0.7, format="csr", random_state=3, dtype=np.float32)
big.data = np.ceil(big.data * 8) / 2  # halves: sums are exact in double
path = os.path.join(out, "csr_large.h5ad")
small_big = ad.AnnData(X=big, obs=pd.DataFrame(index=[f"c{i}" for i in range(big.shape[0])]),
                       var=pd.DataFrame(index=[f"G{i}" for i in range(big.shape[1])]))
small_big.write_h5ad(path)


def row_checksums(path, name):
    a = ad.read_h5ad(path)
    cols = np.arange(a.shape[1], dtype=np.float64)
    with open(os.path.join(out, name + ".json"), "w") as f:
        sums = np.asarray(a.X.sum(axis=1, dtype=np.float64)).ravel()
        json.dump({"nnz": int(a.X.nnz),
                   "row_sums": [float(x) for x in sums],
                   "row_weighted": [float(x) for x in a.X.astype(np.float64) @ cols]}, f)


row_checksums(path, "csr_large")
# The layouts the reader takes different ways: anndata's growable arrays in small chunks
# ("chunked": read through HDF5), h5py's default contiguous arrays, and large chunks as
# H5adWriter writes ("bigchunks": read with pread at the chunks' offsets; here 2^17 elements,
# so that a slice or a block boundary falls inside a chunk). Each intact and with a NaN / a bad
# index deep inside (read by the second and the first reading thread).
def relayout(src, name, chunk=None, holes=None):
    """Copy of src with X/data and X/indices contiguous (chunk None) or in chunks of `chunk`
    elements, leaving the chunks in holes ({"data": k, ...}) never written."""
    dst = os.path.join(out, name + ".h5ad")
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        for part in ("data", "indices"):
            a = f["X/" + part][...]
            del f["X/" + part]
            if chunk is None:
                f.create_dataset("X/" + part, data=a)
                continue
            d = f.create_dataset("X/" + part, shape=a.shape, dtype=a.dtype, chunks=(chunk,),
                                 maxshape=(None,), fillvalue=0)
            hole = (holes or {}).get(part)
            if hole is None:
                d[...] = a
            else:
                d[: hole * chunk] = a[: hole * chunk]
                d[(hole + 1) * chunk:] = a[(hole + 1) * chunk:]
                assert d.id.get_chunk_info_by_coord((hole * chunk,)).byte_offset is None
    return dst


contiguous = relayout(path, "csr_large_contiguous")
bigchunks = relayout(path, "csr_large_bigchunks", chunk=131072)
# Chunks never written (HDF5 gives the fill value 0 for them, as anndata reads): one of data,
# another of indices.
unwritten = relayout(path, "csr_large_unwritten", chunk=131072, holes={"data": 3, "indices": 5})
row_checksums(unwritten, "csr_large_unwritten")
for layout, src in (("chunked", path), ("contiguous", contiguous), ("bigchunks", bigchunks)):
    for name, key, pos, value in (("large_nan", "X/data", 131072 * 5 + 7, np.nan),
                                  ("large_bad_index", "X/indices", 131072 * 4 + 3, 5000)):
        dst = os.path.join(out, f"{name}_{layout}.h5ad")
        shutil.copy(src, dst)
        with h5py.File(dst, "r+") as f:
            f[key][pos] = value

# ---- broken files -----------------------------------------------------------------------------
def small(X=None, var_names=None, cells=12):
    X = sp.csr_matrix(rng.poisson(1.0, size=(cells, 8)).astype(np.float32)) if X is None else X
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"c{i}" for i in range(X.shape[0])]),
                   var=pd.DataFrame(index=var_names or [f"G{i}" for i in range(X.shape[1])]))
    return a


def broken(name, edit=None, adata=None, **write):
    path = os.path.join(out, name + ".h5ad")
    (adata if adata is not None else small()).write_h5ad(path, **write)
    if edit:
        with h5py.File(path, "r+") as f:
            edit(f)
    return path


with open(os.path.join(out, "not_hdf5.h5ad"), "w") as f:
    f.write("cell,GENE1,GENE2\nc1,0,3\n")
path = broken("whole")
data = open(path, "rb").read()
with open(os.path.join(out, "truncated.h5ad"), "wb") as f:
    f.write(data[: len(data) // 2])


def set_item(key, i, v):
    def edit(f):
        a = f[key][...]
        a[i] = v
        f[key][...] = a
    return edit


def replace(key, fn):
    def edit(f):
        a = fn(f[key][...])
        attrs = dict(f[key].attrs)
        del f[key]
        f.create_dataset(key, data=a)
        for k, v in attrs.items():
            f[key].attrs[k] = v
    return edit


broken("missing_x", lambda f: f.__delitem__("X"))
broken("obs_short", replace("obs/_index", lambda a: a[:-1]))
broken("var_short", replace("var/_index", lambda a: a[:-1]))
broken("indptr_decreasing", lambda f: set_item("X/indptr", 5, f["X/indptr"][6] + 2)(f))
broken("indptr_end_mismatch", lambda f: set_item("X/indptr", -1, f["X/indptr"][-1] - 1)(f))
broken("indptr_end_negative", set_item("X/indptr", -1, -5))
broken("indptr_start_nonzero", set_item("X/indptr", 0, 1))
broken("indptr_wrong_length", replace("X/indptr", lambda a: a[:-2]))
broken("indices_short", replace("X/indices", lambda a: a[:-1]))
broken("index_out_of_range", set_item("X/indices", 3, 8))
broken("index_negative", set_item("X/indices", 3, -1))
broken("nan_value", set_item("X/data", 3, np.nan))
broken("inf_value_dense", set_item("X", (2, 1), np.inf),
       adata=small(X=rng.poisson(1.0, size=(12, 8)).astype(np.float32)))
broken("csc_row_out_of_range", set_item("X/indices", 2, 12),
       adata=small(X=sp.csc_matrix(rng.poisson(1.0, size=(12, 8)).astype(np.float32))))
broken("zero_cells", adata=small(X=sp.csr_matrix((0, 8), dtype=np.float32)))
broken("zero_genes", adata=small(X=sp.csr_matrix((12, 0), dtype=np.float32)))
broken("duplicate_genes", adata=small(var_names=["G0", "G1", "G2", "G1", "G4", "G5", "G6", "G7"]))
broken("x_unknown_encoding", lambda f: f["X"].attrs.__setitem__("encoding-type", "awkward-array"))
broken("x_missing_data", lambda f: f["X"].__delitem__("data"))
# A layer that is broken must not stop X from being read.
def add_broken_layer(f):
    f.copy(f["X"], "layers/counts")
    a = f["layers/counts/indptr"][...]
    del f["layers/counts/indptr"]
    f.create_dataset("layers/counts/indptr", data=a[:-1])
broken("broken_layer", add_broken_layer)
broken("obs_column_bad_codes", set_item("obs/kind/codes", 0, 9),
       adata=(lambda a: (a.obs.__setitem__("kind", pd.Categorical(["x", "y"] * 6)), a)[1])(small()))
# An unknown column encoding is skipped, the rest of obs is read.
def add_unknown_column(f):
    grp = f["obs"].create_group("mystery")
    grp.attrs["encoding-type"] = "awkward-array"
    grp.create_dataset("x", data=np.arange(12))
    f["obs"].attrs["column-order"] = np.array(["mystery", "kind"], dtype=object)
broken("unknown_column", add_unknown_column,
       adata=(lambda a: (a.obs.__setitem__("kind", pd.Categorical(["x", "y"] * 6)), a)[1])(small()))

# Damaged bytes inside a compressed chunk of X/data: the read, not the open, fails.
X = sp.csr_matrix(rng.poisson(3.0, size=(400, 50)).astype(np.float32))
path = broken("corrupt_chunk", adata=small(X=X), compression="gzip")
with h5py.File(path, "r") as f:
    info = f["X/data"].id.get_chunk_info(0)
with open(path, "r+b") as f:
    f.seek(info.byte_offset + 16)
    f.write(b"\xff" * min(256, info.size - 32))
print("ok")
