#include "uce/core/analysis/cluster.h"
#include "uce/core/analysis/umap.h"

#include <igraph/igraph.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <numeric>
#include <unordered_map>

#include "uce/core/error.h"

namespace uce::analysis {
namespace {

// igraph reports errors through a handler; turn them into exceptions the caller can show.
void check(igraph_error_t rc, const char* what) {
  if (rc != IGRAPH_SUCCESS)
    fail(ErrorKind::InvalidArgument, "", std::string("clustering failed in igraph (") + what + "): " +
                                             igraph_strerror(rc));
}

// The Leiden call in progress, for igraph's interruption handler (set by IgraphScope). The
// handler reports progress but never interrupts: igraph 0.10's Leiden returns from its node-moving
// loop on an interruption with that function's cleanup entries still registered, and igraph then
// frees them from a stack frame that is gone (a crash). So a cancel is noted, the hook is not
// called again, and the call throws once the igraph call in progress returns.
struct LeidenWatch {
  const ProgressFn* progress = nullptr;
  double from = 0, to = 1;  // share of the current igraph call
  double pace = 1;          // node visits for 63% of that share (1 - e^-1): their count is not known
  int64_t ticks = 0;        // interruption points passed in this call (one per ~10,000 node visits)
  bool cancelled = false;
  std::exception_ptr failure;  // thrown by the hook; rethrown once igraph has returned

  // The hook; false = stop. Never throws (igraph is C).
  bool call(double fraction) {
    if (cancelled || failure) return false;
    if (!progress || !*progress) return true;
    try {
      cancelled = !(*progress)("Leiden", fraction);
    } catch (...) {
      failure = std::current_exception();
    }
    return !cancelled && !failure;
  }
};
LeidenWatch* gWatch = nullptr;  // guarded by IgraphScope's mutex

igraph_error_t leidenInterruption(void*) {
  LeidenWatch* w = gWatch;
  if (!w) return IGRAPH_SUCCESS;
  ++w->ticks;
  const double visits = 10000.0 * static_cast<double>(w->ticks);
  w->call(w->from + (w->to - w->from) * (1.0 - std::exp(-visits / w->pace)));
  return IGRAPH_SUCCESS;  // never IGRAPH_INTERRUPTED (see LeidenWatch)
}

struct IgraphScope {  // igraph's default RNG, error and interruption handlers are process-wide
  explicit IgraphScope(LeidenWatch* watch = nullptr) : lock(mutex()) {
    previous = igraph_set_error_handler(igraph_error_handler_ignore);
    gWatch = watch;
    previousInterruption = igraph_set_interruption_handler(watch ? leidenInterruption : nullptr);
  }
  ~IgraphScope() {
    igraph_set_interruption_handler(previousInterruption);
    gWatch = nullptr;
    igraph_set_error_handler(previous);
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  std::lock_guard<std::mutex> lock;
  igraph_error_handler_t* previous;
  igraph_interruption_handler_t* previousInterruption;
};

}  // namespace

WeightedGraph fuzzyConnectivities(const KnnGraph& g) {
  // The UMAP fuzzy simplicial set (umap.h), with scanpy's count of k neighbours plus the cell.
  const FuzzyGraph f = fuzzyGraph(g, g.k + 1);
  WeightedGraph out;
  out.n = g.n;
  for (int64_t i = 0; i < f.n; ++i)  // each undirected edge once (i < j), in row order
    for (int64_t e = f.rowPtr[static_cast<size_t>(i)]; e < f.rowPtr[static_cast<size_t>(i) + 1]; ++e) {
      const int64_t j = f.cols[static_cast<size_t>(e)];
      const double w = f.weights[static_cast<size_t>(e)];
      if (j <= i || !(w > 0)) continue;
      out.from.push_back(i);
      out.to.push_back(j);
      out.weight.push_back(w);
    }
  return out;
}

int32_t relabelBySize(std::vector<int32_t>& labels) {
  int32_t maxId = -1;
  for (int32_t l : labels) maxId = std::max(maxId, l);
  if (maxId < 0) return 0;
  std::vector<int64_t> size(static_cast<size_t>(maxId) + 1, 0), first(static_cast<size_t>(maxId) + 1, -1);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) continue;
    ++size[static_cast<size_t>(labels[i])];
    if (first[static_cast<size_t>(labels[i])] < 0) first[static_cast<size_t>(labels[i])] = static_cast<int64_t>(i);
  }
  std::vector<int32_t> order;
  for (int32_t c = 0; c <= maxId; ++c)
    if (size[static_cast<size_t>(c)] > 0) order.push_back(c);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    if (size[static_cast<size_t>(a)] != size[static_cast<size_t>(b)])
      return size[static_cast<size_t>(a)] > size[static_cast<size_t>(b)];
    return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)];
  });
  std::vector<int32_t> map(static_cast<size_t>(maxId) + 1, -1);
  for (size_t r = 0; r < order.size(); ++r) map[static_cast<size_t>(order[r])] = static_cast<int32_t>(r);
  for (int32_t& l : labels)
    if (l >= 0) l = map[static_cast<size_t>(l)];
  return static_cast<int32_t>(order.size());
}

Clustering leiden(const WeightedGraph& g, const LeidenOptions& o) {
  if (g.n < 1) fail(ErrorKind::InvalidArgument, "", "there are no cells to cluster");
  if (!(o.resolution > 0) || !std::isfinite(o.resolution))
    fail(ErrorKind::InvalidArgument, "", "the resolution must be a positive number (e.g. 1.0), not " +
                                             std::to_string(o.resolution));
  LeidenWatch watch;
  watch.progress = &o.progress;
  watch.pace = 2.0 * static_cast<double>(g.n);  // an iteration visits each node about twice
  IgraphScope scope(o.progress ? &watch : nullptr);
  if (!watch.call(0)) {  // cancelled already: nothing of igraph's to clean up
    if (watch.failure) std::rethrow_exception(watch.failure);
    fail(ErrorKind::Cancelled, "", "cancelled during Leiden");
  }
  igraph_vector_int_t edges;
  check(igraph_vector_int_init(&edges, static_cast<igraph_integer_t>(2 * g.from.size())), "edges");
  for (size_t e = 0; e < g.from.size(); ++e) {
    VECTOR(edges)[2 * e] = g.from[e];
    VECTOR(edges)[2 * e + 1] = g.to[e];
  }
  igraph_t graph;
  igraph_error_t rc = igraph_create(&graph, &edges, static_cast<igraph_integer_t>(g.n), IGRAPH_UNDIRECTED);
  igraph_vector_int_destroy(&edges);
  check(rc, "graph");

  igraph_vector_t weights, strength;
  igraph_vector_int_t membership;
  igraph_vector_init(&weights, static_cast<igraph_integer_t>(g.weight.size()));
  for (size_t e = 0; e < g.weight.size(); ++e) VECTOR(weights)[e] = g.weight[e];
  igraph_vector_init(&strength, static_cast<igraph_integer_t>(g.n));
  igraph_vector_int_init(&membership, static_cast<igraph_integer_t>(g.n));
  rc = igraph_strength(&graph, &strength, igraph_vss_all(), IGRAPH_ALL, IGRAPH_LOOPS, &weights);
  double total = 0;  // 2m: sum of weighted degrees
  for (int64_t i = 0; i < g.n; ++i) total += VECTOR(strength)[i];
  igraph_integer_t nClusters = 0;
  igraph_real_t quality = 0;
  if (rc == IGRAPH_SUCCESS) {
    if (total <= 0) {
      // No edges: every cell is its own cluster.
      for (int64_t i = 0; i < g.n; ++i) VECTOR(membership)[i] = i;
    } else {
      igraph_rng_seed(igraph_rng_default(), static_cast<igraph_uint_t>(o.seed));
      if (o.iterations <= 0 || !o.progress) {
        rc = igraph_community_leiden(&graph, &weights, &strength, o.resolution / total, o.beta, false,
                                     o.iterations, &membership, &nClusters, &quality);
      } else {
        // One igraph call per iteration, each from the membership the previous one left (the
        // first from singletons, as start = false), on the same seeded RNG: igraph's own loop
        // over iterations does exactly this, so the labels equal those of the single call.
        for (int it = 0; it < o.iterations && rc == IGRAPH_SUCCESS; ++it) {
          watch.from = static_cast<double>(it) / o.iterations;
          watch.to = static_cast<double>(it + 1) / o.iterations;
          watch.ticks = 0;
          rc = igraph_community_leiden(&graph, &weights, &strength, o.resolution / total, o.beta, it > 0, 1,
                                       &membership, &nClusters, &quality);
          if (rc == IGRAPH_SUCCESS && !watch.call(watch.to)) rc = IGRAPH_INTERRUPTED;
        }
      }
    }
  }
  Clustering out;
  if (rc == IGRAPH_SUCCESS) {
    out.labels.resize(static_cast<size_t>(g.n));
    for (int64_t i = 0; i < g.n; ++i) out.labels[static_cast<size_t>(i)] = static_cast<int32_t>(VECTOR(membership)[i]);
  }
  igraph_vector_int_destroy(&membership);
  igraph_vector_destroy(&strength);
  igraph_vector_destroy(&weights);
  igraph_destroy(&graph);
  if (watch.failure) std::rethrow_exception(watch.failure);
  if (watch.cancelled) fail(ErrorKind::Cancelled, "", "cancelled during Leiden");
  check(rc, "Leiden");
  if (!watch.call(1)) {
    if (watch.failure) std::rethrow_exception(watch.failure);
    fail(ErrorKind::Cancelled, "", "cancelled during Leiden");
  }
  out.clusters = relabelBySize(out.labels);
  out.modularity = quality;
  return out;
}

Clustering clusterEmbedding(const MatrixView& x, const ClusterOptions& o, ClusterReport* report) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.nNeighbors < 1) fail(ErrorKind::InvalidArgument, "", "--n-neighbors must be at least 1");
  // Cells without an embedding (NaN rows) are left out and labelled -1.
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < x.n; ++i) {
    bool finite = true;
    for (int64_t j = 0; j < x.dim && finite; ++j) finite = std::isfinite(x.row(i)[j]);
    if (finite) keep.push_back(i);
  }
  if (keep.size() < 2)
    fail(ErrorKind::Empty, "", "only " + std::to_string(keep.size()) +
                                   " cells have an embedding (the other rows are NaN): nothing to cluster");
  std::vector<float> packed;
  MatrixView sub = x;
  if (static_cast<int64_t>(keep.size()) != x.n) {
    packed.resize(keep.size() * static_cast<size_t>(x.dim));
    for (size_t r = 0; r < keep.size(); ++r)
      std::copy(x.row(keep[r]), x.row(keep[r]) + x.dim, packed.begin() + static_cast<int64_t>(r) * x.dim);
    sub = MatrixView{packed.data(), static_cast<int64_t>(keep.size()), x.dim};
  }
  KnnOptions ko = o.knn;
  ko.k = o.nNeighbors;
  LeidenOptions lo = o.leiden;
  if (o.progress) {
    ko.progress = progressSpan(o.progress, 0.0, 0.7);
    lo.progress = progressSpan(o.progress, 0.75, 1.0);
  }
  KnnReport kr;
  const KnnGraph g = knnGraph(sub, ko, &kr);
  reportProgress(o.progress, "neighbour weights", 0.7);
  const WeightedGraph w = fuzzyConnectivities(g);
  reportProgress(o.progress, "neighbour weights", 0.75);
  Clustering c = leiden(w, lo);
  Clustering out;
  out.labels.assign(static_cast<size_t>(x.n), -1);
  for (size_t r = 0; r < keep.size(); ++r) out.labels[static_cast<size_t>(keep[r])] = c.labels[r];
  out.clusters = c.clusters;
  out.modularity = c.modularity;
  if (report) {
    report->knn = kr;
    report->cellsClustered = static_cast<int64_t>(keep.size());
    report->cellsSkipped = x.n - static_cast<int64_t>(keep.size());
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return out;
}

}  // namespace uce::analysis
