// `uce atlas build|search`: a sampled atlas of two reference files, label transfer checked
// against scikit-learn's KNeighborsClassifier on the same atlas cells, the model-identity
// refusal, unembedded query cells, HNSW atlases and atomic replacement.
#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>

#include "test_support.h"
#include "uce/core/analysis/atlas.h"
#include "uce/core/error.h"

using uce::test::cli;
using uce::test::python;

class TestAtlas : public QObject {
  Q_OBJECT
 private:
  QTemporaryDir tmp_;
  QString p(const QString& name) const { return tmp_.filePath(name); }

  // sklearn parity of one search output (k = 15), flat or weighted votes.
  void checkAgainstSklearn(const QString& atlas, const QString& out, bool weighted, double minAgreement) {
    QString pout, perr;
    const int rc = python(QString(R"(
import anndata as ad, numpy as np, pandas as pd, json
from sklearn.neighbors import KNeighborsClassifier
d = '%1'; atlas = '%2'
meta = json.load(open(atlas + '/atlas.json'))
cells = pd.read_csv(atlas + '/cells.csv', keep_default_na=False)
refs = [ad.read_h5ad(x['path']) for x in meta['datasets']]
A = np.vstack([refs[ds].obsm['X_uce'][row] for ds, row in zip(cells['dataset'], cells['row'])]).astype(np.float64)
q = ad.read_h5ad('%3')
Q = np.asarray(q.obsm['X_uce'], dtype=np.float64)
ok = np.isfinite(Q).all(1)
res = {}
for col in ['cell_type', 'tissue']:
    knn = KNeighborsClassifier(n_neighbors=15, algorithm='brute', weights='%4').fit(A, cells[col].astype(str))
    proba = knn.predict_proba(Q[ok])
    top = proba.max(1)
    unique = (proba == top[:, None]).sum(1) == 1
    want = knn.classes_[proba.argmax(1)]
    got = q.obs['predicted_' + col].astype(str).values[ok]
    conf = q.obs['predicted_' + col + '_confidence'].values[ok]
    res[col] = (float(np.mean(got[unique] == want[unique])), float(np.mean(np.abs(conf - top) < 1e-6)))
    assert q.obs['predicted_' + col][~ok].isna().all()
    assert np.isnan(q.obs['predicted_' + col + '_confidence'].values[~ok]).all()
dist = knn.kneighbors(Q[ok], n_neighbors=1)[0].ravel()
res['dist'] = float(np.max(np.abs(q.obs['atlas_distance'].values[ok] - dist)))
res['accuracy'] = float(np.mean(q.obs['predicted_cell_type'].astype(str).values[ok] == q.obs['cell_type'].astype(str).values[ok]))
print(json.dumps(res))
)")
                                  .arg(tmp_.path(), atlas, out, weighted ? "distance" : "uniform"),
                              &pout, &perr);
    QVERIFY2(rc == 0, qPrintable(perr));
    const std::string line = pout.trimmed().toStdString();
    // {"cell_type": [label agreement, confidence agreement], "tissue": [...], ...}
    auto pair = [&](const std::string& key) {
      const auto at = line.find("\"" + key + "\": [");
      std::stringstream ss(line.substr(at + key.size() + 5));
      double a = 0, b = 0;
      char comma = 0;
      ss >> a >> comma >> b;
      return std::make_pair(a, b);
    };
    for (const char* col : {"cell_type", "tissue"}) {
      const auto [labels, conf] = pair(col);
      QVERIFY2(labels >= minAgreement && conf >= minAgreement, qPrintable(pout));
    }
    QVERIFY2(uce::test::jsonNumber(line, "dist") < 1e-4, qPrintable(pout));
    QVERIFY2(uce::test::jsonNumber(line, "accuracy") > 0.8, qPrintable(pout));
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    // Six cell types as overlapping Gaussian clusters in 32-d (so votes are not all unanimous);
    // two reference files (kidney, lung) of 1,800 cells and a query of 600 with 4 unembedded
    // cells; all from one model, plus a query from another model.
    QString err;
    const int rc = python(QString(R"(
import anndata as ad, numpy as np, pandas as pd, scipy.sparse as sp
d = '%1'
rng = np.random.default_rng(11)
types = ['B cell', 'NK cell', 'T cell', 'endothelial', 'fibroblast', 'monocyte']
centres = rng.normal(scale=0.55, size=(len(types), 32))
def make(path, tissue, n, model, nan=0, weights=None):
    lab = rng.choice(types, size=n, p=weights)
    X = (centres[[types.index(t) for t in lab]] + rng.normal(scale=1.0, size=(n, 32))).astype(np.float32)
    X[:nan] = np.nan
    obs = pd.DataFrame({'cell_type': pd.Categorical(lab), 'tissue': pd.Categorical([tissue] * n)},
                       index=['%s_%d' % (tissue, i) for i in range(n)])
    a = ad.AnnData(X=sp.csr_matrix((n, 5), dtype=np.float32), obs=obs)
    a.obsm['X_uce'] = X
    a.uns['uce'] = {'model_sha256': model}
    a.write_h5ad(path)
m = '1' * 64
make(d + '/kidney.h5ad', 'kidney', 1800, m, weights=[0.3, 0.1, 0.2, 0.2, 0.15, 0.05])
make(d + '/lung.h5ad', 'lung', 1800, m)
make(d + '/query.h5ad', 'kidney', 600, m, nan=4)
make(d + '/query_other.h5ad', 'kidney', 50, '2' * 64)
)").arg(tmp_.path()), nullptr, &err);
    QVERIFY2(rc == 0, qPrintable(err));
  }

  void buildSamplesEachDatasetByLabel() {
    QString out, err;
    const QString refs = p("kidney.h5ad") + "," + p("lung.h5ad");
    QCOMPARE(cli({"atlas", "build", "--adata", refs, "--labels", "cell_type,tissue", "--max-cells-per-dataset", "500",
                  "--seed", "3", "--out", p("atlas")},
                 &out, &err),
             0);
    QVERIFY2(out.contains("1000 cells x 32 dims, flat index, model 1111111111"), qPrintable(out));
    for (const char* f : {"index.faiss", "cells.csv", "atlas.json"}) QVERIFY(QFile::exists(p("atlas/") + f));
    // Stratified: per file, every cell type keeps a share within one cell of its proportion.
    QString pout, perr;
    QCOMPARE(python(QString(R"(
import anndata as ad, pandas as pd, json
cells = pd.read_csv('%1/atlas/cells.csv')
meta = json.load(open('%1/atlas/atlas.json'))
assert len(cells) == meta['cells'] == 1000, len(cells)
assert [x['sampled'] for x in meta['datasets']] == [500, 500]
assert meta['model_sha256'] == '1' * 64 and meta['label_columns'] == ['cell_type', 'tissue']
for i, x in enumerate(meta['datasets']):
    a = ad.read_h5ad(x['path'])
    sub = cells[cells['dataset'] == i]
    assert sub['row'].is_unique and sub['row'].is_monotonic_increasing
    assert (a.obs['cell_type'].astype(str).values[sub['row']] == sub['cell_type'].values).all()
    assert (a.obs_names.values[sub['row']] == sub['obs_name'].values).all()
    full = a.obs['cell_type'].value_counts(normalize=True)
    got = sub['cell_type'].value_counts()
    for t, share in full.items():
        assert abs(got.get(t, 0) - 500 * share) <= 1.5, (t, got.get(t, 0), 500 * share)
print('ok')
)").arg(tmp_.path()), &pout, &perr), 0);
    QVERIFY2(pout.trimmed() == "ok", qPrintable(perr));
    // Seeded: the same seed gives the same atlas cells, another seed other cells.
    QCOMPARE(cli({"atlas", "build", "--adata", refs, "--labels", "cell_type,tissue", "--max-cells-per-dataset", "500",
                  "--seed", "3", "--out", p("atlas_same")},
                 &out, &err),
             0);
    QCOMPARE(uce::test::readAll(p("atlas_same/cells.csv")), uce::test::readAll(p("atlas/cells.csv")));
    QCOMPARE(uce::test::readAll(p("atlas_same/index.faiss")), uce::test::readAll(p("atlas/index.faiss")));
    QCOMPARE(cli({"atlas", "build", "--adata", refs, "--labels", "cell_type,tissue", "--max-cells-per-dataset", "500",
                  "--seed", "4", "--out", p("atlas_same")},
                 &out, &err),
             0);
    QVERIFY(uce::test::readAll(p("atlas_same/cells.csv")) != uce::test::readAll(p("atlas/cells.csv")));
    // Replaced in place: no temporary or old folders are left beside it.
    const QStringList beside = QDir(tmp_.path()).entryList({"atlas_same*"}, QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(beside, QStringList{"atlas_same"});
  }

  void searchAgreesWithSklearn() {
    QString out, err;
    QCOMPARE(cli({"atlas", "search", "--atlas", p("atlas"), "--adata", p("query.h5ad"), "--k", "15", "--out",
                  p("query_pred.h5ad")},
                 &out, &err),
             0);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QVERIFY2(out.contains("predicted_cell_type: 596 cells") && out.contains("4 cells without a finite embedding"),
             qPrintable(out));
    checkAgainstSklearn(p("atlas"), p("query_pred.h5ad"), false, 0.99);
    QCOMPARE(cli({"atlas", "search", "--atlas", p("atlas"), "--adata", p("query.h5ad"), "--k", "15", "--weighted",
                  "--out", p("query_w.h5ad")},
                 &out, &err),
             0);
    checkAgainstSklearn(p("atlas"), p("query_w.h5ad"), true, 0.99);
  }

  void hnswAtlasFindsTheSameLabels() {
    QString out, err;
    QCOMPARE(cli({"atlas", "build", "--adata", p("kidney.h5ad") + "," + p("lung.h5ad"), "--labels", "cell_type,tissue",
                  "--index", "hnsw", "--out", p("atlas_hnsw")},
                 &out, &err),
             0);
    QVERIFY2(out.contains("3600 cells x 32 dims, hnsw index"), qPrintable(out));
    QCOMPARE(cli({"atlas", "search", "--atlas", p("atlas_hnsw"), "--adata", p("query.h5ad"), "--out", p("q_hnsw.h5ad")},
                 &out, &err),
             0);
    checkAgainstSklearn(p("atlas_hnsw"), p("q_hnsw.h5ad"), false, 0.97);
  }

  void refusesAnotherModel() {
    QString out, err;
    QCOMPARE(cli({"atlas", "search", "--atlas", p("atlas"), "--adata", p("query_other.h5ad"), "--out", p("o.h5ad")},
                 &out, &err),
             2);
    QVERIFY2(err.startsWith("error: ") && err.contains("query_other.h5ad") && err.contains("model 222222222222") &&
                 err.contains("model 111111111111") && err.contains("atlas"),
             qPrintable(err));
    QCOMPARE(err.trimmed().count('\n'), 0);
    QVERIFY(!QFile::exists(p("o.h5ad")));
    // Building an atlas from two models is refused too.
    QCOMPARE(cli({"atlas", "build", "--adata", p("kidney.h5ad") + "," + p("query_other.h5ad"), "--labels",
                  "cell_type", "--out", p("mixed")},
                 &out, &err),
             2);
    QVERIFY2(err.contains("query_other.h5ad") && err.contains("one model"), qPrintable(err));
    QVERIFY(!QFile::exists(p("mixed")));
  }

  void clearErrors() {
    QString out, err;
    QCOMPARE(cli({"atlas", "build", "--adata", p("kidney.h5ad"), "--labels", "celltype", "--out", p("x")}, &out, &err), 2);
    QVERIFY2(err.contains("kidney.h5ad") && err.contains("no column 'celltype'"), qPrintable(err));
    QDir().mkpath(p("notatlas"));
    uce::test::writeAll(p("notatlas/important.txt"), "keep me");
    QCOMPARE(cli({"atlas", "build", "--adata", p("kidney.h5ad"), "--labels", "cell_type", "--out", p("notatlas")},
                 &out, &err),
             2);
    QVERIFY2(err.contains("not an atlas folder"), qPrintable(err));
    QVERIFY(QFile::exists(p("notatlas/important.txt")));
    QCOMPARE(cli({"atlas", "search", "--atlas", p("nowhere"), "--adata", p("query.h5ad"), "--out", p("x.h5ad")},
                 &out, &err),
             1);
    QVERIFY2(err.contains("nowhere") && err.contains("uce atlas build"), qPrintable(err));
    QCOMPARE(cli({"atlas", "frobnicate"}, &out, &err), 2);
    QVERIFY2(err.contains("build or search"), qPrintable(err));
  }

  void stratifiedSampleKeepsRareLabels() {
    std::vector<int64_t> rows;
    std::vector<std::string> labels;
    for (int i = 0; i < 1000; ++i) {
      rows.push_back(i * 2);
      labels.push_back(i < 3 ? "rare" : (i % 2 ? "a" : "b"));
    }
    const auto s = uce::analysis::stratifiedSample(rows, labels, 50, 9);
    QCOMPARE(s.size(), size_t(50));
    QVERIFY(std::is_sorted(s.begin(), s.end()));
    QVERIFY(s[0] <= 4);  // a "rare" cell (rows 0, 2, 4) is kept
    QCOMPARE(uce::analysis::stratifiedSample(rows, labels, 50, 9), s);
    QVERIFY(uce::analysis::stratifiedSample(rows, labels, 50, 10) != s);
    QCOMPARE(uce::analysis::stratifiedSample(rows, labels, 5000, 9), rows);
  }

  void voteTiesGoToTheNearer() {
    auto [label, conf] = uce::analysis::voteLabel({"x", "y", "y", "x"}, {1, 2, 3, 4}, false);
    QCOMPARE(QString::fromStdString(label), QString("x"));
    QCOMPARE(conf, 0.5);
    std::tie(label, conf) = uce::analysis::voteLabel({"x", "y", "y"}, {0.5f, 2, 2}, true);
    QCOMPARE(QString::fromStdString(label), QString("x"));
    QVERIFY(std::fabs(conf - 2.0 / 3.0) < 1e-6);
  }
};

QTEST_GUILESS_MAIN(TestAtlas)
#include "test_atlas.moc"
