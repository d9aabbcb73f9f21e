#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QStatusBar>
#include <QThread>
#include <algorithm>
#include <exception>

#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/inspect.h"
#include "uce/views/map_view.h"

namespace uce::gui {

// What the worker thread hands back to the GUI thread.
struct MainWindow::LoadResult {
  QString path;
  QString error;
  QString summary;
  QString mapKey;                 // obsm key drawn on the map, "" if none
  QString colourBy;               // obs column used for colours
  qint64 cells = 0;
  std::vector<float> xy;          // [n * 2]
  std::vector<unsigned> rgba;     // [n]
};

// A qualitative palette (Tableau 10) for categorical colours.
static unsigned paletteColour(int code) {
  static const unsigned pal[] = {0xFF4E79A7, 0xFFF28E2B, 0xFFE15759, 0xFF76B7B2, 0xFF59A14F,
                                 0xFFEDC948, 0xFFB07AA1, 0xFFFF9DA7, 0xFF9C755F, 0xFFBAB0AC};
  return code < 0 ? 0xFFBBBBBB : pal[code % 10];
}

static std::shared_ptr<MainWindow::LoadResult> loadDataset(const QString& path);

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(tr("UCE Atlas"));
  resize(1200, 800);
  map_ = new uce::views::MapView(this);
  setCentralWidget(map_);

  auto* dock = new QDockWidget(tr("Dataset"), this);
  dock->setObjectName("datasetDock");
  summary_ = new QPlainTextEdit(dock);
  summary_->setReadOnly(true);
  summary_->setPlaceholderText(tr("Open a dataset (.h5ad, 10x .h5, Matrix Market folder, CSV)"));
  dock->setWidget(summary_);
  addDockWidget(Qt::RightDockWidgetArea, dock);

  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* open = file->addAction(tr("&Open dataset..."), this, &MainWindow::chooseFile);
  open->setShortcut(QKeySequence::Open);
  file->addAction(tr("Open &demo atlas"), this, &MainWindow::openDemo);
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), qApp, &QApplication::quit);
  quit->setShortcut(QKeySequence::Quit);
  QMenu* view = menuBar()->addMenu(tr("&View"));
  view->addAction(tr("&Reset map view"), map_, &uce::views::MapView::resetView);
  view->addAction(dock->toggleViewAction());
  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About UCE Atlas"), this, &MainWindow::about);

  status_ = new QLabel(tr("Ready"), this);
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 0);  // busy indicator while loading
  progress_->setMaximumWidth(200);
  progress_->hide();
  statusBar()->addWidget(status_, 1);
  statusBar()->addPermanentWidget(progress_);
}

MainWindow::~MainWindow() = default;

QString MainWindow::summaryText() const { return summary_->toPlainText(); }

QString MainWindow::demoDir() {
  QString env = qEnvironmentVariable("UCE_DEMO_DIR");
  if (!env.isEmpty()) return env;
  QString besideApp = QCoreApplication::applicationDirPath() + "/../share/uce-atlas/demo";
  if (QDir(besideApp).exists()) return besideApp;
  return UCE_DEMO_DIR;
}

void MainWindow::openDemo() {
  QDir dir(demoDir());
  QStringList files = dir.entryList({"*.h5ad"}, QDir::Files, QDir::Name);
  if (files.isEmpty()) {
    lastError_ = tr("The demo atlas is missing from %1: build the 'demo' target "
                    "(cmake --build build --target demo).").arg(dir.absolutePath());
    QMessageBox::warning(this, tr("Demo atlas"), lastError_);
    Q_EMIT failed(lastError_);
    return;
  }
  openFile(dir.absoluteFilePath(files.first()));
}

void MainWindow::chooseFile() {
  QString path = QFileDialog::getOpenFileName(
      this, tr("Open dataset"), QString(),
      tr("Single-cell data (*.h5ad *.h5 *.mtx *.mtx.gz *.csv *.tsv *.csv.gz *.tsv.gz);;All files (*)"));
  if (!path.isEmpty()) openFile(path);
}

void MainWindow::openFile(const QString& path) {
  if (loading_) return;
  loading_ = true;
  status_->setText(tr("Loading %1 ...").arg(path));
  progress_->show();
  QThread* worker = QThread::create([this, path] {
    auto result = loadDataset(path);
    QMetaObject::invokeMethod(this, [this, result] { showResult(result); }, Qt::QueuedConnection);
  });
  connect(worker, &QThread::finished, worker, &QObject::deleteLater);
  worker->start();
}

void MainWindow::showResult(const std::shared_ptr<LoadResult>& r) {
  loading_ = false;
  progress_->hide();
  if (!r->error.isEmpty()) {
    lastError_ = r->error;
    status_->setText(tr("Could not open the file"));
    if (!qEnvironmentVariableIsSet("UCE_NO_DIALOGS"))
      QMessageBox::critical(this, tr("Could not open dataset"), r->error);
    Q_EMIT failed(r->error);
    return;
  }
  currentFile_ = r->path;
  lastError_.clear();
  setWindowTitle(tr("UCE Atlas - %1").arg(QFileInfo(r->path).fileName()));
  summary_->setPlainText(r->summary);
  map_->setPoints(r->xy, r->rgba);
  map_->setMessage(tr("%1 cells loaded. This file has no 2-D map yet (obsm X_umap or X_tsne).")
                       .arg(r->cells));
  if (r->mapKey.isEmpty())
    status_->setText(tr("Loaded %1: no embedding map yet").arg(QFileInfo(r->path).fileName()));
  else
    status_->setText(tr("Loaded %1: map of obsm['%2'] coloured by %3")
                         .arg(QFileInfo(r->path).fileName(), r->mapKey, r->colourBy));
  Q_EMIT loaded(r->path);
}

void MainWindow::about() {
  QMessageBox::about(this, tr("About UCE Atlas"),
                     tr("UCE Atlas %1\nExplore single-cell atlases with Universal Cell Embeddings.")
                         .arg(UCE_VERSION));
}

// Runs on the worker thread: open, summarise, and pick a 2-D map from obsm if one exists.
static std::shared_ptr<MainWindow::LoadResult> loadDataset(const QString& path) {
  auto r = std::make_shared<MainWindow::LoadResult>();
  r->path = path;
  try {
    r->path = QFileInfo(path).canonicalFilePath().isEmpty() ? path : QFileInfo(path).canonicalFilePath();
    auto ds = uce::openDataset(r->path.toStdString());
    r->summary = QString::fromStdString(uce::toText(uce::summarize(*ds)));
    r->cells = ds->cells();
    std::vector<std::string> keys = ds->obsmKeys();
    for (const char* want : {"X_umap", "X_tsne", "X_pca"}) {
      if (std::find(keys.begin(), keys.end(), want) == keys.end()) continue;
      uce::DenseMatrix m = ds->readObsm(want);
      if (m.cols < 2 || m.rows != ds->cells()) continue;
      r->mapKey = want;
      r->xy.resize(static_cast<size_t>(m.rows) * 2);
      for (int64_t i = 0; i < m.rows; ++i) {
        r->xy[static_cast<size_t>(2 * i)] = m.at(i, 0);
        r->xy[static_cast<size_t>(2 * i + 1)] = m.at(i, 1);
      }
      // Colour by the most informative label: cell_type if present, else the categorical
      // column with the most (but at most 30) categories.
      const uce::Column* colour = ds->obs().find("cell_type");
      if (colour && colour->kind != uce::ColumnKind::Categorical) colour = nullptr;
      for (const auto& c : ds->obs().columns)
        if (!colour || colour->name != "cell_type")
          if (c.kind == uce::ColumnKind::Categorical && c.categories.size() <= 30 &&
              (!colour || c.categories.size() > colour->categories.size()))
            colour = &c;
      r->rgba.assign(static_cast<size_t>(m.rows), 0xFF4E79A7);
      if (colour) {
        r->colourBy = QString::fromStdString(colour->name);
        for (size_t i = 0; i < r->rgba.size(); ++i) r->rgba[i] = paletteColour(colour->codes[i]);
      } else {
        r->colourBy = "a single colour";
      }
      break;
    }
  } catch (const std::exception& e) {
    r->error = QString::fromStdString(e.what());
  }
  return r;
}

}  // namespace uce::gui
