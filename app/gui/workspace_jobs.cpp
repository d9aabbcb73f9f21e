// The Workspace's jobs: reading a dataset, embedding, UMAP, Leiden, differential expression and
// exports. Each work function runs on a worker thread on copies of the document's data (shared,
// immutable matrices); its onDone part applies the results to the document on the GUI thread.
// The computations are the library calls the `uce` CLI makes (embedDataset, umapSkippingMissing,
// clusterEmbedding, rankGenes, ResultsWriter, writeH5adSubset).
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSaveFile>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "uce/core/analysis/cluster.h"
#include "uce/core/analysis/de.h"
#include "uce/core/analysis/umap.h"
#include "uce/core/error.h"
#include "uce/core/h5ad_subset.h"
#include "uce/core/h5ad_writer.h"
#include "uce/core/inspect.h"
#include "uce/core/sha256.h"
#include "uce/model/embedder.h"
#include "workspace_state.h"

namespace uce::gui {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Reading documents.

std::string openAdvice(const Error& e) {
  std::string m = e.what();
  switch (e.kind()) {
    case ErrorKind::Io:
      if (m.find("no such file") != std::string::npos)
        return m + ": check the name, or choose the file again (it may have been moved or deleted)";
      return m + ": check that the file is readable and not open for writing elsewhere";
    case ErrorKind::NotHdf5:
    case ErrorKind::Format:
    case ErrorKind::Unsupported:
      return m + ". Open an AnnData .h5ad, a 10x Genomics .h5, a Matrix Market folder (matrix.mtx, "
                 "features.tsv, barcodes.tsv) or a CSV/TSV table of counts";
    case ErrorKind::Truncated:
      return m + ". The file looks damaged or incompletely copied: copy or download it again";
    default:
      return m;
  }
}

namespace {

const QStringList kShownObsm = {"X_uce", "X_umap", "X_umap_3d"};

QString q(const std::string& s) { return QString::fromStdString(s); }

std::string unsString(const std::map<std::string, UnsValue>& uns, const std::string& key) {
  auto it = uns.find(key);
  return it == uns.end() ? std::string() : it->second.toString();
}

}  // namespace

void loadEmbedding(DatasetDoc::State& st, const Dataset& ds) {
  st.fileObsmKeys.clear();
  for (const auto& k : ds.obsmKeys()) {
    st.fileObsmKeys << q(k);
    if (kShownObsm.contains(q(k)) && !st.computedObsm.contains(q(k))) {
      auto m = std::make_shared<DenseMatrix>(ds.readObsm(k));
      if (m->rows == st.cells) st.obsm[q(k)] = std::move(m);
    }
  }
  st.modelSha = q(unsString(ds.uns(), "uce/model_sha256"));
}

std::unique_ptr<DatasetDoc::State> loadDocState(const QString& path, JobContext& ctx) {
  if (!QFileInfo::exists(path)) fail(ErrorKind::Io, path.toStdString(), "no such file or directory");
  auto ds = openDataset(path.toStdString());
  ctx.checkCancel();
  auto st = std::make_unique<DatasetDoc::State>();
  st->path = st->basePath = path;
  st->format = q(ds->format());
  st->cells = ds->cells();
  st->fileObs = ds->obs();
  st->var = ds->var();
  for (const MatrixInfo& m : ds->matrices()) {
    st->matrices << q(m.key);
    if (m.key == "X") st->genes = m.cols;
  }
  if (st->genes == 0 && !ds->matrices().empty()) st->genes = ds->matrices().front().cols;
  ctx.report(1, 3, "inspecting");
  const DatasetSummary sum = summarize(*ds);
  st->guess.species = q(sum.species.species == "unknown" ? std::string("human") : sum.species.species);
  st->guess.speciesReason = q(sum.species.reason);
  st->guess.geneColumn = q(sum.geneColumn.column);
  st->guess.geneReason = q(sum.geneColumn.reason);
  st->guess.countsKey = q(sum.countsKey);
  st->guess.countsReason = q(sum.countsReason);
  ctx.checkCancel();
  ctx.report(2, 3, "reading embeddings");
  loadEmbedding(*st, *ds);
  ctx.report(3, 3, "done");
  return st;
}

namespace {

// A dataset whose obs has extra columns (clusters, annotations, a selection), so the library's
// group-based calls (rankGenes) see what the user sees. Everything else is the file's.
class ObsOverlay : public Dataset {
 public:
  ObsOverlay(std::unique_ptr<Dataset> base, const std::vector<Column>& extra) : base_(std::move(base)) {
    obs_ = base_->obs();
    for (const Column& c : extra) obs_.set(c);
  }
  const std::string& path() const override { return base_->path(); }
  std::string format() const override { return base_->format(); }
  int64_t cells() const override { return base_->cells(); }
  const DataFrame& obs() const override { return obs_; }
  const DataFrame& var() const override { return base_->var(); }
  const DataFrame& varFor(const std::string& key) const override { return base_->varFor(key); }
  std::vector<MatrixInfo> matrices() const override { return base_->matrices(); }
  CsrBlock readRows(const std::string& key, int64_t row0, int64_t n) const override {
    return base_->readRows(key, row0, n);
  }
  void readRowsInto(const std::string& key, int64_t row0, int64_t n, CsrBlock& out) const override {
    base_->readRowsInto(key, row0, n, out);
  }
  std::vector<std::string> obsmKeys() const override { return base_->obsmKeys(); }
  DenseMatrix readObsm(const std::string& key) const override { return base_->readObsm(key); }
  std::vector<std::string> varmKeys() const override { return base_->varmKeys(); }
  DenseMatrix readVarm(const std::string& key) const override { return base_->readVarm(key); }
  std::map<std::string, UnsValue> uns() const override { return base_->uns(); }

 private:
  std::unique_ptr<Dataset> base_;
  DataFrame obs_;
};

analysis::MatrixView viewOf(const DenseMatrix& m) { return analysis::MatrixView{m.data.data(), m.rows, m.cols}; }

// A free "<stem>_uce.h5ad" beside the input (a folder's name for an MTX folder).
QString defaultEmbedOutput(const QString& input) {
  QFileInfo fi(input);
  const QString dir = fi.absolutePath();
  const QString stem = fi.isDir() ? fi.fileName() : fi.completeBaseName();
  QString out = dir + "/" + stem + "_uce.h5ad";
  for (int k = 2; QFileInfo::exists(out); ++k) out = dir + "/" + stem + "_uce-" + QString::number(k) + ".h5ad";
  return out;
}

bool sameFile(const QString& a, const QString& b) {
  std::error_code ec;
  if (QFileInfo::exists(a) && QFileInfo::exists(b)) return fs::equivalent(a.toStdString(), b.toStdString(), ec);
  return QFileInfo(a).absoluteFilePath() == QFileInfo(b).absoluteFilePath();
}

Column clusterColumn(const std::string& key, const analysis::Clustering& c) {
  Column col;
  col.name = key;
  col.kind = ColumnKind::Categorical;
  for (int32_t i = 0; i < c.clusters; ++i) col.categories.push_back(std::to_string(i));
  col.codes = c.labels;
  return col;
}

DeTable tableOf(const analysis::DeResult& r, const QString& groupby) {
  DeTable t;
  t.groupby = groupby;
  t.group = q(r.group);
  t.reference = q(r.reference);
  t.method = analysis::deMethodName(r.method);
  t.countsKey = q(r.countsKey);
  t.cellsIn = r.cellsIn;
  t.cellsOut = r.cellsOut;
  t.genes.reserve(static_cast<int>(r.genes.size()));
  for (const analysis::DeGene& g : r.genes)
    t.genes.push_back({q(g.gene), g.statistic, g.pval, g.pvalAdj, g.log2fc, g.pctIn, g.pctOut, g.meanIn, g.meanOut});
  return t;
}

analysis::DeOptions deOptions(const DeRequest& r, const std::string& groupby, const std::string& group,
                              const std::string& reference) {
  analysis::DeOptions o;
  o.groupby = groupby;
  o.group = group;
  o.reference = reference;
  o.method = analysis::parseDeMethod(r.method.toStdString());
  o.counts = r.counts.toStdString();
  o.geneColumn = r.geneColumn.toStdString();
  return o;
}

// Fails a job at once (bad request): the user sees the message in the job panel.
Job* failedJob(JobManager* jobs, const QString& name, ErrorKind kind, const QString& file, const QString& msg) {
  const std::string f = file.toStdString(), m = msg.toStdString();
  return jobs->start(name, [kind, f, m](JobContext&) {
    if (f.empty()) throw Error(kind, f, m);
    fail(kind, f, m);
  });
}

// What an export adds to its base file: this session's obsm arrays, columns and parameters.
struct ExportData {
  QString input, base, format;
  qint64 cells = 0;
  QMap<QString, std::shared_ptr<const DenseMatrix>> computedObsm, allObsm;
  std::vector<Column> extras;
  DataFrame obs, var;
  std::map<std::string, UnsValue> uns;
};

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

// A new .h5ad of the cells `rows` (sorted; empty = all) from a non-h5ad dataset (10x, MTX,
// CSV): counts as X, obs, var and the given obsm arrays.
void writeFromReader(const Dataset& ds, const std::string& out, const std::vector<int64_t>& rows, const DataFrame& obs,
                     const QMap<QString, std::shared_ptr<const DenseMatrix>>& obsm,
                     const std::map<std::string, UnsValue>& uns, JobContext& ctx) {
  const CountsChoice counts = chooseCountsMatrix(ds);
  const MatrixInfo mi = ds.matrix(counts.key);
  H5adWriter w(out, mi.cols);
  RowStream stream(ds, counts.key, 4096);
  CsrBlock b, sub;
  size_t next = 0;
  while (stream.next(b)) {
    if (rows.empty()) {
      w.appendRows(b);
    } else {
      sub.clear(0, b.ncols);
      for (; next < rows.size() && rows[next] < b.row0 + b.rows(); ++next) {
        const int64_t r = rows[next] - b.row0;
        const int64_t p0 = b.indptr[static_cast<size_t>(r)], p1 = b.indptr[static_cast<size_t>(r) + 1];
        sub.appendRow(b.indices.data() + p0, b.values.data() + p0, p1 - p0);
      }
      if (sub.rows() > 0) w.appendRows(sub);
    }
    if (!ctx.report(stream.rowsDone(), ds.cells(), "writing")) ctx.checkCancel();
  }
  DataFrame o = obs;
  if (!rows.empty()) {
    DataFrame s;
    s.indexName = obs.indexName;
    for (int64_t r : rows) s.index.push_back(obs.index.at(static_cast<size_t>(r)));
    for (const Column& c : obs.columns) s.columns.push_back(subsetColumn(c, rows));
    o = std::move(s);
  }
  w.setObs(o);
  w.setVar(ds.varFor(counts.key));
  for (auto it = obsm.begin(); it != obsm.end(); ++it)
    w.setObsm(it.key().toStdString(), rows.empty() ? *it.value() : subsetRows(*it.value(), rows));
  for (const auto& [k, v] : uns) w.setUns(k, v);
  w.commit();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Embedding.

Job* Workspace::embed(DatasetDoc* doc, const EmbedRequest& r) {
  if (!alive(doc)) return failedJob(jobs_, "Embed", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  const QString name = "Embed " + doc->name();
  const QString input = doc->path();
  const QString output = r.output.isEmpty() ? defaultEmbedOutput(input) : QFileInfo(r.output).absoluteFilePath();
  if (sameFile(input, output) || sameFile(doc->basePath(), output))
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, output,
                     "is the input file; embedding writes a new file: choose another output name");
  const QString modelFile = r.modelFile.isEmpty() ? r.assetsDir + "/model.torch" : r.modelFile;
  if (r.assetsDir.isEmpty() || !QFileInfo(r.assetsDir).isDir())
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, r.assetsDir,
                     "is not a folder: choose the UCE asset folder (with species_offsets.pkl and "
                     "protein_embeddings/) in the embed dialog");
  if (!QFileInfo(modelFile).isFile())
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, modelFile,
                     "model file not found: choose the model's weights (.torch) in the embed dialog");

  struct Result {
    bool reused = false;
    std::shared_ptr<DatasetDoc::State> st;  // basePath = output, obsm / provenance re-read
  };
  auto res = std::make_shared<Result>();
  const QString docSha = doc->embeddingModelSha256();
  const bool hasX = doc->hasEmbedding();
  const qint64 cells = doc->cells();
  return jobs_->start(
      name,
      [=](JobContext& ctx) {
        ctx.report(0, 0, "checking the model file");
        const QString sha = q(sha256File(modelFile.toStdString()));
        if (!r.force && hasX && sha.compare(docSha, Qt::CaseInsensitive) == 0) {
          res->reused = true;  // X_uce is from this very model: nothing to do
          ctx.report(cells, cells, "already embedded with this model");
          return;
        }
        model::EmbedOptions o;
        o.input = input.toStdString();
        o.output = output.toStdString();
        o.species = r.species.toStdString();
        o.assetsDir = r.assetsDir.toStdString();
        o.modelFile = modelFile.toStdString();
        o.geneColumn = r.geneColumn.toStdString();
        o.countsKey = r.countsKey.toStdString();
        o.device = r.device.toStdString();
        o.batchSize = std::max(1, r.batchSize);
        o.seed = r.seed;
        o.sampleSize = r.sampleSize;
        o.padLength = r.padLength;
        o.chunkCells = std::max(1, r.chunkCells);
        const std::string resume = o.output + ".uce-resume";
        std::error_code ec;
        fs::remove(resume, ec);  // a fresh run: no half-finished state from an earlier cancel
        try {
          // One embedding at a time: a second one waits here, cancellable, as "waiting".
          ComputeLane lane(ctx, "waiting for another embedding to finish");
          model::embedDataset(o, [&ctx](const model::EmbedProgress& p) {
            return ctx.report(p.cellsDone, p.cellsTotal, q(p.stage), p.cellsPerSecond > 0 ? p.cellsPerSecond : -1,
                              p.cellsPerSecond > 0 ? p.etaSeconds : -1);
          });
        } catch (const Error& e) {
          if (e.kind() == ErrorKind::Cancelled) {
            // The user stopped it: leave nothing behind (no output, no resume file).
            fs::remove(resume, ec);
            throw Error(ErrorKind::Cancelled, o.input, "embedding cancelled; nothing was written");
          }
          throw;
        }
        ctx.report(cells, cells, "loading the embedding");
        auto ds = openDataset(o.output);
        auto st = std::make_shared<DatasetDoc::State>();
        st->cells = ds->cells();
        st->fileObs = ds->obs();
        loadEmbedding(*st, *ds);
        res->st = std::move(st);
      },
      [this, doc, res, output] {
        if (!alive(doc)) return;
        doc->embedReused_ = res->reused;
        if (res->reused) return;
        DatasetDoc::State& s = *doc->s_;
        if (res->st->cells != s.cells)
          fail(ErrorKind::Shape, output.toStdString(), "has a different number of cells than the input");
        s.basePath = output;
        s.fileObs = std::move(res->st->fileObs);  // the input's obs plus uce_kept
        s.fileObsmKeys = res->st->fileObsmKeys;
        s.modelSha = res->st->modelSha;
        for (auto it = res->st->obsm.begin(); it != res->st->obsm.end(); ++it) {
          s.obsm[it.key()] = it.value();
          s.computedObsm.remove(it.key());
        }
        doc->rebuildObs();
        Q_EMIT doc->changed();
      });
}

// ---------------------------------------------------------------------------------------------
// UMAP and clusters.

namespace {

// The library's progress hook (progress.h) driving a job's bar: the call is part `part` of
// `parts` equal parts (the 2-D and the 3-D map), as a fraction of the job (the panel shows a
// percentage); the stage reads e.g. "2-D map: kNN graph". The ETA follows the pace since
// `start`. Returns false on cancel, which stops the call within about a second (the next block,
// epoch or build stretch).
analysis::ProgressFn jobProgress(JobContext& ctx, const QString& label, int part, int parts,
                                 std::chrono::steady_clock::time_point start) {
  return [&ctx, label, part, parts, start](const char* stage, double f) {
    const double overall = (part + f) / parts;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double eta = overall >= 0.01 && secs > 1 ? secs * (1 - overall) / overall : -1;
    const QString text = label.isEmpty() ? QString::fromUtf8(stage) : label + ": " + QString::fromUtf8(stage);
    return ctx.reportFraction(overall, text, eta);
  };
}

}  // namespace

Job* Workspace::computeUmap(DatasetDoc* doc, const UmapRequest& r) {
  if (!alive(doc)) return failedJob(jobs_, "UMAP", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  const QString name = "UMAP of " + doc->name();
  auto x = doc->obsm(r.useRep);
  if (!x)
    return failedJob(jobs_, name, ErrorKind::MissingMatrix, doc->path(),
                     "has no obsm['" + r.useRep + "'] to map: embed the dataset first");
  auto out2 = std::make_shared<std::shared_ptr<DenseMatrix>>();
  auto out3 = std::make_shared<std::shared_ptr<DenseMatrix>>();
  auto report = std::make_shared<analysis::UmapReport>();
  const std::string file = doc->path().toStdString();
  return jobs_->start(
      name,
      [=](JobContext& ctx) {
        const int steps = r.also3d ? 2 : 1;
        const auto start = std::chrono::steady_clock::now();
        analysis::KnnGraph graph;  // searched for the 2-D map, reused by the 3-D one
        for (int step = 0; step < steps; ++step) {
          const QString label = step == 0 ? "2-D map" : "3-D map";
          ctx.reportFraction(static_cast<double>(step) / steps, label);
          ctx.checkCancel();
          analysis::UmapOptions o;
          o.dims = step == 0 ? 2 : 3;
          o.seed = r.seed;
          o.nNeighbors = r.nNeighbors;
          o.minDist = r.minDist;
          o.nEpochs = r.epochs;
          o.progress = jobProgress(ctx, label, step, steps, start);
          auto m = std::make_shared<DenseMatrix>();
          m->rows = x->rows;
          m->cols = o.dims;
          try {
            m->data = analysis::umapSkippingMissing(viewOf(*x), o, report.get(), nullptr, &graph);
          } catch (const Error& e) {
            if (e.kind() == ErrorKind::Cancelled) throw;
            fail(e.kind(), file, std::string("obsm['") + r.useRep.toStdString() + "']: " + e.what());
          }
          (step == 0 ? *out2 : *out3) = std::move(m);
        }
        ctx.reportFraction(1.0, "done", 0);
      },
      [this, doc, out2, out3, report, r] {
        if (!alive(doc)) return;
        auto& uns = doc->s_->pendingUns;
        uns["umap/use_rep"] = UnsValue::str(r.useRep.toStdString());
        uns["umap/n_neighbors"] = UnsValue::integer(r.nNeighbors);
        uns["umap/min_dist"] = UnsValue::real(r.minDist);
        uns["umap/seed"] = UnsValue::integer(static_cast<int64_t>(r.seed));
        uns["umap/n_epochs"] = UnsValue::integer(report->nEpochs);
        uns["umap/init"] = UnsValue::str(report->init);
        doc->setObsm("X_umap", *out2, true);
        if (*out3) doc->setObsm("X_umap_3d", *out3, true);
      });
}

Job* Workspace::cluster(DatasetDoc* doc, const ClusterRequest& r) {
  if (!alive(doc)) return failedJob(jobs_, "Clusters", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  const QString name = QString("Clusters of %1 (resolution %2)").arg(doc->name()).arg(r.resolution);
  auto x = doc->obsm(r.useRep);
  if (!x)
    return failedJob(jobs_, name, ErrorKind::MissingMatrix, doc->path(),
                     "has no obsm['" + r.useRep + "'] to cluster: embed the dataset first");
  if (!(r.resolution > 0) || !std::isfinite(r.resolution))
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, "",
                     "the resolution must be a positive number (1.0 is scanpy's default)");
  if (r.key.isEmpty() || r.key.contains('/'))
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, "", "the cluster column needs a name without '/'");
  auto col = std::make_shared<Column>();
  auto rep = std::make_shared<analysis::ClusterReport>();
  const std::string file = doc->path().toStdString();
  return jobs_->start(
      name,
      [=](JobContext& ctx) {
        ctx.reportFraction(0, "kNN graph");
        analysis::ClusterOptions o;
        o.nNeighbors = r.nNeighbors;
        o.leiden.resolution = r.resolution;
        o.leiden.seed = r.seed;
        o.progress = jobProgress(ctx, QString(), 0, 1, std::chrono::steady_clock::now());
        analysis::Clustering c;
        try {
          c = analysis::clusterEmbedding(viewOf(*x), o, rep.get());
        } catch (const Error& e) {
          if (e.kind() == ErrorKind::Cancelled) throw;
          fail(e.kind(), file, std::string("obsm['") + r.useRep.toStdString() + "']: " + e.what());
        }
        *col = clusterColumn(r.key.toStdString(), c);
        ctx.reportFraction(1.0, "done", 0);
      },
      [this, doc, col, rep, r] {
        if (!alive(doc)) return;
        const std::string k = r.key.toStdString();
        auto& uns = doc->s_->pendingUns;
        uns[k + "/params/resolution"] = UnsValue::real(r.resolution);
        uns[k + "/params/random_state"] = UnsValue::integer(static_cast<int64_t>(r.seed));
        uns[k + "/params/n_neighbors"] = UnsValue::integer(r.nNeighbors);
        uns[k + "/params/use_rep"] = UnsValue::str(r.useRep.toStdString());
        uns[k + "/params/knn"] = UnsValue::str(rep->knn.method);
        doc->s_->clusterKey = r.key;
        markers_.remove(doc);
        doc->setExtraColumn(*col);
      });
}

// ---------------------------------------------------------------------------------------------
// Differential expression.

// One DE job: `group` vs `reference` of obs column `groupby`, where `extra` holds columns of
// this session (annotations, the selection) laid over the file's obs.
Job* Workspace::startDe(DatasetDoc* doc, const QString& name, std::vector<Column> extra, const QString& groupby,
                        const QString& group, const QString& reference, const DeRequest& r) {
  const std::string path = doc->path().toStdString();
  auto table = std::make_shared<DeTable>();
  return jobs_->start(
      name,
      [=](JobContext& ctx) {
        ctx.report(0, 1, "ranking genes");
        ObsOverlay ds(openDataset(path), extra);
        *table = tableOf(analysis::rankGenes(ds, deOptions(r, groupby.toStdString(), group.toStdString(),
                                                           reference.toStdString())),
                         groupby);
        ctx.report(1, 1, "done");
      },
      [this, doc, table] {
        if (alive(doc)) Q_EMIT deReady(doc, *table);
      });
}

Job* Workspace::diffExp(DatasetDoc* doc, const QString& groupby, const QString& group, const QString& reference,
                        const DeRequest& r) {
  if (!alive(doc)) return failedJob(jobs_, "DE", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  // The column as the user sees it (it may be an annotation of this session).
  std::vector<Column> extra;
  if (const Column* c = doc->column(groupby)) extra.push_back(*c);
  return startDe(doc, QString("DE %1 = %2 vs %3").arg(groupby, group, reference), std::move(extra), groupby, group,
                 reference, r);
}

Job* Workspace::diffExpSelection(DatasetDoc* doc, const std::vector<int64_t>& rows, const DeRequest& r) {
  if (!alive(doc)) return failedJob(jobs_, "DE", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  const QString name = QString("DE selection (%1 cells) vs rest").arg(rows.size());
  std::vector<std::string> labels(static_cast<size_t>(doc->cells()), "rest");
  for (int64_t i : rows) {
    if (i < 0 || i >= doc->cells())
      return failedJob(jobs_, name, ErrorKind::InvalidArgument, doc->path(),
                       QString("the selection holds cell %1, but the dataset has %2 cells").arg(i).arg(doc->cells()));
    labels[static_cast<size_t>(i)] = "selection";
  }
  return startDe(doc, name, {Column::makeCategorical("selection", labels)}, "selection", "selection", "rest", r);
}

Job* Workspace::clusterMarkers(DatasetDoc* doc, int topN, const DeRequest& r) {
  if (!alive(doc)) return failedJob(jobs_, "Markers", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  const QString name = "Marker genes of the clusters of " + doc->name();
  const int k = doc->clusterCount();
  if (k < 2)
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, doc->path(),
                     k == 0 ? "has no clusters yet: compute clusters first"
                            : "has one cluster only: raise the resolution to find markers between clusters");
  Column col;
  col.name = "cluster";
  col.kind = ColumnKind::Categorical;
  for (int i = 0; i < k; ++i) col.categories.push_back(std::to_string(i));
  col.codes = doc->clusters();
  const std::vector<Column> extra{col};
  const std::string path = doc->path().toStdString();
  auto result = std::make_shared<QMap<int, QStringList>>();
  return jobs_->start(
      name,
      [=](JobContext& ctx) {
        ObsOverlay ds(openDataset(path), extra);
        for (int c = 0; c < k; ++c) {
          if (!ctx.report(c, k, QString("cluster %1 vs rest").arg(c))) ctx.checkCancel();
          const analysis::DeResult res = analysis::rankGenes(ds, deOptions(r, "cluster", std::to_string(c), "rest"));
          (*result)[c] = tableOf(res, "cluster").topUp(topN);
        }
        ctx.report(k, k, "done");
      },
      [this, doc, result] {
        if (!alive(doc)) return;
        markers_[doc] = *result;
        Q_EMIT markersReady(doc, *result);
      });
}

// ---------------------------------------------------------------------------------------------
// Exports.

namespace {

ExportData exportData(const DatasetDoc& doc, const DatasetDoc::State& s) {
  ExportData d;
  d.input = doc.path();
  d.base = s.basePath;
  d.format = QFileInfo(s.basePath).isFile() && s.basePath.endsWith(".h5ad", Qt::CaseInsensitive) ? "h5ad" : s.format;
  d.cells = s.cells;
  d.extras = s.extras;
  d.obs = s.obs;
  d.var = s.var;
  d.uns = s.pendingUns;
  d.allObsm = s.obsm;
  for (auto it = s.obsm.begin(); it != s.obsm.end(); ++it)
    if (s.computedObsm.contains(it.key())) d.computedObsm[it.key()] = it.value();
  return d;
}

bool isH5ad(const ExportData& d) { return d.format == "h5ad"; }

}  // namespace

Job* Workspace::exportAnnotated(DatasetDoc* doc, const QString& output, bool overwriteInput) {
  if (!alive(doc)) return failedJob(jobs_, "Export", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  const QString out = QFileInfo(output).absoluteFilePath();
  const QString name = "Export " + QFileInfo(out).fileName();
  const ExportData d = exportData(*doc, *doc->s_);
  if (!overwriteInput && (sameFile(out, d.input) || sameFile(out, d.base)))
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, out,
                     "is the input file: choose another name (or explicitly allow overwriting the input)");
  return jobs_->start(
      name,
      [d, out](JobContext& ctx) {
        ctx.report(0, 1, "writing");
        if (isH5ad(d)) {
          ResultsWriter w(d.base.toStdString(), out.toStdString());
          for (auto it = d.computedObsm.begin(); it != d.computedObsm.end(); ++it)
            w.setObsm(it.key().toStdString(), *it.value());
          for (const Column& c : d.extras) w.setObsColumn(c);
          for (const auto& [k, v] : d.uns) w.setUns(k, v);
          ctx.checkCancel();
          w.commit();
        } else {
          auto ds = openDataset(d.base.toStdString());
          writeFromReader(*ds, out.toStdString(), {}, d.obs, d.allObsm, d.uns, ctx);
        }
        ctx.report(1, 1, "done");
      },
      [this, doc, out] {
        if (!alive(doc)) return;
        doc->s_->modified = false;
        Q_EMIT exported(doc, out);
      });
}

Job* Workspace::exportSelection(DatasetDoc* doc, const std::vector<int64_t>& rows, const QString& output) {
  if (!alive(doc)) return failedJob(jobs_, "Export", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  const QString out = QFileInfo(output).absoluteFilePath();
  const QString name = QString("Export selection (%1 cells) to %2").arg(rows.size()).arg(QFileInfo(out).fileName());
  const ExportData d = exportData(*doc, *doc->s_);
  if (sameFile(out, d.input) || sameFile(out, d.base))
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, out, "is the input file: choose another name");
  std::vector<int64_t> sorted = rows;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (sorted.empty())
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, "", "no cells selected: select cells first");
  if (sorted.front() < 0 || sorted.back() >= d.cells)
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, doc->path(),
                     QString("the selection holds cells outside the dataset (it has %1 cells)").arg(d.cells));
  return jobs_->start(
      name,
      [d, out, sorted](JobContext& ctx) {
        ctx.report(0, 2, "subsetting");
        const std::string o = out.toStdString();
        if (!isH5ad(d)) {
          auto ds = openDataset(d.base.toStdString());
          writeFromReader(*ds, o, sorted, d.obs, d.allObsm, d.uns, ctx);
          return;
        }
        if (d.computedObsm.isEmpty() && d.extras.empty() && d.uns.empty()) {
          writeH5adSubset(d.base.toStdString(), o, sorted);
          return;
        }
        // Subset into a temporary file, then add this session's results (atomic for `out`).
        const std::string tmp = o + ".subset-" + std::to_string(static_cast<long long>(::getpid())) + ".h5ad";
        struct Cleanup {
          std::string p;
          ~Cleanup() {
            std::error_code ec;
            fs::remove(p, ec);
          }
        } cleanup{tmp};
        writeH5adSubset(d.base.toStdString(), tmp, sorted);
        ctx.report(1, 2, "adding annotations");
        ctx.checkCancel();
        ResultsWriter w(tmp, o);
        for (auto it = d.computedObsm.begin(); it != d.computedObsm.end(); ++it)
          w.setObsm(it.key().toStdString(), subsetRows(*it.value(), sorted));
        for (const Column& c : d.extras) w.setObsColumn(subsetColumn(c, sorted));
        for (const auto& [k, v] : d.uns) w.setUns(k, v);
        w.commit();
        ctx.report(2, 2, "done");
      },
      [this, doc, out] {
        if (alive(doc)) Q_EMIT exported(doc, out);
      });
}

Job* Workspace::exportCsv(DatasetDoc* doc, const QString& output, const QStringList& obsColumns,
                          const QStringList& obsmKeys) {
  if (!alive(doc)) return failedJob(jobs_, "Export", ErrorKind::InvalidArgument, "", "the dataset is no longer open");
  const QString out = QFileInfo(output).absoluteFilePath();
  const QString name = "Export " + QFileInfo(out).fileName();
  const ExportData d = exportData(*doc, *doc->s_);
  if (sameFile(out, d.input) || sameFile(out, d.base))
    return failedJob(jobs_, name, ErrorKind::InvalidArgument, out, "is the input file: choose another name");
  std::vector<Column> cols;
  for (const Column& c : d.obs.columns)
    if (obsColumns.isEmpty() || obsColumns.contains(q(c.name))) cols.push_back(c);
  for (const QString& want : obsColumns)
    if (!d.obs.find(want.toStdString()))
      return failedJob(jobs_, name, ErrorKind::InvalidArgument, doc->path(), "obs has no column '" + want + "'");
  QVector<QPair<QString, std::shared_ptr<const DenseMatrix>>> mats;
  for (auto it = d.allObsm.begin(); it != d.allObsm.end(); ++it)
    if (obsmKeys.isEmpty() || obsmKeys.contains(it.key())) mats.push_back({it.key(), it.value()});
  for (const QString& want : obsmKeys)
    if (!d.allObsm.contains(want))
      return failedJob(jobs_, name, ErrorKind::InvalidArgument, doc->path(),
                       "has no obsm['" + want + "'] loaded: compute it first");
  const std::vector<std::string> index = d.obs.index;
  return jobs_->start(name, [out, cols, mats, index](JobContext& ctx) {
    QSaveFile f(out);  // written beside `out` and renamed on commit()
    if (!f.open(QIODevice::WriteOnly))
      fail(ErrorKind::Io, out.toStdString(), "cannot write here: " + f.errorString().toStdString());
    std::string line = "cell";
    for (const Column& c : cols) line += "," + csvField(c.name);
    for (const auto& [key, m] : mats)
      for (int64_t j = 0; j < m->cols; ++j) line += "," + key.toStdString() + "_" + std::to_string(j);
    line += "\n";
    std::string buf = line;
    char num[32];
    const int64_t n = static_cast<int64_t>(index.size());
    for (int64_t i = 0; i < n; ++i) {
      buf += csvField(index[static_cast<size_t>(i)]);
      for (const Column& c : cols) buf += "," + csvField(c.valueAsString(static_cast<size_t>(i)));
      for (const auto& [key, m] : mats)
        for (int64_t j = 0; j < m->cols; ++j) {
          const float v = m->at(i, j);
          if (std::isnan(v)) {
            buf += ",";
          } else {
            std::snprintf(num, sizeof num, ",%.9g", static_cast<double>(v));
            buf += num;
          }
        }
      buf += "\n";
      if (buf.size() > (1u << 20) || i + 1 == n) {
        if (f.write(buf.data(), static_cast<qint64>(buf.size())) != static_cast<qint64>(buf.size()))
          fail(ErrorKind::Io, out.toStdString(), "cannot write (is the disk full?)");
        buf.clear();
        if (!ctx.report(i + 1, n, "writing")) ctx.checkCancel();
      }
    }
    if (!buf.empty() && f.write(buf.data(), static_cast<qint64>(buf.size())) != static_cast<qint64>(buf.size()))
      fail(ErrorKind::Io, out.toStdString(), "cannot write (is the disk full?)");
    if (!f.commit()) fail(ErrorKind::Io, out.toStdString(), "cannot finish the file: " + f.errorString().toStdString());
  });
}

}  // namespace uce::gui
