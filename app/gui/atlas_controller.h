#pragma once
// The app's atlas and centroid workflows without widgets (issue 7, "Atlas and centroids"):
//  * build an atlas folder from chosen files (optionally a label-stratified sample of up to N
//    cells per dataset), reopen it, and compute its map (UMAP of the atlas cells) saved with it;
//  * place a new dataset on that map (umapTransform): atlas + query coordinates and a query flag;
//  * centroid tables: each query label's nearest reference centroids, the paper's top-1 / top-3
//    agreement (Extended Data Table 1), the dendrogram (SciPy linkage) of the reference centroids
//    and the rows of one centroid's cells;
//  * cell search: for chosen query rows, their nearest atlas cells and the label vote.
// The computations are free functions (testable without an event loop); AtlasController runs
// them as Jobs and keeps the last results for the panel. Errors are uce::Error naming the file.
//
// The atlas folder of `uce atlas build` (index.faiss, cells.csv, atlas.json) gains, when the app
// builds it or computes its map:
//   embedding.f32  the atlas cells' embeddings, [cells, dim] float32 little-endian, row = atlas_row
//                  (kept so the map and cell search work when the source files move)
//   map.csv        atlas_row,umap_1,umap_2
//   map.json       the UMAP options the map was made with (placement reuses them)
#include <QObject>
#include <QString>
#include <QStringList>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "jobs.h"
#include "uce/core/analysis/atlas.h"
#include "uce/core/analysis/centroids.h"
#include "uce/core/analysis/hclust.h"
#include "uce/core/dataset.h"

namespace uce::gui {

// Progress + cancel hook of the free functions: (done, total, stage) -> false = stop.
using AtlasProgress = std::function<bool(int64_t, int64_t, const std::string&)>;

struct AtlasBuildRequest {
  QStringList files;              // embedded .h5ad files
  QString outDir;                 // atlas folder (an existing atlas is replaced)
  QStringList labelColumns;       // obs columns kept per atlas cell, e.g. cell_type, tissue, species
  qint64 maxCellsPerDataset = 0;  // 0 = every cell; else a stratified sample of at most N
  quint64 seed = 0;               // seeds the sample
  QString useRep = "X_uce";
};

struct AtlasMapRequest {
  int nNeighbors = 15;
  float minDist = 0.5f;
  int epochs = 0;                 // 0 = umap-learn's default for the size
  quint64 seed = 0;
};

// An opened atlas: atlas.json, cells.csv, the embeddings and the map when present.
struct AtlasData {
  QString dir;
  uce::analysis::AtlasInfo info;
  std::vector<int32_t> dataset;                 // [cells] index into info.datasets
  std::vector<int64_t> row;                     // [cells] row in that dataset
  std::vector<std::string> obsName;             // [cells]
  std::vector<std::vector<std::string>> labels; // [labelColumn][cells]
  std::vector<float> embedding;                 // [cells, info.dim]
  std::vector<float> map;                       // [cells, 2]; empty until computed
  AtlasMapRequest mapOptions;                   // what `map` was made with

  int64_t cells() const { return info.cells; }
  bool hasMap() const { return !map.empty(); }
  int labelIndex(const QString& column) const;  // -1 when the atlas lacks it
};

// The atlas map with a query dataset placed on it: atlas cells first, then every query cell.
struct AtlasPlacement {
  QString queryPath;
  int64_t atlasCells = 0, queryCells = 0;
  std::vector<float> coords;    // [atlasCells + queryCells, 2]; NaN for query cells without embedding
  std::vector<uint8_t> isQuery; // [atlasCells + queryCells] 1 = query cell
  int64_t placed = 0;           // query cells with a finite embedding (and coordinates)
};

// One side of a centroid comparison: files (rows concatenated) or the open atlas.
struct CentroidSource {
  bool atlas = false;             // true: the atlas cells (label/group = atlas label columns)
  QStringList files;              // when !atlas
  QString label = "cell_type";    // label column
  QString group;                  // optional group column (e.g. species); names become label|group
  QString groupValue;             // with group: keep only this group (names become bare labels)
};

struct CentroidRequest {
  CentroidSource query, reference;
  int64_t minCells = 1;
  QString linkage = "average";    // average | ward | complete | single (tree of the reference)
  QString useRep = "X_uce";       // for file sources
};

struct CentroidResult {
  QString querySource, referenceSource;  // display names
  uce::analysis::Centroids query, reference;
  std::vector<uce::analysis::CentroidMatch> matches;  // per query centroid
  uce::analysis::AlignmentScore score;
  std::vector<uce::analysis::Merge> tree;              // linkage of the reference centroids
  // Rows per reference centroid, in the reference's numbering (atlas rows for the atlas).
  std::vector<std::vector<int64_t>> referenceRows;
  bool referenceIsAtlas = false;
  QString csv;                                         // the CLI's table (appendMatchTable, k = 3)

  // Rows of the reference centroid named `name` (empty when unknown).
  std::vector<int64_t> rowsOf(const QString& name) const;
};

struct CellSearchRequest {
  QString queryPath;
  std::shared_ptr<const uce::DenseMatrix> embedding;  // optional: X_uce already in memory
  std::vector<int64_t> rows;      // query rows to search
  int k = 15;
  bool distanceWeighted = false;
  QString labelColumn;            // atlas label column voted on; "" = the first
};

struct CellSearchHit {
  int64_t queryRow = 0;
  std::vector<int64_t> neighbours;  // [k] atlas rows, nearest first
  std::vector<float> distances;     // [k] Euclidean
  QString label;                    // vote of the neighbours ("" when the row has no embedding)
  double confidence = 0;            // share of the votes won
};

struct CellSearchResult {
  QString queryPath, labelColumn;
  int k = 0;
  std::vector<CellSearchHit> hits;
  QStringList voteLabels;           // overall vote over the searched cells, most first
  std::vector<int64_t> voteCounts;  // cells whose vote went to voteLabels[i]
};

// --- the computations (any thread) ---
// Reads an atlas folder; the embeddings from embedding.f32, else from the source files (the
// error says which file moved). The map when map.csv exists.
AtlasData loadAtlas(const QString& dir, const AtlasProgress& progress = {});
// buildAtlas (core) and embedding.f32; returns the opened atlas.
AtlasData buildAtlasFolder(const AtlasBuildRequest& r, const AtlasProgress& progress = {});
// UMAP of the atlas cells; fills atlas.map and writes map.csv / map.json atomically.
void computeAtlasMap(AtlasData& atlas, const AtlasMapRequest& r);
// Places the query's embedding (`embedding`, or obsm[useRep] of queryPath) on the atlas map.
// Refuses another model (uns uce/model_sha256) or width.
AtlasPlacement placeOnAtlas(const AtlasData& atlas, const QString& queryPath,
                            std::shared_ptr<const uce::DenseMatrix> embedding = nullptr);
CentroidResult computeCentroidTable(const CentroidRequest& r, const AtlasData* atlas);
CellSearchResult searchAtlasCells(const AtlasData& atlas, const CellSearchRequest& r,
                                  const AtlasProgress& progress = {});

// Runs the computations as jobs; results are kept and announced on the GUI thread.
class AtlasController : public QObject {
  Q_OBJECT
 public:
  explicit AtlasController(JobManager* jobs, QObject* parent = nullptr);

  Job* buildAtlas(const AtlasBuildRequest& r);     // then the new atlas is the open one
  Job* openAtlas(const QString& dir);
  Job* computeMap(const AtlasMapRequest& r = {});  // needs an open atlas
  Job* placeDataset(const QString& path, std::shared_ptr<const uce::DenseMatrix> embedding = nullptr);
  Job* computeCentroids(const CentroidRequest& r);
  Job* searchCells(const CellSearchRequest& r);

  std::shared_ptr<const AtlasData> atlas() const { return atlas_; }
  std::shared_ptr<const AtlasPlacement> placement() const { return placement_; }
  std::shared_ptr<const CentroidResult> centroids() const { return centroids_; }
  std::shared_ptr<const CellSearchResult> search() const { return search_; }
  JobManager* jobs() const { return jobs_; }

 Q_SIGNALS:
  void atlasChanged();      // built or opened (the placement is cleared)
  void mapReady();
  void placementReady();
  void centroidsReady();
  void searchReady();

 private:
  Job* startWithAtlas(const QString& name, std::function<void(JobContext&, const AtlasData&)> work,
                      std::function<void()> onDone);
  JobManager* jobs_;
  std::shared_ptr<const AtlasData> atlas_;
  std::shared_ptr<const AtlasPlacement> placement_;
  std::shared_ptr<const CentroidResult> centroids_;
  std::shared_ptr<const CellSearchResult> search_;
};

}  // namespace uce::gui
