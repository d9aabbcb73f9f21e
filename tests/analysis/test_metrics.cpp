// Integration metrics: agree with scikit-learn on the same inputs, follow scIB's definitions,
// score a batch-mixed embedding above a batch-separated one, and flag collapsed embeddings.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstring>
#include <random>

#include "test_support.h"
#include "uce/core/analysis/metrics.h"

using namespace uce::analysis;

namespace {

void writeFloats(const QString& path, const std::vector<float>& v) {
  uce::test::writeAll(path, QByteArray(reinterpret_cast<const char*>(v.data()), static_cast<int>(v.size() * sizeof(float))));
}
void writeInts(const QString& path, const std::vector<int32_t>& v) {
  uce::test::writeAll(path, QByteArray(reinterpret_cast<const char*>(v.data()), static_cast<int>(v.size() * sizeof(int32_t))));
}
std::vector<double> readDoubles(const QString& path) {
  const QByteArray b = uce::test::readAll(path);
  std::vector<double> v(static_cast<size_t>(b.size()) / sizeof(double));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(double));
  return v;
}

// Cell types x batches: each type a Gaussian cluster; batch b shifts cells by b * batchShift
// along a direction of its own (0 = batches perfectly mixed).
struct Atlas {
  std::vector<float> x;
  std::vector<int32_t> type, batch;
  int64_t n = 0, dim = 0;
  MatrixView view() const { return MatrixView{x.data(), n, dim}; }
};

Atlas atlas(int types, int batches, int per, int dim, double batchShift, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::vector<std::vector<double>> centre(static_cast<size_t>(types)), shift(static_cast<size_t>(batches));
  for (auto& c : centre)
    for (int j = 0; j < dim; ++j) c.push_back(g(rng) * 8);
  for (auto& s : shift)
    for (int j = 0; j < dim; ++j) s.push_back(g(rng));
  Atlas a;
  a.dim = dim;
  for (int t = 0; t < types; ++t)
    for (int b = 0; b < batches; ++b)
      for (int i = 0; i < per; ++i) {
        for (int j = 0; j < dim; ++j)
          a.x.push_back(static_cast<float>(centre[static_cast<size_t>(t)][static_cast<size_t>(j)] + g(rng) +
                                           batchShift * shift[static_cast<size_t>(b)][static_cast<size_t>(j)]));
        a.type.push_back(t);
        a.batch.push_back(b);
      }
  a.n = static_cast<int64_t>(a.type.size());
  return a;
}

}  // namespace

class TestMetrics : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void silhouetteMatchesSklearn() {
    // Overlapping labels, unequal sizes, a singleton label (silhouette 0) and a label code with no cells.
    std::mt19937_64 rng(11);
    std::normal_distribution<double> g(0, 1);
    const int64_t n = 700, dim = 24;
    std::vector<float> x;
    std::vector<int32_t> labels;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t l = i == 0 ? 5 : static_cast<int32_t>(i % 4);
      labels.push_back(l);
      for (int64_t j = 0; j < dim; ++j) x.push_back(static_cast<float>(g(rng) + (j == l ? 2.0 : 0.0) + 30.0));
    }
    QTemporaryDir tmp;
    writeFloats(tmp.filePath("x.f32"), x);
    writeInts(tmp.filePath("l.i32"), labels);
    const std::vector<double> mine = silhouetteSamples(MatrixView{x.data(), n, dim}, labels, 2);
    QString out, err;
    QCOMPARE(uce::test::python(QString(R"(
import numpy as np
from sklearn.metrics import silhouette_samples
x = np.fromfile('%1', dtype=np.float32).reshape(%3, %4).astype(np.float64)
l = np.fromfile('%2', dtype=np.int32)
silhouette_samples(x, l).astype(np.float64).tofile('%5')
)").arg(tmp.filePath("x.f32"), tmp.filePath("l.i32")).arg(n).arg(dim).arg(tmp.filePath("s.f64")), &out, &err), 0);
    const std::vector<double> ref = readDoubles(tmp.filePath("s.f64"));
    QCOMPARE(ref.size(), mine.size());
    double worst = 0, meanRef = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      worst = std::max(worst, std::fabs(ref[i] - mine[i]));
      meanRef += ref[i] / static_cast<double>(ref.size());
    }
    QVERIFY2(worst < 1e-6, qPrintable(QString("max |diff| %1").arg(worst)));
    QCOMPARE(mine[0], 0.0);  // alone in its label
    QVERIFY(std::fabs(silhouetteScore(MatrixView{x.data(), n, dim}, labels) - meanRef) < 1e-6);
    // Thread count does not change the result.
    QVERIFY(silhouetteSamples(MatrixView{x.data(), n, dim}, labels, 1) == mine);
  }

  void nmiAndAriMatchSklearn() {
    std::mt19937_64 rng(3);
    std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> cases;
    std::vector<int32_t> a(1000), b(1000), c(1000);
    for (size_t i = 0; i < a.size(); ++i) {
      a[i] = static_cast<int32_t>(rng() % 7);
      b[i] = rng() % 4 == 0 ? static_cast<int32_t>(rng() % 9) : a[i] + 3;  // mostly agrees, renamed
      c[i] = static_cast<int32_t>(rng() % 3);
    }
    cases.push_back({a, b});
    cases.push_back({a, c});
    cases.push_back({a, a});
    cases.push_back({std::vector<int32_t>(50, 0), std::vector<int32_t>(50, 2)});  // neither splits: 1
    std::vector<int32_t> half(50, 0);
    for (size_t i = 25; i < 50; ++i) half[i] = 1;
    cases.push_back({half, std::vector<int32_t>(50, 0)});
    QTemporaryDir tmp;
    QString script = "import numpy as np\nfrom sklearn.metrics import normalized_mutual_info_score as nmi, adjusted_rand_score as ari\nr = []\n";
    for (size_t k = 0; k < cases.size(); ++k) {
      writeInts(tmp.filePath(QString("a%1").arg(k)), cases[k].first);
      writeInts(tmp.filePath(QString("b%1").arg(k)), cases[k].second);
      script += QString("a = np.fromfile('%1', dtype=np.int32); b = np.fromfile('%2', dtype=np.int32)\n"
                        "r += [nmi(a, b), ari(a, b)]\n")
                    .arg(tmp.filePath(QString("a%1").arg(k)), tmp.filePath(QString("b%1").arg(k)));
    }
    script += QString("np.array(r, dtype=np.float64).tofile('%1')\n").arg(tmp.filePath("r.f64"));
    QString out, err;
    QCOMPARE(uce::test::python(script, &out, &err), 0);
    const std::vector<double> ref = readDoubles(tmp.filePath("r.f64"));
    QCOMPARE(ref.size(), 2 * cases.size());
    for (size_t k = 0; k < cases.size(); ++k) {
      const double n = normalizedMutualInfo(cases[k].first, cases[k].second);
      const double r = adjustedRandIndex(cases[k].first, cases[k].second);
      QVERIFY2(std::fabs(n - ref[2 * k]) < 1e-6, qPrintable(QString("case %1 NMI %2 vs %3").arg(k).arg(n).arg(ref[2 * k])));
      QVERIFY2(std::fabs(r - ref[2 * k + 1]) < 1e-6, qPrintable(QString("case %1 ARI %2 vs %3").arg(k).arg(r).arg(ref[2 * k + 1])));
    }
  }

  void batchMixedScoresAboveBatchSeparated() {
    const Atlas mixed = atlas(4, 3, 70, 16, 0.0, 21), separated = atlas(4, 3, 70, 16, 6.0, 21);
    MetricsOptions o;
    const std::vector<std::string> names = {"T", "B", "NK", "mono"};
    const IntegrationMetrics m = integrationMetrics(mixed.view(), mixed.type, names, mixed.batch, o);
    const IntegrationMetrics s = integrationMetrics(separated.view(), separated.type, names, separated.batch, o);
    const QString detail = QString::fromStdString(toJson(m) + toJson(s));
    QVERIFY2(m.batchAsw > s.batchAsw + 0.1, qPrintable(detail));
    QVERIFY2(m.ilisi > s.ilisi + 0.3, qPrintable(detail));
    QVERIFY2(m.ilisi > 0.7, qPrintable(detail));  // 3 batches evenly mixed: iLISI close to 3
    QVERIFY2(m.graphConnectivity > 0.99, qPrintable(detail));
    QVERIFY2(m.cellTypeAsw > 0.7 && m.nmi > 0.95 && m.ari > 0.95, qPrintable(detail));
    QVERIFY(!m.collapsed && m.warnings.empty());
    QCOMPARE(m.cellsUsed, mixed.n);
    QCOMPARE(m.isolatedLabels.size(), size_t(4));  // every type is in all 3 batches
    QVERIFY(m.isolatedLabelAsw > 0.5);
    // Scores stay in [0, 1].
    for (double v : {m.cellTypeAsw, m.batchAsw, m.nmi, m.ari, m.graphConnectivity, m.isolatedLabelAsw, m.ilisi,
                     m.isolatedLabelF1, s.isolatedLabelF1, s.cellTypeAsw, s.batchAsw, s.nmi, s.ari, s.graphConnectivity, s.isolatedLabelAsw, s.ilisi})
      QVERIFY2(v >= -1e-9 && v <= 1 + 1e-9, qPrintable(detail));
  }

  void isolatedLabelIsTheOneInFewestBatches() {
    Atlas a = atlas(3, 2, 60, 8, 0.0, 5);
    // Drop type 2 from batch 1: type 2 is now the isolated label.
    std::vector<float> x;
    std::vector<int32_t> t, b;
    for (int64_t i = 0; i < a.n; ++i) {
      if (a.type[static_cast<size_t>(i)] == 2 && a.batch[static_cast<size_t>(i)] == 1) continue;
      x.insert(x.end(), a.x.begin() + i * a.dim, a.x.begin() + (i + 1) * a.dim);
      t.push_back(a.type[static_cast<size_t>(i)]);
      b.push_back(a.batch[static_cast<size_t>(i)]);
    }
    const IntegrationMetrics m = integrationMetrics(MatrixView{x.data(), static_cast<int64_t>(t.size()), a.dim}, t,
                                                    {"alpha", "beta", "gamma"}, b, MetricsOptions{});
    QCOMPARE(m.isolatedLabels, std::vector<std::string>{"gamma"});
    QVERIFY(m.isolatedLabelAsw > 0.7);
    // Its own cluster: one Leiden cluster holds exactly the gamma cells.
    QVERIFY2(m.isolatedLabelF1 > 0.95, qPrintable(QString::fromStdString(toJson(m))));

    // Gamma cells placed on top of alpha cells: no cluster separates them, F1 drops.
    std::vector<int64_t> alpha;
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] == 0) alpha.push_back(static_cast<int64_t>(i));
    size_t next = 0;
    std::vector<float> merged = x;
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] == 2) {
        const int64_t src = alpha[next++ % alpha.size()];
        for (int64_t j = 0; j < a.dim; ++j)
          merged[i * static_cast<size_t>(a.dim) + static_cast<size_t>(j)] =
              x[static_cast<size_t>(src * a.dim + j)] + 0.01f * static_cast<float>(j % 3);
      }
    const IntegrationMetrics h = integrationMetrics(MatrixView{merged.data(), static_cast<int64_t>(t.size()), a.dim}, t,
                                                    {"alpha", "beta", "gamma"}, b, MetricsOptions{});
    QVERIFY2(h.isolatedLabelF1 < 0.8 && h.isolatedLabelF1 > 0, qPrintable(QString::fromStdString(toJson(h))));
  }

  void collapsedEmbeddingWarns() {
    std::mt19937_64 rng(9);
    std::normal_distribution<double> g(0, 1);
    const int64_t n = 300, dim = 32;
    std::vector<float> x;
    std::vector<double> base;
    for (int64_t j = 0; j < dim; ++j) base.push_back(g(rng));
    std::vector<int32_t> labels;
    for (int64_t i = 0; i < n; ++i) {
      labels.push_back(static_cast<int32_t>(i % 3));
      for (int64_t j = 0; j < dim; ++j) x.push_back(static_cast<float>(base[static_cast<size_t>(j)] + 1e-3 * g(rng)));
    }
    const IntegrationMetrics m = integrationMetrics(MatrixView{x.data(), n, dim}, labels, {"a", "b", "c"}, {}, MetricsOptions{});
    QVERIFY(m.collapsed);
    QVERIFY(m.meanCosine > 0.99);
    QCOMPARE(m.warnings.size(), size_t(1));
    QVERIFY(QString::fromStdString(m.warnings[0]).contains("check the species and gene matching"));
    QVERIFY(std::isnan(m.batchAsw) && std::isnan(m.ilisi));
    // A healthy embedding does not warn.
    const Atlas ok = atlas(3, 1, 100, 32, 0, 2);
    QVERIFY(!integrationMetrics(ok.view(), ok.type, {"a", "b", "c"}, {}, MetricsOptions{}).collapsed);
  }

  void silhouetteSubsamplesLargeInputs() {
    const Atlas a = atlas(3, 2, 200, 8, 0.0, 8);
    MetricsOptions o;
    o.silhouetteMaxCells = 300;
    o.resolutionMax = 0.5;
    const IntegrationMetrics m = integrationMetrics(a.view(), a.type, {"a", "b", "c"}, a.batch, o);
    QVERIFY(m.silhouetteSubsampled);
    QCOMPARE(m.silhouetteCells, int64_t(300));
    QVERIFY(QString::fromStdString(toJson(m)).contains("seeded sample of 300 of 1200 cells"));
    const IntegrationMetrics again = integrationMetrics(a.view(), a.type, {"a", "b", "c"}, a.batch, o);
    QCOMPARE(again.cellTypeAsw, m.cellTypeAsw);  // seeded
    o.silhouetteMaxCells = 100000;
    const IntegrationMetrics full = integrationMetrics(a.view(), a.type, {"a", "b", "c"}, a.batch, o);
    QVERIFY(std::fabs(full.cellTypeAsw - m.cellTypeAsw) < 0.02);
  }

  void cliMatchesScibDefinitions() {
    // End to end: `uce metrics --json` on an h5ad, against sklearn-based scIB formulas.
    QTemporaryDir tmp;
    const QString in = tmp.filePath("atlas.h5ad");
    QString out, err;
    QCOMPARE(uce::test::python(QString(R"(
import anndata as ad, numpy as np, pandas as pd
rng = np.random.default_rng(1)
types = np.repeat(np.arange(4), 150); batch = np.tile(np.arange(3), 200)
centres = rng.normal(0, 5, (4, 12)); shifts = rng.normal(0, 0.4, (3, 12))
emb = (centres[types] + shifts[batch] + rng.normal(0, 1, (600, 12))).astype(np.float32)
emb[7] = np.nan
names = np.array(['T cell', 'B cell', 'NK cell', 'monocyte'])
a = ad.AnnData(X=np.zeros((600, 2), dtype=np.float32), obs=pd.DataFrame(
    {'cell_type': pd.Categorical(names[types]), 'batch': pd.Categorical(['b%d' % b for b in batch])},
    index=['c%d' % i for i in range(600)]))
a.obsm['X_uce'] = emb
a.write_h5ad('%1')
)").arg(in), &out, &err), 0);
    QCOMPARE(uce::test::cli({"metrics", "--adata", in, "--use-rep", "X_uce", "--label", "cell_type", "--batch", "batch",
                             "--json"}, &out, &err), 0);
    QJsonParseError pe;
    const QJsonObject o = QJsonDocument::fromJson(out.toUtf8(), &pe).object();
    QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(pe.errorString() + "\n" + out));
    QCOMPARE(o["cells"].toInt(), 600);
    QCOMPARE(o["cells_used"].toInt(), 599);
    QCOMPARE(o["batches"].toInt(), 3);
    QString ref;
    QCOMPARE(uce::test::python(QString(R"(
import anndata as ad, numpy as np
from sklearn.metrics import silhouette_samples
a = ad.read_h5ad('%1'); ok = ~np.isnan(a.obsm['X_uce']).any(1); a = a[ok]
x = a.obsm['X_uce'].astype(np.float64); t = a.obs['cell_type'].values; b = a.obs['batch'].values
s = silhouette_samples(x, t)
per = []
for lab in np.unique(t):
    m = t == lab
    if len(np.unique(b[m])) in (1, m.sum()): continue
    per.append(np.mean(1 - np.abs(silhouette_samples(x[m], b[m]))))
print('%.9f %.9f' % ((s.mean() + 1) / 2, np.mean(per)))
)").arg(in), &ref, &err), 0);
    const QStringList v = ref.trimmed().split(' ');
    QVERIFY2(v.size() == 2, qPrintable(ref + err));
    QVERIFY2(std::fabs(o["cell_type_asw"].toDouble() - v[0].toDouble()) < 1e-6, qPrintable(out + ref));
    QVERIFY2(std::fabs(o["batch_asw"].toDouble() - v[1].toDouble()) < 1e-6, qPrintable(out + ref));
    QVERIFY2(o["nmi"].toDouble() > 0.9 && o["ari"].toDouble() > 0.9, qPrintable(out));
    QVERIFY(o["ilisi"].isDouble() && o["graph_connectivity"].isDouble());
    QCOMPARE(o["collapsed"].toBool(), false);
    // The table names each score.
    QCOMPARE(uce::test::cli({"metrics", "--adata", in, "--label", "cell_type"}, &out, &err), 0);
    QVERIFY2(out.contains("cell-type ASW") && out.contains("NMI") && out.contains("no batch column"), qPrintable(out));
    // Errors name the file and the column.
    QVERIFY(uce::test::cli({"metrics", "--adata", in, "--label", "celltype"}, &out, &err) != 0);
    QVERIFY2(err.startsWith("error:") && err.contains("atlas.h5ad") && err.contains("celltype") &&
                 err.contains("cell_type"), qPrintable(err));
  }

  void cliWarnsOnCollapse() {
    QTemporaryDir tmp;
    const QString in = tmp.filePath("collapsed.h5ad");
    QString out, err;
    QCOMPARE(uce::test::python(QString(R"(
import anndata as ad, numpy as np, pandas as pd
rng = np.random.default_rng(2)
emb = (rng.normal(0, 1, 64)[None, :] + rng.normal(0, 1e-3, (200, 64))).astype(np.float32)
a = ad.AnnData(X=np.zeros((200, 2), dtype=np.float32), obs=pd.DataFrame(
    {'cell_type': pd.Categorical(['x', 'y'] * 100)}, index=['c%d' % i for i in range(200)]))
a.obsm['X_uce'] = emb
a.write_h5ad('%1')
)").arg(in), &out, &err), 0);
    QCOMPARE(uce::test::cli({"metrics", "--adata", in, "--label", "cell_type", "--json"}, &out, &err), 0);
    QVERIFY2(err.contains("warning: embeddings look collapsed") && err.contains("check the species and gene matching"),
             qPrintable(err));
    QVERIFY(out.contains("\"collapsed\": true"));
  }
};

QTEST_GUILESS_MAIN(TestMetrics)
#include "test_metrics.moc"
