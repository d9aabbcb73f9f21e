// `uce centroids`: centroids, nearest centroids across sources and the alignment score, checked
// against numpy/scipy on the same embeddings; the centroid tree against scipy's linkage; the
// refusals a user meets (another model, a missing column or representation).
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <map>
#include <sstream>

#include "test_support.h"

using uce::test::cli;
using uce::test::python;

namespace {

// Rows of a simple CSV (no quoted fields in these fixtures), keyed by header name.
std::vector<std::map<std::string, std::string>> table(const QString& path) {
  std::vector<std::map<std::string, std::string>> out;
  const auto ls = uce::test::lines(path);
  if (ls.empty()) return out;
  auto split = [](const std::string& l) {
    std::vector<std::string> f;
    std::stringstream ss(l);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(x);
    if (!l.empty() && l.back() == ',') f.emplace_back();
    return f;
  };
  const auto head = split(ls[0]);
  for (size_t i = 1; i < ls.size(); ++i) {
    if (ls[i].empty()) continue;
    auto f = split(ls[i]);
    std::map<std::string, std::string> row;
    for (size_t c = 0; c < head.size(); ++c) row[head[c]] = c < f.size() ? f[c] : "";
    out.push_back(row);
  }
  return out;
}

bool close(const std::string& a, const std::string& b, double rel) {
  const double x = std::stod(a), y = std::stod(b);
  return std::fabs(x - y) <= rel * std::max(1.0, std::fabs(y));
}

// Python helper shared by the fixtures: the expected table, computed with numpy from the same
// embeddings (means in float64 of the float32 rows, Euclidean distances, stable ranking).
const char* kExpect = R"(
import numpy as np
def centroids(X, labels):
    X = np.asarray(X, dtype=np.float64)
    keep = np.isfinite(X).all(1) & np.array([l != '' for l in labels])
    names = sorted(set(np.asarray(labels)[keep]))
    lab = np.asarray(labels)
    return names, np.array([X[keep & (lab == n)].mean(0) for n in names])
def expect(path, qs, rs, qn, qc, rn, rc, k=3):
    rows = []
    for i, name in enumerate(qn):
        d = np.sqrt(((rc - qc[i]) ** 2).sum(1))
        order = np.argsort(d, kind='stable')
        own = [j for j, o in enumerate(order) if rn[o] == name]
        r = [qs, rs, name, str(own[0] + 1) if own else '', '%.17g' % d[order[own[0]]] if own else '']
        for j in range(k):
            r += [rn[order[j]], '%.17g' % d[order[j]]] if j < len(order) else ['', '']
        rows.append(','.join(r))
    with open(path, 'a') as f:
        f.write('\n'.join(rows) + '\n')
)";

}  // namespace

class TestCentroids : public QObject {
  Q_OBJECT
 private:
  QTemporaryDir tmp_;
  QString p(const QString& name) const { return tmp_.filePath(name); }

  // Our table against python's: same ranks, same nearest labels, distances to 1e-5.
  void compareTables(const QString& ours, const QString& expected, int wantRows) {
    const auto got = table(ours);
    const auto want = table(expected);
    QCOMPARE(static_cast<int>(want.size()), wantRows);
    QCOMPARE(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& g = got[i];
      const auto& w = want[i];
      const QString where = QString("row %1 (%2 -> %3, %4)")
                                .arg(i)
                                .arg(QString::fromStdString(w.at("query_source")))
                                .arg(QString::fromStdString(w.at("reference_source")))
                                .arg(QString::fromStdString(w.at("query_label")));
      QVERIFY2(g.at("query_source") == w.at("query_source"), qPrintable(where));
      QVERIFY2(g.at("reference_source") == w.at("reference_source"), qPrintable(where));
      QVERIFY2(g.at("query_label") == w.at("query_label"), qPrintable(where));
      QVERIFY2(g.at("own_rank") == w.at("own_rank"),
               qPrintable(where + " own_rank " + QString::fromStdString(g.at("own_rank")) + " vs " +
                          QString::fromStdString(w.at("own_rank"))));
      if (!w.at("own_rank").empty()) QVERIFY2(close(g.at("own_distance"), w.at("own_distance"), 1e-5), qPrintable(where));
      for (int c = 1; c <= 3; ++c) {
        const std::string n = "nearest_" + std::to_string(c), d = "distance_" + std::to_string(c);
        QVERIFY2(g.at(n) == w.at(n), qPrintable(where + " " + QString::fromStdString(n)));
        if (!w.at(d).empty()) QVERIFY2(close(g.at(d), w.at(d), 1e-5), qPrintable(where));
      }
    }
  }

  void compareLinkage(const QString& ours, const QString& scipy) {
    const auto got = uce::test::lines(ours);
    const auto want = uce::test::lines(scipy);
    QCOMPARE(got.size(), want.size() + 1);  // + header
    QCOMPARE(QString::fromStdString(got[0]), QString("a,b,distance,size"));
    for (size_t i = 0; i < want.size(); ++i) {
      std::stringstream g(got[i + 1]), w(want[i]);
      std::string gf, wf;
      for (int c = 0; c < 4; ++c) {
        std::getline(g, gf, ',');
        std::getline(w, wf, ',');
        if (c == 2)
          QVERIFY2(close(gf, wf, 1e-6), qPrintable(QString::fromStdString(gf + " vs " + wf)));
        else
          QCOMPARE(std::stoll(gf), static_cast<long long>(std::stod(wf)));
      }
    }
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    // Two "species" with the same 8 cell types as Gaussian clusters in 24-d; the mouse file
    // lacks hepatocytes and has its T and NK cells swapped in place (so T cell -> NK cell is a
    // miss at k=1); a few human cells are unembedded (NaN rows) or unlabelled.
    QString err;
    const int rc = python(QString(R"(
import anndata as ad, numpy as np, pandas as pd, scipy.sparse as sp
d = '%1'
rng = np.random.default_rng(3)
types = ['B cell', 'NK cell', 'T cell', 'endothelial', 'fibroblast', 'hepatocyte', 'monocyte', 'podocyte']
centres = rng.normal(scale=2.0, size=(len(types), 24))
def make(path, use, where, shift, model, n=70, nan=0, unlabelled=0):
    X, lab = [], []
    for t in use:
        c = centres[types.index(where.get(t, t))] + shift
        X.append(c + rng.normal(scale=0.6, size=(n, 24))); lab += [t] * n
    X = np.vstack(X).astype(np.float32)
    X[:nan] = np.nan
    if unlabelled:
        lab[-unlabelled:] = [None] * unlabelled
    lab = pd.Categorical(lab)
    obs = pd.DataFrame({'cell_type': lab, 'tissue': pd.Categorical(['kidney'] * len(X))}, index=['c%d' % i for i in range(len(X))])
    a = ad.AnnData(X=sp.csr_matrix((len(X), 10), dtype=np.float32), obs=obs)
    a.obsm['X_uce'] = X
    a.uns['uce'] = {'model_sha256': model}
    a.write_h5ad(path)
m1 = 'a' * 64
make(d + '/human.h5ad', types, {}, 0.0, m1, nan=5, unlabelled=3)
mouse = [t for t in types if t != 'hepatocyte']
make(d + '/mouse.h5ad', mouse, {'T cell': 'NK cell', 'NK cell': 'T cell'}, 0.15, m1)
make(d + '/mouse_other_model.h5ad', mouse, {}, 0.15, 'b' * 64)
)").arg(tmp_.path()), nullptr, &err);
    QVERIFY2(rc == 0, qPrintable(err));
  }

  void twoSourcesAgreeWithNumpy() {
    QString out, err;
    QCOMPARE(cli({"centroids", "--adata", p("human.h5ad"), "--adata2", p("mouse.h5ad"), "--label", "cell_type",
                  "--out", p("hm.csv"), "--tree", p("hm.nwk"), "--linkage", p("hm_linkage.csv")},
                 &out, &err),
             0);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QString perr;
    QCOMPARE(python(QString(kExpect) + QString(R"(
import anndata as ad
from scipy.cluster.hierarchy import linkage
a = ad.read_h5ad('%1/human.h5ad'); b = ad.read_h5ad('%1/mouse.h5ad')
la = [str(x) if isinstance(x, str) else '' for x in a.obs['cell_type']]
lb = [str(x) for x in b.obs['cell_type']]
qn, qc = centroids(a.obsm['X_uce'], la); rn, rc = centroids(b.obsm['X_uce'], lb)
open('%1/hm_expected.csv', 'w').write('query_source,reference_source,query_label,own_rank,own_distance,nearest_1,distance_1,nearest_2,distance_2,nearest_3,distance_3\n')
expect('%1/hm_expected.csv', 'human', 'mouse', qn, qc, rn, rc)
np.savetxt('%1/hm_linkage_expected.csv', linkage(qc, 'average'), delimiter=',', fmt='%.17g')
np.savetxt('%1/hm_ward_expected.csv', linkage(qc, 'ward'), delimiter=',', fmt='%.17g')
)").arg(tmp_.path()), nullptr, &perr), 0);
    QVERIFY2(perr.isEmpty(), qPrintable(perr));
    compareTables(p("hm.csv"), p("hm_expected.csv"), 8);
    // The summary a user reads: 7 shared labels; T and NK cells miss at k = 1 (swapped).
    const auto rows = table(p("hm.csv"));
    int hits1 = 0, hits3 = 0, shared = 0;
    for (const auto& r : rows) {
      if (r.at("own_rank").empty()) {
        QCOMPARE(QString::fromStdString(r.at("query_label")), QString("hepatocyte"));
        continue;
      }
      ++shared;
      hits1 += std::stoi(r.at("own_rank")) <= 1;
      hits3 += std::stoi(r.at("own_rank")) <= 3;
    }
    QCOMPARE(shared, 7);
    QCOMPARE(hits1, 5);
    QVERIFY2(out.contains(QString("7 shared labels; own centroid nearest (k=1): 5/7 = 0.714; among the 3 nearest "
                                  "(k=3): %1/7").arg(hits3)),
             qPrintable(out));
    // Unembedded (NaN) and unlabelled cells are left out: 5 B cells and 3 podocytes.
    for (const auto& r : rows) {
      if (r.at("query_label") == "B cell") QCOMPARE(QString::fromStdString(r.at("query_cells")), QString("65"));
      if (r.at("query_label") == "podocyte") QCOMPARE(QString::fromStdString(r.at("query_cells")), QString("67"));
    }
    // Tree of the human centroids equals scipy's average linkage.
    compareLinkage(p("hm_linkage.csv"), p("hm_linkage_expected.csv"));
    const auto leaves = table(p("hm_linkage_leaves.csv"));
    QCOMPARE(leaves.size(), size_t(8));
    QCOMPARE(QString::fromStdString(leaves[0].at("name")), QString("B cell"));
    const QString nwk = QString::fromUtf8(uce::test::readAll(p("hm.nwk")));
    QVERIFY2(nwk.startsWith("((") && nwk.endsWith(";\n") && nwk.contains("'T cell':"), qPrintable(nwk));
    QCOMPARE(nwk.count('('), 7);

    QCOMPARE(cli({"centroids", "--adata", p("human.h5ad"), "--label", "cell_type", "--out", p("self.csv"),
                  "--linkage", p("ward.csv"), "--method", "ward"},
                 &out, &err),
             0);
    compareLinkage(p("ward.csv"), p("hm_ward_expected.csv"));
    // Within one source: the nearest *other* labels, never the label itself.
    for (const auto& r : table(p("self.csv"))) {
      QVERIFY(r.at("nearest_1") != r.at("query_label"));
      QVERIFY(r.at("own_rank").empty());
    }
  }

  void groupsOfOneAtlasAgreeWithNumpy() {
    // The synthetic atlas: human kidney and lung, embedded by PCA of log-normalised counts;
    // cell types shared by the two tissues are aligned kidney -> lung and lung -> kidney.
    QString out, err;
    QCOMPARE(cli({"synth", "--out", p("synth"), "--cells", "3000", "--genes", "400", "--seed", "5", "--species",
                  "human", "--tissues", "kidney,lung", "--no-assets", "--quiet"},
                 &out, &err),
             0);
    QString perr;
    QCOMPARE(python(QString(kExpect) + QString(R"(
import anndata as ad, scipy.sparse as sp
from sklearn.decomposition import PCA
d = '%1'
a = [ad.read_h5ad(d + '/synth/human_' + t + '.h5ad') for t in ['kidney', 'lung']]
X = sp.vstack([x.X for x in a]).tocsr().astype(np.float64)
X = sp.diags(1e4 / np.maximum(1, np.asarray(X.sum(1)).ravel())) @ X
X.data = np.log1p(X.data)
E = PCA(n_components=20, random_state=0).fit_transform(X.toarray()).astype(np.float32)
n0 = a[0].n_obs
for x, e, t in [(a[0], E[:n0], 'kidney'), (a[1], E[n0:], 'lung')]:
    x.obsm['X_uce'] = e
    x.write_h5ad(d + '/pca_' + t + '.h5ad')
lab = [str(v) for x in a for v in x.obs['cell_type']]
tis = [str(v) for x in a for v in x.obs['tissue']]
open(d + '/g_expected.csv', 'w').write('query_source,reference_source,query_label,own_rank,own_distance,nearest_1,distance_1,nearest_2,distance_2,nearest_3,distance_3\n')
for q, r in [('kidney', 'lung'), ('lung', 'kidney')]:
    sel = lambda t: [l if g == t else '' for l, g in zip(lab, tis)]
    qn, qc = centroids(E, sel(q)); rn, rc = centroids(E, sel(r))
    expect(d + '/g_expected.csv', q, r, qn, qc, rn, rc)
print(len(set(lab)))
)").arg(tmp_.path()), &out, &perr), 0);
    QVERIFY2(perr.isEmpty(), qPrintable(perr));
    QCOMPARE(cli({"centroids", "--adata", p("pca_kidney.h5ad") + "," + p("pca_lung.h5ad"), "--label", "cell_type",
                  "--group", "tissue", "--out", p("g.csv")},
                 &out, &err),
             0);
    QVERIFY2(out.contains("alignment kidney -> lung: ") && out.contains("alignment lung -> kidney: "), qPrintable(out));
    const int rows = static_cast<int>(table(p("g_expected.csv")).size());
    QVERIFY(rows >= 4);
    compareTables(p("g.csv"), p("g_expected.csv"), rows);
  }

  void refusals() {
    QString out, err;
    // Another embedding model: refused, naming the file and the reason.
    QCOMPARE(cli({"centroids", "--adata", p("human.h5ad"), "--adata2", p("mouse_other_model.h5ad"), "--label",
                  "cell_type", "--out", p("x.csv")},
                 &out, &err),
             2);
    QVERIFY2(err.startsWith("error: ") && err.contains("mouse_other_model.h5ad") && err.contains("another model"),
             qPrintable(err));
    QVERIFY(!QFile::exists(p("x.csv")));
    QCOMPARE(cli({"centroids", "--adata", p("human.h5ad"), "--label", "celltype", "--out", p("x.csv")}, &out, &err), 2);
    QVERIFY2(err.contains("human.h5ad") && err.contains("no column 'celltype'") && err.contains("cell_type"),
             qPrintable(err));
    QCOMPARE(cli({"centroids", "--adata", p("human.h5ad"), "--label", "cell_type", "--use-rep", "X_scvi", "--out",
                  p("x.csv")},
                 &out, &err),
             1);
    QVERIFY2(err.contains("human.h5ad") && err.contains("X_scvi") && err.contains("X_uce"), qPrintable(err));
    // One group value only: no pairs to align.
    QCOMPARE(cli({"centroids", "--adata", p("human.h5ad"), "--label", "cell_type", "--group", "tissue", "--out",
                  p("x.csv")},
                 &out, &err),
             2);
    QVERIFY2(err.contains("tissue") && err.contains("--adata2"), qPrintable(err));
    QCOMPARE(cli({"centroids", "--adata", p("human.h5ad")}, &out, &err), 2);
    QVERIFY2(err.contains("usage: uce centroids"), qPrintable(err));
    QCOMPARE(err.trimmed().count('\n'), 0);
  }
};

QTEST_GUILESS_MAIN(TestCentroids)
#include "test_centroids.moc"
