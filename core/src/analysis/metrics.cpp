#include "uce/core/analysis/metrics.h"

#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

#include "uce/core/analysis/cluster.h"
#include "uce/core/error.h"
#include "uce/core/text.h"

extern "C" int dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                      const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
                      const double* beta, double* c, const int* ldc);  // BLAS (OpenBLAS), as FAISS uses

namespace uce::analysis {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

int32_t labelCount(const std::vector<int32_t>& labels) {
  int32_t m = -1;
  for (int32_t l : labels) m = std::max(m, l);
  return m + 1;
}

// Rows `rows` of x as a packed float matrix.
std::vector<float> gather(const MatrixView& x, const std::vector<int64_t>& rows) {
  std::vector<float> out(rows.size() * static_cast<size_t>(x.dim));
  for (size_t r = 0; r < rows.size(); ++r)
    std::copy(x.row(rows[r]), x.row(rows[r]) + x.dim, out.begin() + static_cast<int64_t>(r) * x.dim);
  return out;
}

void toDouble(const MatrixView& x, int64_t r0, int64_t r1, RowMatrix& out) {
  out.resize(r1 - r0, x.dim);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < x.dim; ++j) out(r - r0, j) = x.row(r)[j];
}

// out[R, C] (row-major) = a[R, dim] * b[C, dim]^T, both row-major, through BLAS (column-major:
// out^T = b * a^T). BLAS threads itself.
void gemmRowsByRows(const RowMatrix& a, const RowMatrix& b, double* out) {
  const int m = static_cast<int>(b.rows()), n = static_cast<int>(a.rows()), k = static_cast<int>(a.cols());
  const double one = 1, zero = 0;
  const char t = 'T', nn = 'N';
  dgemm_(&t, &nn, &m, &n, &k, &one, b.data(), &k, a.data(), &k, &zero, out, &m);
}

// Seeded sample of `want` of the indices 0..n-1, in increasing order.
std::vector<int64_t> sampleIndices(int64_t n, int64_t want, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  if (want >= n) return all;
  std::mt19937_64 rng(seed);
  std::vector<int64_t> out;
  std::sample(all.begin(), all.end(), std::back_inserter(out), want, rng);
  return out;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / static_cast<double>(v.size());
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

// Contingency table of two labelings: (a, b) -> count.
std::map<std::pair<int32_t, int32_t>, int64_t> contingency(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.size() != b.size()) fail(ErrorKind::InvalidArgument, "", "the two labelings cover different numbers of cells");
  std::map<std::pair<int32_t, int32_t>, int64_t> c;
  for (size_t i = 0; i < a.size(); ++i) ++c[{a[i], b[i]}];
  return c;
}

std::map<int32_t, int64_t> counts(const std::vector<int32_t>& a) {
  std::map<int32_t, int64_t> c;
  for (int32_t v : a) ++c[v];
  return c;
}

double entropy(const std::vector<int32_t>& a) {
  const double n = static_cast<double>(a.size());
  double h = 0;
  for (const auto& [label, c] : counts(a)) h -= (c / n) * (std::log(static_cast<double>(c)) - std::log(n));
  return h;
}

struct UnionFind {
  explicit UnionFind(int64_t n) : parent(static_cast<size_t>(n)) { std::iota(parent.begin(), parent.end(), 0); }
  int64_t find(int64_t i) {
    while (parent[static_cast<size_t>(i)] != i) i = parent[static_cast<size_t>(i)] = parent[static_cast<size_t>(parent[static_cast<size_t>(i)])];
    return i;
  }
  void join(int64_t a, int64_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[static_cast<size_t>(std::max(a, b))] = std::min(a, b);
  }
  std::vector<int64_t> parent;
};

// The first k neighbours of each cell (the graph holds at least k).
KnnGraph truncate(const KnnGraph& g, int k) {
  if (k >= g.k) return g;
  KnnGraph out;
  out.n = g.n;
  out.k = k;
  out.indices.resize(static_cast<size_t>(g.n * k));
  out.distances.resize(static_cast<size_t>(g.n * k));
  for (int64_t i = 0; i < g.n; ++i) {
    std::copy(g.neighbours(i), g.neighbours(i) + k, out.indices.begin() + i * k);
    std::copy(g.dists(i), g.dists(i) + k, out.distances.begin() + i * k);
  }
  return out;
}

std::string num(double v, int digits = 4) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

}  // namespace

std::vector<double> silhouetteSamples(const MatrixView& x, const std::vector<int32_t>& labels, int threads) {
  const int64_t n = x.n;
  if (static_cast<int64_t>(labels.size()) != n)
    fail(ErrorKind::InvalidArgument, "", "silhouette: the labels do not cover every cell");
  const int32_t L = labelCount(labels);
  std::vector<int64_t> count(static_cast<size_t>(std::max(L, 1)), 0);
  for (int32_t l : labels) {
    if (l < 0) fail(ErrorKind::InvalidArgument, "", "silhouette: a cell has no label");
    ++count[static_cast<size_t>(l)];
  }
  const int64_t distinct = std::count_if(count.begin(), count.end(), [](int64_t c) { return c > 0; });
  if (distinct < 2 || distinct >= n)
    fail(ErrorKind::InvalidArgument, "", "a silhouette needs at least 2 labels and fewer labels than cells (got " +
                                             std::to_string(distinct) + " labels for " + std::to_string(n) + " cells)");
  std::vector<double> norm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < x.dim; ++j) s += static_cast<double>(x.row(i)[j]) * x.row(i)[j];
    norm[static_cast<size_t>(i)] = s;
  }
  std::vector<double> out(static_cast<size_t>(n));
  const int nt = threads > 0 ? threads : omp_get_max_threads();
  // Blocks of rows against blocks of columns: dot products by BLAS dgemm (double precision),
  // then distances as sklearn's euclidean_distances computes them (|x|^2 + |y|^2 - 2 x.y,
  // clipped at 0, self = 0), summed per label of the column cell. Memory: O(block^2 + block * dim).
  const int64_t rowBlock = std::min<int64_t>(n, 1024), colBlock = std::min<int64_t>(n, 4096);
  RowMatrix xr, yc;
  std::vector<double> dot(static_cast<size_t>(rowBlock * colBlock));
  std::vector<double> sums;
  for (int64_t r0 = 0; r0 < n; r0 += rowBlock) {
    const int64_t r1 = std::min(n, r0 + rowBlock), R = r1 - r0;
    toDouble(x, r0, r1, xr);
    sums.assign(static_cast<size_t>(R * L), 0.0);
    for (int64_t c0 = 0; c0 < n; c0 += colBlock) {
      const int64_t c1 = std::min(n, c0 + colBlock), C = c1 - c0;
      toDouble(x, c0, c1, yc);
      gemmRowsByRows(xr, yc, dot.data());
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t i = r0; i < r1; ++i) {
        double* s = sums.data() + (i - r0) * L;
        const double* d = dot.data() + (i - r0) * C;
        const double ni = norm[static_cast<size_t>(i)];
        for (int64_t j = c0; j < c1; ++j) {
          if (i == j) continue;
          const double d2 = ni + norm[static_cast<size_t>(j)] - 2 * d[j - c0];
          s[labels[static_cast<size_t>(j)]] += std::sqrt(std::max(0.0, d2));
        }
      }
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = r0; i < r1; ++i) {
      const double* s = sums.data() + (i - r0) * L;
      const int32_t own = labels[static_cast<size_t>(i)];
      double& res = out[static_cast<size_t>(i)];
      if (count[static_cast<size_t>(own)] == 1) {
        res = 0;
        continue;
      }
      const double a = s[own] / static_cast<double>(count[static_cast<size_t>(own)] - 1);
      double bmin = INFINITY;
      for (int32_t l = 0; l < L; ++l)
        if (l != own && count[static_cast<size_t>(l)] > 0)
          bmin = std::min(bmin, s[l] / static_cast<double>(count[static_cast<size_t>(l)]));
      const double m = std::max(a, bmin);
      res = m > 0 ? (bmin - a) / m : 0.0;
    }
  }
  return out;
}

double silhouetteScore(const MatrixView& x, const std::vector<int32_t>& labels, int threads) {
  return mean(silhouetteSamples(x, labels, threads));
}

double normalizedMutualInfo(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const auto c = contingency(a, b);
  const auto ca = counts(a), cb = counts(b);
  if ((ca.size() == 1 && cb.size() == 1) || a.empty()) return 1.0;  // neither labeling splits the cells
  const double n = static_cast<double>(a.size());
  double mi = 0;
  for (const auto& [key, nij] : c) {
    const double v = static_cast<double>(nij);
    mi += (v / n) * (std::log(v) + std::log(n) - std::log(static_cast<double>(ca.at(key.first))) -
                     std::log(static_cast<double>(cb.at(key.second))));
  }
  mi = std::max(mi, 0.0);
  if (mi == 0) return 0.0;
  return mi / ((entropy(a) + entropy(b)) / 2);
}

double adjustedRandIndex(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  // sklearn's pair confusion matrix: pairs of cells together/apart in a and in b.
  const auto c = contingency(a, b);
  const long double n = static_cast<long double>(a.size());
  long double sumSq = 0, sumA = 0, sumB = 0;
  for (const auto& [key, nij] : c) sumSq += static_cast<long double>(nij) * nij;
  for (const auto& [l, v] : counts(a)) sumA += static_cast<long double>(v) * v;
  for (const auto& [l, v] : counts(b)) sumB += static_cast<long double>(v) * v;
  const long double tp = sumSq - n, fp = sumB - sumSq, fn = sumA - sumSq, tn = n * n - fp - fn - sumSq;
  if (fn == 0 && fp == 0) return 1.0;
  return static_cast<double>(2.0L * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)));
}

double graphConnectivity(const KnnGraph& g, const std::vector<int32_t>& labels) {
  if (static_cast<int64_t>(labels.size()) != g.n)
    fail(ErrorKind::InvalidArgument, "", "graph connectivity: the labels do not cover every cell");
  UnionFind uf(g.n);
  for (int64_t i = 0; i < g.n; ++i)
    for (int j = 0; j < g.k; ++j) {
      const int64_t t = g.neighbours(i)[j];
      if (t >= 0 && labels[static_cast<size_t>(i)] >= 0 && labels[static_cast<size_t>(i)] == labels[static_cast<size_t>(t)])
        uf.join(i, t);
    }
  const int32_t L = labelCount(labels);
  std::vector<int64_t> total(static_cast<size_t>(std::max(L, 0)), 0);
  std::map<int64_t, int64_t> component;  // root -> cells
  for (int64_t i = 0; i < g.n; ++i) {
    if (labels[static_cast<size_t>(i)] < 0) continue;
    ++total[static_cast<size_t>(labels[static_cast<size_t>(i)])];
    ++component[uf.find(i)];
  }
  std::vector<int64_t> largest(total.size(), 0);
  for (const auto& [root, size] : component) {
    int64_t& l = largest[static_cast<size_t>(labels[static_cast<size_t>(root)])];
    l = std::max(l, size);
  }
  std::vector<double> shares;
  for (size_t l = 0; l < total.size(); ++l)
    if (total[l] > 0) shares.push_back(static_cast<double>(largest[l]) / static_cast<double>(total[l]));
  return mean(shares);
}

std::vector<double> lisi(const KnnGraph& g, const std::vector<int32_t>& groups, double perplexity) {
  if (static_cast<int64_t>(groups.size()) != g.n)
    fail(ErrorKind::InvalidArgument, "", "LISI: the groups do not cover every cell");
  const int32_t G = labelCount(groups);
  const double logU = std::log(perplexity);
  std::vector<double> out(static_cast<size_t>(g.n), NAN);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < g.n; ++i) {
    // Harmony's compute_simpson: find beta with entropy(P) = log(perplexity), P ~ exp(-d * beta).
    const int64_t* nb = g.neighbours(i);
    const float* d = g.dists(i);
    std::vector<double> P(static_cast<size_t>(g.k), 0.0);
    double beta = 1, betaMin = -INFINITY, betaMax = INFINITY, H = 0;
    auto evaluate = [&] {
      double sum = 0, dp = 0;
      for (int j = 0; j < g.k; ++j) {
        P[static_cast<size_t>(j)] = nb[j] < 0 ? 0.0 : std::exp(-static_cast<double>(d[j]) * beta);
        sum += P[static_cast<size_t>(j)];
        dp += nb[j] < 0 ? 0.0 : d[j] * P[static_cast<size_t>(j)];
      }
      if (sum == 0) {
        H = 0;
        std::fill(P.begin(), P.end(), 0.0);
        return;
      }
      H = std::log(sum) + beta * dp / sum;
      for (double& p : P) p /= sum;
    };
    evaluate();
    double diff = H - logU;
    for (int t = 0; t < 50 && std::fabs(diff) >= 1e-5; ++t) {
      if (diff > 0) {
        betaMin = beta;
        beta = std::isinf(betaMax) ? beta * 2 : (beta + betaMax) / 2;
      } else {
        betaMax = beta;
        beta = std::isinf(betaMin) ? beta / 2 : (beta + betaMin) / 2;
      }
      evaluate();
      diff = H - logU;
    }
    if (H == 0) continue;  // calibration failed: NaN, left out of the median
    std::vector<double> mass(static_cast<size_t>(std::max(G, 1)), 0.0);
    for (int j = 0; j < g.k; ++j)
      if (nb[j] >= 0 && groups[static_cast<size_t>(nb[j])] >= 0)
        mass[static_cast<size_t>(groups[static_cast<size_t>(nb[j])])] += P[static_cast<size_t>(j)];
    double simpson = 0;
    for (double m : mass) simpson += m * m;
    if (simpson > 0) out[static_cast<size_t>(i)] = 1.0 / simpson;
  }
  return out;
}

double meanCosine(const MatrixView& x, int64_t sample, uint64_t seed) {
  const std::vector<int64_t> rows = sampleIndices(x.n, std::max<int64_t>(2, sample), seed);
  if (rows.size() < 2) return NAN;
  // Mean over distinct pairs of u_i . u_j (unit vectors) = (|sum u|^2 - sum |u|^2) / (m (m - 1)).
  std::vector<double> total(static_cast<size_t>(x.dim), 0.0);
  double self = 0;
  for (int64_t r : rows) {
    double nrm = 0;
    for (int64_t j = 0; j < x.dim; ++j) nrm += static_cast<double>(x.row(r)[j]) * x.row(r)[j];
    if (nrm <= 0) continue;  // a zero vector has no direction: counts as cosine 0
    nrm = std::sqrt(nrm);
    for (int64_t j = 0; j < x.dim; ++j) total[static_cast<size_t>(j)] += x.row(r)[j] / nrm;
    self += 1;
  }
  double sq = 0;
  for (double v : total) sq += v * v;
  const double m = static_cast<double>(rows.size());
  return (sq - self) / (m * (m - 1));
}

IntegrationMetrics integrationMetrics(const MatrixView& x, const std::vector<int32_t>& labelsIn,
                                      const std::vector<std::string>& labelNames,
                                      const std::vector<int32_t>& batchesIn, const MetricsOptions& o) {
  IntegrationMetrics m;
  m.cells = x.n;
  const bool hasBatch = !batchesIn.empty();
  if (static_cast<int64_t>(labelsIn.size()) != x.n || (hasBatch && static_cast<int64_t>(batchesIn.size()) != x.n))
    fail(ErrorKind::Shape, "", "the label/batch columns and the embedding have different numbers of cells");
  // Cells with an embedding, a label and (when asked) a batch.
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < x.n; ++i) {
    if (labelsIn[static_cast<size_t>(i)] < 0 || (hasBatch && batchesIn[static_cast<size_t>(i)] < 0)) continue;
    bool finite = true;
    for (int64_t j = 0; j < x.dim && finite; ++j) finite = std::isfinite(x.row(i)[j]);
    if (finite) keep.push_back(i);
  }
  m.cellsUsed = static_cast<int64_t>(keep.size());
  if (m.cellsUsed < 3)
    fail(ErrorKind::Empty, "", "only " + std::to_string(m.cellsUsed) +
                                   " cells have both an embedding and a label: metrics need at least 3");
  if (m.cellsUsed < x.n)
    m.notes.push_back(std::to_string(x.n - m.cellsUsed) + " cells without an embedding or a label were left out");
  const std::vector<float> packed = gather(x, keep);
  const MatrixView sub{packed.data(), m.cellsUsed, x.dim};
  // Dense codes over the cells kept.
  auto recode = [&](const std::vector<int32_t>& in, std::vector<int32_t>& out, std::vector<int32_t>& original) {
    std::map<int32_t, int32_t> map;
    for (int64_t r : keep) map.emplace(in[static_cast<size_t>(r)], 0);
    int32_t next = 0;
    for (auto& [from, to] : map) {
      to = next++;
      original.push_back(from);
    }
    out.resize(keep.size());
    for (size_t r = 0; r < keep.size(); ++r) out[r] = map.at(in[static_cast<size_t>(keep[r])]);
    return next;
  };
  std::vector<int32_t> labels, batches, labelOrig, batchOrig;
  m.labels = recode(labelsIn, labels, labelOrig);
  if (hasBatch) m.batches = recode(batchesIn, batches, batchOrig);

  std::vector<int32_t> isolatedCodes;  // codes of the isolated labels (filled with the batch metrics)
  // Collapse check first: a collapsed embedding makes every other number meaningless.
  m.meanCosine = meanCosine(sub, o.cosineSample, o.seed);
  if (m.meanCosine > o.collapseThreshold) {
    m.collapsed = true;
    m.warnings.push_back("embeddings look collapsed (mean cell-cell cosine " + num(m.meanCosine, 3) +
                         " > " + num(o.collapseThreshold, 2) + "): check the species and gene matching");
  }

  // Silhouettes (exact, O(n^2)): on a seeded sample above silhouetteMaxCells.
  std::vector<int64_t> silRows = sampleIndices(m.cellsUsed, o.silhouetteMaxCells, o.seed);
  m.silhouetteCells = static_cast<int64_t>(silRows.size());
  m.silhouetteSubsampled = m.silhouetteCells < m.cellsUsed;
  if (m.silhouetteSubsampled)
    m.notes.push_back("silhouettes (cell-type, batch, isolated-label ASW) computed on a seeded sample of " +
                      std::to_string(m.silhouetteCells) + " of " + std::to_string(m.cellsUsed) + " cells");
  const std::vector<float> silPacked = gather(sub, silRows);
  const MatrixView sil{silPacked.data(), m.silhouetteCells, x.dim};
  std::vector<int32_t> silLabels(silRows.size()), silBatches(hasBatch ? silRows.size() : 0);
  for (size_t r = 0; r < silRows.size(); ++r) {
    silLabels[r] = labels[static_cast<size_t>(silRows[r])];
    if (hasBatch) silBatches[r] = batches[static_cast<size_t>(silRows[r])];
  }
  const int64_t silDistinct = static_cast<int64_t>(counts(silLabels).size());
  std::vector<double> sLabel;
  if (silDistinct >= 2 && silDistinct < m.silhouetteCells) {
    sLabel = silhouetteSamples(sil, silLabels, o.threads);
    m.cellTypeAsw = (mean(sLabel) + 1) / 2;
  } else {
    m.notes.push_back("cell-type ASW needs at least 2 labels and fewer labels than cells");
  }

  if (hasBatch) {
    // Batch ASW: within each label, how well batches mix (1 - |silhouette of batch|).
    std::vector<double> perLabel;
    for (int32_t l = 0; l < m.labels; ++l) {
      std::vector<int64_t> rows;
      for (size_t r = 0; r < silLabels.size(); ++r)
        if (silLabels[r] == l) rows.push_back(static_cast<int64_t>(r));
      std::vector<int32_t> b(rows.size());
      for (size_t r = 0; r < rows.size(); ++r) b[r] = silBatches[static_cast<size_t>(rows[r])];
      const size_t nb = counts(b).size();
      if (nb <= 1 || nb == rows.size()) continue;  // scIB skips labels seen in one batch only
      std::vector<int32_t> dense;
      std::map<int32_t, int32_t> map;
      for (int32_t v : b) map.emplace(v, 0);
      int32_t next = 0;
      for (auto& [from, to] : map) to = next++;
      for (int32_t v : b) dense.push_back(map.at(v));
      const std::vector<float> lp = gather(sil, rows);
      const std::vector<double> s = silhouetteSamples(MatrixView{lp.data(), static_cast<int64_t>(rows.size()), x.dim},
                                                      dense, o.threads);
      double acc = 0;
      for (double v : s) acc += 1 - std::fabs(v);
      perLabel.push_back(acc / static_cast<double>(s.size()));
    }
    m.batchAsw = mean(perLabel);
    if (perLabel.empty()) m.notes.push_back("batch ASW: no label is shared by two or more batches");

    // Isolated labels: those present in the fewest batches; their cells' label silhouettes.
    // (Their F1 score comes with the clustering sweep below.)
    std::vector<std::map<int32_t, int64_t>> batchesPerLabel(static_cast<size_t>(m.labels));
    for (size_t r = 0; r < labels.size(); ++r) ++batchesPerLabel[static_cast<size_t>(labels[r])][batches[r]];
    size_t fewest = SIZE_MAX;
    for (const auto& bl : batchesPerLabel) fewest = std::min(fewest, bl.size());
    if (!sLabel.empty()) {
      std::vector<double> scores;
      for (int32_t l = 0; l < m.labels; ++l) {
        if (batchesPerLabel[static_cast<size_t>(l)].size() != fewest) continue;
        isolatedCodes.push_back(l);
        const int32_t orig = labelOrig[static_cast<size_t>(l)];
        m.isolatedLabels.push_back(orig < static_cast<int32_t>(labelNames.size()) ? labelNames[static_cast<size_t>(orig)]
                                                                                  : std::to_string(orig));
        std::vector<double> own;
        for (size_t r = 0; r < silLabels.size(); ++r)
          if (silLabels[r] == l) own.push_back(sLabel[r]);
        if (!own.empty()) scores.push_back((mean(own) + 1) / 2);
      }
      m.isolatedLabelAsw = mean(scores);
    }
  } else {
    m.notes.push_back("no batch column: batch ASW, iLISI and isolated-label scores need one");
  }

  // Graph metrics on the kNN graph of every kept cell.
  const int k = static_cast<int>(std::min<int64_t>(std::max(o.knnK, hasBatch ? o.lisiK : 0), m.cellsUsed - 1));
  KnnOptions ko;
  ko.k = k;
  ko.threads = o.threads;
  const KnnGraph big = knnGraph(sub, ko);
  const KnnGraph small = truncate(big, std::min(o.knnK, k));
  m.graphConnectivity = graphConnectivity(small, labels);

  // NMI / ARI: Leiden over scIB's resolution sweep, keeping the clustering with the best NMI.
  const WeightedGraph w = fuzzyConnectivities(small);
  double bestNmi = -1;
  std::vector<double> bestF1;  // per isolated label
  for (int step = 0;; ++step) {
    const double res = o.resolutionMin + step * o.resolutionStep;
    if (res > o.resolutionMax + 1e-9 || o.resolutionStep <= 0) break;
    LeidenOptions lo;
    lo.resolution = res;
    lo.seed = o.seed;
    const Clustering c = leiden(w, lo);
    // Isolated-label F1 (scIB's cluster variant): for each isolated label, the best F1 of
    // "cell in cluster k" against "cell has the label" over every cluster and resolution.
    if (!isolatedCodes.empty()) {
      if (bestF1.empty()) bestF1.assign(isolatedCodes.size(), 0.0);
      std::vector<int64_t> inCluster(static_cast<size_t>(c.clusters), 0);
      for (int32_t k : c.labels) ++inCluster[static_cast<size_t>(k)];
      for (size_t i = 0; i < isolatedCodes.size(); ++i) {
        std::vector<int64_t> both(static_cast<size_t>(c.clusters), 0);
        int64_t withLabel = 0;
        for (size_t r = 0; r < labels.size(); ++r)
          if (labels[r] == isolatedCodes[i]) ++withLabel, ++both[static_cast<size_t>(c.labels[r])];
        for (int32_t k = 0; k < c.clusters; ++k) {
          const double tp = static_cast<double>(both[static_cast<size_t>(k)]);
          const double f1 = tp > 0 ? 2 * tp / static_cast<double>(inCluster[static_cast<size_t>(k)] + withLabel) : 0.0;
          bestF1[i] = std::max(bestF1[i], f1);
        }
      }
    }
    const double v = normalizedMutualInfo(labels, c.labels);
    if (v > bestNmi) {
      bestNmi = v;
      m.nmi = v;
      m.ari = adjustedRandIndex(labels, c.labels);
      m.bestResolution = res;
      m.bestClusters = c.clusters;
    }
  }

  if (!bestF1.empty()) m.isolatedLabelF1 = mean(bestF1);

  if (hasBatch) {
    if (m.batches < 2) {
      m.notes.push_back("iLISI needs at least 2 batches");
    } else {
      const double med = median(lisi(big, batches, static_cast<double>(k) / 3.0));
      m.ilisi = (med - 1) / static_cast<double>(m.batches - 1);
    }
  }
  return m;
}

std::string toJson(const IntegrationMetrics& m) {
  auto list = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + jsonQuote(v[i]);
    return s + "]";
  };
  std::ostringstream o;
  o << "{\"cells\": " << m.cells << ", \"cells_used\": " << m.cellsUsed << ", \"labels\": " << m.labels
    << ", \"batches\": " << m.batches << ", \"cell_type_asw\": " << num(m.cellTypeAsw, 6)
    << ", \"batch_asw\": " << num(m.batchAsw, 6) << ", \"nmi\": " << num(m.nmi, 6) << ", \"ari\": " << num(m.ari, 6)
    << ", \"leiden_resolution\": " << num(m.bestResolution, 2) << ", \"leiden_clusters\": " << m.bestClusters
    << ", \"graph_connectivity\": " << num(m.graphConnectivity, 6)
    << ", \"isolated_label_asw\": " << num(m.isolatedLabelAsw, 6) << ", \"isolated_label_f1\": " << num(m.isolatedLabelF1, 6) << ", \"isolated_labels\": " << list(m.isolatedLabels)
    << ", \"ilisi\": " << num(m.ilisi, 6) << ", \"mean_cosine\": " << num(m.meanCosine, 6)
    << ", \"collapsed\": " << (m.collapsed ? "true" : "false") << ", \"silhouette_cells\": " << m.silhouetteCells
    << ", \"silhouette_subsampled\": " << (m.silhouetteSubsampled ? "true" : "false")
    << ", \"warnings\": " << list(m.warnings) << ", \"notes\": " << list(m.notes) << "}\n";
  return o.str();
}

std::string toText(const IntegrationMetrics& m) {
  auto row = [](const char* name, double v, const char* what) {
    char b[256];
    std::snprintf(b, sizeof b, "  %-20s %8s  %s\n", name, std::isfinite(v) ? num(v, 3).c_str() : "n/a", what);
    return std::string(b);
  };
  std::ostringstream o;
  o << "cells: " << m.cellsUsed << " of " << m.cells << " used, " << m.labels << " labels";
  if (m.batches) o << ", " << m.batches << " batches";
  o << "\n";
  o << "biology kept (higher = better)\n";
  o << row("cell-type ASW", m.cellTypeAsw, "label silhouette, (s + 1) / 2");
  o << row("NMI", m.nmi, ("Leiden vs labels, best at resolution " + num(m.bestResolution, 1)).c_str());
  o << row("ARI", m.ari, "same clustering");
  o << row("isolated-label ASW", m.isolatedLabelAsw, "labels in the fewest batches");
  o << row("isolated-label F1", m.isolatedLabelF1, "best cluster of each isolated label, over the sweep");
  o << "batches mixed (higher = better)\n";
  o << row("batch ASW", m.batchAsw, "1 - |batch silhouette| within labels");
  o << row("graph connectivity", m.graphConnectivity, "labels connected in the kNN graph");
  o << row("iLISI", m.ilisi, "batch diversity of neighbourhoods, scaled");
  o << "checks\n";
  o << row("mean cosine", m.meanCosine, m.collapsed ? "COLLAPSED" : "ok (< 0.95)");
  for (const auto& w : m.warnings) o << "warning: " << w << "\n";
  for (const auto& n : m.notes) o << "note: " << n << "\n";
  return o.str();
}

}  // namespace uce::analysis
