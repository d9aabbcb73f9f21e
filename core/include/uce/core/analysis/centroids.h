#pragma once
// Centroids (mean embeddings) per label or per label x group, nearest centroids of one source
// among another's (FAISS, Euclidean), and the UCE paper's alignment score: the share of labels
// whose own centroid (same name in the other source) is among the k = 1 and k = 3 nearest
// (Rosen et al. 2023, Extended Data Table 1, Fig. 3d).
#include <cstdint>
#include <string>
#include <vector>

#include "uce/core/analysis/knn.h"

namespace uce::analysis {

// One source's centroids, sorted by (label, group) in byte order so that results do not depend
// on row order. name = label, or "label|group" when grouped.
struct Centroids {
  int64_t dim = 0;
  std::vector<std::string> names;
  std::vector<std::string> labels;
  std::vector<std::string> groups;  // "" when not grouped
  std::vector<int64_t> cells;       // cells averaged into each centroid
  std::vector<double> means;        // [names.size(), dim], accumulated in double

  int64_t size() const { return static_cast<int64_t>(names.size()); }
  const double* mean(int64_t i) const { return means.data() + i * dim; }
};

struct CentroidOptions {
  int64_t minCells = 1;  // labels (or label x group cells) with fewer cells get no centroid
};

// Mean of the rows of x per label (and group, when `groups` is non-empty: one entry per row).
// Rows whose label is "" (missing) or whose embedding is not finite (cells left out of the
// embedding) are skipped. Throws uce::Error when sizes disagree or no centroid remains.
Centroids computeCentroids(const MatrixView& x, const std::vector<std::string>& labels,
                           const std::vector<std::string>& groups = {}, const CentroidOptions& options = {});

// The centroids whose group equals `group` (names become the bare labels): one source of a
// single grouped table, e.g. the human cell types of a cell type x species table.
Centroids selectGroup(const Centroids& c, const std::string& group);

// For each query centroid: every reference centroid ranked by Euclidean distance (FAISS flat
// L2 index), and where the reference centroid of the same name lands.
struct CentroidMatch {
  std::string query;             // query centroid name
  int64_t queryCells = 0;
  std::vector<int64_t> nearest;  // reference centroid indices, nearest first (all of them)
  std::vector<double> distances; // Euclidean, same order
  int64_t ownRank = 0;           // 1-based rank of the same-named reference centroid; 0 = absent
  double ownDistance = -1;       // -1 when absent
};

// excludeSameIndex: query and reference are the same table (nearest *other* centroids).
std::vector<CentroidMatch> nearestCentroids(const Centroids& query, const Centroids& reference,
                                            bool excludeSameIndex = false);

// Alignment score at k: among query centroids whose name exists in the reference, the share
// whose own centroid is among the k nearest. NaN when no name is shared.
struct AlignmentScore {
  int64_t shared = 0;  // labels present in both sources
  int64_t hitsAt1 = 0, hitsAt3 = 0;
  double at1() const;
  double at3() const;
};
AlignmentScore alignmentScore(const std::vector<CentroidMatch>& matches);

// The per-label table as CSV: query_source,reference_source,query_label,query_group,
// query_cells,own_rank,own_distance,nearest_1,distance_1,...,nearest_k,distance_k.
// own_rank/own_distance are empty when the reference lacks the label. Rows are appended to
// `csv` (the header only when csv is empty).
void appendMatchTable(std::string& csv, const std::string& querySource, const std::string& referenceSource,
                      const Centroids& query, const Centroids& reference,
                      const std::vector<CentroidMatch>& matches, int k);

// Embeddings and labels of one or more .h5ad files, rows concatenated: one side (query or
// reference) of a centroid comparison. Throws uce::Error naming the file when obsm[rep] or a
// column is missing, the widths differ, or the files were embedded by different models
// (uns["uce/model_sha256"]).
struct LabelledEmbeddings {
  std::string name;       // file stem(s) joined by '+', for tables
  std::string firstPath;  // the file the model identity came from
  std::string model;      // uns uce/model_sha256 ("" when absent)
  std::vector<float> x;   // [n, dim] float32
  int64_t n = 0, dim = 0;
  std::vector<std::string> labels, groups;  // [n]; groups empty when no group column
};
LabelledEmbeddings loadLabelledEmbeddings(const std::vector<std::string>& paths, const std::string& rep,
                                          const std::string& label, const std::string& group);

}  // namespace uce::analysis
