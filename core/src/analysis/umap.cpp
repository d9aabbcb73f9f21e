#include "uce/core/analysis/umap.h"

#include <faiss/IndexFlat.h>

#include <Eigen/Core>
#include <Spectra/SymEigsSolver.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

#include "uce/core/error.h"

namespace uce::analysis {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int threadCount(int requested) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// Runs fn(begin, end) over [0, n) split into `parts` contiguous ranges, one thread each.
template <class Fn>
void parallelRanges(int64_t n, int parts, const Fn& fn) {
  parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(parts, n)));
  if (parts == 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < parts; ++t) {
    const int64_t b = n * t / parts, e = n * (t + 1) / parts;
    pool.emplace_back([&fn, b, e] { fn(b, e); });
  }
  for (auto& th : pool) th.join();
}

// splitmix64: the per-(seed, epoch, cell) random streams and the init noise.
inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline double uniform01(uint64_t& s) { return static_cast<double>(splitmix(s) >> 11) * 0x1.0p-53; }

void checkOptions(const UmapOptions& o) {
  auto bad = [](const std::string& m) { fail(ErrorKind::InvalidArgument, "", "UMAP: " + m); };
  if (o.dims < 2 || o.dims > 3) bad("the map must have 2 or 3 dimensions, not " + std::to_string(o.dims));
  if (o.nNeighbors < 2) bad("n_neighbors must be at least 2 (it counts the cell itself)");
  if (!(o.spread > 0)) bad("spread must be positive");
  if (!(o.minDist >= 0) || o.minDist > o.spread) bad("min_dist must be between 0 and spread (" + std::to_string(o.spread) + ")");
  if (o.nEpochs < 0) bad("n_epochs must be 0 (automatic) or positive");
  if (!(o.learningRate > 0)) bad("the learning rate must be positive");
  if (!(o.negativeSampleRate >= 0)) bad("the negative sample rate must not be negative");
}

// Edges of a sparse graph in CSR order, ready for SGD.
struct Edges {
  std::vector<int64_t> rowPtr, cols;
  std::vector<float> weights;
};

// Drops edges below max / nEpochs (they would be sampled less than once; umap-learn does the same).
Edges prune(const std::vector<int64_t>& rowPtr, const std::vector<int64_t>& cols, const std::vector<float>& w,
            int nEpochs) {
  Edges e;
  const float wmax = w.empty() ? 0.f : *std::max_element(w.begin(), w.end());
  const float cut = wmax / static_cast<float>(nEpochs);
  const int64_t n = static_cast<int64_t>(rowPtr.size()) - 1;
  e.rowPtr.assign(static_cast<size_t>(n + 1), 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = rowPtr[static_cast<size_t>(i)]; p < rowPtr[static_cast<size_t>(i + 1)]; ++p)
      if (w[static_cast<size_t>(p)] >= cut && w[static_cast<size_t>(p)] > 0) {
        e.cols.push_back(cols[static_cast<size_t>(p)]);
        e.weights.push_back(w[static_cast<size_t>(p)]);
      }
    e.rowPtr[static_cast<size_t>(i + 1)] = static_cast<int64_t>(e.cols.size());
  }
  return e;
}

struct SgdParams {
  int dims = 2;
  float a = 1, b = 1, gamma = 1, alpha0 = 1, negativeRate = 5;
  int nEpochs = 200;
  uint64_t seed = 0;
  int threads = 1;
  bool fit = true;  // true: tail == head (read from the epoch-start copy); false: tail fixed
};

// A uniform integer in [0, n) from 64 random bits (multiply-shift; n < 2^32): no division.
inline int64_t below(uint64_t r, int64_t n) {
  if (n > int64_t{0xFFFFFFFF}) return static_cast<int64_t>(r % static_cast<uint64_t>(n));
  return static_cast<int64_t>(((r >> 32) * static_cast<uint64_t>(n)) >> 32);
}

inline float clip4(float v) { return v > 4.f ? 4.f : (v < -4.f ? -4.f : v); }

// SGD of umap-learn's optimize_layout_euclidean, made deterministic (see umap.h).
// head [nHead, dims] is moved; tail [nTail, dims] holds the positions edges point at.
// progress: "UMAP layout" after every epoch.
void optimizeLayout(const Edges& g, std::vector<float>& head, const float* tail, int64_t nTail, const SgdParams& p,
                    const ProgressFn& progress) {
  const int64_t nHead = static_cast<int64_t>(g.rowPtr.size()) - 1;
  const size_t ne = g.weights.size();
  reportProgress(progress, "UMAP layout", 0);
  if (ne == 0 || p.nEpochs == 0) {
    reportProgress(progress, "UMAP layout", 1);
    return;
  }
  const float wmax = *std::max_element(g.weights.begin(), g.weights.end());
  std::vector<float> eps(ne), epsNeg(ne), next(ne), nextNeg(ne);
  for (size_t e = 0; e < ne; ++e) {
    eps[e] = wmax / g.weights[e];
    epsNeg[e] = p.negativeRate > 0 ? eps[e] / p.negativeRate : std::numeric_limits<float>::infinity();
    next[e] = eps[e];
    nextNeg[e] = epsNeg[e];
  }
  const int d = p.dims;
  // In the fit, both samplings of a symmetric pair pull this end (see umap.h). New cells in a
  // transform get the same double pull, so they feel the forces a reference cell felt and settle
  // where one would (umap-learn's transform pulls once, which leaves new cells on the outskirts).
  const float pull = 2.f;
  std::vector<float> snapshot;
  const float* others = tail;
  for (int epoch = 0; epoch < p.nEpochs; ++epoch) {
    const float alpha = p.alpha0 * (1.f - static_cast<float>(epoch) / static_cast<float>(p.nEpochs));
    if (p.fit) {
      snapshot = head;
      others = snapshot.data();
    }
    const float fe = static_cast<float>(epoch);
    parallelRanges(nHead, p.threads, [&](int64_t begin, int64_t end) {
      float cur[3];
      for (int64_t i = begin; i < end; ++i) {
        uint64_t rng = p.seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(epoch + 1));
        rng ^= 0x8CB92BA72F3D8DD7ull * static_cast<uint64_t>(i + 1);
        splitmix(rng);
        float* h = head.data() + i * d;
        for (int c = 0; c < d; ++c) cur[c] = h[c];
        for (int64_t q = g.rowPtr[static_cast<size_t>(i)]; q < g.rowPtr[static_cast<size_t>(i + 1)]; ++q) {
          const size_t e = static_cast<size_t>(q);
          if (next[e] > fe) continue;
          const float* o = others + g.cols[e] * d;
          float dsq = 0;
          for (int c = 0; c < d; ++c) dsq += (cur[c] - o[c]) * (cur[c] - o[c]);
          if (dsq > 0) {
            const float db = std::pow(dsq, p.b);  // d^(2b); d^(2b-2) = d^(2b) / d^2
            const float coeff = -2.f * p.a * p.b * (db / dsq) / (p.a * db + 1.f);
            for (int c = 0; c < d; ++c) cur[c] += pull * clip4(coeff * (cur[c] - o[c])) * alpha;
          }
          next[e] += eps[e];
          // The edge's negative samples all push from the same position and their pushes are
          // summed, instead of each starting where the one before left the cell: the samples no
          // longer wait on each other (the SGD was bound by that chain of latencies), and the
          // steps are small (alpha <= 1, each clipped at 4), so the layout is the same in kind.
          const int nneg = static_cast<int>((fe - nextNeg[e]) / epsNeg[e]);
          float push[3] = {0.f, 0.f, 0.f};
          for (int s = 0; s < nneg; ++s) {
            const int64_t k = below(splitmix(rng), nTail);
            if (p.fit && k == i) continue;
            const float* on = others + k * d;
            float nsq = 0;
            for (int c = 0; c < d; ++c) nsq += (cur[c] - on[c]) * (cur[c] - on[c]);
            if (!(nsq > 0)) continue;
            const float coeff = 2.f * p.gamma * p.b / ((0.001f + nsq) * (p.a * std::pow(nsq, p.b) + 1.f));
            for (int c = 0; c < d; ++c) push[c] += clip4(coeff * (cur[c] - on[c])) * alpha;
          }
          for (int c = 0; c < d; ++c) cur[c] += push[c];
          nextNeg[e] += static_cast<float>(nneg) * epsNeg[e];
        }
        for (int c = 0; c < d; ++c) h[c] = cur[c];
      }
    });
    reportProgress(progress, "UMAP layout", static_cast<double>(epoch + 1) / static_cast<double>(p.nEpochs));
  }
}

int autoEpochs(int64_t n, int requested) { return requested > 0 ? requested : (n <= 10000 ? 500 : 200); }

// Rescales each column into [0, 10] (umap-learn does this to every initialisation).
void scaleTo10(std::vector<float>& coords, int64_t n, int dims) {
  for (int c = 0; c < dims; ++c) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, coords[static_cast<size_t>(i * dims + c)]);
      hi = std::max(hi, coords[static_cast<size_t>(i * dims + c)]);
    }
    const float span = hi > lo ? hi - lo : 1.f;
    for (int64_t i = 0; i < n; ++i) {
      float& v = coords[static_cast<size_t>(i * dims + c)];
      v = 10.f * (v - lo) / span;
    }
  }
}

void randomInit(int64_t n, int dims, uint64_t seed, std::vector<float>& coords) {
  uint64_t s = seed ^ 0x5851F42D4C957F2Dull;
  coords.resize(static_cast<size_t>(n * dims));
  for (auto& v : coords) v = static_cast<float>(uniform01(s) * 20.0 - 10.0);
  scaleTo10(coords, n, dims);
}

int64_t components(const FuzzyGraph& g) {
  std::vector<int64_t> parent(static_cast<size_t>(g.n));
  std::iota(parent.begin(), parent.end(), int64_t{0});
  auto find = [&](int64_t x) {
    while (parent[static_cast<size_t>(x)] != x) {
      parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
      x = parent[static_cast<size_t>(x)];
    }
    return x;
  };
  int64_t count = g.n;
  for (int64_t i = 0; i < g.n; ++i)
    for (int64_t p = g.rowPtr[static_cast<size_t>(i)]; p < g.rowPtr[static_cast<size_t>(i + 1)]; ++p) {
      const int64_t a = find(i), b = find(g.cols[static_cast<size_t>(p)]);
      if (a != b) {
        parent[static_cast<size_t>(a)] = b;
        --count;
      }
    }
  return count;
}

// y = x + D^-1/2 W D^-1/2 x: the normalised adjacency shifted into [0, 2], whose largest
// eigenvalues are the smallest of the normalised Laplacian I - D^-1/2 W D^-1/2.
class ShiftedAdjacency {
 public:
  using Scalar = double;
  ShiftedAdjacency(const FuzzyGraph& g, const std::vector<double>& invSqrtDeg, int threads, const ProgressFn& progress)
      : g_(g), s_(invSqrtDeg), threads_(threads), progress_(progress) {}
  Eigen::Index rows() const { return static_cast<Eigen::Index>(g_.n); }
  Eigen::Index cols() const { return static_cast<Eigen::Index>(g_.n); }
  void perform_op(const double* x, double* y) const {
    parallelRanges(g_.n, threads_, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        double acc = 0;
        for (int64_t p = g_.rowPtr[static_cast<size_t>(i)]; p < g_.rowPtr[static_cast<size_t>(i + 1)]; ++p) {
          const int64_t j = g_.cols[static_cast<size_t>(p)];
          acc += static_cast<double>(g_.weights[static_cast<size_t>(p)]) * s_[static_cast<size_t>(j)] * x[j];
        }
        y[i] = x[i] + s_[static_cast<size_t>(i)] * acc;
      }
    });
    // Spectra's iteration count is not known in advance: a share that approaches 1 (half at
    // 600 products, about ten restarts of a 64-vector Lanczos basis).
    ++products_;
    reportProgress(progress_, "UMAP init", static_cast<double>(products_) / static_cast<double>(products_ + 600));
  }

 private:
  const FuzzyGraph& g_;
  const std::vector<double>& s_;
  int threads_;
  const ProgressFn& progress_;
  mutable int64_t products_ = 0;
};

void checkFinite(const MatrixView& x, const char* what) {
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t j = 0; j < x.dim; ++j)
      if (!std::isfinite(x.row(i)[j]))
        fail(ErrorKind::NotFinite, "", std::string("row ") + std::to_string(i) + " of the " + what +
                                           " is not finite (NaN or Inf): leave out cells without an embedding first");
}

}  // namespace

void smoothKnn(const KnnGraph& g, double target, int localConnectivity, std::vector<float>& rho,
               std::vector<float>& sigma) {
  rho.assign(static_cast<size_t>(g.n), 0.f);
  sigma.assign(static_cast<size_t>(g.n), 1.f);
  double meanAll = 0;
  int64_t countAll = 0;
  for (int64_t i = 0; i < g.n; ++i)
    for (int j = 0; j < g.k; ++j)
      if (g.neighbours(i)[j] >= 0) {
        meanAll += g.dists(i)[j];
        ++countAll;
      }
  meanAll = countAll ? meanAll / static_cast<double>(countAll) : 0;
  for (int64_t i = 0; i < g.n; ++i) {
    const int64_t* nb = g.neighbours(i);
    const float* ds = g.dists(i);
    double r = 0, mean = 0;
    int valid = 0;
    for (int j = 0; j < g.k; ++j)
      if (nb[j] >= 0) {
        mean += ds[j];
        ++valid;
      }
    mean = valid ? mean / valid : 0;
    if (localConnectivity > 0) {  // distance to the nearest neighbour at a non-zero distance
      for (int j = 0; j < g.k; ++j)
        if (nb[j] >= 0 && ds[j] > 0) {
          r = ds[j];
          break;
        }
    }
    double lo = 0, hi = std::numeric_limits<double>::infinity(), mid = 1;
    for (int it = 0; it < 64; ++it) {
      double psum = 0;
      for (int j = 0; j < g.k; ++j) {
        if (nb[j] < 0) continue;
        const double dd = ds[j] - r;
        psum += dd > 0 ? std::exp(-dd / mid) : 1.0;
      }
      if (std::fabs(psum - target) < 1e-5) break;
      if (psum > target) {
        hi = mid;
        mid = (lo + hi) / 2;
      } else {
        lo = mid;
        mid = std::isinf(hi) ? mid * 2 : (lo + hi) / 2;
      }
    }
    // Floors as umap-learn's MIN_K_DIST_SCALE: no cell gets a vanishing bandwidth.
    const double floor = 1e-3 * (r > 0 ? mean : meanAll);
    rho[static_cast<size_t>(i)] = static_cast<float>(r);
    sigma[static_cast<size_t>(i)] = static_cast<float>(std::max(mid, floor));
  }
}

FuzzyGraph fuzzyGraph(const KnnGraph& g, int nNeighbors) {
  std::vector<float> rho, sigma;
  smoothKnn(g, std::log2(static_cast<double>(nNeighbors)), 1, rho, sigma);
  // Directed memberships, each stored on both rows with a direction flag, then merged per row.
  struct Entry {
    int64_t col;
    float w;
    bool forward;
  };
  std::vector<int64_t> count(static_cast<size_t>(g.n + 1), 0);
  for (int64_t i = 0; i < g.n; ++i)
    for (int j = 0; j < g.k; ++j) {
      const int64_t c = g.neighbours(i)[j];
      if (c < 0 || c == i) continue;
      ++count[static_cast<size_t>(i + 1)];
      ++count[static_cast<size_t>(c + 1)];
    }
  for (int64_t i = 0; i < g.n; ++i) count[static_cast<size_t>(i + 1)] += count[static_cast<size_t>(i)];
  std::vector<Entry> entries(static_cast<size_t>(count.back()));
  std::vector<int64_t> fill(count.begin(), count.end() - 1);
  for (int64_t i = 0; i < g.n; ++i)
    for (int j = 0; j < g.k; ++j) {
      const int64_t c = g.neighbours(i)[j];
      if (c < 0 || c == i) continue;
      const double dd = g.dists(i)[j] - rho[static_cast<size_t>(i)];
      const float s = sigma[static_cast<size_t>(i)];
      const float w = (dd <= 0 || s == 0) ? 1.f : static_cast<float>(std::exp(-dd / s));
      entries[static_cast<size_t>(fill[static_cast<size_t>(i)]++)] = {c, w, true};
      entries[static_cast<size_t>(fill[static_cast<size_t>(c)]++)] = {i, w, false};
    }
  FuzzyGraph out;
  out.n = g.n;
  out.rowPtr.assign(static_cast<size_t>(g.n + 1), 0);
  out.cols.reserve(entries.size());
  out.weights.reserve(entries.size());
  for (int64_t i = 0; i < g.n; ++i) {
    auto b = entries.begin() + count[static_cast<size_t>(i)], e = entries.begin() + count[static_cast<size_t>(i + 1)];
    std::sort(b, e, [](const Entry& x, const Entry& y) { return x.col < y.col; });
    for (auto it = b; it != e;) {
      float f = 0, r = 0;  // P_ij and P_ji
      const int64_t c = it->col;
      for (; it != e && it->col == c; ++it) (it->forward ? f : r) = std::max(it->forward ? f : r, it->w);
      const float w = f + r - f * r;
      if (w > 0) {
        out.cols.push_back(c);
        out.weights.push_back(w);
      }
    }
    out.rowPtr[static_cast<size_t>(i + 1)] = static_cast<int64_t>(out.cols.size());
  }
  return out;
}

void findAB(float spread, float minDist, float& aOut, float& bOut) {
  const int m = 300;
  std::vector<double> xs(m), ys(m);
  for (int i = 0; i < m; ++i) {
    xs[static_cast<size_t>(i)] = 3.0 * spread * i / (m - 1);
    const double x = xs[static_cast<size_t>(i)];
    ys[static_cast<size_t>(i)] = x < minDist ? 1.0 : std::exp(-(x - minDist) / spread);
  }
  auto cost = [&](double a, double b) {
    double c = 0;
    for (int i = 0; i < m; ++i) {
      const double x = xs[static_cast<size_t>(i)];
      const double f = 1.0 / (1.0 + a * std::pow(x, 2 * b));
      c += (f - ys[static_cast<size_t>(i)]) * (f - ys[static_cast<size_t>(i)]);
    }
    return c;
  };
  double a = 1, b = 1, lambda = 1e-3, c = cost(a, b);
  bool converged = false;
  for (int it = 0; it < 500 && !converged; ++it) {
    double jtj00 = 0, jtj01 = 0, jtj11 = 0, g0 = 0, g1 = 0;
    for (int i = 0; i < m; ++i) {
      const double x = xs[static_cast<size_t>(i)];
      const double x2b = x > 0 ? std::pow(x, 2 * b) : 0.0;
      const double den = 1.0 + a * x2b;
      const double f = 1.0 / den, r = f - ys[static_cast<size_t>(i)];
      const double da = -x2b / (den * den);
      const double db = x > 0 ? -a * x2b * 2.0 * std::log(x) / (den * den) : 0.0;
      jtj00 += da * da;
      jtj01 += da * db;
      jtj11 += db * db;
      g0 += da * r;
      g1 += db * r;
    }
    bool improved = false;
    for (int tries = 0; tries < 30 && !improved; ++tries) {
      const double m00 = jtj00 * (1 + lambda), m11 = jtj11 * (1 + lambda), det = m00 * m11 - jtj01 * jtj01;
      if (!(std::fabs(det) > 0)) {
        lambda *= 10;
        continue;
      }
      const double sa = -(m11 * g0 - jtj01 * g1) / det, sb = -(m00 * g1 - jtj01 * g0) / det;
      const double nc = (a + sa > 0 && b + sb > 0) ? cost(a + sa, b + sb) : std::numeric_limits<double>::infinity();
      if (nc < c) {
        improved = true;
        converged = std::fabs(sa) < 1e-12 * (1 + a) && std::fabs(sb) < 1e-12 * (1 + b);
        a += sa;
        b += sb;
        c = nc;
        lambda = std::max(lambda / 10, 1e-12);
      } else {
        lambda *= 10;
      }
    }
    if (!improved) break;
  }
  aOut = static_cast<float>(a);
  bOut = static_cast<float>(b);
}

std::string spectralInit(const FuzzyGraph& g, int dims, uint64_t seed, std::vector<float>& coords, int threads,
                         const ProgressFn& progress) {
  const int64_t n = g.n;
  auto fallback = [&](const std::string& why) {
    randomInit(n, dims, seed, coords);
    return "random (" + why + ")";
  };
  if (n < dims + 3) return fallback("too few cells for the eigensolver");
  const int64_t comps = components(g);
  if (comps > 1) return fallback("the neighbour graph has " + std::to_string(comps) + " disconnected parts");
  std::vector<double> s(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double deg = 0;
    for (int64_t p = g.rowPtr[static_cast<size_t>(i)]; p < g.rowPtr[static_cast<size_t>(i + 1)]; ++p)
      deg += g.weights[static_cast<size_t>(p)];
    s[static_cast<size_t>(i)] = deg > 0 ? 1.0 / std::sqrt(deg) : 0.0;
  }
  ShiftedAdjacency op(g, s, threadCount(threads), progress);
  const Eigen::Index nev = dims + 1;
  // umap-learn takes ncv = max(2k + 1, sqrt(n)); capped at 64 so the Krylov basis stays small
  // ([n, ncv] doubles) at a million cells.
  const Eigen::Index ncv = std::min<Eigen::Index>(
      static_cast<Eigen::Index>(n),
      std::max<Eigen::Index>(2 * nev + 1, std::min<Eigen::Index>(64, static_cast<Eigen::Index>(std::sqrt(double(n))))));
  try {
    Spectra::SymEigsSolver<ShiftedAdjacency> eigs(op, nev, ncv);
    Eigen::VectorXd v0 = Eigen::VectorXd::Ones(static_cast<Eigen::Index>(n));  // umap-learn's v0
    eigs.init(v0.data());
    eigs.compute(Spectra::SortRule::LargestAlge, 3000, 1e-4);
    if (eigs.info() != Spectra::CompInfo::Successful) return fallback("the eigensolver did not converge");
    const Eigen::MatrixXd vec = eigs.eigenvectors();  // columns by decreasing eigenvalue
    coords.assign(static_cast<size_t>(n * dims), 0.f);
    double maxAbs = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < dims; ++c) maxAbs = std::max(maxAbs, std::fabs(vec(static_cast<Eigen::Index>(i), c + 1)));
    if (!(maxAbs > 0) || !std::isfinite(maxAbs)) return fallback("the eigenvectors are degenerate");
    // As umap-learn: scale to +-10 and add N(0, 1e-4) noise so no two cells coincide.
    uint64_t st = seed ^ 0x2545F4914F6CDD1Dull;
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < dims; ++c) {
        const double u1 = std::max(uniform01(st), 1e-300), u2 = uniform01(st);
        const double z = std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        coords[static_cast<size_t>(i * dims + c)] =
            static_cast<float>(vec(static_cast<Eigen::Index>(i), c + 1) * 10.0 / maxAbs + 1e-4 * z);
      }
    scaleTo10(coords, n, dims);
    return "spectral";
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Cancelled) throw;
    return fallback(std::string("the eigensolver failed: ") + e.what());
  } catch (const std::exception& e) {
    return fallback(std::string("the eigensolver failed: ") + e.what());
  }
}

std::vector<float> umapFromGraph(const KnnGraph& graph, const UmapOptions& o, UmapReport* report) {
  checkOptions(o);
  if (graph.n < 3) fail(ErrorKind::InvalidArgument, "", "UMAP needs at least 3 cells, got " + std::to_string(graph.n));
  auto t0 = Clock::now();
  const ProgressFn& progress = o.progress;
  reportProgress(progress, "UMAP graph", 0);
  // Keep the nNeighbors - 1 nearest (the cell itself is umap-learn's first neighbour).
  KnnGraph g;
  g.n = graph.n;
  g.k = std::min(graph.k, o.nNeighbors - 1);
  g.indices.resize(static_cast<size_t>(g.n * g.k));
  g.distances.resize(static_cast<size_t>(g.n * g.k));
  for (int64_t i = 0; i < g.n; ++i)
    for (int j = 0; j < g.k; ++j) {
      g.indices[static_cast<size_t>(i * g.k + j)] = graph.neighbours(i)[j];
      g.distances[static_cast<size_t>(i * g.k + j)] = graph.dists(i)[j];
    }
  const FuzzyGraph fuzzy = fuzzyGraph(g, std::min<int>(o.nNeighbors, static_cast<int>(g.k + 1)));
  const int nEpochs = autoEpochs(g.n, o.nEpochs);
  Edges edges = prune(fuzzy.rowPtr, fuzzy.cols, fuzzy.weights, nEpochs);
  FuzzyGraph pruned{fuzzy.n, edges.rowPtr, edges.cols, edges.weights};
  const double graphSeconds = since(t0);
  reportProgress(progress, "UMAP graph", 0.05);
  t0 = Clock::now();
  std::vector<float> coords;
  const std::string init =
      o.spectral ? spectralInit(pruned, o.dims, o.seed, coords, o.threads, progressSpan(progress, 0.05, 0.2))
                 : (randomInit(g.n, o.dims, o.seed, coords), std::string("random (asked for)"));
  const double initSeconds = since(t0);
  t0 = Clock::now();
  SgdParams p;
  p.dims = o.dims;
  findAB(o.spread, o.minDist, p.a, p.b);
  p.gamma = o.repulsionStrength;
  p.alpha0 = o.learningRate;
  p.negativeRate = o.negativeSampleRate;
  p.nEpochs = nEpochs;
  p.seed = o.seed;
  p.threads = threadCount(o.threads);
  p.fit = true;
  optimizeLayout(edges, coords, nullptr, g.n, p, progressSpan(progress, 0.2, 1.0));
  if (report) {
    report->init = init;
    report->graphSeconds = graphSeconds;
    report->initSeconds = initSeconds;
    report->optimizeSeconds = since(t0);
    report->nEpochs = nEpochs;
    report->a = p.a;
    report->b = p.b;
    report->edges = static_cast<int64_t>(edges.weights.size());
  }
  return coords;
}

namespace {
// umap(), keeping the kNN graph it builds in g.
std::vector<float> umapKeepingGraph(const MatrixView& x, const UmapOptions& o, UmapReport* report, KnnGraph& g) {
  checkOptions(o);
  if (x.n < 3) fail(ErrorKind::InvalidArgument, "", "UMAP needs at least 3 cells, got " + std::to_string(x.n));
  KnnOptions ko = o.knn;
  ko.k = o.nNeighbors - 1;
  if (ko.threads == 0) ko.threads = o.threads;
  if (o.progress) ko.progress = progressSpan(o.progress, 0.0, 0.6);
  KnnReport kr;
  g = knnGraph(x, ko, &kr);
  UmapOptions rest = o;
  rest.progress = progressSpan(o.progress, 0.6, 1.0);
  std::vector<float> out = umapFromGraph(g, rest, report);
  if (report) {
    report->knnMethod = kr.method;
    report->knnSeconds = kr.seconds;
  }
  return out;
}
}  // namespace

std::vector<float> umap(const MatrixView& x, const UmapOptions& o, UmapReport* report) {
  KnnGraph g;
  return umapKeepingGraph(x, o, report, g);
}

std::vector<float> umapSkippingMissing(const MatrixView& x, const UmapOptions& o, UmapReport* report, int64_t* mapped,
                                       KnnGraph* graph) {
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < x.n; ++i) {
    const float* row = x.data + i * x.dim;
    bool finite = true;
    for (int64_t c = 0; c < x.dim && finite; ++c) finite = std::isfinite(row[c]);
    if (finite) kept.push_back(i);
  }
  if (mapped) *mapped = static_cast<int64_t>(kept.size());
  if (kept.size() < 3)
    fail(ErrorKind::Empty, "", std::to_string(kept.size()) + " of " + std::to_string(x.n) +
                                   " cells have an embedding (not NaN); UMAP needs at least 3");
  const size_t dim = static_cast<size_t>(x.dim);
  std::vector<float> packed(kept.size() * dim);
  for (size_t r = 0; r < kept.size(); ++r)
    std::copy(x.data + kept[r] * x.dim, x.data + (kept[r] + 1) * x.dim, packed.data() + r * dim);
  const MatrixView cells{packed.data(), static_cast<int64_t>(kept.size()), x.dim};
  std::vector<float> map;
  if (graph && graph->n == cells.n && graph->k >= o.nNeighbors - 1) {
    checkOptions(o);
    map = umapFromGraph(*graph, o, report);
    if (report) {
      report->knnMethod = "reused";
      report->knnSeconds = 0;
    }
  } else {
    KnnGraph own;
    map = umapKeepingGraph(cells, o, report, graph ? *graph : own);
  }
  const size_t dims = static_cast<size_t>(o.dims);
  std::vector<float> out(static_cast<size_t>(x.n) * dims, std::numeric_limits<float>::quiet_NaN());
  for (size_t r = 0; r < kept.size(); ++r)
    std::copy(map.begin() + static_cast<std::ptrdiff_t>(r * dims), map.begin() + static_cast<std::ptrdiff_t>((r + 1) * dims),
              out.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(kept[r]) * dims));
  return out;
}

std::vector<float> umapTransform(const MatrixView& reference, const std::vector<float>& refMap,
                                 const MatrixView& query, const UmapOptions& o) {
  checkOptions(o);
  if (reference.n < 3) fail(ErrorKind::InvalidArgument, "", "the reference map needs at least 3 cells");
  if (static_cast<int64_t>(refMap.size()) != reference.n * o.dims)
    fail(ErrorKind::Shape, "", "the reference map has " + std::to_string(refMap.size()) + " values, expected " +
                                   std::to_string(reference.n) + " cells x " + std::to_string(o.dims) + " dimensions");
  if (query.dim != reference.dim)
    fail(ErrorKind::Shape, "", "the new cells' embedding has " + std::to_string(query.dim) +
                                   " columns but the reference's has " + std::to_string(reference.dim));
  if (query.n == 0) return {};
  checkFinite(reference, "reference embedding");
  checkFinite(query, "new cells' embedding");
  const int k = static_cast<int>(std::min<int64_t>(o.nNeighbors, reference.n));
  // Exact neighbours among the reference cells (no self to drop: queries are new cells).
  KnnGraph g;
  g.n = query.n;
  g.k = k;
  g.indices.resize(static_cast<size_t>(query.n * k));
  g.distances.resize(static_cast<size_t>(query.n * k));
  {
    reportProgress(o.progress, "UMAP neighbours", 0);
    faiss::IndexFlatL2 index(static_cast<int>(reference.dim));
    index.add(reference.n, reference.data);
    std::vector<faiss::Index::idx_t> l(g.indices.size());
    index.search(query.n, query.data, k, g.distances.data(), l.data());
    for (size_t i = 0; i < l.size(); ++i) {
      g.indices[i] = l[i];
      g.distances[i] = std::sqrt(std::max(0.f, g.distances[i]));
    }
    reportProgress(o.progress, "UMAP neighbours", 0.2);
  }
  std::vector<float> rho, sigma;
  smoothKnn(g, std::log2(static_cast<double>(o.nNeighbors)), 0, rho, sigma);
  std::vector<int64_t> rowPtr(static_cast<size_t>(query.n + 1), 0), cols;
  std::vector<float> w;
  std::vector<float> out(static_cast<size_t>(query.n * o.dims), 0.f);
  for (int64_t i = 0; i < query.n; ++i) {
    double total = 0;
    double acc[3] = {0, 0, 0};
    for (int j = 0; j < k; ++j) {
      const int64_t c = g.neighbours(i)[j];
      if (c < 0) continue;
      const double dd = g.dists(i)[j] - rho[static_cast<size_t>(i)];
      const float s = sigma[static_cast<size_t>(i)];
      const float m = (dd <= 0 || s == 0) ? 1.f : static_cast<float>(std::exp(-dd / s));
      cols.push_back(c);
      w.push_back(m);
      total += m;
      for (int d = 0; d < o.dims; ++d) acc[d] += m * refMap[static_cast<size_t>(c * o.dims + d)];
    }
    rowPtr[static_cast<size_t>(i + 1)] = static_cast<int64_t>(cols.size());
    for (int d = 0; d < o.dims; ++d)
      out[static_cast<size_t>(i * o.dims + d)] = total > 0 ? static_cast<float>(acc[d] / total)
                                                           : refMap[static_cast<size_t>(g.neighbours(i)[0] * o.dims + d)];
  }
  const int nEpochs = o.nEpochs > 0 ? std::max(1, o.nEpochs / 3) : (reference.n <= 10000 ? 100 : 30);
  const Edges edges = prune(rowPtr, cols, w, nEpochs);
  SgdParams p;
  p.dims = o.dims;
  findAB(o.spread, o.minDist, p.a, p.b);
  p.gamma = o.repulsionStrength;
  p.alpha0 = o.learningRate / 4.f;
  p.negativeRate = o.negativeSampleRate;
  p.nEpochs = nEpochs;
  p.seed = o.seed ^ 0x7F4A7C159E3779B9ull;
  p.threads = threadCount(o.threads);
  p.fit = false;
  optimizeLayout(edges, out, refMap.data(), reference.n, p, progressSpan(o.progress, 0.2, 1.0));
  return out;
}

double trustworthiness(const MatrixView& high, const MatrixView& low, int k, const std::vector<int64_t>& rowsIn,
                       int threads) {
  const int64_t n = high.n;
  if (low.n != n) fail(ErrorKind::Shape, "", "trustworthiness: the map and the embedding have different cell counts");
  if (k < 1 || 2 * static_cast<int64_t>(k) >= n)
    fail(ErrorKind::InvalidArgument, "", "trustworthiness: k must be at least 1 and below half the number of cells");
  std::vector<int64_t> rows = rowsIn;
  if (rows.empty()) {
    rows.resize(static_cast<size_t>(n));
    std::iota(rows.begin(), rows.end(), int64_t{0});
  }
  const int parts = threadCount(threads);
  std::vector<double> partial(static_cast<size_t>(parts), 0.0);
  const int64_t m = static_cast<int64_t>(rows.size());
  std::vector<std::thread> pool;
  for (int t = 0; t < parts; ++t)
    pool.emplace_back([&, t] {
      std::vector<float> dh(static_cast<size_t>(n));
      std::vector<std::pair<float, int64_t>> dl(static_cast<size_t>(n));
      double sum = 0;
      for (int64_t r = m * t / parts; r < m * (t + 1) / parts; ++r) {
        const int64_t i = rows[static_cast<size_t>(r)];
        for (int64_t j = 0; j < n; ++j) {
          float a = 0, b = 0;
          for (int64_t c = 0; c < high.dim; ++c) {
            const float v = high.row(i)[c] - high.row(j)[c];
            a += v * v;
          }
          for (int64_t c = 0; c < low.dim; ++c) {
            const float v = low.row(i)[c] - low.row(j)[c];
            b += v * v;
          }
          dh[static_cast<size_t>(j)] = a;
          dl[static_cast<size_t>(j)] = {j == i ? std::numeric_limits<float>::infinity() : b, j};
        }
        dh[static_cast<size_t>(i)] = std::numeric_limits<float>::infinity();
        std::partial_sort(dl.begin(), dl.begin() + k, dl.end());
        for (int q = 0; q < k; ++q) {
          const int64_t j = dl[static_cast<size_t>(q)].second;
          const float dj = dh[static_cast<size_t>(j)];
          int64_t rank = 1;  // 1-based rank of j among i's neighbours in the embedding
          for (int64_t l = 0; l < n; ++l) rank += (dh[static_cast<size_t>(l)] < dj);
          if (rank > k) sum += static_cast<double>(rank - k);
        }
      }
      partial[static_cast<size_t>(t)] = sum;
    });
  for (auto& th : pool) th.join();
  const double total = std::accumulate(partial.begin(), partial.end(), 0.0) * static_cast<double>(n) / static_cast<double>(m);
  const double nn = static_cast<double>(n), kk = k;
  return 1.0 - total * 2.0 / (nn * kk * (2.0 * nn - 3.0 * kk - 1.0));
}

}  // namespace uce::analysis
