// The desktop app's main window under Xvfb, driven in-process like a user would: open a
// synthetic dataset, embed it through the Embed dialog with a tiny random model (`uce
// init-model`), compute map and clusters, colour by a column and by a gene, box-select, label
// the selection, DE of the selection, export and read the export back with anndata, a bad file,
// the demo atlas with and without a model, and the real `uce-atlas` binary. One window is shared
// by the steps (they build on each other). Screenshots: <build>/test-screenshots/gui_*.png.
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QCompleter>
#include <QCryptographicHash>
#include <QDialogButtonBox>
#include <QDir>
#include <QDockWidget>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QMouseEvent>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSlider>
#include <QSpinBox>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QToolButton>
#include <QDockWidget>
#include <QtTest>
#include <cmath>

#include "dialogs.h"
#include "docks.h"
#include "jobs.h"
#include "main_window.h"
#include "atlas_panel.h"
#include "norn_wizard.h"
#include "training_panel.h"
#include "test_support.h"
#include "uce/core/analysis/metrics.h"
#include "uce/views/charts.h"
#include "uce/views/scatter_map.h"
#include "uce/views/table_models.h"
#include "workspace.h"

using namespace uce::gui;
using uce::views::ScatterMap;

namespace {

using uce::test::shotDir;

bool near(QRgb a, QRgb b, int tol) {
  return std::abs(qRed(a) - qRed(b)) <= tol && std::abs(qGreen(a) - qGreen(b)) <= tol &&
         std::abs(qBlue(a) - qBlue(b)) <= tol;
}

// Pixels of `img` inside `r` within `tol` of `rgb` (device pixels; Xvfb runs at ratio 1).
int countColour(const QImage& img, QRect r, QRgb rgb, int tol = 12) {
  int n = 0;
  r = r.intersected(img.rect());
  for (int y = r.top(); y <= r.bottom(); ++y)
    for (int x = r.left(); x <= r.right(); ++x)
      if (near(img.pixel(x, y), rgb, tol)) ++n;
  return n;
}

bool waitJob(Job* job, int timeoutMs = 120000) {
  if (!job) return false;
  if (job->isFinished()) return true;
  QSignalSpy spy(job, &Job::finished);
  return spy.wait(timeoutMs) || job->isFinished();
}

QByteArray sha(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256).toHex();
}

void mouse(QWidget* w, QEvent::Type t, QPointF pos, Qt::MouseButton b, Qt::MouseButtons held) {
  QMouseEvent e(t, pos, w->mapToGlobal(pos), b, held, Qt::NoModifier);
  QApplication::sendEvent(w, &e);
}

void drag(QWidget* w, QPointF from, QPointF to) {
  mouse(w, QEvent::MouseButtonPress, from, Qt::LeftButton, Qt::LeftButton);
  mouse(w, QEvent::MouseMove, (from + to) / 2, Qt::NoButton, Qt::LeftButton);
  mouse(w, QEvent::MouseMove, to, Qt::NoButton, Qt::LeftButton);
  mouse(w, QEvent::MouseButtonRelease, to, Qt::LeftButton, Qt::NoButton);
}

// The newest job whose name starts with `prefix`.
Job* lastJob(JobManager* jobs, const QString& prefix) {
  const auto all = jobs->jobs();
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if ((*it)->name().startsWith(prefix)) return *it;
  return nullptr;
}

// Waits until no job is queued or running, including jobs that finished jobs start (embed ->
// map + clusters -> markers): waitForAll() waits out such chains itself.
bool settle(JobManager* jobs, int timeoutMs = 120000) { return jobs->waitForAll(timeoutMs); }

// Closes the message boxes a step left open (they are non-blocking, so they pile up).
void closeBoxes(QWidget* w) {
  for (QMessageBox* b : w->findChildren<QMessageBox*>()) b->close();
  QCoreApplication::processEvents();
}

}  // namespace

class TestGui : public QObject {
  Q_OBJECT

  QTemporaryDir tmp_;
  QString data_, assets_, model_;
  MainWindow* w_ = nullptr;
  GuiStallMonitor monitor_;
  std::vector<uint32_t> boxed_;

  MainWindow::Options options(const QString& demoModel) const {
    MainWindow::Options o;
    o.settingsFile = tmp_.filePath("settings.ini");
    o.demoModel = demoModel;
    o.cacheDir = tmp_.filePath("cache");
    return o;
  }

  DatasetDoc* doc() const { return w_->activeDocument(); }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    QString out, err;
    int rc = uce::test::cli({"synth", "--out", tmp_.filePath("world"), "--cells", "600", "--genes", "400", "--seed",
                             "3", "--token-dim", "32", "--single-dataset", "--quiet"},
                            &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    data_ = tmp_.filePath("world/human_kidney.h5ad");
    assets_ = tmp_.filePath("world/assets");
    model_ = tmp_.filePath("model.torch");
    rc = uce::test::cli({"init-model", "--assets", assets_, "--out", model_, "--layers", "2", "--d-model", "32",
                         "--nhead", "4", "--d-hid", "64", "--output-dim", "24", "--seed", "5"},
                        &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    w_ = new MainWindow(options(tmp_.filePath("no_demo_model.torch")));
    w_->resize(1500, 950);
    w_->show();
    QVERIFY(QTest::qWaitForWindowExposed(w_));
  }

  void emptyWindowSaysHowToStart() {
    QStringList menus;
    for (QAction* a : w_->menuBar()->actions()) menus << a->text().remove('&');
    QCOMPARE(menus, (QStringList{"File", "Analysis", "Selection", "View", "Help"}));
    QVERIFY(w_->mapMessage().contains("Open a dataset"));
    QCOMPARE(w_->map()->pointCount(), size_t(0));
    QCOMPARE(w_->action("embed")->shortcut(), QKeySequence("Ctrl+E"));
    QCOMPARE(w_->action("modeBox")->shortcut(), QKeySequence("B"));
    // The Training dock (issue 7) is there, and a model it finishes becomes the embed model.
    QVERIFY(w_->findChild<QDockWidget*>("trainingDock"));
    QVERIFY(w_->findChild<QDockWidget*>("atlasDock") && w_->atlasPanel());
    w_->action("norn")->trigger();  // the Norn wizard opens from the Analysis menu
    QVERIFY(w_->nornWizard() && w_->nornWizard()->isVisible());
    w_->nornWizard()->hide();
    QVERIFY(w_->trainingPanel());
    const QString before = w_->settings()->modelFile();
    Q_EMIT w_->trainingPanel()->modelReady(tmp_.filePath("trained/model.torch"));
    QCOMPARE(w_->settings()->modelFile(), tmp_.filePath("trained/model.torch"));
    w_->settings()->setModelFile(before);
    QTest::qWait(100);
    w_->screenshot().save(shotDir() + "/gui_empty.png");
  }

  void opensDatasetIntoTheDocks() {
    QSignalSpy opened(w_->workspace(), &Workspace::documentOpened);
    w_->openFile(data_);
    QVERIFY(opened.wait(30000));
    QVERIFY(doc());
    QCOMPARE(doc()->cells(), qint64(600));
    QCOMPARE(w_->datasetsDock()->list()->count(), 1);
    QVERIFY(w_->datasetsDock()->list()->item(0)->text().contains("600 cells"));
    QCOMPARE(w_->cellsDock()->model()->rows(), size_t(600));
    QVERIFY(w_->cellsDock()->model()->columnIndex("cell_type") > 0);
    QVERIFY2(w_->mapMessage().contains("not embedded yet"), qPrintable(w_->mapMessage()));
    QCOMPARE(w_->settings()->recentFiles().value(0), QFileInfo(data_).absoluteFilePath());
    // The gene search completes var names.
    w_->geneCompleter()->setCompletionPrefix("CD");
    QVERIFY(w_->geneCompleter()->completionCount() > 0);
    // The cells table filters.
    w_->cellsDock()->filterEdit()->setText("T cell");
    QTRY_VERIFY(w_->cellsDock()->proxy()->rowCount() > 0 && w_->cellsDock()->proxy()->rowCount() < 600);
    w_->cellsDock()->filterEdit()->clear();
    QTRY_COMPARE(w_->cellsDock()->proxy()->rowCount(), 600);
  }

  void embedsThroughTheDialog() {
    w_->action("embed")->trigger();
    EmbedDialog* d = w_->embedDialog();
    QTRY_VERIFY(d->isVisible());
    QCOMPARE(d->speciesBox()->currentText(), QString("human"));
    // A wrong model path is refused in the dialog, with what to do.
    d->modelEdit()->setText(tmp_.filePath("missing.torch"));
    d->assetsEdit()->setText(assets_);
    QTest::mouseClick(d->buttons()->button(QDialogButtonBox::Ok), Qt::LeftButton);
    QVERIFY(d->isVisible());
    QVERIFY(d->problem().contains("Choose the model's weights file"));
    // The real run: tiny model, short sentences so the suite stays quick.
    d->modelEdit()->setText(model_);
    d->batchSizeBox()->setValue(16);
    d->sampleSizeBox()->setValue(256);
    d->padLengthBox()->setValue(320);
    d->thenMapBox()->setChecked(false);
    monitor_.start();
    QTest::mouseClick(d->buttons()->button(QDialogButtonBox::Ok), Qt::LeftButton);
    QTRY_VERIFY(!d->isVisible());
    Job* job = lastJob(w_->jobs(), "Embed");
    QVERIFY(job);
    QVERIFY(w_->jobsDock()->progressBar(job));
    QVERIFY(w_->jobsDock()->cancelButton(job));
    QVERIFY(w_->mapMessage().contains("Jobs panel") || job->isFinished());
    QString seen;
    connect(job, &Job::progressChanged, this, [&] {
      if (job->rate() > 0 && job->total() > 0) seen = w_->jobsDock()->detailLabel(job)->text();
    });
    QVERIFY(waitJob(job));
    const double stall = monitor_.worstStallMs();
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    qInfo("embed 600 cells: %.1f s; GUI worst stall during the embedding %.1f ms (mean %.2f ms, %lld ticks); "
          "a progress line: %s",
          job->elapsedSeconds(), stall, monitor_.meanStallMs(), monitor_.ticks(), qPrintable(seen));
    QVERIFY(monitor_.ticks() > 10);
    QVERIFY(doc()->hasEmbedding());
    QCOMPARE(w_->jobsDock()->progressBar(job)->value(), 1000);
    QVERIFY(w_->jobsDock()->detailLabel(job)->text().startsWith("done"));
    QVERIFY(!w_->jobsDock()->cancelButton(job)->isVisible());
    QVERIFY2(w_->mapMessage().contains("Compute map"), qPrintable(w_->mapMessage()));
    // Remembered for next time.
    QCOMPARE(w_->settings()->modelFile(), model_);
    QCOMPARE(w_->settings()->assetsDir(), assets_);
    QCOMPARE(w_->settings()->batchSize(), 16);
  }

  void computesMapAndClusters() {
    w_->resolutionSlider()->setValue(5);
    w_->action("computeMap")->trigger();
    w_->action("cluster")->trigger();
    QVERIFY(settle(w_->jobs()));
    for (Job* j : w_->jobs()->jobs()) QVERIFY2(j->status() == JobStatus::Done, qPrintable(j->name() + ": " + j->errorText()));
    ScatterMap* m = w_->map();
    QCOMPARE(m->pointCount(), size_t(600));
    QVERIFY(w_->mapMessage().isEmpty());
    QVERIFY(doc()->clusterCount() >= 3);
    QVERIFY(m->isCategorical());
    QCOMPARE(m->colorTitle(), QString("leiden"));
    QCOMPARE(w_->clustersDock()->table()->rowCount(), doc()->clusterCount());
    // Marker genes follow the clusters.
    QTRY_VERIFY_WITH_TIMEOUT(!w_->clustersDock()->table()->item(0, 3)->text().isEmpty(), 60000);
    monitor_.stop();
    qInfo("GUI thread from Embed to marker genes (embed, UMAP, Leiden, markers, table and map updates): "
          "worst stall %.1f ms, mean %.2f ms over %lld ticks of a 10 ms timer",
          monitor_.worstStallMs(), monitor_.meanStallMs(), monitor_.ticks());
    QVERIFY(monitor_.ticks() > 10);
    QVERIFY(w_->clustersDock()->chart()->clusterCount() == doc()->clusterCount());
    QTest::qWait(300);
    const QImage img = m->grabFramebuffer();
    img.save(shotDir() + "/gui_map_clusters.png");
    w_->screenshot().save(shotDir() + "/gui_window_clusters.png");
    // Each of the three largest clusters is drawn in its palette colour where its cells are.
    for (int k = 0; k < 3; ++k) {
      int hits = 0;
      for (size_t i = 0; i < 600; ++i)
        if (doc()->clusters()[i] == k) {
          const QPointF p = m->project(i);
          hits += countColour(img, QRect(int(p.x()) - 1, int(p.y()) - 1, 3, 3), ScatterMap::categoryColor(k)) > 0;
        }
      QVERIFY2(hits > 10, qPrintable(QString("cluster %1: %2 cells show its colour").arg(k).arg(hits)));
      QVERIFY(countColour(img, m->legendEntryRect(k), ScatterMap::categoryColor(k), 6) >= 20);
    }
  }

  void coloursByColumnAndByGene() {
    ScatterMap* m = w_->map();
    QVERIFY(w_->colorByColumn("cell_type"));
    QCOMPARE(m->colorTitle(), QString("cell_type"));
    QVERIFY(!m->legendRect().isEmpty());
    const uce::Column* ct = doc()->column("cell_type");
    QCOMPARE(m->categoryNames().size(), int(ct->categories.size()));
    QCOMPARE(w_->colorByBox()->currentData().toString(), QString("obs:cell_type"));
    QTest::qWait(200);
    QImage img = m->grabFramebuffer();
    img.save(shotDir() + "/gui_map_cell_type.png");
    for (int c = 0; c < 3; ++c) QVERIFY(countColour(img, m->legendEntryRect(c), ScatterMap::categoryColor(c), 6) >= 20);
    int coloured = 0;
    for (size_t i = 0; i < 600; i += 7) {
      const QPointF p = m->project(i);
      coloured += countColour(img, QRect(int(p.x()) - 1, int(p.y()) - 1, 3, 3), ScatterMap::categoryColor(ct->codes[i])) > 0;
    }
    QVERIFY2(coloured > 40, qPrintable(QString::number(coloured)));

    // A gene typed in the search box: its expression as a continuous colour with a colour bar.
    const QString gene = w_->workspace()->markers(doc()).value(0).value(0);
    QVERIFY(!gene.isEmpty());
    w_->geneEdit()->setText(gene);
    QTest::keyClick(w_->geneEdit(), Qt::Key_Return);
    Job* job = lastJob(w_->jobs(), "Expression of " + gene);
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    QTRY_VERIFY(m->isContinuous());
    QVERIFY(m->colorTitle().contains(gene));
    QVERIFY(m->colorMax() > m->colorMin());
    QVERIFY(!m->colorBarRect().isEmpty());
    QTest::qWait(200);
    img = m->grabFramebuffer();
    img.save(shotDir() + "/gui_map_gene.png");
    QVERIFY(countColour(img, m->colorBarRect(), ScatterMap::viridis(1.0), 10) > 5);
    QVERIFY(countColour(img, m->colorBarRect(), ScatterMap::viridis(0.0), 10) > 5);
    // An unknown gene: a failed job, its message in the error dialog.
    QSignalSpy errors(w_, &MainWindow::errorShown);
    QVERIFY(waitJob(w_->colorByGene("NOT_A_GENE_XYZ")));
    QVERIFY(errors.count() >= 1);
    QVERIFY2(w_->lastError().contains("no gene 'NOT_A_GENE_XYZ'"), qPrintable(w_->lastError()));
    closeBoxes(w_);
  }

  void boxSelectionReachesTheTable() {
    ScatterMap* m = w_->map();
    QVERIFY(w_->colorByColumn("leiden"));
    w_->action("modeBox")->trigger();
    QCOMPARE(m->mode(), ScatterMap::Mode::BoxSelect);
    // A box around the middle of cluster 0's cells.
    QRectF box;
    for (size_t i = 0; i < 600; ++i)
      if (doc()->clusters()[i] == 0) box = box.isNull() ? QRectF(m->project(i), QSizeF(1, 1)) : box.united(QRectF(m->project(i), QSizeF(1, 1)));
    box = QRectF(box.center() - QPointF(box.width() / 3, box.height() / 3), box.size() * (2.0 / 3.0));
    const std::vector<uint32_t> expected = m->pointsInRect(box);
    QVERIFY(expected.size() >= 5);
    drag(m, box.topLeft(), box.bottomRight());
    QCOMPARE(m->selection(), expected);
    boxed_ = expected;
    CellsDock* cells = w_->cellsDock();
    QCOMPARE(cells->model()->selectedRows().size(), expected.size());
    cells->selectedOnlyBox()->setChecked(true);
    QTRY_COMPARE(cells->proxy()->rowCount(), int(expected.size()));
    QVERIFY2(cells->countLabel()->text().contains(QString("%1 selected").arg(expected.size())),
             qPrintable(cells->countLabel()->text()));
    QVERIFY(w_->action("labelSelection")->isEnabled());
    QTest::qWait(200);
    w_->screenshot().save(shotDir() + "/gui_box_selection.png");

    // Table -> map: rows picked in the table become the map's selection.
    cells->selectedOnlyBox()->setChecked(false);
    QTRY_COMPARE(cells->proxy()->rowCount(), 600);
    QTableView* v = cells->view();
    v->selectionModel()->select(QItemSelection(cells->proxy()->index(0, 0), cells->proxy()->index(4, 0)),
                                QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    QCOMPARE(m->selection().size(), size_t(5));
    m->setSelection(boxed_);
    QCOMPARE(cells->model()->selectedRows().size(), boxed_.size());
    w_->action("modeNavigate")->trigger();
  }

  void labelsTheSelection() {
    w_->action("labelSelection")->trigger();
    LabelDialog* d = w_->labelDialog();
    QTRY_VERIFY(d->isVisible());
    d->columnBox()->setCurrentText("my_labels");
    d->labelEdit()->setText("boxed");
    QTest::mouseClick(d->buttons()->button(QDialogButtonBox::Ok), Qt::LeftButton);
    QTRY_VERIFY(!d->isVisible());
    const uce::Column* c = doc()->column("my_labels");
    QVERIFY(c);
    int n = 0;
    for (size_t i = 0; i < 600; ++i) n += c->valueAsString(i) == "boxed";
    QCOMPARE(n, int(boxed_.size()));
    QCOMPARE(w_->map()->colorTitle(), QString("my_labels"));
    QVERIFY(w_->cellsDock()->model()->columnIndex("my_labels") > 0);
    QVERIFY(w_->colorByBox()->findData("obs:my_labels") >= 0);
  }

  void deOfTheSelection() {
    // The box of a random-weight model's map mixes cell types, so its DE may find nothing;
    // cluster 0 (picked in the clusters table) has clear markers.
    QTableWidget* clusters = w_->clustersDock()->table();
    QTest::mouseClick(clusters->viewport(), Qt::LeftButton, {}, clusters->visualItemRect(clusters->item(0, 1)).center());
    int inCluster0 = 0;
    for (int32_t k : doc()->clusters()) inCluster0 += k == 0;
    QCOMPARE(w_->map()->selection().size(), size_t(inCluster0));
    w_->action("deSelection")->trigger();
    Job* job = lastJob(w_->jobs(), "DE selection");
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    DeDock* de = w_->deDock();
    QTRY_COMPARE(de->model()->rowCount(), 400);
    QVERIFY2(de->titleLabel()->text().contains(QString("(%1 cells)").arg(inCluster0)), qPrintable(de->titleLabel()->text()));
    QVERIFY(de->volcano()->pointCount() > 0);
    QVERIFY(de->isVisible());
    // The most significant gene past the thresholds (|log2 FC| >= 1, adjusted p <= 0.05) is drawn
    // red (up) or blue (down) where the plot says it is.
    QString top;
    QColor want;
    for (const uce::views::DeRow& r : de->model()->rows())
      if (std::abs(r.log2FoldChange) >= 1 && r.pAdjusted <= 0.05) {
        top = r.gene;
        want = r.log2FoldChange > 0 ? uce::views::VolcanoPlot::kUp : uce::views::VolcanoPlot::kDown;
        break;
      }
    QVERIFY2(!top.isEmpty(), "no significant gene for cluster 0");
    QTest::qWait(200);
    const QImage vol = de->volcano()->renderImage();
    vol.save(shotDir() + "/gui_volcano.png");
    de->grab().save(shotDir() + "/gui_de_dock.png");
    QPointF at;
    QVERIFY(de->volcano()->pointPosition(top, &at));
    QVERIFY2(countColour(vol, QRect(int(at.x()) - 2, int(at.y()) - 2, 5, 5), want.rgb(), 10) > 0, qPrintable(top));
    QVERIFY(w_->saveChartTo("volcano", tmp_.filePath("volcano.svg")));
    QVERIFY(uce::test::readAll(tmp_.filePath("volcano.svg")).contains("<circle"));
    QVERIFY(w_->saveChartTo("composition", tmp_.filePath("composition.png")));
    QVERIFY(!QImage(tmp_.filePath("composition.png")).isNull());
    w_->map()->setSelection(boxed_);
  }

  void switchesTo3dAndBack() {
    w_->action("map3d")->setChecked(true);
    Job* job = lastJob(w_->jobs(), "UMAP");
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Done, qPrintable(job->errorText()));
    QTRY_COMPARE(w_->map()->dims(), 3);
    QTest::qWait(200);
    w_->map()->grabFramebuffer().save(shotDir() + "/gui_map_3d.png");
    w_->action("map3d")->setChecked(false);
    QCOMPARE(w_->map()->dims(), 2);
    w_->map()->setSelection(boxed_);
  }

  void exportsAndReadsBack() {
    const QByteArray before = sha(data_);
    // Never over the input without asking: a confirmation appears, Cancel leaves it alone.
    QVERIFY(!w_->exportAnnotatedTo(data_));
    QMessageBox* confirm = w_->findChild<QMessageBox*>("confirmOverwrite");
    QVERIFY(confirm && confirm->isVisible());
    confirm->button(QMessageBox::Cancel)->click();
    QTest::qWait(100);
    QCOMPARE(sha(data_), before);

    const QString out = tmp_.filePath("annotated.h5ad"), sel = tmp_.filePath("selection.h5ad");
    Job* a = w_->exportAnnotatedTo(out);
    Job* s = w_->exportSelectionTo(sel);
    Job* c = w_->exportCsvTo(tmp_.filePath("cells.csv"));
    QVERIFY(waitJob(a) && waitJob(s) && waitJob(c));
    for (Job* j : {a, s, c}) QVERIFY2(j->status() == JobStatus::Done, qPrintable(j->errorText()));
    QCOMPARE(sha(data_), before);
    QVERIFY(w_->saveMapTo(tmp_.filePath("map.png")));
    QVERIFY(w_->saveMapTo(tmp_.filePath("map.svg")));
    QVERIFY(!QImage(tmp_.filePath("map.png")).isNull());
    QVERIFY(uce::test::readAll(tmp_.filePath("map.svg")).contains("<circle"));
    QString pout, perr;
    const int rc = uce::test::python(QString(R"(
import anndata, numpy as np, pandas as pd
a = anndata.read_h5ad('%1')
src = anndata.read_h5ad('%2')
assert a.shape == (600, 400), a.shape
assert a.obsm['X_uce'].shape == (600, 24)
assert a.obsm['X_umap'].shape == (600, 2)
assert str(a.obs['leiden'].dtype) == 'category'
assert (a.obs['my_labels'] == 'boxed').sum() == %3, (a.obs['my_labels'] == 'boxed').sum()
assert (a.obs['cell_type'] == src.obs['cell_type']).all()
assert (a.X != src.X).nnz == 0
s = anndata.read_h5ad('%4')
assert s.shape == (%3, 400), s.shape
assert (s.obs['my_labels'] == 'boxed').all()
c = pd.read_csv('%5', index_col=0)
assert len(c) == 600 and 'X_uce_0' in c.columns and 'my_labels' in c.columns
print('ok')
)")
                                       .arg(out, data_)
                                       .arg(boxed_.size())
                                       .arg(sel, tmp_.filePath("cells.csv")),
                                   &pout, &perr);
    QVERIFY2(rc == 0 && pout.contains("ok"), qPrintable(perr + pout));
  }

  void badFileShowsWhatToDo() {
    const QString bad = tmp_.filePath("notes.h5ad");
    uce::test::writeAll(bad, "these are my notes, not a dataset\n");
    QSignalSpy errors(w_, &MainWindow::errorShown);
    DatasetDoc* before = doc();
    w_->openFile(bad);
    QVERIFY(errors.wait(30000));
    const QString text = errors.last().at(0).toString();
    QVERIFY2(text.contains("notes.h5ad") && text.contains("not an HDF5 file") && text.contains("Open an AnnData .h5ad"),
             qPrintable(text));
    QMessageBox* box = nullptr;
    QTRY_VERIFY((box = w_->findChild<QMessageBox*>("errorBox")) != nullptr);
    QVERIFY(box->text().contains("not an HDF5 file"));
    QTest::qWait(100);
    w_->screenshot().save(shotDir() + "/gui_error.png");
    closeBoxes(w_);
    QVERIFY(w_->isVisible());
    QCOMPARE(doc(), before);
    QCOMPARE(w_->workspace()->documents().size(), 1);
    // No selection: labelling says what to do instead of failing silently.
    w_->map()->clearSelection();
    w_->showLabelDialog();
    QVERIFY(w_->lastError().contains("No cells selected"));
    closeBoxes(w_);
  }

  void demoWithoutItsModelSaysSo() {
    MainWindow w(options(tmp_.filePath("absent_demo_model.torch")));
    w.resize(1400, 900);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.openDemo();
    QTRY_COMPARE_WITH_TIMEOUT(w.workspace()->documents().size(), 6, 60000);
    QVERIFY(settle(w.jobs(), 60000));
    QTRY_VERIFY(w.activeDocument());
    QCOMPARE(w.activeDocument()->name(), MainWindow::demoDatasets(MainWindow::demoDir()).first() + ".h5ad");
    QCOMPARE(w.map()->pointCount(), size_t(0));
    QVERIFY2(w.mapMessage().contains("demo model is not bundled"), qPrintable(w.mapMessage()));
    QVERIFY(w.mapMessage().contains("Embed..."));
    QCOMPARE(w.datasetsDock()->list()->count(), 6);
    QCOMPARE(w.cellsDock()->model()->rows(), size_t(w.activeDocument()->cells()));
    QTest::qWait(200);
    w.screenshot().save(shotDir() + "/gui_demo_without_model.png");
  }

  // The bundled demo model (resources/demo_model) on a demo dataset it never trained on: the
  // demo pipeline embeds, maps and clusters it, and the clusters are the cell types.
  void demoWithItsModelShowsTheCellTypes() {
    const QString model = MainWindow::demoModelFile();
    QVERIFY2(QFileInfo(model).isFile(), qPrintable(model));
    MainWindow w(options(model));
    w.resize(1400, 900);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.openDemo("human_heart");
    QTRY_VERIFY_WITH_TIMEOUT(w.activeDocument() && !w.jobs()->jobs().isEmpty(), 30000);
    QVERIFY(settle(w.jobs()));
    for (Job* j : w.jobs()->jobs()) QVERIFY2(j->status() == JobStatus::Done, qPrintable(j->name() + ": " + j->errorText()));
    DatasetDoc* d = w.activeDocument();
    QTRY_COMPARE(w.map()->pointCount(), size_t(d->cells()));
    QVERIFY(w.map()->isCategorical());
    QCOMPARE(w.map()->colorTitle(), QString("leiden"));
    QVERIFY(w.mapMessage().isEmpty());
    QVERIFY(QFileInfo(d->basePath()).absolutePath() == QFileInfo(tmp_.filePath("cache/x")).absolutePath());
    // Clusters against the generator's cell types: a random-init model of the same shape gives
    // clusters unrelated to them (adjusted Rand index near 0).
    const uce::Column* leiden = d->column("leiden");
    const uce::Column* type = d->column("cell_type");
    QVERIFY(leiden && type && leiden->codes.size() == type->codes.size());
    const double ari = uce::analysis::adjustedRandIndex(leiden->codes, type->codes);
    qInfo("demo human heart: %d clusters, %zu cell types, ARI %.3f", d->clusterCount(), type->categories.size(), ari);
    QVERIFY2(ari >= 0.5, qPrintable(QString::number(ari)));
    QVERIFY(d->clusterCount() >= 6);
    QTest::qWait(300);
    const QImage img = w.screenshot();
    img.save(shotDir() + "/gui_demo_model.png");
    const QImage map = w.map()->grabFramebuffer();
    for (int c = 0; c < 6; ++c)
      QVERIFY2(countColour(map, map.rect(), ScatterMap::categoryColor(c), 6) > 20, qPrintable(QString::number(c)));
  }

  void realAppOpensAndReportsErrors() {
    const QString png = shotDir() + "/gui_app_dataset.png";
    QFile::remove(png);
    QString out, err;
    qputenv("UCE_SETTINGS_FILE", tmp_.filePath("app_settings.ini").toUtf8());
    qputenv("UCE_DEMO_MODEL", tmp_.filePath("absent_demo_model.torch").toUtf8());
    int rc = uce::test::run(UCE_GUI_APP, {"--demo", "--demo-dataset", "human_lung", "--screenshot", png}, &out, &err, 120000);
    QVERIFY2(rc == 0, qPrintable(err));
    QImage img(png);
    QVERIFY(!img.isNull() && img.width() >= 800);
    const QString bad = tmp_.filePath("hello.h5ad");
    uce::test::writeAll(bad, "hello");
    rc = uce::test::run(UCE_GUI_APP, {bad, "--screenshot", tmp_.filePath("x.png")}, &out, &err, 120000);
    QCOMPARE(rc, 1);
    QVERIFY2(err.contains("hello.h5ad") && err.contains("not an HDF5 file"), qPrintable(err));
    // The installation self-test: the map draws with this machine's OpenGL, the demo opens.
    rc = uce::test::run(UCE_GUI_APP, {"--self-test"}, &out, &err, 300000);
    QVERIFY2(rc == 0 && out.contains("self-test passed") && out.contains("4 of 4 test points"),
             qPrintable(out + err));
  }

  void cleanupTestCase() {
    delete w_;
  }
};

QTEST_MAIN(TestGui)
#include "test_gui.moc"
