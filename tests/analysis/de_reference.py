"""Reference numbers for tests/analysis/test_de.cpp, from scipy.stats and numpy.

  make OUT.h5ad                  small AnnData with ties, zeros, empty cells, missing labels
  rank IN COL GROUP REF METHOD [WCOL WVAL]   per gene: pval, pval_adj, log2fc, pct_in, pct_out, stat (JSON)
  features IN COL GENES RATIOS MODE METHOD   chosen genes / ratios per group (JSON rows)
  special                        t and normal tails, incomplete beta, BH on fixed inputs (JSON)
  bundle OUT.h5ad                make, then every reference test_de.cpp uses, keyed (JSON)

Expression is computed exactly as the C++ side documents: x = log1p(count * (1e4 / library))
in float64, cells with no counts at 0. The Wilcoxon test gets the normalised values before log1p
(for ratios, (normA + 1) / (normB + 1)): the same ranks as the log values, without the ties that
rounding log1p to a double can create (numpy's SIMD log1p and libm's differ in the last bit).
"""
import json
import sys

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special, stats


def bh(p):
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="mergesort")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def make(path):
    rng = np.random.default_rng(7)
    n, g = 320, 45
    groups = np.array(["alpha"] * 70 + ["beta"] * 100 + ["gamma"] * 130 + ["delta"] * 1 + [None] * 19, dtype=object)
    rng.shuffle(groups)
    means = rng.gamma(0.6, 1.5, size=g)
    lam = np.tile(means, (n, 1))
    a = groups == "alpha"
    lam[a, :8] *= np.linspace(6, 1.5, 8)  # up in alpha, by decreasing amounts
    lam[a, 8:12] *= 0.2                   # down in alpha
    counts = rng.poisson(lam * rng.uniform(0.5, 2.0, size=(n, 1))).astype(np.float32)
    counts[:, 20] = 0                     # never detected: untestable
    counts[:, 21] = np.where(rng.random(n) < 0.5, 1, 3)  # two values only: heavy ties
    counts[5, :] = 0                      # cells with no counts at all
    counts[17, :] = 0
    X = sp.csr_matrix(counts)
    obs = pd.DataFrame(
        {
            "grp": pd.Categorical(groups, categories=["alpha", "beta", "gamma", "delta", "unused"]),
            "score": rng.random(n),
            "donor": np.array(["d%d" % (i % 3) for i in range(n)], dtype=object),
        },
        index=["c%d" % i for i in range(n)],
    )
    var = pd.DataFrame(index=["Gene%d" % i for i in range(g - 2)] + ["Epas1", "Egln1"])
    ad = anndata.AnnData(X=X, obs=obs, var=var)
    ad.write_h5ad(path)


def expression(ad):
    C = ad.X.toarray().astype(np.float64) if sp.issparse(ad.X) else np.asarray(ad.X, dtype=np.float64)
    lib = C.sum(axis=1)
    scale = np.where(lib > 0, 1e4 / np.where(lib > 0, lib, 1), 0.0)
    norm = C * scale[:, None]
    return C, norm, np.log1p(norm)


def labels(ad, col):
    return np.array([None if pd.isna(v) else str(v) for v in ad.obs[col]], dtype=object)


def dumps(obj):
    """JSON without NaN (Qt's parser rejects it): NaN becomes null."""
    def clean(v):
        if isinstance(v, float) and np.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(obj), allow_nan=False)


def test(method, a, b, ra=None, rb=None):
    """ra, rb: the values whose ranks the Wilcoxon test uses (default a, b)."""
    if method == "wilcoxon":
        a, b = (a, b) if ra is None else (ra, rb)
        if np.all(np.concatenate([a, b]) == a[0]):
            return float("nan"), float("nan")
        r = stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=False, alternative="two-sided")
        return float(r.pvalue), float(r.statistic)
    r = stats.ttest_ind(a, b, equal_var=False)
    return float(r.pvalue), float(r.statistic)


def rank(path, col, group, ref, method, wcol=None, wval=None):
    ad = anndata.read_h5ad(path)
    C, norm, x = expression(ad)
    lab = labels(ad, col)
    if wcol:
        lab[labels(ad, wcol) != wval] = None
    inm = lab == group
    outm = (lab != None) & ~inm if ref == "rest" else lab == ref  # noqa: E711
    rows = {}
    pvals = []
    for j, gene in enumerate(ad.var_names):
        p, stat = test(method, x[inm, j], x[outm, j], norm[inm, j], norm[outm, j])
        pvals.append(1.0 if np.isnan(p) else p)
        rows[gene] = {
            "pval": p,
            "stat": stat,
            "log2fc": float(np.log2((norm[inm, j].mean() + 1e-9) / (norm[outm, j].mean() + 1e-9))),
            "pct_in": float((C[inm, j] > 0).mean()),
            "pct_out": float((C[outm, j] > 0).mean()),
            "mean_in": float(norm[inm, j].mean()),
            "mean_out": float(norm[outm, j].mean()),
        }
    for gene, q in zip(ad.var_names, bh(pvals)):
        rows[gene]["pval_adj"] = float(q)
    return rows


def features(path, col, genes, ratios, mode, method):
    ad = anndata.read_h5ad(path)
    C, norm, x = expression(ad)
    lab = labels(ad, col)
    names = list(ad.var_names)
    cats = [c for c in ad.obs[col].cat.categories if (lab == c).sum() >= 2]
    feats = []
    for g in [s for s in genes.split(",") if s]:
        j = names.index(g)
        feats.append((g, x[:, j], norm[:, j], C[:, j] > 0, False, norm[:, j]))
    for r in [s for s in ratios.split(",") if s]:
        a, b = r.split(":")
        ja, jb = names.index(a), names.index(b)
        ratio = (norm[:, ja] + 1) / (norm[:, jb] + 1)
        feats.append((r, np.log2(ratio), None, (C[:, ja] > 0) | (C[:, jb] > 0), True, ratio))
    comps = []
    if mode == "rest":
        comps = [(g, None) for g in cats]
    elif mode == "pairs":
        comps = [(cats[i], cats[k]) for i in range(len(cats)) for k in range(i + 1, len(cats))]
    else:
        comps = [(g, mode) for g in cats if g != mode]
    rows = []
    for name, v, nm, ex, is_ratio, rv in feats:
        for g, h in comps:
            a = lab == g
            b = ((lab != None) & ~a) if h is None else lab == h  # noqa: E711
            p, stat = test(method, v[a], v[b], rv[a], rv[b])
            fc = v[a].mean() - v[b].mean() if is_ratio else np.log2((nm[a].mean() + 1e-9) / (nm[b].mean() + 1e-9))
            rows.append({
                "feature": name, "group": g, "reference": "rest" if h is None else h,
                "n_group": int(a.sum()), "n_reference": int(b.sum()),
                "mean_group": float(v[a].mean()), "mean_reference": float(v[b].mean()),
                "median_group": float(np.median(v[a])), "median_reference": float(np.median(v[b])),
                "pct_group": float(ex[a].mean()), "pct_reference": float(ex[b].mean()),
                "log2fc": float(fc), "pval": p,
            })
    for r, q in zip(rows, bh([1.0 if np.isnan(r["pval"]) else r["pval"] for r in rows])):
        r["pval_adj"] = float(q)
    return rows


def special_values():
    out = {"t": [], "norm": [], "beta": [], "bh": {}}
    for df in [1.0, 2.5, 7.3, 30.0, 151.7, 2000.0, 1.0e5, 3.3e6]:
        for t in [0.0, 0.01, 0.7, 1.96, 4.0, 9.5, 25.0, 80.0, 400.0]:
            p = 2 * stats.t.sf(t, df)
            if p > 1e-300:
                out["t"].append([t, df, float(p)])
    for z in [0.0, 1e-4, 0.5, 1.0, 1.959964, 3.0, 6.0, 12.0, 25.0, 37.0]:
        out["norm"].append([z, float(2 * stats.norm.sf(z))])
    for a, b, x in [(0.5, 0.5, 0.3), (2.0, 3.0, 0.4), (10.0, 0.5, 0.99), (0.5, 10.0, 0.01),
                    (50.0, 70.0, 0.45), (1000.0, 0.5, 0.999), (3.5, 0.5, 1e-5)]:
        out["beta"].append([a, b, x, float(special.betainc(a, b, x))])
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.random(50) ** 4, [0.01, 0.01, 0.01, 1.0, 0.0]])
    out["bh"] = {"p": p.tolist(), "adj": bh(p).tolist()}
    return out


def bundle(path):
    """Everything test_de.cpp compares with, in one run (importing anndata takes seconds)."""
    make(path)
    out = {"special": special_values()}
    for group, ref, method, wcol, wval in [("alpha", "rest", "wilcoxon", None, None),
                                           ("gamma", "beta", "wilcoxon", None, None),
                                           ("alpha", "rest", "t-test", None, None),
                                           ("beta", "alpha", "t-test", None, None),
                                           ("beta", "rest", "t-test", "donor", "d1")]:
        key = "/".join(["rank", group, ref, method] + ([wcol, wval] if wcol else []))
        out[key] = rank(path, "grp", group, ref, method, wcol, wval)
    for mode, method in [("rest", "wilcoxon"), ("pairs", "wilcoxon"), ("beta", "t-test")]:
        out["features/%s/%s" % (mode, method)] = features(path, "grp", "Epas1,Gene3,Gene21", "Epas1:Egln1", mode, method)
    return out


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2])
    elif cmd == "rank":
        print(dumps(rank(*sys.argv[2:9])))
    elif cmd == "features":
        print(dumps(features(*sys.argv[2:8])))
    elif cmd == "special":
        print(dumps(special_values()))
    elif cmd == "bundle":
        print(dumps(bundle(sys.argv[2])))
    else:
        sys.exit("unknown command " + cmd)
