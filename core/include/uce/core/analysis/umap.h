#pragma once
// UMAP (McInnes, Healy & Melville 2018): a 2-D or 3-D map of an embedding, built on the kNN graph
// of knn.h. The steps follow the published algorithm as umap-learn implements it, each a free
// function below so it can be tested on its own; umap() composes them.
//
//   smoothKnn        per-cell rho (distance to the nearest neighbour) and sigma (binary search so
//                    that sum_j exp(-(d_ij - rho_i) / sigma_i) = log2(nNeighbors))
//   fuzzyGraph       membership strengths, symmetrised by fuzzy union  P + P^T - P .* P^T
//   spectralInit     eigenvectors of the normalised Laplacian (Spectra); a seeded random init
//                    when the graph is disconnected or the eigensolver does not converge
//   findAB           a, b of the low-dimensional curve 1 / (1 + a d^(2b)), least squares fit to
//                    min_dist / spread (as umap-learn's find_ab_params)
//   optimizeLayout   SGD on the fuzzy cross-entropy with negative sampling
//
// Determinism and threads: the SGD is run in epochs; within an epoch every cell is moved only
// by the edges it heads, cells are split into contiguous ranges over the threads, the positions
// of *other* cells are read from a copy taken at the start of the epoch, and each cell draws
// its negative samples from its own random stream seeded by (seed, epoch, cell). So the result
// depends on the seed only: the same for any thread count, bit for bit. (umap-learn instead
// moves both ends of an edge in place, "Hogwild", which is not reproducible across threads. In
// the symmetric graph every pair is an edge in both directions, so each end here takes the pull
// of both samplings of the pair, which keeps umap-learn's balance of attraction and repulsion.)
// The negative samples of one edge sampling all push from the cell's position after its pull
// and their pushes are summed, so they do not wait on each other (1.5x faster; bench/RESULTS.md).
#include <cstdint>
#include <string>
#include <vector>

#include "uce/core/analysis/knn.h"

namespace uce::analysis {

struct UmapOptions {
  int dims = 2;              // output dimensions: 2 or 3
  int nNeighbors = 15;       // as umap-learn's n_neighbors: counts the cell itself, so the
                             // kNN graph has nNeighbors - 1 neighbours per cell
  float minDist = 0.5f;      // smallest distance between points in the map (umap-learn: 0.1;
                             // 0.5 is Scanpy's default and ours)
  float spread = 1.0f;       // scale of the embedded points
  int nEpochs = 0;           // 0 = 500 for up to 10,000 cells, 200 above (umap-learn)
  float learningRate = 1.0f; // initial SGD step, decayed linearly to 0
  float negativeSampleRate = 5.0f;  // negative samples per positive sample
  float repulsionStrength = 1.0f;   // gamma: weight of the negative samples
  bool spectral = true;      // false = random init
  uint64_t seed = 0;
  int threads = 0;           // 0 = all cores; the result does not depend on it
  KnnOptions knn;            // knn.k is set from nNeighbors; umap() gives knn.progress a share
                             // of `progress` when that is set
  // Progress and cancel (progress.h). umap(): "kNN graph" 0-0.6, then as umapFromGraph() in the
  // rest; umapFromGraph(): "UMAP graph" 0-0.05, "UMAP init" (spectral) to 0.2, "UMAP layout"
  // (every SGD epoch) to 1. umapTransform(): its search to 0.2, then every epoch. The map does
  // not depend on it.
  ProgressFn progress;
};

struct UmapReport {
  std::string init;          // "spectral", or "random (...why...)"
  std::string knnMethod;
  double knnSeconds = 0, graphSeconds = 0, initSeconds = 0, optimizeSeconds = 0;
  int nEpochs = 0;
  float a = 0, b = 0;
  int64_t edges = 0;         // directed edges of the fuzzy graph after pruning
};

// Symmetric sparse graph in CSR, [n, n]: row i lists its neighbours and membership strengths.
struct FuzzyGraph {
  int64_t n = 0;
  std::vector<int64_t> rowPtr;  // [n + 1]
  std::vector<int64_t> cols;    // [edges]
  std::vector<float> weights;   // [edges], in (0, 1]
};

// rho, sigma per cell from its kNN distances (self excluded, nearest first). targetLog2 is
// log2(nNeighbors); localConnectivity 1 (fit) or 0 (transform: rho = 0).
void smoothKnn(const KnnGraph& g, double target, int localConnectivity, std::vector<float>& rho,
               std::vector<float>& sigma);

// Fuzzy simplicial set of the kNN graph, fuzzy union of both directions.
FuzzyGraph fuzzyGraph(const KnnGraph& g, int nNeighbors);

// a, b such that 1 / (1 + a x^(2b)) fits 1 for x < minDist and exp(-(x - minDist) / spread)
// beyond, on 300 points of [0, 3 * spread] (least squares, Levenberg-Marquardt).
void findAB(float spread, float minDist, float& a, float& b);

// Initial coordinates [n, dims] scaled into [0, 10]: the 2nd..(dims+1)th eigenvectors of the
// normalised Laplacian, scaled to +-10 plus N(0, 1e-4) noise, as umap-learn. Returns "spectral",
// or "random (reason)" with seeded uniform coordinates when the graph is disconnected (umap-learn
// would lay out each part separately) or the eigensolver fails. threads: 0 = all cores.
// progress: "UMAP init" after each product with the graph (the eigensolver's iteration count is
// not known in advance, so the fraction approaches 1 without a fixed pace).
std::string spectralInit(const FuzzyGraph& g, int dims, uint64_t seed, std::vector<float>& coords, int threads = 0,
                         const ProgressFn& progress = {});

// Map of x [n, dim] float32 -> [n, options.dims] float32 (row-major). Throws uce::Error on
// bad options, fewer than 3 cells, or non-finite rows; Error(Cancelled) when options.progress
// asks to stop.
std::vector<float> umap(const MatrixView& x, const UmapOptions& options, UmapReport* report = nullptr);

// The same for an embedding whose rows may hold NaN/Inf (cells that were not embedded, e.g.
// dropped by `uce embed`'s filters): those cells are left out of the map and get NaN coordinates,
// so the result [n, options.dims] stays aligned with the cells. mapped (optional) receives the
// number of cells mapped. Throws uce::Error(Empty) when fewer than 3 rows are finite.
// graph (optional): the kNN graph of the mapped cells is kept there, and when it already holds
// one with enough neighbours it is used instead of searching again (the app's 2-D and 3-D maps
// of one embedding share it; report->knnMethod is then "reused").
std::vector<float> umapSkippingMissing(const MatrixView& x, const UmapOptions& options, UmapReport* report = nullptr,
                                       int64_t* mapped = nullptr, KnnGraph* graph = nullptr);

// The same from a kNN graph already built (k >= nNeighbors - 1; extra neighbours are ignored).
std::vector<float> umapFromGraph(const KnnGraph& g, const UmapOptions& options, UmapReport* report = nullptr);

// Places new cells `query` [m, dim] into an existing map: their nNeighbors - 1 nearest
// reference cells (exact search), start at the membership-weighted mean of those neighbours'
// map positions, then SGD (a third of the fit's epochs or 100 / 30 epochs, learning rate / 4, as
// umap-learn) with the reference map held fixed. New cells take the fit's double pull per edge,
// so they settle where a reference cell with the same neighbours would (umap-learn pulls them
// once and leaves them on their cluster's outskirts). reference [n, dim], refMap [n, dims].
std::vector<float> umapTransform(const MatrixView& reference, const std::vector<float>& refMap,
                                 const MatrixView& query, const UmapOptions& options);

// Trustworthiness (Venna & Kaski 2001; as sklearn.manifold.trustworthiness, Euclidean) of the
// map `low` [n, lowDim] of `high` [n, highDim]: 1 - penalty for map neighbours that are not
// neighbours in the embedding. rows: the cells whose neighbourhoods are scored (empty = all;
// a sample gives an unbiased estimate at O(rows * n) cost). Requires k < n / 2.
double trustworthiness(const MatrixView& high, const MatrixView& low, int k, const std::vector<int64_t>& rows = {},
                       int threads = 0);

}  // namespace uce::analysis
