#pragma once
// Leiden clustering of cells on their kNN graph (igraph 0.10, modularity objective), as
// scanpy's sc.tl.leiden does it: kNN graph -> UMAP fuzzy-set connectivities -> Leiden.
#include <cstdint>
#include <string>
#include <vector>

#include "uce/core/analysis/knn.h"

namespace uce::analysis {

// Undirected weighted graph, each edge stored once (from < to).
struct WeightedGraph {
  int64_t n = 0;
  std::vector<int64_t> from, to;
  std::vector<double> weight;
};

// scanpy's neighbour weights (UMAP fuzzy simplicial set, umap-learn's smooth_knn_dist):
// w(i->j) = exp(-(d_ij - rho_i) / sigma_i), rho_i = distance to the nearest neighbour,
// sigma_i such that sum_j w(i->j) = log2(k + 1) (k neighbours plus the cell itself, as scanpy
// counts n_neighbors); symmetrised as w = a + b - a * b. Weights lie in (0, 1].
WeightedGraph fuzzyConnectivities(const KnnGraph& graph);

struct LeidenOptions {
  double resolution = 1.0;  // modularity resolution gamma; higher = more, smaller clusters
  uint64_t seed = 0;        // igraph's RNG is seeded with this: same seed, same labels
  int iterations = -1;      // Leiden passes; negative = until the partition stops changing
  double beta = 0.01;       // randomness of the refinement step (leidenalg's default)
  // Progress and cancel (progress.h): "Leiden" every ~10,000 node visits (igraph's interruption
  // points) and, with a fixed number of iterations, after each iteration. The labels do not
  // depend on it: fixed iterations run one igraph call per iteration from the previous
  // membership, which is what igraph's own loop does; iterations < 0 stay one igraph call. A
  // cancel takes effect when the igraph call in progress returns (igraph 0.10 cannot be
  // interrupted safely inside Leiden): after the current iteration, or with iterations < 0 at
  // the end (igraph 0.10.2 stops after the first iteration that moves a node).
  ProgressFn progress;
};

struct Clustering {
  std::vector<int32_t> labels;  // [n]; 0 = largest cluster, 1 = next, ...; -1 = not clustered
  int32_t clusters = 0;
  double modularity = 0;        // igraph's quality of the partition (generalised modularity)
};

// Leiden with the modularity objective: node weights = weighted degrees, igraph's resolution
// = gamma / (2m). Clusters are relabelled by size (ties: the one with the lowest cell first).
Clustering leiden(const WeightedGraph& graph, const LeidenOptions& options);

// Relabels cluster ids by size, largest = 0; -1 stays -1. Returns the number of clusters.
int32_t relabelBySize(std::vector<int32_t>& labels);

struct ClusterOptions {
  int nNeighbors = 15;  // k of the kNN graph (self excluded)
  LeidenOptions leiden;
  KnnOptions knn;       // k is taken from nNeighbors
  // Progress and cancel of the whole call (progress.h): the kNN graph 0-0.7, the connectivities
  // to 0.75, Leiden to 1. When set, it replaces knn.progress and leiden.progress.
  ProgressFn progress;
};

struct ClusterReport {
  KnnReport knn;
  int64_t cellsClustered = 0;
  int64_t cellsSkipped = 0;  // rows with NaN/Inf (cells that were not embedded)
  double seconds = 0;
};

// Embedding [n, dim] -> Leiden labels. Rows with a NaN/Inf value are left out of the graph and
// get label -1. Throws uce::Error when fewer than 2 cells have an embedding, Error(Cancelled) when
// options.progress asks to stop.
Clustering clusterEmbedding(const MatrixView& x, const ClusterOptions& options, ClusterReport* report = nullptr);

}  // namespace uce::analysis
