// Progress and cancel inside the long analysis calls (progress.h): a hook that never cancels
// leaves the kNN graph, the UMAP map and the Leiden labels identical bit for bit to a run without
// one; its fractions climb from 0 to 1 without stepping back; a hook that says stop ends the call
// with uce::Error(Cancelled) (the UMAP after fewer epochs than asked, the eigensolver without
// falling back to a random start, Leiden after the iteration in progress, with no more calls).
#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "uce/core/analysis/cluster.h"
#include "uce/core/analysis/knn.h"
#include "uce/core/analysis/umap.h"
#include "uce/core/error.h"

using namespace uce::analysis;

namespace {

std::vector<float> clustered(int64_t n, int64_t dim, int clusters, uint64_t seed, float spread = 4.f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> centres(static_cast<size_t>(clusters * dim));
  for (auto& c : centres) c = spread * g(rng);
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(rng() % static_cast<uint64_t>(clusters));
    for (int64_t j = 0; j < dim; ++j) x[static_cast<size_t>(i * dim + j)] = centres[static_cast<size_t>(c * dim + j)] + g(rng);
  }
  return x;
}

// Records every call; says stop at call number `stopAt` (1-based; 0 = never).
struct Recorder {
  std::vector<double> fractions;
  std::vector<std::string> stages;
  int stopAt = 0;
  std::string stopStage;  // when set, count only calls of this stage towards stopAt
  int counted = 0;
  ProgressFn hook() {
    return [this](const char* stage, double f) {
      fractions.push_back(f);
      stages.emplace_back(stage);
      if (stopStage.empty() || stopStage == stage) ++counted;
      return !(stopAt > 0 && counted >= stopAt);
    };
  }
  int count(const std::string& stage) const {
    int c = 0;
    for (const auto& s : stages) c += s == stage;
    return c;
  }
  // Fractions in [0, 1], never decreasing, ending at 1.
  QString monotoneProblem() const {
    if (fractions.empty()) return "no progress calls";
    for (size_t i = 0; i < fractions.size(); ++i) {
      if (!(fractions[i] >= 0 && fractions[i] <= 1)) return QString("call %1: fraction %2").arg(i).arg(fractions[i]);
      if (i && fractions[i] < fractions[i - 1])
        return QString("call %1 (%2): %3 after %4").arg(i).arg(stages[i].c_str()).arg(fractions[i]).arg(fractions[i - 1]);
    }
    if (fractions.back() != 1.0) return QString("last fraction %1").arg(fractions.back());
    return {};
  }
};

bool sameGraph(const KnnGraph& a, const KnnGraph& b) {
  return a.n == b.n && a.k == b.k && a.indices.size() == b.indices.size() &&
         std::memcmp(a.indices.data(), b.indices.data(), a.indices.size() * sizeof(int64_t)) == 0 &&
         std::memcmp(a.distances.data(), b.distances.data(), a.distances.size() * sizeof(float)) == 0;
}

// Runs fn, which must throw uce::Error(Cancelled).
template <class Fn>
QString expectCancelled(Fn fn) {
  try {
    fn();
  } catch (const uce::Error& e) {
    if (e.kind() != uce::ErrorKind::Cancelled) return QString("error of another kind: ") + e.what();
    return {};
  } catch (const std::exception& e) {
    return QString("not a uce::Error: ") + e.what();
  }
  return "no error: the call ran to the end";
}

// Undirected graph of `groups` planted communities of `size` nodes, `degree` edges per node,
// 90% inside the community. Seeded.
WeightedGraph planted(int groups, int size, int degree, uint64_t seed) {
  std::mt19937_64 rng(seed);
  WeightedGraph g;
  g.n = static_cast<int64_t>(groups) * size;
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t i = 0; i < g.n; ++i)
    for (int e = 0; e < degree / 2; ++e) {
      const int64_t group = i / size;
      const int64_t j = u(rng) < 0.9 ? group * size + static_cast<int64_t>(rng() % static_cast<uint64_t>(size))
                                     : static_cast<int64_t>(rng() % static_cast<uint64_t>(g.n));
      if (j == i) continue;
      g.from.push_back(std::min(i, j));
      g.to.push_back(std::max(i, j));
      g.weight.push_back(0.5 + 0.5 * u(rng));
    }
  return g;
}

}  // namespace

class TestProgress : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void exactKnnSameGraphAndCancels() {
    // 8,000 x 256: the exact search runs in 8 blocks of ~1,000 rows.
    const int64_t n = 8000, dim = 256;
    const auto x = clustered(n, dim, 20, 1);
    KnnOptions o;
    o.k = 15;
    o.method = KnnMethod::Exact;
    const KnnGraph plain = knnGraph({x.data(), n, dim}, o);
    Recorder rec;
    o.progress = rec.hook();
    const KnnGraph hooked = knnGraph({x.data(), n, dim}, o);
    QVERIFY(sameGraph(plain, hooked));
    QVERIFY2(rec.monotoneProblem().isEmpty(), qPrintable(rec.monotoneProblem()));
    const int total = static_cast<int>(rec.fractions.size());
    QVERIFY2(total >= 6, qPrintable(QString::number(total)));
    QCOMPARE(rec.count("kNN graph"), total);

    Recorder stop;
    stop.stopAt = 3;
    o.progress = stop.hook();
    const QString why = expectCancelled([&] { knnGraph({x.data(), n, dim}, o); });
    QVERIFY2(why.isEmpty(), qPrintable(why));
    QCOMPARE(static_cast<int>(stop.fractions.size()), 3);  // nothing ran after the stop
    QVERIFY(stop.fractions.back() < 0.5);
  }

  void hnswSameGraphAndCancelsDuringTheBuild() {
    // One thread: FAISS's parallel HNSW insert depends on thread timing, so only a one-thread
    // build is reproducible at all. The hook's polls inside the build and the adaptive search
    // blocks must not change the graph.
    const int64_t n = 40000, dim = 24;
    const auto x = clustered(n, dim, 30, 2);
    KnnOptions o;
    o.k = 15;
    o.method = KnnMethod::Hnsw;
    o.threads = 1;
    o.efConstruction = 40;
    KnnReport plainReport, hookedReport;
    const KnnGraph plain = knnGraph({x.data(), n, dim}, o, &plainReport);
    Recorder rec;
    o.progress = rec.hook();
    const KnnGraph hooked = knnGraph({x.data(), n, dim}, o, &hookedReport);
    QVERIFY(sameGraph(plain, hooked));
    QCOMPARE(hookedReport.recall, plainReport.recall);
    QVERIFY2(rec.monotoneProblem().isEmpty(), qPrintable(rec.monotoneProblem()));
    // Polls inside the build (strictly between its start at 0 and its end at 0.5).
    int inBuild = 0;
    for (double f : rec.fractions) inBuild += f > 0 && f < 0.5;
    QVERIFY2(inBuild >= 1, qPrintable(QString::number(inBuild)));
    qInfo("HNSW %lld x %lld, 1 thread: %zu progress calls, %d inside the build", static_cast<long long>(n),
          static_cast<long long>(dim), rec.fractions.size(), inBuild);

    // Stop at the first poll inside the build: FAISS leaves its insert loop and the call throws.
    Recorder stop;
    stop.stopAt = 2;  // call 1 is the build's start (0)
    o.progress = stop.hook();
    const QString why = expectCancelled([&] { knnGraph({x.data(), n, dim}, o); });
    QVERIFY2(why.isEmpty(), qPrintable(why));
    QCOMPARE(static_cast<int>(stop.fractions.size()), 2);
    QVERIFY(stop.fractions.back() < 0.5);
    // FAISS stays usable: the same graph again, with no hook.
    o.progress = {};
    QVERIFY(sameGraph(plain, knnGraph({x.data(), n, dim}, o)));
  }

  void umapSameMapAndCancelsAfterFewerEpochs() {
    const int64_t n = 1500, dim = 16;
    const auto x = clustered(n, dim, 6, 3, 0.5f);  // overlapping: one connected graph
    UmapOptions o;
    o.seed = 7;
    o.nEpochs = 120;
    o.threads = 2;
    UmapReport plainReport;
    const std::vector<float> plain = umap({x.data(), n, dim}, o, &plainReport);
    QCOMPARE(QString::fromStdString(plainReport.init), QString("spectral"));
    Recorder rec;
    o.progress = rec.hook();
    const std::vector<float> hooked = umap({x.data(), n, dim}, o);
    QCOMPARE(hooked.size(), plain.size());
    QVERIFY(std::memcmp(hooked.data(), plain.data(), plain.size() * sizeof(float)) == 0);
    QVERIFY2(rec.monotoneProblem().isEmpty(), qPrintable(rec.monotoneProblem()));
    QCOMPARE(rec.count("UMAP layout"), o.nEpochs + 1);  // at the start and after every epoch
    QVERIFY(rec.count("kNN graph") >= 1);
    QVERIFY(rec.count("UMAP init") >= 1);
    // The shares: the kNN graph ends at 0.6, the layout starts at 0.6 + 0.4 * 0.2.
    for (size_t i = 0; i < rec.stages.size(); ++i) {
      if (rec.stages[i] == "kNN graph") QVERIFY(rec.fractions[i] <= 0.6);
      if (rec.stages[i] == "UMAP layout") QVERIFY(rec.fractions[i] >= 0.68 - 1e-12);
    }

    // Stop after 30 epochs: fewer than asked ran, and no map comes back.
    Recorder stop;
    stop.stopStage = "UMAP layout";
    stop.stopAt = 31;  // the layout's first call is its start, before epoch 1
    o.progress = stop.hook();
    const QString why = expectCancelled([&] { umap({x.data(), n, dim}, o); });
    QVERIFY2(why.isEmpty(), qPrintable(why));
    const int epochsRun = stop.count("UMAP layout") - 1;
    QCOMPARE(epochsRun, 30);
    QVERIFY(epochsRun < o.nEpochs);

    // A stop inside the spectral init is a cancel, not a failed eigensolver (no random start).
    Recorder stopInit;
    stopInit.stopStage = "UMAP init";
    stopInit.stopAt = 1;
    o.progress = stopInit.hook();
    const QString whyInit = expectCancelled([&] { umap({x.data(), n, dim}, o); });
    QVERIFY2(whyInit.isEmpty(), qPrintable(whyInit));
    QCOMPARE(stopInit.count("UMAP layout"), 0);

    // NaN rows (cells without an embedding) go through the same hook.
    std::vector<float> withNan = x;
    for (int64_t c = 0; c < dim; ++c) withNan[static_cast<size_t>(5 * dim + c)] = NAN;
    Recorder recNan;
    o.progress = recNan.hook();
    const auto mapNan = umapSkippingMissing({withNan.data(), n, dim}, o);
    QVERIFY(std::isnan(mapNan[10]) && std::isfinite(mapNan[0]));
    QVERIFY2(recNan.monotoneProblem().isEmpty(), qPrintable(recNan.monotoneProblem()));
  }

  void clusterSameLabelsAndCancels() {
    const int64_t n = 3000, dim = 12;
    const auto x = clustered(n, dim, 8, 4, 6.f);
    ClusterOptions o;
    o.leiden.seed = 3;
    ClusterReport plainReport;
    const Clustering plain = clusterEmbedding({x.data(), n, dim}, o, &plainReport);
    QVERIFY(plain.clusters >= 4);
    Recorder rec;
    o.progress = rec.hook();
    const Clustering hooked = clusterEmbedding({x.data(), n, dim}, o);
    QVERIFY(hooked.labels == plain.labels);
    QCOMPARE(hooked.modularity, plain.modularity);
    QVERIFY2(rec.monotoneProblem().isEmpty(), qPrintable(rec.monotoneProblem()));
    QVERIFY(rec.count("kNN graph") >= 1 && rec.count("Leiden") >= 2);

    Recorder stop;
    stop.stopStage = "Leiden";
    stop.stopAt = 1;
    o.progress = stop.hook();
    const QString why = expectCancelled([&] { clusterEmbedding({x.data(), n, dim}, o); });
    QVERIFY2(why.isEmpty(), qPrintable(why));
  }

  void leidenIterationByIterationEqualsOneCall() {
    // 60,000 nodes: igraph passes its interruption point (every ~10,000 node visits) many times
    // per iteration.
    const WeightedGraph g = planted(60, 1000, 12, 5);
    for (int iterations : {-1, 1, 4}) {
      LeidenOptions o;
      o.seed = 11;
      o.iterations = iterations;
      const Clustering plain = leiden(g, o);
      Recorder rec;
      o.progress = rec.hook();
      const Clustering hooked = leiden(g, o);
      QVERIFY2(hooked.labels == plain.labels, qPrintable(QString("iterations %1").arg(iterations)));
      QCOMPARE(hooked.clusters, plain.clusters);
      QCOMPARE(hooked.modularity, plain.modularity);
      QVERIFY2(rec.monotoneProblem().isEmpty(), qPrintable(rec.monotoneProblem()));
      QVERIFY2(rec.fractions.size() >= 4, qPrintable(QString::number(rec.fractions.size())));
      if (iterations > 0) {
        // After each iteration, exactly at its end of the bar.
        for (int it = 1; it <= iterations; ++it) {
          const double at = static_cast<double>(it) / iterations;
          bool seen = false;
          for (double f : rec.fractions) seen = seen || f == at;
          QVERIFY2(seen, qPrintable(QString("iteration %1 of %2").arg(it).arg(iterations)));
        }
      }
    }
    // A stop at igraph's second interruption point, inside the first iteration: that iteration
    // ends (igraph cannot be interrupted safely there), the next does not start.
    LeidenOptions o;
    o.seed = 11;
    o.iterations = 4;
    Recorder stop;
    stop.stopAt = 3;  // call 1: the start (0)
    o.progress = stop.hook();
    const QString why = expectCancelled([&] { leiden(g, o); });
    QVERIFY2(why.isEmpty(), qPrintable(why));
    QCOMPARE(static_cast<int>(stop.fractions.size()), 3);
    QVERIFY(stop.fractions.back() < 0.25);
    // The handler is gone: the next call runs normally.
    o.progress = {};
    const Clustering after = leiden(g, o);
    QVERIFY(after.clusters >= 30);
  }

  void aHookThatThrowsPassesItsErrorOn() {
    const WeightedGraph g = planted(20, 1000, 10, 6);
    LeidenOptions o;
    o.progress = [calls = 0](const char*, double) mutable -> bool {
      if (++calls == 2) throw std::runtime_error("hook broke");
      return true;
    };
    try {
      leiden(g, o);
      QFAIL("no error");
    } catch (const std::runtime_error& e) {
      QCOMPARE(QString(e.what()), QString("hook broke"));
    }
  }
};

QTEST_GUILESS_MAIN(TestProgress)
#include "test_progress.moc"
