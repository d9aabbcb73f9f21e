#pragma once
// Atlas index: the embeddings of a set of .h5ad files (or a seeded, label-stratified sample of
// up to N cells per file) in a FAISS index, with metadata saying where each atlas cell came
// from and its labels. Query cells get their k nearest atlas cells and a label vote.
//
// An atlas folder holds:
//   index.faiss  FAISS index (faiss::write_index) of the atlas cells, [cells, dim] float32, L2
//   cells.csv    atlas_row,dataset,row,obs_name,<label columns...>: one line per atlas cell
//   atlas.json   format version, representation, dim, cells, model identity, label columns,
//                datasets (path, cells, sampled, model_sha256), index type
// The folder is written beside the target and renamed into place, so a reader sees a whole
// old atlas or a whole new one.
#include <cstdint>
#include <string>
#include <vector>

#include "uce/core/analysis/knn.h"

namespace uce::analysis {

struct AtlasBuildOptions {
  std::string useRep = "X_uce";          // obsm key of the embedding
  std::vector<std::string> labelColumns; // obs columns stored per atlas cell (at least one)
  int64_t maxCellsPerDataset = 0;        // 0 = all cells; else a sample of at most this many
  uint64_t seed = 0;                     // seeds the sample
  std::string index = "auto";            // "flat" (exact), "hnsw", or "auto" (flat below hnswFrom)
  int64_t hnswFrom = 200000;             // auto: HNSW from this many atlas cells
  int hnswM = 32;
  int efConstruction = 80;
  int threads = 0;                       // 0 = all cores
};

struct AtlasDatasetInfo {
  std::string path;
  int64_t cells = 0;       // cells in the file
  int64_t embedded = 0;    // with a finite embedding
  int64_t sampled = 0;     // kept in the atlas
  std::string modelSha256; // uns['uce/model_sha256'], "" when absent
};

struct AtlasInfo {
  std::string useRep;
  int64_t dim = 0;
  int64_t cells = 0;
  std::string modelSha256;  // shared by every dataset that records one; "" when none does
  std::vector<std::string> labelColumns;
  std::vector<AtlasDatasetInfo> datasets;
  std::string index;        // "flat" or "hnsw"
};

// Reads every dataset, samples, builds the index and writes the atlas folder atomically.
// Refuses datasets whose embeddings come from different models (uns uce/model_sha256), have
// different widths, or lack the representation or a label column.
AtlasInfo buildAtlas(const std::vector<std::string>& datasets, const std::string& atlasDir,
                     const AtlasBuildOptions& options);

// Sample of at most `max` of the given rows, stratified by label: each label keeps a share
// proportional to its size (largest remainders), and at least one cell while max allows, so
// rare cell types stay in the atlas. Sorted ascending. Seeded; the same inputs give the same rows.
std::vector<int64_t> stratifiedSample(const std::vector<int64_t>& rows, const std::vector<std::string>& labels,
                                      int64_t max, uint64_t seed);

struct AtlasSearchOptions {
  int k = 15;
  bool distanceWeighted = false;  // vote weight 1/(distance + 1e-9) instead of 1
  int efSearch = 128;             // HNSW atlases: candidate list (raised to k when smaller)
  std::string useRep;             // "" = the atlas's representation
  bool allowOtherModel = false;   // skip the model-identity check (not advised)
  int threads = 0;
};

// One label column's prediction per query cell.
struct AtlasPrediction {
  std::string column;
  std::vector<std::string> label;  // "" for cells without a finite embedding
  std::vector<double> confidence;  // share of the (weighted) votes won; NaN where no prediction
};

struct AtlasSearchResult {
  int64_t cells = 0;
  int k = 0;
  std::vector<int64_t> neighbours;      // [cells, k] atlas rows, -1 where none
  std::vector<float> distances;         // [cells, k] Euclidean
  std::vector<AtlasPrediction> predictions;  // one per atlas label column
  int64_t skipped = 0;                  // query cells without a finite embedding
  std::string note;                     // e.g. why the model identity could not be checked
};

// Loads the atlas, checks the model identity and width, searches every query cell, votes.
// Throws uce::Error naming the atlas or the query file on a mismatch.
AtlasSearchResult searchAtlas(const std::string& atlasDir, const std::string& queryPath,
                              const AtlasSearchOptions& options, AtlasInfo* info = nullptr);

// Majority (or distance-weighted) vote over the k neighbours' labels; ties go to the label of
// the nearer neighbour. labelsOfNeighbours/distances: [k]; entries with label "" do not vote.
std::pair<std::string, double> voteLabel(const std::vector<std::string>& labelsOfNeighbours,
                                         const std::vector<float>& distances, bool distanceWeighted);

// Reads atlas.json only.
AtlasInfo readAtlasInfo(const std::string& atlasDir);

}  // namespace uce::analysis
