// Leiden clustering: finds well-separated groups, is reproducible for a seed, responds to the
// resolution, and `uce cluster` writes obs["leiden"] that anndata reads (NaN rows = missing).
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <random>

#include "test_support.h"
#include "uce/core/analysis/cluster.h"
#include "uce/core/analysis/metrics.h"

using namespace uce::analysis;

namespace {

// k Gaussian blobs of `per` cells in `dim` dimensions, centres `spread` apart (unit noise).
struct Blobs {
  std::vector<float> x;
  std::vector<int32_t> truth;
  int64_t n = 0, dim = 0;
  MatrixView view() const { return MatrixView{x.data(), n, dim}; }
};

Blobs blobs(int k, int per, int dim, double spread, uint64_t seed, bool unequal = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  Blobs b;
  b.dim = dim;
  for (int c = 0; c < k; ++c) {
    std::vector<double> centre(static_cast<size_t>(dim));
    for (double& v : centre) v = noise(rng) * spread;
    const int cells = unequal ? per * (c + 1) : per;
    for (int i = 0; i < cells; ++i) {
      for (int j = 0; j < dim; ++j) b.x.push_back(static_cast<float>(centre[static_cast<size_t>(j)] + noise(rng)));
      b.truth.push_back(c);
    }
  }
  b.n = static_cast<int64_t>(b.truth.size());
  return b;
}

}  // namespace

class TestCluster : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void findsGaussianBlobs() {
    const Blobs b = blobs(6, 150, 20, 8.0, 1);
    ClusterOptions o;
    o.leiden.resolution = 0.5;
    ClusterReport r;
    const Clustering c = clusterEmbedding(b.view(), o, &r);
    const double ari = adjustedRandIndex(b.truth, c.labels);
    QVERIFY2(ari > 0.95, qPrintable(QString("ARI %1 with %2 clusters").arg(ari).arg(c.clusters)));
    QCOMPARE(c.clusters, 6);
    QCOMPARE(r.cellsClustered, b.n);
    QCOMPARE(r.knn.method, std::string("exact"));
  }

  void labelsAreOrderedBySize() {
    const Blobs b = blobs(4, 60, 10, 10.0, 2, /*unequal=*/true);  // 60, 120, 180, 240 cells
    ClusterOptions o;
    o.leiden.resolution = 0.3;
    const Clustering c = clusterEmbedding(b.view(), o);
    QCOMPARE(c.clusters, 4);
    std::vector<int64_t> size(4, 0);
    for (int32_t l : c.labels) ++size[static_cast<size_t>(l)];
    QVERIFY(size[0] >= size[1] && size[1] >= size[2] && size[2] >= size[3]);
    QCOMPARE(size[0], int64_t(240));
    // The largest true blob (3) is cluster "0".
    QCOMPARE(c.labels.back(), 0);
  }

  void sameSeedSameLabels() {
    const Blobs b = blobs(1, 1500, 8, 0.0, 3);  // one diffuse cloud: the partition depends on the RNG
    ClusterOptions o;
    o.leiden.seed = 7;
    const Clustering a = clusterEmbedding(b.view(), o), again = clusterEmbedding(b.view(), o);
    QVERIFY(a.labels == again.labels);
    QVERIFY(a.clusters > 1);
    o.leiden.seed = 8;
    const Clustering other = clusterEmbedding(b.view(), o);
    QVERIFY(other.clusters > 1);  // a different seed may differ, but must still be a clustering
  }

  void higherResolutionGivesMoreClusters() {
    const Blobs b = blobs(1, 1500, 8, 0.0, 4);
    ClusterOptions o;
    int32_t previous = 0;
    for (double res : {0.1, 0.5, 1.0, 2.0, 4.0}) {
      o.leiden.resolution = res;
      const int32_t k = clusterEmbedding(b.view(), o).clusters;
      QVERIFY2(k >= previous, qPrintable(QString("resolution %1: %2 clusters, fewer than %3").arg(res).arg(k).arg(previous)));
      previous = k;
    }
    o.leiden.resolution = 0.1;
    const int32_t low = clusterEmbedding(b.view(), o).clusters;
    QVERIFY2(previous > low + 3, qPrintable(QString("%1 vs %2").arg(previous).arg(low)));
  }

  void connectivitiesAreSymmetricFuzzyWeights() {
    const Blobs b = blobs(2, 100, 5, 5.0, 5);
    KnnOptions ko;
    ko.k = 10;
    const KnnGraph g = knnGraph(b.view(), ko);
    const WeightedGraph w = fuzzyConnectivities(g);
    QVERIFY(!w.from.empty());
    // Per cell, directed weights sum to log2(k + 1) (umap's calibration); every cell's nearest
    // neighbour gets weight 1, so each cell has at least one edge of weight 1 after a + b - ab.
    std::vector<double> maxW(static_cast<size_t>(b.n), 0);
    for (size_t e = 0; e < w.from.size(); ++e) {
      QVERIFY(w.from[e] < w.to[e]);
      QVERIFY(w.weight[e] > 0 && w.weight[e] <= 1.0 + 1e-12);
      maxW[static_cast<size_t>(w.from[e])] = std::max(maxW[static_cast<size_t>(w.from[e])], w.weight[e]);
      maxW[static_cast<size_t>(w.to[e])] = std::max(maxW[static_cast<size_t>(w.to[e])], w.weight[e]);
    }
    for (double m : maxW) QVERIFY2(std::fabs(m - 1.0) < 1e-6, qPrintable(QString::number(m, 'g', 12)));  // float32 weights, as umap-learn
  }

  void nanRowsAreLeftOut() {
    Blobs b = blobs(3, 100, 10, 10.0, 6);
    for (int64_t r : {0, 150, 299})
      for (int64_t j = 0; j < b.dim; ++j) b.x[static_cast<size_t>(r * b.dim + j)] = NAN;
    ClusterOptions o;
    o.leiden.resolution = 0.5;
    ClusterReport rep;
    const Clustering c = clusterEmbedding(b.view(), o, &rep);
    QCOMPARE(rep.cellsSkipped, int64_t(3));
    QCOMPARE(c.labels[0], -1);
    QCOMPARE(c.labels[150], -1);
    QCOMPARE(c.clusters, 3);
  }

  void cliWritesCategoricalLeiden() {
    QTemporaryDir tmp;
    const QString in = tmp.filePath("blobs.h5ad"), out = tmp.filePath("clustered.h5ad");
    QString pout, err;
    QCOMPARE(uce::test::python(QString(R"(
import anndata as ad, numpy as np, pandas as pd
rng = np.random.default_rng(0)
centres = rng.normal(0, 10, (4, 16))
truth = np.repeat(np.arange(4), 100)
emb = (centres[truth] + rng.normal(0, 1, (400, 16))).astype(np.float32)
emb[[5, 205]] = np.nan
a = ad.AnnData(X=np.zeros((400, 3), dtype=np.float32),
               obs=pd.DataFrame({'truth': pd.Categorical(truth.astype(str))}, index=[f'c{i}' for i in range(400)]))
a.obsm['X_uce'] = emb
a.uns['note'] = 'kept'
a.write_h5ad('%1')
)").arg(in), &pout, &err), 0);
    QCOMPARE(uce::test::cli({"cluster", "--adata", in, "--use-rep", "X_uce", "--resolution", "0.5", "--seed", "0",
                             "--out", out}, &pout, &err), 0);
    QVERIFY2(err.contains("4 clusters"), qPrintable(err));
    QVERIFY2(err.contains("2 cells without an embedding"), qPrintable(err));
    QCOMPARE(uce::test::python(QString(R"(
import anndata as ad, numpy as np, pandas as pd
from sklearn.metrics import adjusted_rand_score
a = ad.read_h5ad('%1')
l = a.obs['leiden']
assert isinstance(l.dtype, pd.CategoricalDtype), l.dtype
assert list(l.cat.categories) == ['0', '1', '2', '3'], list(l.cat.categories)
assert l.isna().sum() == 2 and l.isna().iloc[[5, 205]].all()
ok = ~l.isna()
ari = adjusted_rand_score(a.obs['truth'][ok], l[ok])
assert ari > 0.95, ari
assert a.uns['note'] == 'kept' and a.uns['leiden']['params']['resolution'] == 0.5
print('ok', ari)
)").arg(out), &pout, &err), 0);
    QVERIFY2(pout.contains("ok"), qPrintable(pout + err));
    // Same seed, same labels, byte for byte in the column.
    const QString again = tmp.filePath("again.h5ad");
    QCOMPARE(uce::test::cli({"cluster", "--adata", in, "--resolution", "0.5", "--out", again, "--key", "leiden"}, &pout, &err), 0);
    QCOMPARE(uce::test::python(QString(R"(
import anndata as ad
a, b = ad.read_h5ad('%1'), ad.read_h5ad('%2')
assert a.obs['leiden'].equals(b.obs['leiden'])
)").arg(out, again), &pout, &err), 0);
  }

  void cliErrorsNameTheProblem() {
    QTemporaryDir tmp;
    const QString in = tmp.filePath("plain.h5ad");
    QString out, err;
    QCOMPARE(uce::test::python(QString(R"(
import anndata as ad, numpy as np
a = ad.AnnData(X=np.zeros((10, 3), dtype=np.float32)); a.obsm['X_pca'] = np.zeros((10, 2), dtype=np.float32)
a.write_h5ad('%1')
)").arg(in), &out, &err), 0);
    QVERIFY(uce::test::cli({"cluster", "--adata", in, "--out", tmp.filePath("o.h5ad")}, &out, &err) != 0);
    QVERIFY2(err.startsWith("error:") && err.contains("plain.h5ad") && err.contains("X_uce") && err.contains("X_pca"),
             qPrintable(err));
    QVERIFY(!QFile::exists(tmp.filePath("o.h5ad")));
    QVERIFY(uce::test::cli({"cluster", "--adata", in, "--use-rep", "X_pca", "--resolution", "-1", "--out",
                            tmp.filePath("o.h5ad")}, &out, &err) != 0);
    QVERIFY2(err.contains("--resolution"), qPrintable(err));
  }
};

QTEST_GUILESS_MAIN(TestCluster)
#include "test_cluster.moc"
