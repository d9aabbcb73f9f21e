#include "uce/core/analysis/knn.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <optional>
#include <chrono>
#include <functional>
#include <cmath>
#include <exception>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "uce/core/error.h"

namespace uce::analysis {
namespace {

using idx_t = faiss::Index::idx_t;

// Squared Euclidean distance with 8 independent partial sums. Debian's FAISS is a generic build
// whose distance (fvec_L2sqr_ref) is scalar, and HNSW spends its time there; this one
// vectorises (an AVX2 clone where the CPU has it; SSE2 otherwise). No FMA in either clone, and
// the sums are added in one fixed order, so a machine gives the same distances every run.
__attribute__((target_clones("avx2", "default"))) float l2Squared(const float* a, const float* b, size_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= d; i += 8)
    for (size_t k = 0; k < 8; ++k) {
      const float t = a[i + k] - b[i + k];
      acc[k] += t * t;
    }
  for (size_t k = 0; i < d; ++i, ++k) {
    const float t = a[i] - b[i];
    acc[k] += t * t;
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// The HNSW graph's vectors, with the distance above. They stay where the caller has them:
// FAISS's flat storage would copy them (at 200,000 x 1,280 that doubled the peak memory, to
// 2.0 GiB for 0.95 GiB of input), but the graph is built and searched while the caller's matrix
// lives and is never saved, so the storage keeps a pointer instead. Distances are computed on
// the same floats either way, so the graph is the same.
struct FastL2Distance : faiss::FlatCodesDistanceComputer {
  const float* base;
  size_t d;
  const float* q = nullptr;
  FastL2Distance(const float* rows, size_t dim)
      : faiss::FlatCodesDistanceComputer(reinterpret_cast<const uint8_t*>(rows), dim * sizeof(float)), base(rows), d(dim) {}
  void set_query(const float* x) override { q = x; }
  float distance_to_code(const uint8_t* code) override { return l2Squared(q, reinterpret_cast<const float*>(code), d); }
  float symmetric_dis(idx_t i, idx_t j) override {
    return l2Squared(base + static_cast<size_t>(i) * d, base + static_cast<size_t>(j) * d, d);
  }
};

struct FastL2Storage : faiss::IndexFlatL2 {
  const float* rows = nullptr;  // the caller's [ntotal, d] matrix, not owned
  explicit FastL2Storage(idx_t d) : faiss::IndexFlatL2(d) {}
  void add(idx_t n, const float* x) override {
    if (ntotal == 0) rows = x;
    else if (x != rows + static_cast<size_t>(ntotal) * static_cast<size_t>(d))
      FAISS_THROW_MSG("the kNN storage takes the rows of one matrix, in order");
    ntotal += n;
  }
  void reset() override {
    rows = nullptr;
    ntotal = 0;
  }
  void reconstruct(idx_t key, float* recons) const override {
    std::copy(rows + static_cast<size_t>(key) * static_cast<size_t>(d), rows + static_cast<size_t>(key + 1) * static_cast<size_t>(d),
              recons);
  }
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
    return new FastL2Distance(rows, static_cast<size_t>(d));
  }
};

// IndexHNSWFlat with the storage above (the same graph algorithm and parameters).
std::unique_ptr<faiss::IndexHNSW> makeHnsw(int64_t dim, int m) {
  auto index = std::make_unique<faiss::IndexHNSW>(new FastL2Storage(dim), m);
  index->own_fields = true;
  index->is_trained = true;
  return index;
}

constexpr double kTargetRecall = 0.95;  // recall@k the HNSW graph must reach on its sample
constexpr int kMaxEfSearch = 1024;

void check(const MatrixView& x, int k) {
  if (x.n < 2) fail(ErrorKind::InvalidArgument, "", "a neighbour graph needs at least 2 cells");
  if (x.dim < 1) fail(ErrorKind::InvalidArgument, "", "the embedding has no columns");
  if (k < 1) fail(ErrorKind::InvalidArgument, "", "k must be at least 1");
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t j = 0; j < x.dim; ++j)
      if (!std::isfinite(x.row(i)[j]))
        fail(ErrorKind::Format, "", "row " + std::to_string(i) + " of the embedding is not finite (NaN or Inf): "
                                    "cells that were not embedded must be left out first");
}

struct ThreadScope {  // FAISS parallelises with OpenMP
  explicit ThreadScope(int threads) : before(omp_get_max_threads()) {
    if (threads > 0) omp_set_num_threads(threads);
  }
  ~ThreadScope() { omp_set_num_threads(before); }
  int before;
};

// search(m, queries [m, dim], kk, distances [m, kk], labels [m, kk]): squared L2, nearest first.
using SearchFn = std::function<void(int64_t, const float*, int, float*, idx_t*)>;

// How a search is cut into row blocks: next(done, rows, secondsOfLastBlock) -> rows of the next
// block. The hook runs after every block, so blocks are kept short (well under a second).
using BlockPlan = std::function<int64_t(int64_t, int64_t, double)>;

// Exact search: even blocks of about 2^36 multiply-adds of the distance products (about a second
// on 2 cores), 128 to 1,024 rows (so the bar still moves often on small inputs). Small blocks
// starve BLAS: 50,000 x 1,280 took 306 s in blocks of 40 rows (the old 2^31 target), 104 s in
// blocks of 256 and 61 s in blocks of 1,024 (2 cores, bench/RESULTS.md). The split depends on (rows, n, dim) only, never on time, and every block
// has >= 20 rows: FAISS computes the distances of a block of >= 20 query
// rows with BLAS, the same for each row whatever the block (below 20 rows it switches to a direct
// loop whose rounding differs), so the graph does not depend on the blocking either.
BlockPlan exactPlan(const MatrixView& x) {
  const double work = static_cast<double>(x.n) * static_cast<double>(x.dim);
  const int64_t target = static_cast<int64_t>(std::clamp(68719476736.0 / std::max(1.0, work), 128.0, 1024.0));
  return [target](int64_t done, int64_t rows, double) {
    const int64_t blocks = (rows + target - 1) / target;
    const int64_t b = (done * blocks + rows - 1) / rows;  // the block that starts at `done`
    return rows * (b + 1) / blocks - done;
  };
}

// HNSW search: each query is searched on its own, so any blocking gives the same graph; blocks
// adapt to take about a quarter of a second.
BlockPlan adaptivePlan() {
  return [last = int64_t{0}](int64_t, int64_t, double seconds) mutable {
    if (last == 0) last = 512;
    else if (seconds > 0) last = std::clamp<int64_t>(static_cast<int64_t>(static_cast<double>(last) * 0.25 / seconds),
                                                     std::max<int64_t>(64, last / 4), last * 4);
    else last *= 4;
    last = std::min<int64_t>(last, 1 << 20);
    return last;
  };
}

// Searches k + 1 neighbours of `rows` and drops each row's own index. progress: fractions of
// this search, after each block.
void searchDroppingSelf(const SearchFn& search, const MatrixView& x, const std::vector<int64_t>& rows, int k,
                        KnnGraph& out, const BlockPlan& plan, const ProgressFn& progress) {
  const int kk = k + 1;
  const int64_t total = static_cast<int64_t>(rows.size());
  std::vector<float> q, d;
  std::vector<idx_t> l;
  double lastSeconds = 0;
  for (int64_t b0 = 0; b0 < total;) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t b1 = std::min(total, b0 + std::max<int64_t>(1, plan(b0, total, lastSeconds)));
    const int64_t m = b1 - b0;
    q.resize(static_cast<size_t>(m * x.dim));
    for (int64_t r = 0; r < m; ++r)
      std::copy(x.row(rows[static_cast<size_t>(b0 + r)]), x.row(rows[static_cast<size_t>(b0 + r)]) + x.dim,
                q.begin() + r * x.dim);
    d.resize(static_cast<size_t>(m * kk));
    l.resize(static_cast<size_t>(m * kk));
    search(m, q.data(), kk, d.data(), l.data());
    for (int64_t r = 0; r < m; ++r) {
      const int64_t self = rows[static_cast<size_t>(b0 + r)];
      int64_t* oi = out.indices.data() + (b0 + r) * k;
      float* od = out.distances.data() + (b0 + r) * k;
      int c = 0;
      for (int j = 0; j < kk && c < k; ++j) {
        const idx_t id = l[static_cast<size_t>(r * kk + j)];
        if (id == self) continue;
        oi[c] = id;
        od[c] = id < 0 ? 0.f : std::sqrt(std::max(0.f, d[static_cast<size_t>(r * kk + j)]));
        ++c;
      }
      for (; c < k; ++c) {
        oi[c] = -1;
        od[c] = 0.f;
      }
    }
    b0 = b1;
    lastSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    reportProgress(progress, "kNN graph", static_cast<double>(b0) / static_cast<double>(total));
  }
}

SearchFn bruteForce(const MatrixView& x) {
  // Exact search over x in place (faiss::knn_L2sqr, as IndexFlatL2 does), without copying
  // the data into an index.
  return [x](int64_t m, const float* q, int want, float* d, idx_t* l) {
    const int kk = static_cast<int>(std::min<int64_t>(want, x.n));
    faiss::knn_L2sqr(q, x.data, static_cast<size_t>(x.dim), static_cast<size_t>(m), static_cast<size_t>(x.n),
                     static_cast<size_t>(kk), d, l);
    if (kk == want) return;
    // k + 1 > n: knn_L2sqr wrote rows of kk; spread them to rows of `want`, then pad.
    for (int64_t r = m - 1; r >= 0; --r) {
      for (int j = kk - 1; j >= 0; --j) {
        d[r * want + j] = d[r * kk + j];
        l[r * want + j] = l[r * kk + j];
      }
      for (int j = kk; j < want; ++j) {
        d[r * want + j] = 0.f;
        l[r * want + j] = -1;
      }
    }
  };
}

// FAISS polls one process-wide InterruptCallback in its long loops (every few hundred inserts
// of an HNSW build, on each thread). Ours answers for the builds that registered on the calling
// thread: inside an OpenMP team that is the master thread (the caller), while every other
// thread hears "go on". So one job's cancel never stops another's build, and the hook runs on the
// caller's thread. FAISS calls want_interrupt() under InterruptCallback::lock, which also guards
// the registry.
class BuildWatch : public faiss::InterruptCallback {
 public:
  using Poll = std::function<bool()>;  // false = stop
  bool want_interrupt() override {
    const auto it = polls_.find(std::this_thread::get_id());
    return it != polls_.end() && !it->second();
  }
  // Installed before main() (the pointer is then never written while FAISS reads it) unless the
  // program installed its own; returns whether ours is the one.
  static bool installed() {
    static const bool ours = [] {
      std::lock_guard<std::mutex> lock(faiss::InterruptCallback::lock);
      faiss::InterruptCallback* current = faiss::InterruptCallback::instance.get();
      if (current) return dynamic_cast<BuildWatch*>(current) != nullptr;
      faiss::InterruptCallback::instance.reset(new BuildWatch);
      return true;
    }();
    return ours;
  }
  // Registers `poll` for the calling thread for the scope's lifetime.
  class Scope {
   public:
    explicit Scope(Poll poll) : active_(installed()) {
      if (!active_) return;
      std::lock_guard<std::mutex> lock(faiss::InterruptCallback::lock);
      self()->polls_[std::this_thread::get_id()] = std::move(poll);
    }
    ~Scope() {
      if (!active_) return;
      std::lock_guard<std::mutex> lock(faiss::InterruptCallback::lock);
      self()->polls_.erase(std::this_thread::get_id());
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    static BuildWatch* self() { return static_cast<BuildWatch*>(faiss::InterruptCallback::instance.get()); }
    bool active_;
  };

 private:
  std::unordered_map<std::thread::id, Poll> polls_;
};
[[maybe_unused]] const bool kBuildWatchInstalled = BuildWatch::installed();

// Progress of an HNSW build from the master thread's polls. FAISS adds the points level by
// level, highest first, each level one OpenMP loop (statically scheduled; one thread when it has
// <= 100 points), and each thread polls at its 0th, p-th, 2p-th ... point, p =
// get_period_hint(max_level * d * efConstruction) (FAISS 1.7). The master's j-th poll in a level
// means about (j - 1) * p * threads of its points are in.
class BuildMeter {
 public:
  BuildMeter(const std::vector<int>& levels, int64_t d, int efConstruction, int threads) {
    int maxLevel = 0;
    std::vector<int64_t> perLevel;
    for (int l : levels) {
      if (l - 1 >= static_cast<int>(perLevel.size())) perLevel.resize(static_cast<size_t>(l), 0);
      ++perLevel[static_cast<size_t>(l - 1)];
      maxLevel = std::max(maxLevel, l - 1);
    }
    const int64_t period = std::max<int64_t>(1, 100000000 / (static_cast<int64_t>(maxLevel) * d * efConstruction + 1));
    total_ = static_cast<int64_t>(levels.size());
    int64_t done = 0, calls = 0;
    for (int l = static_cast<int>(perLevel.size()) - 1; l >= 0; --l) {
      const int64_t count = perLevel[static_cast<size_t>(l)];
      if (count == 0) continue;
      const int64_t team = count > 100 ? threads : 1;
      const int64_t mine = (count + team - 1) / team;
      Region r{calls, done, count, period * team};
      calls += (mine + period - 1) / period;
      done += count;
      regions_.push_back(r);
    }
  }
  // Share of the points inserted, at the master's next poll.
  double poll() {
    ++polls_;
    while (next_ + 1 < regions_.size() && polls_ > regions_[next_ + 1].firstCall) ++next_;
    if (regions_.empty()) return 0;
    const Region& r = regions_[next_];
    const int64_t inside = std::min(r.points, (polls_ - r.firstCall - 1) * r.pointsPerCall);
    return static_cast<double>(r.pointsBefore + std::max<int64_t>(0, inside)) / static_cast<double>(total_);
  }

 private:
  struct Region {
    int64_t firstCall, pointsBefore, points, pointsPerCall;
  };
  std::vector<Region> regions_;
  size_t next_ = 0;
  int64_t polls_ = 0, total_ = 1;
};

// index->add(n, x) with progress and cancel. The point levels are drawn first, exactly as
// add() draws them (HNSW::random_level from the index's seeded generator; add() then takes them
// as preset), so the meter knows them; the graph is the one add() alone builds. One add() call:
// adding in chunks would give another graph (each call shuffles and inserts its points level by
// level on its own).
void buildHnsw(faiss::IndexHNSW& index, const MatrixView& x, const ProgressFn& progress, bool oneThread) {
  // FAISS inserts points in parallel under locks, so a graph built on several threads depends
  // on their timing; on one thread it is the same at any thread count of the caller.
  std::optional<ThreadScope> single;
  if (oneThread) single.emplace(1);
  faiss::HNSW& h = index.hnsw;
  for (int64_t i = 0; i < x.n; ++i) h.levels.push_back(h.random_level() + 1);
  if (!progress) {
    index.add(x.n, x.data);
    return;
  }
  reportProgress(progress, "kNN graph", 0);
  BuildMeter meter(h.levels, x.dim, h.efConstruction, omp_get_max_threads());
  bool cancelled = false;
  std::exception_ptr failure;
  {
    BuildWatch::Scope scope([&]() -> bool {
      if (cancelled || failure) return false;
      try {
        cancelled = !progress("kNN graph", meter.poll());
      } catch (...) {
        failure = std::current_exception();  // thrown after FAISS has left its OpenMP loop
      }
      return !cancelled && !failure;
    });
    try {
      index.add(x.n, x.data);
    } catch (const faiss::FaissException&) {
      if (!cancelled && !failure) throw;
    }
  }
  if (failure) std::rethrow_exception(failure);
  if (cancelled) throw Error(ErrorKind::Cancelled, "", "cancelled during kNN graph");
  reportProgress(progress, "kNN graph", 1);
}

// A graph of n rows of k neighbours, to be filled by searchDroppingSelf.
KnnGraph emptyGraph(int64_t n, int k) {
  KnnGraph g;
  g.n = n;
  g.k = k;
  g.indices.resize(static_cast<size_t>(n * k));
  g.distances.resize(static_cast<size_t>(n * k));
  return g;
}

}  // namespace

KnnGraph exactNeighbours(const MatrixView& x, const std::vector<int64_t>& rows, int k, int threads,
                         const ProgressFn& progress) {
  check(x, k);
  ThreadScope scope(threads);
  KnnGraph g = emptyGraph(static_cast<int64_t>(rows.size()), k);
  searchDroppingSelf(bruteForce(x), x, rows, k, g, exactPlan(x), progress);
  return g;
}

double recallAtK(const KnnGraph& graph, const KnnGraph& exact, const std::vector<int64_t>& rows) {
  if (rows.empty()) return 1.0;
  double sum = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t* truth = exact.neighbours(static_cast<int64_t>(r));
    const int64_t* got = graph.neighbours(rows[r]);
    int hit = 0, valid = 0;
    for (int a = 0; a < exact.k; ++a) {
      if (truth[a] < 0) continue;
      ++valid;
      for (int b = 0; b < graph.k; ++b)
        if (got[b] == truth[a]) {
          ++hit;
          break;
        }
    }
    sum += valid ? static_cast<double>(hit) / valid : 1.0;
  }
  return sum / static_cast<double>(rows.size());
}

KnnGraph knnGraph(const MatrixView& x, const KnnOptions& o, KnnReport* report) {
  check(x, o.k);
  const auto t0 = std::chrono::steady_clock::now();
  const int k = static_cast<int>(std::min<int64_t>(o.k, x.n - 1));
  const bool exact = o.method == KnnMethod::Exact || (o.method == KnnMethod::Auto && x.n < o.exactBelow);
  ThreadScope scope(o.threads);
  // Shares of the progress bar: exact = the search; HNSW = build (half), the recall check on a
  // sample (5 %), then the search of every cell.
  const ProgressFn& progress = o.progress;
  std::unique_ptr<faiss::IndexHNSW> index;
  if (!exact) {
    index = makeHnsw(x.dim, o.hnswM);
    index->hnsw.efConstruction = o.efConstruction;
    index->hnsw.efSearch = std::max(o.efSearch, k + 1);
    buildHnsw(*index, x, progressSpan(progress, 0.0, 0.5), o.deterministicBuild);
  }
  std::vector<int64_t> all(static_cast<size_t>(x.n));
  for (int64_t i = 0; i < x.n; ++i) all[static_cast<size_t>(i)] = i;
  KnnGraph g = emptyGraph(x.n, k);
  SearchFn viaIndex = [&](int64_t m, const float* q, int kk, float* d, idx_t* l) { index->search(m, q, kk, d, l); };
  double recall = 1.0;
  int64_t sampled = x.n;
  if (exact) {
    searchDroppingSelf(bruteForce(x), x, all, k, g, exactPlan(x), progressSpan(progress, 0.0, 1.0));
  } else {
    // HNSW recall@k against exact search on a fixed sample of 1,000 cells (seeded:
    // reproducible), before the full search: while the sample's recall is below the target the
    // candidate list (efSearch) doubles, up to 1024 (high-dimensional embeddings need wider
    // lists than 32-d ones). Each query's HNSW search depends only on the query and efSearch,
    // so the sample's rows are exactly the rows the full search then gives those cells: the
    // reported recall is the final graph's, and every cell is searched once.
    std::mt19937_64 rng(12345);
    std::vector<int64_t> sample;
    sampled = std::min<int64_t>(1000, x.n);
    std::sample(all.begin(), all.end(), std::back_inserter(sample), sampled, rng);
    const KnnGraph truth = exactNeighbours(x, sample, k, o.threads, progressSpan(progress, 0.5, 0.53));
    std::vector<int64_t> sampleRows(sample.size());
    for (size_t r = 0; r < sampleRows.size(); ++r) sampleRows[r] = static_cast<int64_t>(r);
    faiss::IndexHNSW* h = index.get();
    KnnGraph part = emptyGraph(sampled, k);
    double from = 0.53;  // each widening takes half of what is left of 0.53-0.55: the bar only moves on
    for (;;) {
      const double to = from + (0.55 - from) / 2;
      searchDroppingSelf(viaIndex, x, sample, k, part, adaptivePlan(), progressSpan(progress, from, to));
      from = to;
      recall = recallAtK(part, truth, sampleRows);
      if (recall >= kTargetRecall || h->hnsw.efSearch >= kMaxEfSearch) break;
      h->hnsw.efSearch = std::min(kMaxEfSearch, 2 * h->hnsw.efSearch);
    }
    searchDroppingSelf(viaIndex, x, all, k, g, adaptivePlan(), progressSpan(progress, 0.55, 1.0));
  }
  reportProgress(progress, "kNN graph", 1.0);
  if (report) {
    report->method = exact ? "exact" : "hnsw";
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report->recall = recall;
    report->recallSample = sampled;
    report->efSearch = exact ? 0 : index->hnsw.efSearch;
  }
  return g;
}

}  // namespace uce::analysis
