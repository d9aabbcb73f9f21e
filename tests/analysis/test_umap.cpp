// UMAP as a user sees it: clusters of an embedding stay apart on the map, the map is
// trustworthy, a seed reproduces it bit for bit at any thread count, new cells land on their
// cluster, and `uce umap` writes obsm["X_umap"] that anndata reads (NaN rows kept NaN).
// The curve fit and the trustworthiness score are checked against scipy / sklearn.
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "test_support.h"
#include "uce/core/analysis/umap.h"
#include "uce/core/error.h"

using namespace uce::analysis;

namespace {

// Gaussian clusters in `dim` dimensions: centres N(0, sep^2), points N(centre, 1). Seeded.
struct Clusters {
  int64_t n = 0, dim = 0;
  std::vector<float> x;
  std::vector<int> label;
  MatrixView view() const { return {x.data(), n, dim}; }
};

Clusters clusters(int k, int perCluster, int dim, double sep, uint64_t seed, std::vector<float>* centres = nullptr) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0, 1);
  std::vector<float> c(static_cast<size_t>(k * dim));
  if (centres && !centres->empty()) c = *centres;
  else
    for (auto& v : c) v = static_cast<float>(sep * z(rng));
  if (centres) *centres = c;
  Clusters out;
  out.n = static_cast<int64_t>(k) * perCluster;
  out.dim = dim;
  for (int p = 0; p < perCluster; ++p)
    for (int q = 0; q < k; ++q) {
      for (int d = 0; d < dim; ++d) out.x.push_back(c[static_cast<size_t>(q * dim + d)] + static_cast<float>(z(rng)));
      out.label.push_back(q);
    }
  return out;
}

// Share of each cell's k nearest map neighbours that carry its label.
double labelAgreement(const std::vector<float>& map, int dims, const std::vector<int>& label, int k) {
  const int64_t n = static_cast<int64_t>(label.size());
  double sum = 0;
  std::vector<std::pair<float, int64_t>> d(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      float s = 0;
      for (int c = 0; c < dims; ++c) {
        const float v = map[static_cast<size_t>(i * dims + c)] - map[static_cast<size_t>(j * dims + c)];
        s += v * v;
      }
      d[static_cast<size_t>(j)] = {j == i ? 1e30f : s, j};
    }
    std::partial_sort(d.begin(), d.begin() + k, d.end());
    int same = 0;
    for (int q = 0; q < k; ++q) same += label[static_cast<size_t>(d[static_cast<size_t>(q)].second)] == label[static_cast<size_t>(i)];
    sum += static_cast<double>(same) / k;
  }
  return sum / static_cast<double>(n);
}

QString floats(const std::vector<float>& v) {
  QStringList s;
  for (float f : v) s << QString::number(static_cast<double>(f), 'g', 9);
  return s.join(',');
}

}  // namespace

class TestUmap : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void abMatchesScipyCurveFit();
  void bandwidthsHitLog2K();
  void clustersStayApartAndMapIsTrustworthy();
  void sameSeedSameMapAtAnyThreadCountOtherSeedDiffers();
  void connectedGraphGetsSpectralInit();
  void threeDimensions();
  void twoAndThreeDimensionalMapsShareOneGraph();
  void transformPlacesNewCellsOnTheirCluster();
  void trustworthinessMatchesSklearn();
  void badOptionsAreErrors();
  void cliWritesXUmapThatAnndataReads();
};

void TestUmap::abMatchesScipyCurveFit() {
  QString out, err;
  const int rc = uce::test::python(
      "import numpy as np\n"
      "from scipy.optimize import curve_fit\n"
      "for md, sp in [(0.1, 1.0), (0.5, 1.0), (0.3, 2.0), (0.0, 1.0)]:\n"
      "    xv = np.linspace(0, sp * 3, 300)\n"
      "    yv = np.where(xv < md, 1.0, np.exp(-(xv - md) / sp))\n"
      "    p, _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xv, yv)\n"
      "    print(md, sp, p[0], p[1])\n",
      &out, &err);
  QVERIFY2(rc == 0, qPrintable(err));
  for (const QString& line : out.split('\n', Qt::SkipEmptyParts)) {
    const QStringList f = line.split(' ');
    float a = 0, b = 0;
    findAB(f[1].toFloat(), f[0].toFloat(), a, b);
    QVERIFY2(std::fabs(a - f[2].toDouble()) < 2e-3 * f[2].toDouble() && std::fabs(b - f[3].toDouble()) < 2e-3,
             qPrintable(line + QString(" vs ours %1 %2").arg(a).arg(b)));
  }
}

void TestUmap::bandwidthsHitLog2K() {
  const Clusters c = clusters(3, 100, 8, 3.0, 7);
  KnnOptions ko;
  ko.k = 14;
  const KnnGraph g = knnGraph(c.view(), ko);
  std::vector<float> rho, sigma;
  smoothKnn(g, std::log2(15.0), 1, rho, sigma);
  for (int64_t i = 0; i < g.n; ++i) {
    QCOMPARE(rho[static_cast<size_t>(i)], g.dists(i)[0]);
    double s = 0;
    for (int j = 0; j < g.k; ++j)
      s += std::exp(-std::max(0.0, double(g.dists(i)[j]) - rho[static_cast<size_t>(i)]) / sigma[static_cast<size_t>(i)]);
    QVERIFY2(std::fabs(s - std::log2(15.0)) < 1e-3, qPrintable(QString::number(s)));
  }
  const FuzzyGraph f = fuzzyGraph(g, 15);
  // Fuzzy union is symmetric and every strength lies in (0, 1].
  std::map<std::pair<int64_t, int64_t>, float> w;
  for (int64_t i = 0; i < f.n; ++i)
    for (int64_t p = f.rowPtr[static_cast<size_t>(i)]; p < f.rowPtr[static_cast<size_t>(i + 1)]; ++p)
      w[{i, f.cols[static_cast<size_t>(p)]}] = f.weights[static_cast<size_t>(p)];
  for (const auto& [ij, v] : w) {
    QVERIFY(v > 0 && v <= 1);
    QCOMPARE(w.at({ij.second, ij.first}), v);
  }
}

void TestUmap::clustersStayApartAndMapIsTrustworthy() {
  const Clusters c = clusters(6, 250, 32, 4.0, 11);
  UmapOptions o;
  o.seed = 3;
  o.threads = 2;
  UmapReport r;
  const std::vector<float> map = umap(c.view(), o, &r);
  QCOMPARE(static_cast<int64_t>(map.size()), c.n * 2);
  for (float v : map) QVERIFY(std::isfinite(v));
  const double agree = labelAgreement(map, 2, c.label, 15);
  const MatrixView low{map.data(), c.n, 2};
  const double t = trustworthiness(c.view(), low, 15);
  qInfo("init %s, a %.3f b %.3f, %d epochs, label agreement %.4f, trustworthiness %.4f", r.init.c_str(), double(r.a),
        double(r.b), r.nEpochs, agree, t);
  QVERIFY2(agree > 0.95, qPrintable(QString::number(agree)));
  QVERIFY2(t > 0.9, qPrintable(QString::number(t)));
  QCOMPARE(r.nEpochs, 500);
}

void TestUmap::sameSeedSameMapAtAnyThreadCountOtherSeedDiffers() {
  const Clusters c = clusters(4, 150, 16, 2.0, 5);
  UmapOptions o;
  o.seed = 42;
  o.nEpochs = 100;
  o.threads = 1;
  const std::vector<float> one = umap(c.view(), o);
  o.threads = 2;
  const std::vector<float> two = umap(c.view(), o);
  o.threads = 3;
  const std::vector<float> three = umap(c.view(), o);
  QVERIFY(one == two);
  QVERIFY(one == three);
  o.seed = 43;
  const std::vector<float> other = umap(c.view(), o);
  double moved = 0;
  for (size_t i = 0; i < one.size(); ++i) moved = std::max(moved, double(std::fabs(one[i] - other[i])));
  QVERIFY2(moved > 0.1, qPrintable(QString::number(moved)));
}

void TestUmap::connectedGraphGetsSpectralInit() {
  // Overlapping clusters: one connected graph, so the Laplacian eigenvectors are used.
  const Clusters c = clusters(3, 200, 10, 1.0, 9);
  UmapOptions o;
  o.nEpochs = 50;
  UmapReport r;
  umap(c.view(), o, &r);
  QCOMPARE(QString::fromStdString(r.init), QString("spectral"));
  // Far-apart clusters: disconnected, so the documented seeded random fallback.
  const Clusters far = clusters(3, 100, 10, 50.0, 9);
  umap(far.view(), o, &r);
  QVERIFY2(QString::fromStdString(r.init).startsWith("random (the neighbour graph has 3 disconnected parts"),
           r.init.c_str());
}

void TestUmap::threeDimensions() {
  const Clusters c = clusters(5, 120, 16, 4.0, 21);
  UmapOptions o;
  o.dims = 3;
  o.nEpochs = 200;
  const std::vector<float> map = umap(c.view(), o);
  QCOMPARE(static_cast<int64_t>(map.size()), c.n * 3);
  QVERIFY(labelAgreement(map, 3, c.label, 15) > 0.95);
}

// The app maps an embedding in 2-D and 3-D: the second map reuses the first's kNN graph (the
// search is most of the time for a large dataset) and is the same map as one built on its own;
// cells without an embedding stay NaN in both.
void TestUmap::twoAndThreeDimensionalMapsShareOneGraph() {
  Clusters c = clusters(4, 100, 12, 4.0, 33);
  for (int d = 0; d < c.dim; ++d) c.x[static_cast<size_t>(7 * c.dim + d)] = std::nanf("");
  UmapOptions o;
  o.nEpochs = 100;
  KnnGraph graph;
  UmapReport r2, r3;
  int64_t mapped = 0;
  const std::vector<float> two = umapSkippingMissing(c.view(), o, &r2, &mapped, &graph);
  QCOMPARE(mapped, c.n - 1);
  QCOMPARE(graph.n, c.n - 1);
  QCOMPARE(QString::fromStdString(r2.knnMethod), QString("exact"));
  o.dims = 3;
  const std::vector<float> three = umapSkippingMissing(c.view(), o, &r3, nullptr, &graph);
  QCOMPARE(QString::fromStdString(r3.knnMethod), QString("reused"));
  const std::vector<float> alone = umapSkippingMissing(c.view(), o);  // NaN rows: compare the bytes
  QVERIFY(three.size() == alone.size() && std::memcmp(three.data(), alone.data(), three.size() * sizeof(float)) == 0);
  QCOMPARE(static_cast<int64_t>(three.size()), c.n * 3);
  QVERIFY(std::isnan(two[7 * 2]) && std::isnan(three[7 * 3 + 2]));
  QVERIFY(std::isfinite(three[8 * 3]));
  // A graph of other cells (another count) is not taken for this embedding's.
  const Clusters other = clusters(4, 90, 12, 4.0, 34);
  UmapReport r4;
  umapSkippingMissing(other.view(), o, &r4, nullptr, &graph);
  QCOMPARE(QString::fromStdString(r4.knnMethod), QString("exact"));
  QCOMPARE(graph.n, other.n);
}

void TestUmap::transformPlacesNewCellsOnTheirCluster() {
  std::vector<float> centres;
  const Clusters ref = clusters(5, 200, 24, 4.0, 31, &centres);
  const Clusters held = clusters(5, 20, 24, 4.0, 32, &centres);  // same centres, new cells
  UmapOptions o;
  o.seed = 1;
  const std::vector<float> map = umap(ref.view(), o);
  const std::vector<float> placed = umapTransform(ref.view(), map, held.view(), o);
  QCOMPARE(static_cast<int64_t>(placed.size()), held.n * 2);
  // The nearest reference cell on the map belongs to the new cell's cluster, and the new cell
  // lies within its cluster's spread of the cluster's centre on the map.
  std::vector<double> cx(5, 0), cy(5, 0), rad(5, 0);
  for (int64_t i = 0; i < ref.n; ++i) {
    cx[static_cast<size_t>(ref.label[static_cast<size_t>(i)])] += map[static_cast<size_t>(2 * i)] / 200.0;
    cy[static_cast<size_t>(ref.label[static_cast<size_t>(i)])] += map[static_cast<size_t>(2 * i + 1)] / 200.0;
  }
  for (int64_t i = 0; i < ref.n; ++i) {
    const size_t l = static_cast<size_t>(ref.label[static_cast<size_t>(i)]);
    rad[l] = std::max(rad[l], std::hypot(map[static_cast<size_t>(2 * i)] - cx[l], map[static_cast<size_t>(2 * i + 1)] - cy[l]));
  }
  int right = 0, nearestRight = 0;
  for (int64_t i = 0; i < held.n; ++i) {
    double best = 1e30;
    int bestLabel = -1;
    for (int64_t j = 0; j < ref.n; ++j) {
      const double d = std::hypot(placed[static_cast<size_t>(2 * i)] - map[static_cast<size_t>(2 * j)],
                                  placed[static_cast<size_t>(2 * i + 1)] - map[static_cast<size_t>(2 * j + 1)]);
      if (d < best) {
        best = d;
        bestLabel = ref.label[static_cast<size_t>(j)];
      }
    }
    const size_t l = static_cast<size_t>(held.label[static_cast<size_t>(i)]);
    const double fromCentre = std::hypot(placed[static_cast<size_t>(2 * i)] - cx[l], placed[static_cast<size_t>(2 * i + 1)] - cy[l]);
    right += bestLabel == held.label[static_cast<size_t>(i)] && fromCentre <= rad[l];
    nearestRight += bestLabel == held.label[static_cast<size_t>(i)];
  }
  qInfo("transform: %d of %lld nearest-label right", nearestRight, static_cast<long long>(held.n));
  QVERIFY2(right >= held.n * 98 / 100, qPrintable(QString("%1 of %2").arg(right).arg(held.n)));
  // The reference map is not moved, and the same call gives the same placement.
  QVERIFY(umapTransform(ref.view(), map, held.view(), o) == placed);
}

void TestUmap::trustworthinessMatchesSklearn() {
  const Clusters c = clusters(3, 60, 6, 1.5, 13);
  UmapOptions o;
  o.nEpochs = 100;
  const std::vector<float> map = umap(c.view(), o);
  const double ours = trustworthiness(c.view(), MatrixView{map.data(), c.n, 2}, 10);
  QString out, err;
  const int rc = uce::test::python(
      "import numpy as np\nfrom sklearn.manifold import trustworthiness\n"
      "X = np.array([" + floats(c.x) + "], dtype=np.float32).reshape(-1, 6)\n"
      "Y = np.array([" + floats(map) + "], dtype=np.float32).reshape(-1, 2)\n"
      "print(trustworthiness(X.astype(np.float64), Y.astype(np.float64), n_neighbors=10))\n",
      &out, &err);
  QVERIFY2(rc == 0, qPrintable(err));
  QVERIFY2(std::fabs(out.trimmed().toDouble() - ours) < 1e-6, qPrintable(out + " vs " + QString::number(ours)));
}

void TestUmap::badOptionsAreErrors() {
  const Clusters c = clusters(2, 20, 4, 3.0, 1);
  UmapOptions o;
  o.dims = 4;
  QVERIFY_THROWS_EXCEPTION(uce::Error, umap(c.view(), o));
  o = UmapOptions();
  o.minDist = 2;
  QVERIFY_THROWS_EXCEPTION(uce::Error, umap(c.view(), o));
  o = UmapOptions();
  o.nNeighbors = 1;
  QVERIFY_THROWS_EXCEPTION(uce::Error, umap(c.view(), o));
  std::vector<float> nan = c.x;
  nan[5] = std::nanf("");
  o = UmapOptions();
  QVERIFY_THROWS_EXCEPTION(uce::Error, umap(MatrixView{nan.data(), c.n, c.dim}, o));
  // More neighbours than cells: the graph uses all the cells there are.
  const Clusters few = clusters(1, 8, 4, 1.0, 2);
  o.nEpochs = 20;
  QCOMPARE(static_cast<int64_t>(umap(few.view(), o).size()), few.n * 2);
}

void TestUmap::cliWritesXUmapThatAnndataReads() {
  QTemporaryDir dir;
  const QString in = dir.filePath("emb.h5ad"), out = dir.filePath("emb_umap.h5ad");
  QString pout, perr;
  int rc = uce::test::python(
      "import numpy as np, anndata as ad, pandas as pd\n"
      "rng = np.random.default_rng(0)\n"
      "c = rng.normal(0, 4, (4, 16))\n"
      "lab = np.repeat(np.arange(4), 100)\n"
      "e = (c[lab] + rng.normal(0, 1, (400, 16))).astype(np.float32)\n"
      "e[[3, 50, 399]] = np.nan\n"
      "a = ad.AnnData(X=np.zeros((400, 5), dtype=np.float32), obs=pd.DataFrame({'cell_type': pd.Categorical(lab.astype(str))}, index=[f'c{i}' for i in range(400)]))\n"
      "a.obsm['X_uce'] = e\n"
      "a.write_h5ad('" + in + "')\n",
      &pout, &perr);
  QVERIFY2(rc == 0, qPrintable(perr));
  rc = uce::test::cli({"umap", "--adata", in, "--use-rep", "X_uce", "--out", out, "--seed", "4", "--threads", "2",
                       "--epochs", "200"},
                      &pout, &perr);
  QVERIFY2(rc == 0, qPrintable(perr));
  rc = uce::test::python(
      "import numpy as np, anndata as ad\n"
      "a = ad.read_h5ad('" + out + "')\n"
      "u = a.obsm['X_umap']\n"
      "assert u.dtype == np.float32 and u.shape == (400, 2), (u.dtype, u.shape)\n"
      "nan = np.isnan(u).any(axis=1)\n"
      "assert list(np.where(nan)[0]) == [3, 50, 399], np.where(nan)\n"
      "assert np.isnan(u[[3, 50, 399]]).all()\n"
      "assert 'X_uce' in a.obsm and a.uns['umap']['n_neighbors'] == 15\n"
      "lab = a.obs['cell_type'].astype(int).values\n"
      "ok = ~nan\n"
      "cent = np.array([u[ok & (lab == k)].mean(0) for k in range(4)])\n"
      "near = np.argmin(((u[ok][:, None, :] - cent[None]) ** 2).sum(-1), axis=1)\n"
      "print((near == lab[ok]).mean())\n",
      &pout, &perr);
  QVERIFY2(rc == 0, qPrintable(perr));
  QVERIFY2(pout.trimmed().toDouble() > 0.98, qPrintable(pout));
  // Same seed, same file content for X_umap; a missing representation names what is there.
  rc = uce::test::cli({"umap", "--adata", in, "--use-rep", "X_pca", "--out", out}, &pout, &perr);
  QVERIFY(rc != 0);
  QVERIFY2(perr.contains("X_pca") && perr.contains("X_uce") && perr.contains("emb.h5ad"), qPrintable(perr));
  rc = uce::test::cli({"umap", "--adata", in, "--out", out, "--dims", "5"}, &pout, &perr);
  QVERIFY(rc != 0);
  QVERIFY2(perr.contains("2 or 3"), qPrintable(perr));
}

QTEST_GUILESS_MAIN(TestUmap)
#include "test_umap.moc"
