// The app's workspace without widgets: opening datasets as jobs, embedding with progress and
// cancel, UMAP + Leiden, marker genes, annotations, exports read back by anndata, settings, and
// the GUI thread's responsiveness while an embedding runs. Data: `uce synth` (600 cells, 400
// genes, one human kidney dataset) and a tiny random model from `uce init-model`.
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QThread>
#include <QtTest>
#include <cmath>
#include <map>
#include <set>

#include "jobs.h"
#include "synth_world.h"
#include "test_support.h"
#include "workspace.h"

using namespace uce::gui;
using uce::test::cli;
using uce::test::python;

namespace {

// Waits for a job to end (its finished() signal), at most timeoutMs.
bool waitJob(Job* job, int timeoutMs = 120000) {
  if (job->isFinished()) return true;
  QSignalSpy spy(job, &Job::finished);
  return spy.wait(timeoutMs) || job->isFinished();
}

QByteArray sha(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256).toHex();
}

// Markers of a synthetic cell type: its own and its coarse type's.
std::set<QString> markersOf(const std::string& type) {
  std::set<QString> out;
  for (const auto& t : uce::synth::cellTypeDefs())
    if (type == t.name) {
      for (const char* m : t.markers) out.insert(m);
      for (const char* m : uce::synth::coarseMarkers()[static_cast<size_t>(t.coarse)]) out.insert(m);
    }
  return out;
}

}  // namespace

class TestWorkspace : public QObject {
  Q_OBJECT

  QTemporaryDir tmp_;
  QString data_, assets_, model_;
  JobManager* jobs_ = nullptr;
  Workspace* ws_ = nullptr;
  DatasetDoc* doc_ = nullptr;

  EmbedRequest request() const {
    EmbedRequest r;
    r.modelFile = model_;
    r.assetsDir = assets_;
    r.species = "human";
    r.batchSize = 16;
    r.sampleSize = 256;
    r.padLength = 320;
    r.chunkCells = 32;
    r.seed = 3;
    return r;
  }

  std::vector<int64_t> cellsOfType(const std::string& type) const {
    std::vector<int64_t> rows;
    const uce::Column* ct = doc_->column("cell_type");
    for (size_t i = 0; ct && i < ct->size(); ++i)
      if (ct->valueAsString(i) == type) rows.push_back(static_cast<int64_t>(i));
    return rows;
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    QString out, err;
    int rc = cli({"synth", "--out", tmp_.filePath("world"), "--cells", "600", "--genes", "400", "--seed", "3",
                  "--token-dim", "32", "--single-dataset", "--quiet"},
                 &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    data_ = tmp_.filePath("world/human_kidney.h5ad");
    assets_ = tmp_.filePath("world/assets");
    model_ = tmp_.filePath("model.torch");
    rc = cli({"init-model", "--assets", assets_, "--out", model_, "--layers", "2", "--d-model", "32", "--nhead", "4",
              "--d-hid", "64", "--output-dim", "24", "--seed", "5"},
             &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    jobs_ = new JobManager(this);
    ws_ = new Workspace(jobs_, nullptr, this);
  }

  void jobProgressIsThrottledAndCancellable() {
    // A task reporting a million times reaches the GUI ~10 times a second, and stops on cancel.
    Job* job = jobs_->start("busy loop", [](JobContext& ctx) {
      for (qint64 i = 0;; ++i) {
        if (!ctx.report(i, 1000000000, "counting")) ctx.checkCancel();
        if (i % 1000 == 0) QThread::usleep(50);
      }
    });
    QSignalSpy progress(job, &Job::progressChanged);
    QTRY_VERIFY_WITH_TIMEOUT(job->status() == JobStatus::Running && job->done() > 0, 10000);
    QTest::qWait(1000);
    const int events = progress.count();
    QVERIFY2(events >= 5 && events <= 15, qPrintable(QString::number(events)));
    QVERIFY(job->rate() > 0);
    QVERIFY(job->etaSeconds() > 0);
    QCOMPARE(job->stage(), QString("counting"));
    job->cancel();
    QVERIFY(waitJob(job, 10000));
    QCOMPARE(job->status(), JobStatus::Cancelled);
  }

  void badInputsGiveFailedJobs() {
    Job* missing = ws_->open(tmp_.filePath("no_such_file.h5ad"));
    QVERIFY(waitJob(missing));
    QCOMPARE(missing->status(), JobStatus::Failed);
    QVERIFY2(missing->errorText().contains("no_such_file.h5ad") && missing->errorText().contains("choose the file again"),
             qPrintable(missing->errorText()));

    const QString bad = tmp_.filePath("notes.h5ad");
    uce::test::writeAll(bad, "these are my notes, not a dataset\n");
    Job* notH5 = ws_->open(bad);
    QVERIFY(waitJob(notH5));
    QCOMPARE(notH5->status(), JobStatus::Failed);
    QVERIFY2(notH5->errorText().contains("notes.h5ad") && notH5->errorText().contains("not an HDF5 file") &&
                 notH5->errorText().contains("Open an AnnData .h5ad"),
             qPrintable(notH5->errorText()));
    QVERIFY(ws_->documents().isEmpty());
  }

  void opensDataset() {
    QSignalSpy opened(ws_, &Workspace::documentOpened);
    Job* job = ws_->open(data_);
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    QCOMPARE(opened.count(), 1);
    doc_ = ws_->documents().value(0);
    QVERIFY(doc_);
    QCOMPARE(doc_->cells(), qint64(600));
    QCOMPARE(doc_->genes(), qint64(400));
    QVERIFY(doc_->obs().find("cell_type"));
    QCOMPARE(doc_->guess().species, QString("human"));
    QVERIFY(!doc_->hasEmbedding());
    QVERIFY(!doc_->isModified());
    // Opening the same file again does not make a second document.
    QVERIFY(waitJob(ws_->open(data_)));
    QCOMPARE(ws_->documents().size(), 1);
  }

  void embedCancelLeavesNothing() {
    EmbedRequest r = request();
    r.output = tmp_.filePath("cancelled_uce.h5ad");
    r.chunkCells = 8;
    Job* job = ws_->embed(doc_, r);
    connect(job, &Job::progressChanged, job, [job] {
      if (job->stage() == "embedding" && job->done() > 0) job->cancel();
    });
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Cancelled, qPrintable(QString(jobStatusName(job->status())) + " " + job->errorText()));
    QVERIFY(job->done() < 600);
    QVERIFY(!QFile::exists(r.output));
    QVERIFY(!QFile::exists(r.output + ".uce-resume"));
    QVERIFY(!doc_->hasEmbedding());
  }

  void embedsWithProgressWhileGuiStaysResponsive() {
    GuiStallMonitor monitor;
    monitor.start();
    Job* job = ws_->embed(doc_, request());
    QSignalSpy progress(job, &Job::progressChanged);
    QVERIFY(waitJob(job));
    monitor.stop();
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    QVERIFY(progress.count() >= 1);
    QCOMPARE(job->done(), qint64(600));
    QVERIFY(doc_->hasEmbedding());
    QCOMPARE(doc_->obsm("X_uce")->rows, int64_t(600));
    QCOMPARE(doc_->obsm("X_uce")->cols, int64_t(24));
    QCOMPARE(doc_->basePath(), tmp_.filePath("world/human_kidney_uce.h5ad"));
    QCOMPARE(doc_->embeddingModelSha256().size(), 64);
    QVERIFY(doc_->obs().find("uce_kept"));
    qInfo("embed: %.1f s, %d progress events, GUI worst stall %.1f ms (mean %.2f ms over %lld ticks)",
          job->elapsedSeconds(), int(progress.count()), monitor.worstStallMs(), monitor.meanStallMs(), monitor.ticks());
    QVERIFY(monitor.ticks() > 10);
    QVERIFY2(monitor.worstStallMs() < 100, qPrintable(QString::number(monitor.worstStallMs())));

    // The same model again: X_uce is reused, not recomputed, and no new file appears.
    Job* again = ws_->embed(doc_, request());
    QVERIFY(waitJob(again));
    QCOMPARE(again->status(), JobStatus::Done);
    QVERIFY(doc_->lastEmbedReused());
    QVERIFY(!QFile::exists(tmp_.filePath("world/human_kidney_uce-2.h5ad")));
  }

  void umapAndLeidenGiveAClusterPerCell() {
    UmapRequest u;
    u.seed = 1;
    u.also3d = true;
    Job* map = ws_->computeUmap(doc_, u);
    ClusterRequest c;
    c.resolution = 0.5;
    c.seed = 2;
    Job* cl = ws_->cluster(doc_, c);
    QVERIFY(waitJob(map) && waitJob(cl));
    QVERIFY2(map->status() == JobStatus::Done, qPrintable(map->errorText()));
    QVERIFY2(cl->status() == JobStatus::Done, qPrintable(cl->errorText()));
    auto x2 = doc_->obsm("X_umap"), x3 = doc_->obsm("X_umap_3d");
    QVERIFY(x2 && x3);
    QCOMPARE(x2->cols, int64_t(2));
    QCOMPARE(x3->cols, int64_t(3));
    const uce::Column* kept = doc_->column("uce_kept");
    QCOMPARE(doc_->clusters().size(), size_t(600));
    QVERIFY(doc_->clusterCount() >= 3);
    for (size_t i = 0; i < 600; ++i) {
      const bool embedded = kept->bools[i];
      QCOMPARE(doc_->clusters()[i] >= 0, embedded);
      QCOMPARE(std::isfinite(x2->at(static_cast<int64_t>(i), 0)), embedded);
    }
    QVERIFY(doc_->isModified());
    QVERIFY(doc_->obs().find("leiden"));
  }

  void markersOfClustersAndSelections() {
    QSignalSpy ready(ws_, &Workspace::markersReady);
    Job* job = ws_->clusterMarkers(doc_, 10);
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    QCOMPARE(ready.count(), 1);
    const auto& markers = ws_->markers(doc_);
    QCOMPARE(markers.size(), doc_->clusterCount());
    // A cluster's cell types: those with >= 10% of its cells and at least twice their share of
    // the whole dataset. Where these make up >= 60% of a cluster (the random-weight test model
    // leaves some clusters a mix without clear markers: those are skipped), the cluster's top
    // genes vs rest are named markers of its types (their own or their coarse type's): one among
    // the first 3 genes and at least 3 among the first 5 (synthetic programs also raise unnamed
    // genes, so not every top gene is a named one).
    const uce::Column* ct = doc_->column("cell_type");
    std::map<std::string, int> overall;
    for (size_t i = 0; i < 600; ++i) ++overall[ct->valueAsString(i)];
    int checked = 0;
    for (int k = 0; k < doc_->clusterCount(); ++k) {
      std::map<std::string, int> count;
      int size = 0;
      for (size_t i = 0; i < 600; ++i)
        if (doc_->clusters()[i] == k) ++count[ct->valueAsString(i)], ++size;
      std::set<QString> known;
      QStringList types;
      int covered = 0;
      for (const auto& [type, n] : count)
        if (n * 10 >= size && double(n) / size >= 2.0 * overall[type] / 600) {
          types << QString::fromStdString(type);
          covered += n;
          for (const QString& g : markersOf(type)) known.insert(g);
        }
      const QStringList genes = markers.value(k);
      QCOMPARE(genes.size(), 10);
      const QString what = QString("cluster %1, %2 cells (%3): %4").arg(k).arg(size).arg(types.join(" + "), genes.join(","));
      qInfo("%s", qPrintable(what));
      if (covered * 10 < size * 6 || size < 20) continue;
      int inTop3 = 0, inTop5 = 0;
      for (int j = 0; j < 5; ++j) (j < 3 ? inTop3 : inTop5) += int(known.count(genes[j]));
      inTop5 += inTop3;
      QVERIFY2(inTop3 >= 1 && inTop5 >= 3, qPrintable(what));
      ++checked;
    }
    qInfo("clusters with clear cell types checked against their named markers: %d", checked);
    // Whatever the clusters are (they depend on the random test model), each cluster's markers
    // are its top genes of a DE test of that cluster vs rest: check the largest cluster.
    int largest = 0;
    std::vector<int> sizes(static_cast<size_t>(doc_->clusterCount()), 0);
    for (size_t i = 0; i < 600; ++i)
      if (doc_->clusters()[i] >= 0) ++sizes[static_cast<size_t>(doc_->clusters()[i])];
    for (int k = 1; k < doc_->clusterCount(); ++k)
      if (sizes[static_cast<size_t>(k)] > sizes[static_cast<size_t>(largest)]) largest = k;
    {
      QSignalSpy deK(ws_, &Workspace::deReady);
      Job* one = ws_->diffExp(doc_, "leiden", QString::number(largest));
      QVERIFY(waitJob(one));
      QVERIFY2(one->status() == JobStatus::Done, qPrintable(one->errorText()));
      QCOMPARE(deK.count(), 1);
      QCOMPARE(deK.at(0).at(1).value<DeTable>().topUp(10), markers.value(largest));
    }

    // The T cells as a selection against the rest: T cell markers come first.
    QSignalSpy de(ws_, &Workspace::deReady);
    Job* sel = ws_->diffExpSelection(doc_, cellsOfType("T cell"));
    QVERIFY(waitJob(sel));
    QVERIFY2(sel->status() == JobStatus::Done, qPrintable(sel->errorText()));
    QCOMPARE(de.count(), 1);
    const DeTable t = de.at(0).at(1).value<DeTable>();
    QCOMPARE(t.cellsIn + t.cellsOut, qint64(600));
    QCOMPARE(t.genes.size(), 400);
    const QStringList up = t.topUp(3);
    const auto known = markersOf("T cell");
    for (const QString& g : up) QVERIFY2(known.count(g), qPrintable(up.join(",")));

    // A group of an obs column vs rest: the Norn cells' own markers come first.
    Job* norn = ws_->diffExp(doc_, "cell_type", "Norn cell");
    QVERIFY(waitJob(norn));
    QVERIFY2(norn->status() == JobStatus::Done, qPrintable(norn->errorText()));
    const DeTable tn = de.at(1).at(1).value<DeTable>();
    QCOMPARE(tn.group, QString("Norn cell"));
    const QStringList top5 = tn.topUp(5);
    int named = 0;
    for (const QString& g : top5) named += int(markersOf("Norn cell").count(g));
    QVERIFY2(markersOf("Norn cell").count(top5.first()) && named >= 3, qPrintable(top5.join(",")));

    // An unknown group is a failed job that lists the groups there are.
    Job* bad = ws_->diffExp(doc_, "leiden", "999");
    QVERIFY(waitJob(bad));
    QCOMPARE(bad->status(), JobStatus::Failed);
    QVERIFY2(bad->errorText().contains("no group '999'") && bad->errorText().contains("'0'"), qPrintable(bad->errorText()));
  }

  void labelsSelectionsAndRenamesClusters() {
    QString err;
    const std::vector<int64_t> norn = cellsOfType("Norn cell");
    QVERIFY(norn.size() > 5);
    QVERIFY2(doc_->labelCells("my_labels", "Norn-like", norn, &err), qPrintable(err));
    QVERIFY2(doc_->labelCells("my_labels", "first cells", {0, 1, 2}, &err), qPrintable(err));
    const uce::Column* c = doc_->column("my_labels");
    QVERIFY(c);
    QCOMPARE(c->kind, uce::ColumnKind::Categorical);
    QCOMPARE(c->valueAsString(static_cast<size_t>(norn.back())), std::string("Norn-like"));
    QCOMPARE(c->valueAsString(0), std::string("first cells"));
    int unlabelled = 0;
    for (size_t i = 0; i < 600; ++i) unlabelled += c->valueAsString(i).empty();
    QVERIFY(unlabelled >= 600 - int(norn.size()) - 3);
    QVERIFY(!doc_->labelCells("my_labels", "x", {}, &err));
    QVERIFY(err.contains("no cells selected"));
    QVERIFY(!doc_->labelCells("my_labels", "x", {600}, &err));

    QVERIFY2(doc_->renameClusters("cluster_names", {{0, "big one"}, {1, "second"}}, &err), qPrintable(err));
    const uce::Column* names = doc_->column("cluster_names");
    for (size_t i = 0; i < 600; ++i) {
      const int k = doc_->clusters()[i];
      const std::string want = k == 0 ? "big one" : k == 1 ? "second" : k < 0 ? "" : std::to_string(k);
      QCOMPARE(names->valueAsString(i), want);
    }
    QCOMPARE(doc_->annotationColumns(), (QStringList{"my_labels", "cluster_names"}));
  }

  void exportsAnnotatedH5adKeepingTheInput() {
    const QByteArray before = sha(data_), baseBefore = sha(doc_->basePath());
    // Never over the input unless asked.
    Job* refused = ws_->exportAnnotated(doc_, data_);
    QVERIFY(waitJob(refused));
    QCOMPARE(refused->status(), JobStatus::Failed);
    QVERIFY(refused->errorText().contains("is the input file"));
    Job* refused2 = ws_->exportAnnotated(doc_, doc_->basePath());
    QVERIFY(waitJob(refused2));
    QCOMPARE(refused2->status(), JobStatus::Failed);

    const QString out = tmp_.filePath("annotated.h5ad");
    Job* job = ws_->exportAnnotated(doc_, out);
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    QVERIFY(!doc_->isModified());
    QCOMPARE(sha(data_), before);
    QCOMPARE(sha(doc_->basePath()), baseBefore);
    QString pout, perr;
    const int rc = python(QString(R"(
import anndata, numpy as np
a = anndata.read_h5ad('%1')
src = anndata.read_h5ad('%2')
assert a.shape == (600, 400), a.shape
assert a.obsm['X_uce'].shape == (600, 24)
assert a.obsm['X_umap'].shape == (600, 2) and a.obsm['X_umap_3d'].shape == (600, 3)
kept = a.obs['uce_kept'].values.astype(bool)
assert np.isfinite(a.obsm['X_umap'][kept]).all()
assert str(a.obs['leiden'].dtype) == 'category' and a.obs['leiden'][kept].notna().all()
assert a.obs['my_labels'].iloc[0] == 'first cells'
nl = a.obs['my_labels'] == 'Norn-like'
assert (a.obs['cell_type'][nl] == 'Norn cell').all() and nl.sum() > 5
assert a.obs['cluster_names'].astype(str).isin(['big one']).sum() == (a.obs['leiden'] == '0').sum()
assert (a.obs['cell_type'] == src.obs['cell_type']).all()
assert (a.X != src.X).nnz == 0
assert float(a.uns['leiden']['params']['resolution']) == 0.5
assert len(a.uns['uce']['model_sha256']) == 64
print('ok')
)").arg(out, data_), &pout, &perr);
    QVERIFY2(rc == 0 && pout.contains("ok"), qPrintable(perr + pout));
  }

  void exportsSelectionSubset() {
    std::vector<int64_t> rows = {5, 17};
    for (int64_t i = 100; i < 150; ++i) rows.push_back(i);
    rows.push_back(599);
    const QString out = tmp_.filePath("selection.h5ad");
    Job* job = ws_->exportSelection(doc_, rows, out);
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    QVERIFY(!QDir(tmp_.path()).entryList({"selection.h5ad.*"}).size());
    QString pout, perr;
    const int rc = python(QString(R"(
import anndata, numpy as np
rows = [5, 17] + list(range(100, 150)) + [599]
a = anndata.read_h5ad('%1')
s = anndata.read_h5ad('%2')
assert s.shape == (len(rows), 400), s.shape
assert list(s.obs_names) == list(a.obs_names[rows])
assert np.array_equal(s.X.toarray(), a.X.toarray()[rows])  # dense: old scipy cannot fancy-index int32/int64 CSR
assert np.array_equal(s.obsm['X_uce'], a.obsm['X_uce'][rows], equal_nan=True)
assert np.array_equal(s.obsm['X_umap'], a.obsm['X_umap'][rows], equal_nan=True)
assert list(s.obs['cell_type']) == list(a.obs['cell_type'].iloc[rows])
assert list(s.obs['my_labels'].astype(str)) == list(a.obs['my_labels'].astype(str).iloc[rows])
assert list(s.obs['leiden'].astype(str)) == list(a.obs['leiden'].astype(str).iloc[rows])
assert list(s.var_names) == list(a.var_names) and 'gene_ids' in s.var
assert s.uns['synth']['seed'] == a.uns['synth']['seed']
print('ok')
)").arg(tmp_.filePath("annotated.h5ad"), out), &pout, &perr);
    QVERIFY2(rc == 0 && pout.contains("ok"), qPrintable(perr + pout));

    Job* none = ws_->exportSelection(doc_, {}, tmp_.filePath("empty.h5ad"));
    QVERIFY(waitJob(none));
    QCOMPARE(none->status(), JobStatus::Failed);
    QVERIFY(none->errorText().contains("no cells selected"));
  }

  void exportsCsv() {
    const QString out = tmp_.filePath("cells.csv");
    Job* job = ws_->exportCsv(doc_, out, {"cell_type", "leiden", "my_labels"}, {"X_uce", "X_umap"});
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    QString pout, perr;
    const int rc = python(QString(R"(
import anndata, numpy as np, pandas as pd
c = pd.read_csv('%1', index_col=0, keep_default_na=False, na_values=[''])
a = anndata.read_h5ad('%2')
assert c.shape == (600, 3 + 24 + 2), c.shape
assert list(c.index) == list(a.obs_names)
assert list(c['cell_type']) == list(a.obs['cell_type'])
e = c[[f'X_uce_{j}' for j in range(24)]].to_numpy(np.float32)
assert np.allclose(e, a.obsm['X_uce'], equal_nan=True, atol=1e-7)
print('ok')
)").arg(out, tmp_.filePath("annotated.h5ad")), &pout, &perr);
    QVERIFY2(rc == 0 && pout.contains("ok"), qPrintable(perr + pout));
  }

  void settingsPersist() {
    const QString ini = tmp_.filePath("settings.ini");
    {
      AppSettings s(ini);
      QCOMPARE(s.device(), QString("cpu"));
      QCOMPARE(s.batchSize(), 32);
      s.setModelFile(model_);
      s.setAssetsDir(assets_);
      s.setDevice("cuda");
      s.setBatchSize(64);
      for (int i = 0; i < 12; ++i) s.addRecentFile(tmp_.filePath(QString("f%1.h5ad").arg(i)));
      s.addRecentFile(tmp_.filePath("f3.h5ad"));
      s.sync();
    }
    AppSettings s(ini);
    QCOMPARE(s.modelFile(), model_);
    QCOMPARE(s.assetsDir(), assets_);
    QCOMPARE(s.device(), QString("cuda"));
    QCOMPARE(s.batchSize(), 64);
    const QStringList recent = s.recentFiles();
    QCOMPARE(recent.size(), AppSettings::maxRecent());
    QCOMPARE(recent.first(), tmp_.filePath("f3.h5ad"));
    QCOMPARE(recent.at(1), tmp_.filePath("f11.h5ad"));

    // A workspace with settings records what it opens.
    JobManager jobs;
    Workspace ws(&jobs, &s);
    QVERIFY(waitJob(ws.open(data_)));
    QCOMPARE(s.recentFiles().first(), QFileInfo(data_).absoluteFilePath());
  }

  void cleanupTestCase() {
    delete ws_;
    delete jobs_;
  }
};

QTEST_MAIN(TestWorkspace)
#include "test_workspace.moc"
