#pragma once
// The desktop app's data model, without widgets: the open datasets (DatasetDoc), the tasks run
// on them as Jobs (open, embed, UMAP, Leiden, differential expression, exports), annotations,
// and the settings that persist between sessions. Every long step is a Job on a worker thread;
// results are applied to the documents on the GUI thread when the job ends. Errors become failed
// jobs whose errorText() names the file and says what to do. No LibTorch here: the embedder is
// reached from workspace_jobs.cpp only.
#include <QMap>
#include <QObject>
#include <QSettings>
#include <QString>
#include <QStringList>
#include <QVector>
#include <cstdint>
#include <memory>
#include <vector>

#include "jobs.h"
#include "uce/core/dataframe.h"
#include "uce/core/dataset.h"

namespace uce::gui {

// What the app guesses for the embed dialog (core/inspect.h), shown as editable defaults.
struct EmbedGuess {
  QString species = "human", speciesReason;
  QString geneColumn, geneReason;  // "" = var_names
  QString countsKey, countsReason; // "" = no matrix holds raw counts
};

struct EmbedRequest {
  QString modelFile;        // weights (.torch); "" = <assetsDir>/model.torch
  QString assetsDir;        // UCE asset folder (species_offsets.pkl, protein_embeddings/, ...)
  QString species = "human";
  QString geneColumn;       // var column with gene symbols; "" = var_names
  QString countsKey;        // "" = guessed
  QString device = "cpu";   // cpu | cuda | cuda:N | auto
  int batchSize = 32;
  QString output;           // "" = "<input stem>_uce.h5ad" beside the input (a free name)
  quint64 seed = 0;
  int sampleSize = 1024, padLength = 1536;  // the release's; smaller only for quick tests
  int chunkCells = 256;     // cells between progress reports / cancel checks
  bool force = false;       // embed even when the file has X_uce from this model already
};

struct UmapRequest {
  quint64 seed = 0;
  bool also3d = false;      // also obsm["X_umap_3d"] for the 3-D map
  int nNeighbors = 15;
  float minDist = 0.5f;
  int epochs = 0;           // 0 = umap-learn's default for the size
  QString useRep = "X_uce";
};

struct ClusterRequest {
  double resolution = 1.0;
  quint64 seed = 0;
  int nNeighbors = 15;
  QString key = "leiden";   // obs column written
  QString useRep = "X_uce";
};

// One gene of a group-vs-reference comparison (core/analysis/de.h: log1p of counts per 10,000).
struct DeGeneRow {
  QString gene;
  double score = 0;         // Wilcoxon z or Welch t; positive = higher in the group
  double pval = 1, pvalAdj = 1, log2fc = 0, pctIn = 0, pctOut = 0;
  double meanIn = 0, meanOut = 0;  // mean normalised counts per target sum, in group / reference
};

struct DeTable {
  QString groupby, group, reference;  // reference: "rest" or a group
  QString method, countsKey;
  qint64 cellsIn = 0, cellsOut = 0;
  QVector<DeGeneRow> genes;            // every gene, by p-value
  // Up-regulated genes (score > 0), by p-value: the group's markers.
  QStringList topUp(int n) const;
};

struct DeRequest {
  QString method = "wilcoxon";  // wilcoxon | t-test
  QString counts;               // counts matrix; "" = guessed as `uce de` does
  QString geneColumn;           // var column with gene names; "" = var_names
};

// One open dataset. Lives on the GUI thread; jobs work on copies of what they need.
class DatasetDoc : public QObject {
  Q_OBJECT
 public:
  ~DatasetDoc() override;
  QString path() const;          // the file the user opened
  QString basePath() const;      // the file exports start from: the embed output once embedded
  QString name() const;          // file name, for display
  QString format() const;        // h5ad, 10x-h5, mtx, csv
  qint64 cells() const;
  qint64 genes() const;
  const uce::DataFrame& obs() const;  // the file's obs with clusters and annotations over it
  const uce::DataFrame& var() const;
  QStringList countMatrices() const;  // "X", "layers/counts", "raw/X", ...
  EmbedGuess guess() const;

  // obsm arrays: those of the file (loaded when opened) and those computed here.
  QStringList obsmKeys() const;
  std::shared_ptr<const uce::DenseMatrix> obsm(const QString& key) const;  // null if absent
  bool hasEmbedding() const { return obsm("X_uce") != nullptr; }
  // Provenance of X_uce: uns["uce/model_sha256"] of the file ("" = unknown / none).
  QString embeddingModelSha256() const;
  // True when X_uce exists and was made by the model file with this SHA-256.
  bool hasEmbeddingFrom(const QString& modelSha256) const;
  bool lastEmbedReused() const { return embedReused_; }

  // Clusters: labels per cell (-1 = none) of obs[clusterKey()], 0 = largest.
  const std::vector<int32_t>& clusters() const;
  int clusterCount() const;
  QString clusterKey() const;
  QStringList annotationColumns() const;  // made in this session (clusters excluded)
  const uce::Column* column(const QString& name) const;  // obs column, or null
  bool isModified() const;

  // Names the cells `rows` with `label` in annotation column `column` (a categorical obs
  // column, made if new; an existing obs column of that name is the starting point). Other
  // cells keep their label, or none. False with *error set for bad rows or names.
  bool labelCells(const QString& column, const QString& label, const std::vector<int64_t>& rows,
                  QString* error = nullptr);
  // New annotation column whose label per cell is its cluster's name (names[cluster]; clusters
  // without a name keep their number; cells without a cluster get none).
  bool renameClusters(const QString& column, const QMap<int, QString>& names, QString* error = nullptr);
  // Adds or replaces a numeric (float) obs column, one value per cell (NaN = missing), e.g. a
  // classifier's probability to colour the map by. False with *error for a wrong length or a
  // name that is an existing column of the file.
  bool setNumericColumn(const QString& column, std::vector<double> values, QString* error = nullptr);

 Q_SIGNALS:
  void changed();  // obs, obsm, clusters or annotations changed

 public:
  struct State;  // opaque (workspace_state.h)

 private:
  friend class Workspace;
  explicit DatasetDoc(std::unique_ptr<State> state, QObject* parent);
  void setObsm(const QString& key, std::shared_ptr<const uce::DenseMatrix> m, bool computed);
  void setExtraColumn(uce::Column c);
  void rebuildObs();

  std::unique_ptr<State> s_;
  bool embedReused_ = false;
};

// Settings that persist (QSettings): model, assets, device, batch size, recent files.
class AppSettings {
 public:
  // organisation/application as QSettings takes them (tests pass a scope of their own).
  AppSettings(const QString& organisation, const QString& application);
  // An INI file instead (tests, portable installs).
  explicit AppSettings(const QString& iniFile);
  QString modelFile() const;
  void setModelFile(const QString& path);
  QString assetsDir() const;
  void setAssetsDir(const QString& path);
  QString device() const;  // "cpu" unless set
  void setDevice(const QString& device);
  int batchSize() const;   // 32 unless set
  void setBatchSize(int n);
  QStringList recentFiles() const;  // newest first, at most maxRecent()
  void addRecentFile(const QString& path);
  void removeRecentFile(const QString& path);
  static int maxRecent() { return 10; }
  void sync();
  QSettings& raw() { return *settings_; }

 private:
  std::unique_ptr<QSettings> settings_;
};

// The open datasets and the jobs that work on them.
class Workspace : public QObject {
  Q_OBJECT
 public:
  // jobs: where tasks run (not owned). settings: recent files are recorded there (optional).
  explicit Workspace(JobManager* jobs, AppSettings* settings = nullptr, QObject* parent = nullptr);
  ~Workspace() override;
  JobManager* jobs() const { return jobs_; }
  QVector<DatasetDoc*> documents() const { return docs_; }
  DatasetDoc* document(const QString& path) const;  // null when not open
  void close(DatasetDoc* doc);

  // Opens .h5ad / 10x .h5 / MTX folder / CSV; documentOpened() on success. A file already open
  // is not opened twice (the job ends at once, Done).
  Job* open(const QString& path);
  // Zero-shot embedding into a new .h5ad (never the input); then X_uce is loaded into the doc
  // and the output becomes its basePath. Skipped (Done, lastEmbedReused()) when the doc's
  // X_uce came from the same model file (by SHA-256) unless request.force.
  Job* embed(DatasetDoc* doc, const EmbedRequest& request);
  // obsm["X_umap"] (2-D) and, if asked, obsm["X_umap_3d"] from X_uce. Seeded.
  Job* computeUmap(DatasetDoc* doc, const UmapRequest& request);
  // Leiden clusters of X_uce at a resolution into obs[request.key]. Seeded.
  Job* cluster(DatasetDoc* doc, const ClusterRequest& request);
  // Group vs rest (or vs another group) of any obs column of the doc, including clusters and
  // annotations; deReady() with the table.
  Job* diffExp(DatasetDoc* doc, const QString& groupby, const QString& group, const QString& reference = "rest",
               const DeRequest& request = {});
  // The cells `rows` against every other cell.
  Job* diffExpSelection(DatasetDoc* doc, const std::vector<int64_t>& rows, const DeRequest& request = {});
  // Every cluster against the rest: markersReady() with the top `topN` up-regulated genes each.
  Job* clusterMarkers(DatasetDoc* doc, int topN = 10, const DeRequest& request = {});

  // Annotated .h5ad: the base file with X_uce, X_umap(_3d), clusters and annotations added,
  // everything else kept. Refuses output == input unless overwriteInput.
  Job* exportAnnotated(DatasetDoc* doc, const QString& output, bool overwriteInput = false);
  // The cells `rows` as a new .h5ad: every per-cell array subset, var and uns kept, with this
  // session's obsm arrays, clusters and annotations.
  Job* exportSelection(DatasetDoc* doc, const std::vector<int64_t>& rows, const QString& output);
  // CSV: cell id, obs columns, then each obsm array's columns (X_uce_0, ...). Empty lists = all.
  Job* exportCsv(DatasetDoc* doc, const QString& output, const QStringList& obsColumns = {},
                 const QStringList& obsmKeys = {});

  // Last results (also delivered by the signals).
  const QMap<int, QStringList>& markers(DatasetDoc* doc) const;

 Q_SIGNALS:
  void documentOpened(uce::gui::DatasetDoc* doc);
  void documentClosed(uce::gui::DatasetDoc* doc);
  void deReady(uce::gui::DatasetDoc* doc, const uce::gui::DeTable& table);
  void markersReady(uce::gui::DatasetDoc* doc, const QMap<int, QStringList>& markers);
  void exported(uce::gui::DatasetDoc* doc, const QString& path);

 private:
  Job* startDe(DatasetDoc* doc, const QString& name, std::vector<uce::Column> extra, const QString& groupby,
               const QString& group, const QString& reference, const DeRequest& request);
  bool alive(DatasetDoc* doc) const { return docs_.contains(doc); }
  JobManager* jobs_;
  AppSettings* settings_;
  QVector<DatasetDoc*> docs_;
  QMap<DatasetDoc*, QMap<int, QStringList>> markers_;
};

}  // namespace uce::gui
