#pragma once
// Integration metrics with scIB's definitions (Luecken et al. 2022): how well an embedding keeps
// cell types apart (cell-type ASW, NMI/ARI, isolated labels) and mixes batches within a cell type
// (batch ASW, graph connectivity, iLISI), plus a check for collapsed embeddings.
// Labels are integer codes: 0..L-1, -1 = missing (such cells are left out).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "uce/core/analysis/knn.h"

namespace uce::analysis {

// Per-cell silhouette, exactly as sklearn.metrics.silhouette_samples (Euclidean): a = mean
// distance to the other cells of the own label, b = smallest mean distance to another label,
// s = (b - a) / max(a, b); 0 for cells alone in their label. O(n^2 dim) in double precision,
// in row blocks over `threads` threads (0 = all cores). Needs 2 <= labels < n.
std::vector<double> silhouetteSamples(const MatrixView& x, const std::vector<int32_t>& labels, int threads = 0);

// Mean of silhouetteSamples (sklearn.metrics.silhouette_score).
double silhouetteScore(const MatrixView& x, const std::vector<int32_t>& labels, int threads = 0);

// sklearn.metrics.normalized_mutual_info_score (arithmetic mean normalisation) and
// adjusted_rand_score of two labelings of the same cells (codes >= 0).
double normalizedMutualInfo(const std::vector<int32_t>& a, const std::vector<int32_t>& b);
double adjustedRandIndex(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

// scIB graph connectivity: per label, the share of its cells in the largest connected component
// of the kNN graph restricted to that label (edges taken as undirected); mean over labels.
double graphConnectivity(const KnnGraph& graph, const std::vector<int32_t>& labels);

// Per-cell inverse Simpson's index of `groups` over each cell's neighbourhood (Harmony/scIB
// LISI): Gaussian weights on the kNN distances with the bandwidth set by `perplexity` (scIB:
// k / 3). Values lie in [1, number of groups]; NaN where the calibration failed.
std::vector<double> lisi(const KnnGraph& graph, const std::vector<int32_t>& groups, double perplexity);

// Mean cosine similarity between distinct cells of a seeded sample of `sample` cells.
double meanCosine(const MatrixView& x, int64_t sample, uint64_t seed);

struct MetricsOptions {
  int64_t silhouetteMaxCells = 50000;  // above this, silhouettes use a seeded sample of this size
  int knnK = 15;                       // graph for connectivity and clustering (scanpy's default)
  int lisiK = 90;                      // neighbourhood of iLISI (scIB: k0 = 90, perplexity k0 / 3)
  double resolutionMin = 0.1, resolutionMax = 2.0, resolutionStep = 0.1;  // scIB's NMI/ARI sweep
  int64_t cosineSample = 2000;         // cells in the collapse check
  double collapseThreshold = 0.95;     // mean cosine above this = collapsed embedding
  uint64_t seed = 0;                   // subsamples and Leiden
  int threads = 0;                     // 0 = all cores
};

// Every score lies in [0, 1], higher = better; NaN = not computable (e.g. no batch column, or a
// single label), with the reason in notes.
struct IntegrationMetrics {
  int64_t cells = 0;           // rows in the input
  int64_t cellsUsed = 0;       // with an embedding and a label (and a batch when given)
  int64_t labels = 0, batches = 0;
  double cellTypeAsw = NAN;    // (silhouette(labels) + 1) / 2
  double batchAsw = NAN;       // per label: mean of 1 - |silhouette(batch)|; mean over labels
  double nmi = NAN, ari = NAN; // Leiden clusters vs labels, at the resolution with the best NMI
  double bestResolution = NAN;
  int32_t bestClusters = 0;
  double graphConnectivity = NAN;
  double isolatedLabelAsw = NAN;  // labels in the fewest batches: mean (silhouette + 1) / 2 of their cells
  double isolatedLabelF1 = NAN;   // same labels: best F1 of one Leiden cluster vs the label (scIB cluster variant)
  std::vector<std::string> isolatedLabels;
  double ilisi = NAN;          // (median iLISI - 1) / (batches - 1)
  double meanCosine = NAN;
  bool collapsed = false;
  int64_t silhouetteCells = 0;
  bool silhouetteSubsampled = false;
  std::vector<std::string> warnings;  // things a user must act on (collapsed embedding)
  std::vector<std::string> notes;     // what was approximated or skipped, and why
};

// x: [n, dim]; labels: [n] codes into labelNames (-1 = missing); batches: empty (no batch
// metrics) or [n] codes into batchNames. Rows with NaN/Inf, a missing label or a missing batch
// are left out. Throws uce::Error when fewer than 3 cells remain.
IntegrationMetrics integrationMetrics(const MatrixView& x, const std::vector<int32_t>& labels,
                                      const std::vector<std::string>& labelNames,
                                      const std::vector<int32_t>& batches, const MetricsOptions& options);

// One JSON object (NaN as null) / a readable table.
std::string toJson(const IntegrationMetrics& m);
std::string toText(const IntegrationMetrics& m);

}  // namespace uce::analysis
