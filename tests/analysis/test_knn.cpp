// kNN graph: exact search equals a brute-force check; HNSW on 120,000 clustered cells reaches
// recall@15 >= 0.95 against exact search; bad input is refused.
#include <QtTest>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "uce/core/analysis/knn.h"
#include "uce/core/error.h"

using namespace uce::analysis;

namespace {

// n cells around `clusters` centres in dim dimensions (a stand-in for cell types).
std::vector<float> clustered(int64_t n, int64_t dim, int clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> centres(static_cast<size_t>(clusters * dim));
  for (auto& c : centres) c = 4.f * g(rng);
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(rng() % static_cast<uint64_t>(clusters));
    for (int64_t j = 0; j < dim; ++j) x[static_cast<size_t>(i * dim + j)] = centres[static_cast<size_t>(c * dim + j)] + g(rng);
  }
  return x;
}

}  // namespace

class TestKnn : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void exactEqualsBruteForce() {
    const int64_t n = 3000, dim = 16;
    const int k = 10;
    const auto x = clustered(n, dim, 12, 1);
    KnnOptions o;
    o.k = k;
    o.method = KnnMethod::Exact;
    KnnReport rep;
    const KnnGraph g = knnGraph({x.data(), n, dim}, o, &rep);
    QCOMPARE(QString::fromStdString(rep.method), QString("exact"));
    QCOMPARE(rep.recall, 1.0);
    QCOMPARE(g.k, k);
    std::vector<std::pair<double, int64_t>> d(static_cast<size_t>(n));
    int64_t same = 0, total = 0;
    for (int64_t i = 0; i < n; i += 7) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t c = 0; c < dim; ++c) {
          const double t = double(x[static_cast<size_t>(i * dim + c)]) - double(x[static_cast<size_t>(j * dim + c)]);
          s += t * t;
        }
        d[static_cast<size_t>(j)] = {j == i ? INFINITY : std::sqrt(s), j};
      }
      std::partial_sort(d.begin(), d.begin() + k, d.end());
      // FAISS ranks by float32 squared distances (|x|^2 + |y|^2 - 2 x.y): neighbours whose
      // true distances differ by less than float rounding may swap. Each returned neighbour's
      // true distance must equal the brute-force distance at its rank.
      for (int r = 0; r < k; ++r) {
        const int64_t j = g.neighbours(i)[r];
        QVERIFY(j >= 0 && j != i);
        const double truth = d[static_cast<size_t>(r)].first;
        double s = 0;
        for (int64_t c = 0; c < dim; ++c) {
          const double t = double(x[static_cast<size_t>(i * dim + c)]) - double(x[static_cast<size_t>(j * dim + c)]);
          s += t * t;
        }
        QVERIFY2(std::fabs(std::sqrt(s) - truth) <= 1e-4 * std::max(1.0, truth),
                 qPrintable(QString("cell %1 rank %2: %3 vs brute force %4").arg(i).arg(r).arg(std::sqrt(s)).arg(truth)));
        QVERIFY(std::fabs(g.dists(i)[r] - truth) <= 1e-4 * std::max(1.0, truth));
        same += j == d[static_cast<size_t>(r)].second;
        ++total;
      }
    }
    QVERIFY2(same >= 0.99 * total, qPrintable(QString("%1 of %2 identical").arg(same).arg(total)));
  }

  void hnswRecallOnClusteredCells() {
    const int64_t n = 120000, dim = 32;
    const auto x = clustered(n, dim, 40, 2);
    KnnOptions o;  // Auto: HNSW from 100,000 cells
    o.k = 15;
    KnnReport rep;
    const auto t0 = std::chrono::steady_clock::now();
    const KnnGraph g = knnGraph({x.data(), n, dim}, o, &rep);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    QCOMPARE(QString::fromStdString(rep.method), QString("hnsw"));
    QVERIFY2(rep.recall >= 0.95, qPrintable(QString("reported recall@15 %1").arg(rep.recall)));
    // Our own check on another sample, through the public reference search.
    std::vector<int64_t> rows;
    for (int64_t i = 17; i < n; i += 397) rows.push_back(i);
    const double recall = recallAtK(g, exactNeighbours({x.data(), n, dim}, rows, 15), rows);
    QVERIFY2(recall >= 0.95, qPrintable(QString("recall@15 %1").arg(recall)));
    for (int64_t i = 0; i < n; i += 1000)
      for (int r = 0; r < g.k; ++r) {
        QVERIFY(g.neighbours(i)[r] != i);
        if (r) QVERIFY(g.dists(i)[r] >= g.dists(i)[r - 1]);
      }
    qInfo("HNSW 120,000 x 32: %.1f s, recall@15 %.4f (reported %.4f on %lld cells)", secs, recall, rep.recall,
          static_cast<long long>(rep.recallSample));
  }

  // When the sample's recall is short, the candidate list widens before every cell is
  // searched: the graph returned is the widened one, and the recall reported is that graph's
  // own recall on the sample (a 1M-cell run used to search every cell again at each doubling).
  void hnswWidensTheSearchBeforeSearchingEveryCell() {
    const int64_t n = 20000, dim = 48;
    std::mt19937_64 r(9);
    std::normal_distribution<float> nd;
    std::vector<float> x(static_cast<size_t>(n * dim));
    for (auto& v : x) v = nd(r);  // no clusters: the hardest case for a graph search
    KnnOptions o;
    o.k = 15;
    o.method = KnnMethod::Hnsw;
    o.efSearch = 16;
    std::vector<double> fractions;  // the job panel's bar: it never moves back while widening
    o.progress = [&](const char*, double f) {
      fractions.push_back(f);
      return true;
    };
    KnnReport rep;
    const KnnGraph g = knnGraph({x.data(), n, dim}, o, &rep);
    for (size_t i = 1; i < fractions.size(); ++i)
      QVERIFY2(fractions[i] >= fractions[i - 1],
               qPrintable(QString("progress %1 after %2").arg(fractions[i]).arg(fractions[i - 1])));
    QCOMPARE(fractions.back(), 1.0);
    QVERIFY2(rep.efSearch > 16, qPrintable(QString("efSearch stayed at %1 (recall %2)").arg(rep.efSearch).arg(rep.recall)));
    QVERIFY2(rep.recall >= 0.95, qPrintable(QString("reported recall@15 %1").arg(rep.recall)));
    // The same 1,000-cell sample the graph was checked on (seed 12345): its rows in the
    // returned graph have exactly the reported recall.
    std::vector<int64_t> all(static_cast<size_t>(n)), sample;
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    std::mt19937_64 srng(12345);
    std::sample(all.begin(), all.end(), std::back_inserter(sample), 1000, srng);
    const double own = recallAtK(g, exactNeighbours({x.data(), n, dim}, sample, 15), sample);
    QCOMPARE(own, rep.recall);
    std::vector<int64_t> rows;
    for (int64_t i = 3; i < n; i += 41) rows.push_back(i);
    const double other = recallAtK(g, exactNeighbours({x.data(), n, dim}, rows, 15), rows);
    QVERIFY2(other >= 0.93, qPrintable(QString("recall@15 on another sample %1").arg(other)));
    qInfo("uniform 20,000 x 48: efSearch 16 -> %d, recall@15 %.4f (another sample %.4f)", rep.efSearch,
          rep.recall, other);
  }

  // An HNSW graph is the same at any thread count and from run to run (a parallel FAISS build
  // inserts under locks, so its graph follows the threads' timing: the UMAP and the clusters on
  // it would change when the user changes the thread setting).
  void hnswSameGraphAtAnyThreadCount() {
    const int64_t n = 6000, dim = 24;
    const auto x = clustered(n, dim, 15, 3);
    KnnOptions o;
    o.k = 15;
    o.method = KnnMethod::Hnsw;
    o.threads = 1;
    const KnnGraph one = knnGraph({x.data(), n, dim}, o);
    o.threads = 2;
    const KnnGraph two = knnGraph({x.data(), n, dim}, o);
    const KnnGraph again = knnGraph({x.data(), n, dim}, o);
    QVERIFY(one.indices == two.indices);
    QVERIFY(two.indices == again.indices);
    QVERIFY(std::memcmp(one.distances.data(), two.distances.data(), one.distances.size() * sizeof(float)) == 0);
    // The graph's own distance (a vectorised L2 in place of FAISS's scalar one) is the true
    // Euclidean distance, for dimensions that are and are not multiples of its 8 lanes.
    for (int64_t i = 0; i < n; i += 97)
      for (int r = 0; r < one.k; ++r) {
        const int64_t j = one.neighbours(i)[r];
        double s = 0;
        for (int64_t c = 0; c < dim; ++c) {
          const double t = double(x[static_cast<size_t>(i * dim + c)]) - double(x[static_cast<size_t>(j * dim + c)]);
          s += t * t;
        }
        QVERIFY2(std::fabs(one.dists(i)[r] - std::sqrt(s)) <= 1e-4 * std::max(1.0, std::sqrt(s)),
                 qPrintable(QString("cell %1 rank %2: %3 vs %4").arg(i).arg(r).arg(one.dists(i)[r]).arg(std::sqrt(s))));
      }
    const int64_t odd = 13;  // 8 + 5: the tail loop
    const auto y = clustered(800, odd, 5, 4);
    const KnnGraph h = knnGraph({y.data(), 800, odd}, o);
    const KnnGraph e = exactNeighbours({y.data(), 800, odd}, [] {
      std::vector<int64_t> r(800);
      for (int64_t i = 0; i < 800; ++i) r[static_cast<size_t>(i)] = i;
      return r;
    }(), 15);
    for (int64_t i = 0; i < 800; ++i)
      QVERIFY(std::fabs(h.dists(i)[0] - e.dists(i)[0]) <= 1e-4 * std::max(1.0f, e.dists(i)[0]));
  }

  void fewCellsAndBadInput() {
    const std::vector<float> x = {0, 0, 1, 0, 3, 0};
    KnnOptions o;
    o.k = 15;
    const KnnGraph g = knnGraph({x.data(), 3, 2}, o);
    QCOMPARE(g.k, 2);  // at most n - 1 neighbours
    QCOMPARE(g.neighbours(0)[0], int64_t(1));
    QCOMPARE(g.neighbours(2)[1], int64_t(0));
    QCOMPARE(g.dists(2)[1], 3.f);
    QVERIFY_EXCEPTION_THROWN(knnGraph({x.data(), 1, 2}, o), uce::Error);
    std::vector<float> bad = x;
    bad[3] = NAN;
    try {
      knnGraph({bad.data(), 3, 2}, o);
      QFAIL("no error");
    } catch (const uce::Error& e) {
      QVERIFY(QString(e.what()).contains("row 1"));
    }
  }
};

QTEST_GUILESS_MAIN(TestKnn)
#include "test_knn.moc"
