#pragma once
// k-nearest-neighbour graphs of embeddings (FAISS): exact (flat) for small inputs, approximate
// (HNSW) above a size threshold. The graph every other analysis (UMAP, Leiden, metrics) uses.
#include <cstdint>
#include <string>
#include <vector>

#include "uce/core/analysis/progress.h"

namespace uce::analysis {

// Row-major [n, dim] float32 view; does not own the data.
struct MatrixView {
  const float* data = nullptr;
  int64_t n = 0, dim = 0;
  const float* row(int64_t i) const { return data + i * dim; }
};

// k neighbours per cell, self excluded, nearest first. Distances are Euclidean (not squared).
struct KnnGraph {
  int64_t n = 0;
  int k = 0;
  std::vector<int64_t> indices;  // [n * k]; -1 where fewer than k neighbours exist
  std::vector<float> distances;  // [n * k]
  const int64_t* neighbours(int64_t i) const { return indices.data() + i * k; }
  const float* dists(int64_t i) const { return distances.data() + i * k; }
};

enum class KnnMethod { Auto, Exact, Hnsw };

struct KnnOptions {
  int k = 15;
  KnnMethod method = KnnMethod::Auto;
  int64_t exactBelow = 100000;  // Auto: exact below this many cells, HNSW from there on
  int hnswM = 32;               // HNSW graph degree
  int efConstruction = 80;
  int efSearch = 64;
  int threads = 0;              // 0 = all cores
  // Builds the HNSW graph on one thread, so the graph (and the UMAP and clusters on it) is the
  // same at any thread count; the search stays parallel. false: parallel build, faster, but
  // FAISS then inserts under locks and the graph depends on the threads' timing.
  bool deterministicBuild = true;
  // Progress and cancel (progress.h): "kNN graph" through the HNSW build, the search in row
  // blocks and the recall check. The graph does not depend on it, nor on the block sizes.
  ProgressFn progress;
};

struct KnnReport {
  std::string method;       // "exact" or "hnsw"
  double seconds = 0;
  double recall = -1;       // recall@k against exact on a sample of cells; -1 = not measured
  int64_t recallSample = 0;
  int efSearch = 0;         // HNSW: the candidate-list length the search ended with
};

// Builds the graph; throws uce::Error for n < 2, k < 1 or NaN rows, Error(Cancelled) when
// options.progress asks to stop. Exact search, and HNSW with deterministicBuild, give the same
// graph at any thread count.
KnnGraph knnGraph(const MatrixView& x, const KnnOptions& options, KnnReport* report = nullptr);

// Exact neighbours of the given rows among all rows of x (self excluded): the reference for
// recall measurements.
KnnGraph exactNeighbours(const MatrixView& x, const std::vector<int64_t>& rows, int k, int threads = 0,
                         const ProgressFn& progress = {});

// Share of the exact k neighbours of each sampled row found by `graph` (mean over rows).
double recallAtK(const KnnGraph& graph, const KnnGraph& exact, const std::vector<int64_t>& rows);

}  // namespace uce::analysis
