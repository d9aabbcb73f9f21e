#include "main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QScrollArea>
#include <QCloseEvent>
#include <QComboBox>
#include <QCompleter>
#include <QCryptographicHash>
#include <QDateTime>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPainter>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStringListModel>
#include <QToolBar>
#include <QUrl>

#include "dialogs.h"
#include "doc_adapters.h"
#include "docks.h"
#include "atlas_controller.h"
#include "atlas_panel.h"
#include "norn_wizard.h"
#include "norn_workflow.h"
#include "training_panel.h"
#include "uce/views/charts.h"
#include "uce/views/scatter_map.h"

namespace uce::gui {

using uce::views::ScatterMap;

namespace {

// The demo model is scored at 1,024 genes a cell (resources/demo_model/train_demo_model.sh,
// EVAL_SAMPLE; the release's default too): its cell types come apart best there.
constexpr int kDemoSampleSize = 1024;
// Markers are found right after clustering for datasets up to this size (one DE pass per
// cluster); larger ones wait for the "Find marker genes" button.
constexpr qint64 kAutoMarkersMaxCells = 200000;

bool sameFile(const QString& a, const QString& b) {
  const QFileInfo fa(a), fb(b);
  if (fa.exists() && fb.exists()) return fa.canonicalFilePath() == fb.canonicalFilePath();
  return fa.absoluteFilePath() == fb.absoluteFilePath();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction.

namespace {
// A dock page that keeps its own minimum size inside a scroll area, so a tabbed dock never
// squeezes the map (the atlas and training panels are larger than the clusters page).
QScrollArea* scrollable(QWidget* page) {
  auto* area = new QScrollArea;
  area->setWidget(page);
  area->setWidgetResizable(true);
  area->setFrameShape(QFrame::NoFrame);
  return area;
}
}  // namespace

MainWindow::MainWindow(QWidget* parent) : MainWindow(Options{}, parent) {}

MainWindow::MainWindow(const Options& options, QWidget* parent) : QMainWindow(parent), options_(options) {
  if (qEnvironmentVariableIsSet("UCE_NO_DIALOGS")) options_.dialogs = false;
  const QString ini = options_.settingsFile.isEmpty() ? qEnvironmentVariable("UCE_SETTINGS_FILE") : options_.settingsFile;
  settings_ = ini.isEmpty() ? std::make_unique<AppSettings>("UCE", "UCE Atlas") : std::make_unique<AppSettings>(ini);
  setWindowTitle(tr("UCE Atlas"));
  resize(1500, 950);
  setAcceptDrops(true);
  setDockNestingEnabled(true);

  jobs_ = new JobManager(this);
  ws_ = new Workspace(jobs_, settings_.get(), this);

  // The map with its message overlay: both in one grid cell, the message centred on top.
  mapPane_ = new QWidget(this);
  auto* grid = new QGridLayout(mapPane_);
  grid->setContentsMargins(0, 0, 0, 0);
  map_ = new ScatterMap(mapPane_);
  map_->setObjectName("cellMap");
  message_ = new QLabel(mapPane_);
  message_->setObjectName("mapMessage");
  message_->setWordWrap(true);
  message_->setMaximumWidth(620);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  message_->setStyleSheet(
      "QLabel { background: rgba(255, 255, 255, 235); border: 1px solid #9aa5b1; border-radius: 6px;"
      " padding: 14px; color: #1f2933; font-size: 11pt; }");
  grid->addWidget(map_, 0, 0);
  grid->addWidget(message_, 0, 0, Qt::AlignCenter);
  setCentralWidget(mapPane_);

  datasetsDock_ = new DatasetsDock(ws_, this);
  cellsDock_ = new CellsDock(this);
  jobsDock_ = new JobsDock(jobs_, this);
  clustersDock_ = new ClustersDock(this);
  deDock_ = new DeDock(this);
  addDockWidget(Qt::LeftDockWidgetArea, datasetsDock_);
  addDockWidget(Qt::LeftDockWidgetArea, jobsDock_);
  addDockWidget(Qt::RightDockWidgetArea, clustersDock_);
  addDockWidget(Qt::BottomDockWidgetArea, cellsDock_);
  addDockWidget(Qt::BottomDockWidgetArea, deDock_);
  tabifyDockWidget(cellsDock_, deDock_);
  cellsDock_->raise();
  // Training from the settings panel: `uce train` in its own process; a finished model
  // becomes the embed dialog's model.
  training_ = new TrainingPanel(&settings_->raw(), this);
  auto* trainingDock = new QDockWidget(tr("Training"), this);
  trainingDock->setObjectName("trainingDock");
  trainingDock->setWidget(scrollable(training_));
  addDockWidget(Qt::RightDockWidgetArea, trainingDock);
  tabifyDockWidget(clustersDock_, trainingDock);
  // Atlas and centroids (issue 7): build or open an atlas, place datasets on it, centroid
  // table and dendrogram, cell search; its jobs run in the window's job list.
  auto* atlasController = new AtlasController(jobs_);
  atlas_ = new AtlasPanel(atlasController, this);
  atlasController->setParent(atlas_);  // goes with the panel, before the job manager
  auto* atlasDock = new QDockWidget(tr("Atlas"), this);
  atlasDock->setObjectName("atlasDock");
  atlasDock->setWidget(scrollable(atlas_));
  addDockWidget(Qt::RightDockWidgetArea, atlasDock);
  tabifyDockWidget(clustersDock_, atlasDock);
  connect(atlas_, &AtlasPanel::centroidClicked, this,
          [this](const QString& name, const QString&, const QString&, const QVector<qint64>& rows, bool) {
            statusBar()->showMessage(tr("Centroid %1: %2 cells selected on the atlas map").arg(name).arg(rows.size()),
                                     15000);
          });
  clustersDock_->raise();
  connect(training_, &TrainingPanel::modelReady, this, [this](const QString& model) {
    settings_->setModelFile(model);
    statusBar()->showMessage(tr("Trained model ready: %1 (Embed now uses it)").arg(model), 30000);
  });
  resizeDocks({datasetsDock_, clustersDock_}, {300, 420}, Qt::Horizontal);
  resizeDocks({cellsDock_}, {260}, Qt::Vertical);

  embedDialog_ = new EmbedDialog(this);
  labelDialog_ = new LabelDialog(this);
  connect(embedDialog_, &QDialog::accepted, this,
          [this] { embedActive(embedDialog_->request(), embedDialog_->thenMapAndCluster()); });
  connect(labelDialog_, &QDialog::accepted, this,
          [this] { labelSelection(labelDialog_->column(), labelDialog_->label()); });

  buildActions();
  buildToolbar();
  buildMenus();
  wireDocks();
  statusBar()->showMessage(tr("Ready"));
  updateActions();
  updateMessage();
}

MainWindow::~MainWindow() {
  // The training panel saves its fields (and stops a running trainer) into settings_, which
  // goes before the child widgets do: delete it first.
  delete training_;
  training_ = nullptr;
  delete atlas_;  // and its controller, which holds the job manager
  atlas_ = nullptr;
  delete nornWizard_;
  nornWizard_ = nullptr;
  // Stop and wait for the workers before the documents they read go away.
  for (QDialog* d : {static_cast<QDialog*>(embedDialog_), static_cast<QDialog*>(labelDialog_)}) d->disconnect(this);
  disconnect(ws_, nullptr, this, nullptr);
  delete jobs_;
  jobs_ = nullptr;
}

QAction* MainWindow::action(const QString& name) const { return actions_.value(name); }

void MainWindow::buildActions() {
  auto add = [this](const QString& name, const QString& text, const QKeySequence& key, auto slot) {
    auto* a = new QAction(text, this);
    a->setObjectName(name);
    if (!key.isEmpty()) a->setShortcut(key);
    connect(a, &QAction::triggered, this, slot);
    actions_.insert(name, a);
    return a;
  };
  add("open", tr("&Open dataset..."), QKeySequence::Open, [this] {
    const QStringList files = QFileDialog::getOpenFileNames(
        this, tr("Open datasets"), QString(),
        tr("Single-cell data (*.h5ad *.h5 *.mtx *.mtx.gz *.csv *.tsv *.csv.gz *.tsv.gz);;All files (*)"));
    for (const QString& f : files) openFile(f);
  });
  add("openFolder", tr("Open Matrix Market &folder..."), QKeySequence(), [this] {
    const QString d = QFileDialog::getExistingDirectory(this, tr("Matrix Market folder (matrix.mtx, features.tsv, barcodes.tsv)"));
    if (!d.isEmpty()) openFile(d);
  });
  add("openDemo", tr("Open &demo atlas (all six datasets)"), QKeySequence(tr("Ctrl+Shift+D")), [this] { openDemo(); });
  add("close", tr("&Close dataset"), QKeySequence::Close, [this] { closeActiveDocument(); });
  add("quit", tr("&Quit"), QKeySequence::Quit, [this] { close(); });

  add("embed", tr("&Embed..."), QKeySequence(tr("Ctrl+E")), [this] { showEmbedDialog(); });
  add("computeMap", tr("Compute &map (UMAP)"), QKeySequence(tr("Ctrl+M")), [this] { computeMap(); });
  add("cluster", tr("&Cluster (Leiden)"), QKeySequence(tr("Ctrl+K")), [this] { clusterActive(); });
  add("markers", tr("Find marker &genes"), QKeySequence(tr("Ctrl+G")), [this] { findMarkers(); });
  add("norn", tr("Classifier &transfer (Norn workflow)..."), QKeySequence(tr("Ctrl+Shift+N")), [this] {
    if (!nornWizard_) nornWizard_ = new NornWizard(new NornWorkflow(ws_, this), this);
    nornWizard_->refreshDatasets();
    nornWizard_->show();
    nornWizard_->raise();
  });
  add("labelSelection", tr("&Label selection..."), QKeySequence(tr("Ctrl+L")), [this] { showLabelDialog(); });
  add("deSelection", tr("&DE of selection vs rest"), QKeySequence(tr("Ctrl+D")), [this] { deSelection(); });
  add("selectAll", tr("Select &all cells"), QKeySequence::SelectAll, [this] {
    std::vector<uint32_t> all(map_->pointCount());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint32_t>(i);
    map_->setSelection(std::move(all));
  });
  add("clearSelection", tr("Clear selection"), QKeySequence(Qt::Key_Escape), [this] { map_->clearSelection(); });

  add("exportAnnotated", tr("Export &annotated .h5ad..."), QKeySequence::Save, [this] {
    if (!active_) return showError(tr("Export"), tr("Open a dataset first."));
    const QFileInfo fi(active_->path());
    const QString p = askSavePath(tr("Export annotated .h5ad"),
                                  fi.absolutePath() + "/" + fi.completeBaseName() + "_annotated.h5ad", tr("AnnData (*.h5ad)"));
    if (!p.isEmpty()) exportAnnotatedTo(p);
  });
  add("exportSelection", tr("Export &selection as .h5ad..."), QKeySequence(tr("Ctrl+Shift+S")), [this] {
    if (!active_) return showError(tr("Export"), tr("Open a dataset first."));
    const QFileInfo fi(active_->path());
    const QString p = askSavePath(tr("Export the selected cells"),
                                  fi.absolutePath() + "/" + fi.completeBaseName() + "_selection.h5ad", tr("AnnData (*.h5ad)"));
    if (!p.isEmpty()) exportSelectionTo(p);
  });
  add("exportCsv", tr("Export &CSV..."), QKeySequence(), [this] {
    if (!active_) return showError(tr("Export"), tr("Open a dataset first."));
    const QFileInfo fi(active_->path());
    const QString p = askSavePath(tr("Export cells as CSV"), fi.absolutePath() + "/" + fi.completeBaseName() + "_cells.csv",
                                  tr("CSV (*.csv)"));
    if (!p.isEmpty()) exportCsvTo(p);
  });
  add("saveMap", tr("Save &map as PNG/SVG..."), QKeySequence(tr("Ctrl+Shift+P")), [this] {
    const QString p = askSavePath(tr("Save the map"), QDir::homePath() + "/map.png", tr("PNG image (*.png);;SVG image (*.svg)"));
    if (!p.isEmpty()) saveMapTo(p);
  });
  add("saveComposition", tr("Save cluster &composition chart..."), QKeySequence(), [this] {
    const QString p = askSavePath(tr("Save the chart"), QDir::homePath() + "/composition.png",
                                  tr("PNG image (*.png);;SVG image (*.svg)"));
    if (!p.isEmpty()) saveChartTo("composition", p);
  });
  add("saveVolcano", tr("Save &volcano plot..."), QKeySequence(), [this] {
    const QString p = askSavePath(tr("Save the chart"), QDir::homePath() + "/volcano.png",
                                  tr("PNG image (*.png);;SVG image (*.svg)"));
    if (!p.isEmpty()) saveChartTo("volcano", p);
  });

  modeGroup_ = new QActionGroup(this);
  auto mode = [this, &add](const QString& name, const QString& text, Qt::Key key, ScatterMap::Mode m) {
    QAction* a = add(name, text, QKeySequence(key), [this, m] { map_->setMode(m); });
    a->setCheckable(true);
    modeGroup_->addAction(a);
    return a;
  };
  mode("modeNavigate", tr("&Navigate"), Qt::Key_N, ScatterMap::Mode::Navigate)->setChecked(true);
  mode("modeBox", tr("&Box select"), Qt::Key_B, ScatterMap::Mode::BoxSelect);
  mode("modeLasso", tr("&Lasso select"), Qt::Key_L, ScatterMap::Mode::LassoSelect);
  QAction* map3d = add("map3d", tr("&3-D map"), QKeySequence(tr("Ctrl+3")), [this] {});
  map3d->setCheckable(true);
  disconnect(map3d, &QAction::triggered, this, nullptr);
  connect(map3d, &QAction::toggled, this, &MainWindow::setMap3d);
  add("resetView", tr("&Reset view"), QKeySequence(Qt::Key_Home), [this] { map_->resetView(); });
}

void MainWindow::buildToolbar() {
  QToolBar* tb = addToolBar(tr("Map"));
  tb->setObjectName("mapToolbar");
  tb->addAction(action("open"));
  tb->addAction(action("embed"));
  tb->addAction(action("computeMap"));
  tb->addAction(action("cluster"));
  resolution_ = new QSlider(Qt::Horizontal, tb);
  resolution_->setObjectName("resolution");
  resolution_->setRange(1, 30);
  resolution_->setValue(10);
  resolution_->setMaximumWidth(110);
  resolution_->setToolTip(tr("Leiden resolution: higher gives more, smaller clusters"));
  resolutionLabel_ = new QLabel(tb);
  connect(resolution_, &QSlider::valueChanged, this,
          [this](int v) { resolutionLabel_->setText(tr("res %1").arg(v / 10.0, 0, 'f', 1)); });
  resolutionLabel_->setText(tr("res 1.0"));
  tb->addWidget(resolution_);
  tb->addWidget(resolutionLabel_);
  tb->addSeparator();
  tb->addWidget(new QLabel(tr(" Colour by "), tb));
  colorBy_ = new QComboBox(tb);
  colorBy_->setObjectName("colorBy");
  colorBy_->setMinimumContentsLength(14);
  colorBy_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  tb->addWidget(colorBy_);
  geneEdit_ = new QLineEdit(tb);
  geneEdit_->setObjectName("geneSearch");
  geneEdit_->setPlaceholderText(tr("gene..."));
  geneEdit_->setMaximumWidth(130);
  geneEdit_->setToolTip(tr("Colour by a gene's expression (log-normalised counts); Enter to apply"));
  geneNames_ = new QStringListModel(this);
  geneCompleter_ = new QCompleter(geneNames_, this);
  geneCompleter_->setCaseSensitivity(Qt::CaseInsensitive);
  geneCompleter_->setFilterMode(Qt::MatchStartsWith);
  geneEdit_->setCompleter(geneCompleter_);
  tb->addWidget(geneEdit_);
  tb->addSeparator();
  tb->addWidget(new QLabel(tr(" Size "), tb));
  pointSize_ = new QSpinBox(tb);
  pointSize_->setObjectName("pointSize");
  pointSize_->setRange(1, 30);
  pointSize_->setValue(static_cast<int>(map_->pointSize()));
  tb->addWidget(pointSize_);
  tb->addWidget(new QLabel(tr(" Opacity "), tb));
  opacity_ = new QSlider(Qt::Horizontal, tb);
  opacity_->setObjectName("opacity");
  opacity_->setRange(5, 100);
  opacity_->setValue(100);
  opacity_->setMaximumWidth(90);
  tb->addWidget(opacity_);
  tb->addSeparator();
  tb->addAction(action("modeNavigate"));
  tb->addAction(action("modeBox"));
  tb->addAction(action("modeLasso"));
  tb->addAction(action("map3d"));
  tb->addAction(action("resetView"));

  connect(colorBy_, &QComboBox::activated, this, [this](int i) {
    if (!active_) return;
    const QString data = colorBy_->itemData(i).toString();
    if (data.startsWith("gene:")) return;  // already shown
    colorChoice_[active_] = data;
    applyColoring();
  });
  connect(geneEdit_, &QLineEdit::returnPressed, this, [this] {
    if (!geneEdit_->text().trimmed().isEmpty()) colorByGene(geneEdit_->text());
  });
  connect(geneCompleter_, qOverload<const QString&>(&QCompleter::activated), this,
          [this](const QString& g) { colorByGene(g); });
  connect(pointSize_, qOverload<int>(&QSpinBox::valueChanged), this, [this](int v) { map_->setPointSize(float(v)); });
  connect(opacity_, &QSlider::valueChanged, this, [this](int v) { map_->setOpacity(float(v) / 100.0f); });
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(action("open"));
  file->addAction(action("openFolder"));
  recentMenu_ = file->addMenu(tr("Open &recent"));
  connect(recentMenu_, &QMenu::aboutToShow, this, &MainWindow::rebuildRecentMenu);
  QMenu* demo = file->addMenu(tr("Open demo"));
  demo->addAction(action("openDemo"));
  demo->addSeparator();
  for (const QString& name : demoDatasets(options_.demoDir.isEmpty() ? demoDir() : options_.demoDir))
    demo->addAction(name, this, [this, name] { openDemo(name); });
  file->addAction(action("close"));
  file->addSeparator();
  file->addAction(action("exportAnnotated"));
  file->addAction(action("exportSelection"));
  file->addAction(action("exportCsv"));
  file->addSeparator();
  file->addAction(action("saveMap"));
  file->addAction(action("saveComposition"));
  file->addAction(action("saveVolcano"));
  file->addSeparator();
  file->addAction(action("quit"));

  QMenu* analysis = menuBar()->addMenu(tr("&Analysis"));
  analysis->addAction(action("embed"));
  analysis->addAction(action("computeMap"));
  analysis->addAction(action("cluster"));
  analysis->addAction(action("markers"));
  analysis->addSeparator();
  analysis->addAction(action("norn"));

  QMenu* sel = menuBar()->addMenu(tr("&Selection"));
  sel->addAction(action("modeBox"));
  sel->addAction(action("modeLasso"));
  sel->addAction(action("selectAll"));
  sel->addAction(action("clearSelection"));
  sel->addSeparator();
  sel->addAction(action("labelSelection"));
  sel->addAction(action("deSelection"));
  sel->addAction(action("exportSelection"));

  QMenu* view = menuBar()->addMenu(tr("&View"));
  view->addAction(action("modeNavigate"));
  view->addAction(action("map3d"));
  view->addAction(action("resetView"));
  view->addSeparator();
  for (QDockWidget* d : {static_cast<QDockWidget*>(datasetsDock_), static_cast<QDockWidget*>(cellsDock_),
                         static_cast<QDockWidget*>(jobsDock_), static_cast<QDockWidget*>(clustersDock_),
                         static_cast<QDockWidget*>(deDock_)})
    view->addAction(d->toggleViewAction());

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About UCE Atlas"), this, [this] {
    QMessageBox* box = new QMessageBox(QMessageBox::Information, tr("About UCE Atlas"),
                                       tr("UCE Atlas %1\nExplore single-cell atlases with Universal Cell Embeddings "
                                          "(Rosen et al. 2023).")
                                           .arg(UCE_VERSION),
                                       QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
  });
}

void MainWindow::wireDocks() {
  connect(ws_, &Workspace::documentOpened, this, &MainWindow::onDocumentOpened);
  connect(ws_, &Workspace::documentClosed, this, [this](DatasetDoc* d) {
    busy_.remove(d);
    colorChoice_.remove(d);
    demoDocs_.remove(d);
    if (d == geneDoc_) {
      geneDoc_ = nullptr;
      geneValues_.reset();
    }
    if (d == active_) setActiveDocument(nullptr);
  });
  connect(datasetsDock_, &DatasetsDock::activated, this, &MainWindow::setActiveDocument);
  connect(datasetsDock_, &DatasetsDock::openRequested, action("open"), &QAction::trigger);
  connect(datasetsDock_, &DatasetsDock::closeRequested, ws_, &Workspace::close);
  connect(ws_, &Workspace::deReady, this, [this](DatasetDoc* doc, const DeTable& t) {
    if (doc != active_) return;
    deDock_->setTable(t);
    deDock_->show();
    deDock_->raise();
  });
  connect(ws_, &Workspace::markersReady, this, [this](DatasetDoc* doc, const QMap<int, QStringList>& m) {
    if (doc == active_) clustersDock_->setMarkers(m);
  });
  connect(ws_, &Workspace::exported, this,
          [this](DatasetDoc*, const QString& path) { statusBar()->showMessage(tr("Saved %1").arg(path), 15000); });

  // One selection, shown on the map and in the table.
  connect(map_, &ScatterMap::selectionChanged, this, [this] {
    if (!fromTable_) cellsDock_->setSelection(map_->selection());
    statusBar()->showMessage(tr("%1 cells selected").arg(map_->selection().size()), 5000);
    updateActions();
  });
  connect(cellsDock_, &CellsDock::rowsSelected, this, [this](const std::vector<int64_t>& rows) {
    fromTable_ = true;
    map_->setSelection(std::vector<uint32_t>(rows.begin(), rows.end()));
    fromTable_ = false;
  });
  connect(clustersDock_, &ClustersDock::clusterActivated, this, [this](int k) {
    if (!active_) return;
    std::vector<uint32_t> rows;
    const auto& cl = active_->clusters();
    for (size_t i = 0; i < cl.size(); ++i)
      if (cl[i] == k) rows.push_back(static_cast<uint32_t>(i));
    map_->setSelection(std::move(rows));
  });
  connect(clustersDock_, &ClustersDock::markersRequested, this, [this] { findMarkers(); });
  connect(clustersDock_, &ClustersDock::renameRequested, this, [this](const QString& column, const QMap<int, QString>& names) {
    if (!active_) return;
    QString err;
    if (!active_->renameClusters(column, names, &err)) return showError(tr("Rename clusters"), err);
    colorChoice_[active_] = "obs:" + column;
    applyColoring();
    statusBar()->showMessage(tr("Cluster names saved in obs['%1']").arg(column), 10000);
  });
  connect(deDock_, &DeDock::geneChosen, this, [this](const QString& g) { colorByGene(g); });
}

// ---------------------------------------------------------------------------------------------
// Documents.

QString MainWindow::demoDir() {
  const QString env = qEnvironmentVariable("UCE_DEMO_DIR");
  if (!env.isEmpty()) return env;
  const QString installed = QCoreApplication::applicationDirPath() + "/../share/uce-atlas/demo";
  if (QDir(installed).exists()) return QDir(installed).absolutePath();
  return UCE_DEMO_DIR;
}

QString MainWindow::demoModelFile() {
  const QString env = qEnvironmentVariable("UCE_DEMO_MODEL");
  if (!env.isEmpty()) return env;
  // Installed package: <prefix>/share/uce-atlas/demo_model/model.torch next to bin/.
  const QString installed = QCoreApplication::applicationDirPath() + "/../share/uce-atlas/demo_model/model.torch";
  return QFileInfo(installed).isFile() ? QFileInfo(installed).canonicalFilePath() : QString(UCE_DEMO_MODEL);
}

QStringList MainWindow::demoDatasets(const QString& dir) {
  QStringList out;
  for (const QString& f : QDir(dir).entryList({"*.h5ad"}, QDir::Files, QDir::Name))
    if (!f.contains("_uce")) out << QFileInfo(f).completeBaseName();
  return out;
}

void MainWindow::openFile(const QString& path) {
  if (path.trimmed().isEmpty()) return;
  if (DatasetDoc* d = ws_->document(path)) {
    setActiveDocument(d);
    return;
  }
  Job* job = ws_->open(path);
  watchJob(job, tr("Could not open %1").arg(QFileInfo(path).fileName()));
  statusBar()->showMessage(tr("Opening %1 ...").arg(path));
}

void MainWindow::openDemo(const QString& which) {
  const QString dir = options_.demoDir.isEmpty() ? demoDir() : options_.demoDir;
  QStringList names = demoDatasets(dir);
  if (names.isEmpty())
    return showError(tr("Demo atlas"),
                     tr("The demo atlas is missing from %1. Build it with `cmake --build build --target demo` "
                        "(it is generated by `uce synth`), or set UCE_DEMO_DIR to its folder.")
                         .arg(QDir(dir).absolutePath()));
  if (!which.isEmpty() && which != "all") {
    if (!names.contains(which))
      return showError(tr("Demo atlas"),
                       tr("The demo atlas has no dataset '%1'; choose one of %2, or all.").arg(which, names.join(", ")));
    names = {which};
  }
  demoModel_ = options_.demoModel.isEmpty() ? demoModelFile() : options_.demoModel;
  demoModelMissing_ = !QFileInfo(demoModel_).isFile();
  // Embeddings of the demo go to a cache folder (the demo folder may be read-only), named by
  // the model file's identity, so a second start reuses them instead of embedding again.
  QString cache = options_.cacheDir;
  if (cache.isEmpty()) cache = QStandardPaths::writableLocation(QStandardPaths::CacheLocation) + "/demo";
  QDir().mkpath(cache);
  QString modelKey;
  if (!demoModelMissing_) {
    const QFileInfo mi(demoModel_);
    modelKey = QCryptographicHash::hash((mi.absoluteFilePath() + "|" + QString::number(mi.size()) + "|" +
                                         QString::number(mi.lastModified().toMSecsSinceEpoch()))
                                            .toUtf8(),
                                        QCryptographicHash::Sha1)
                   .toHex()
                   .left(10);
  }
  bool first = true;
  for (const QString& n : names) {
    QString path = QDir(dir).absoluteFilePath(n + ".h5ad");
    const QString cached = QDir(cache).absoluteFilePath(n + "_uce_" + modelKey + ".h5ad");
    if (!demoModelMissing_ && QFileInfo(cached).isFile()) path = cached;
    demoOutput_[QFileInfo(path).absoluteFilePath()] = cached;
    if (first) demoFirst_ = QFileInfo(path).absoluteFilePath();
    first = false;
    if (DatasetDoc* d = ws_->document(path)) {
      demoDocs_.insert(d);
      startDemoPipeline(d);
      if (QFileInfo(path).absoluteFilePath() == demoFirst_) setActiveDocument(d);
      continue;
    }
    demoPending_.insert(QFileInfo(path).absoluteFilePath());
    openFile(path);
  }
  updateMessage();
}

void MainWindow::onDocumentOpened(DatasetDoc* doc) {
  connect(doc, &DatasetDoc::changed, this, [this, doc] { onDocumentChanged(doc); });
  const bool demo = demoPending_.remove(doc->path());
  if (demo) {
    demoDocs_.insert(doc);
    startDemoPipeline(doc);
  }
  if (!active_ || !demo || doc->path() == demoFirst_) setActiveDocument(doc);
  statusBar()->showMessage(tr("Opened %1: %2 cells, %3 genes").arg(doc->name()).arg(doc->cells()).arg(doc->genes()), 10000);
  updateMessage();
}

void MainWindow::startDemoPipeline(DatasetDoc* doc) {
  if (demoModelMissing_) {
    updateMessage();
    return;
  }
  if (doc->hasEmbedding() && doc->obsm("X_umap") && doc->clusterCount() > 0) return;  // already done
  EmbedRequest r;
  r.modelFile = demoModel_;
  r.assetsDir = QFileInfo(demoModel_).absolutePath() + "/assets";
  if (!QFileInfo(r.assetsDir).isDir())
    r.assetsDir = (options_.demoDir.isEmpty() ? demoDir() : options_.demoDir) + "/assets";
  r.species = doc->guess().species;
  r.geneColumn = doc->guess().geneColumn;
  r.device = EmbedDialog::availableDevices().contains(settings_->device()) ? settings_->device() : "cpu";
  r.batchSize = settings_->batchSize();
  r.sampleSize = kDemoSampleSize;
  const QString out = demoOutput_.value(doc->path());
  if (!out.isEmpty() && !sameFile(out, doc->path())) r.output = out;
  Job* job = ws_->embed(doc, r);
  busy_[doc] = job;
  watchJob(job, tr("Embedding the demo dataset %1").arg(doc->name()));
  connect(job, &Job::finished, this, [this, job, doc] {
    if (job->status() != JobStatus::Done || !ws_->documents().contains(doc)) return;
    if (!doc->obsm("X_umap")) computeMapFor(doc);
    if (doc->clusterCount() == 0) clusterFor(doc);
  });
  updateMessage();
}

void MainWindow::setActiveDocument(DatasetDoc* doc) {
  if (doc && !ws_->documents().contains(doc)) return;
  const bool changed = doc != active_;
  active_ = doc;
  datasetsDock_->setActive(doc);
  if (!changed) return;
  setWindowTitle(doc ? tr("UCE Atlas - %1").arg(doc->name()) : tr("UCE Atlas"));
  shownMatrix_ = nullptr;
  map_->clearSelection();
  cellsDock_->setDocument(doc);
  clustersDock_->setDocument(doc);
  clustersDock_->setMarkers(doc ? ws_->markers(doc) : QMap<int, QStringList>());
  geneNames_->setStringList(doc ? geneNames(doc->var(), doc->guess().geneColumn) : QStringList());
  refreshColorChoices();
  refreshMap(true);
  updateActions();
  updateMessage();
  Q_EMIT activeDocumentChanged(doc);
}

void MainWindow::closeActiveDocument() {
  if (active_) ws_->close(active_);
}

void MainWindow::onDocumentChanged(DatasetDoc* doc) {
  if (doc != active_) return;
  cellsDock_->setDocument(doc);
  clustersDock_->setDocument(doc);
  refreshColorChoices();
  refreshMap(false);
  updateActions();
  updateMessage();
}

// ---------------------------------------------------------------------------------------------
// The map.

void MainWindow::refreshMap(bool refit) {
  const bool want3d = action("map3d")->isChecked();
  std::shared_ptr<const DenseMatrix> m;
  if (active_) {
    m = active_->obsm(want3d ? "X_umap_3d" : "X_umap");
    if (!m && want3d) m = active_->obsm("X_umap");  // 3-D still computing: keep the 2-D map
  }
  if (!m || (m->cols != 2 && m->cols != 3) || m->rows != (active_ ? active_->cells() : 0)) {
    if (shownMatrix_ || map_->pointCount() > 0) map_->setPoints(nullptr, 0, 2);
    shownMatrix_ = nullptr;
    updateMessage();
    Q_EMIT mapUpdated();
    return;
  }
  if (m.get() != shownMatrix_) {
    const std::vector<uint32_t> keep = map_->selection();
    const bool sameCells = map_->pointCount() == static_cast<size_t>(m->rows);
    QString err;
    if (!map_->setPoints(m->data.data(), static_cast<size_t>(m->rows), static_cast<int>(m->cols), &err)) {
      shownMatrix_ = nullptr;
      showError(tr("Map"), tr("%1 cannot be drawn: %2").arg(active_->name(), err));
      return;
    }
    shownMatrix_ = m.get();
    QStringList ids;
    ids.reserve(static_cast<qsizetype>(active_->obs().index.size()));
    for (const auto& s : active_->obs().index) ids << QString::fromStdString(s);
    map_->setCellIds(ids);
    if (sameCells && !refit) map_->setSelection(keep);
    else cellsDock_->setSelection({});
  }
  applyColoring();
  updateMessage();
}

void MainWindow::setMap3d(bool on) {
  if (on && active_ && active_->obsm("X_umap") && !active_->obsm("X_umap_3d") &&
      !(busy_.value(active_) && !busy_.value(active_)->isFinished()))
    computeMap();
  shownMatrix_ = nullptr;
  refreshMap(true);
}

void MainWindow::refreshColorChoices() {
  colorBy_->clear();
  colorBy_->addItem(tr("(one colour)"), QString());
  if (!active_) return;
  const QString key = active_->clusterKey();
  QStringList order;
  if (active_->column(key)) order << key;
  for (const QString& a : active_->annotationColumns())
    if (!order.contains(a)) order << a;
  for (const Column& c : active_->obs().columns)
    if (!order.contains(QString::fromStdString(c.name))) order << QString::fromStdString(c.name);
  for (const QString& n : order) colorBy_->addItem(n == key ? tr("%1 (clusters)").arg(n) : n, "obs:" + n);
  const QString choice = colorChoice_.value(active_);
  if (choice.startsWith("gene:")) colorBy_->addItem(tr("gene %1").arg(choice.mid(5)), choice);
  const int at = colorBy_->findData(choice);
  colorBy_->setCurrentIndex(at >= 0 ? at : 0);
}

bool MainWindow::colorByColumn(const QString& column) {
  if (!active_) return false;
  if (!column.isEmpty() && !active_->column(column)) {
    showError(tr("Colour by"), tr("%1 has no obs column '%2'.").arg(active_->name(), column));
    return false;
  }
  colorChoice_[active_] = column.isEmpty() ? QString() : "obs:" + column;
  const int at = colorBy_->findData(colorChoice_[active_]);
  if (at >= 0) colorBy_->setCurrentIndex(at);
  applyColoring();
  return true;
}

void MainWindow::applyColoring() {
  if (!active_ || map_->pointCount() == 0) return;
  const QString choice = colorChoice_.value(active_);
  const int at = colorBy_->findData(choice);
  if (at >= 0 && colorBy_->currentIndex() != at) colorBy_->setCurrentIndex(at);
  QString err;
  if (choice.startsWith("obs:")) {
    const QString name = choice.mid(4);
    const Column* c = active_->column(name);
    if (!c) {
      map_->clearColoring();
    } else {
      const MapColoring m = coloringOf(*c);
      if (!m.error.isEmpty()) {
        colorChoice_[active_].clear();
        map_->clearColoring();
        showError(tr("Colour by"), m.error);
      } else if (m.categorical) {
        if (!map_->setCategories(m.codes, m.names, name, &err)) showError(tr("Colour by"), err);
      } else if (!map_->setContinuous(m.values, name, &err)) {
        showError(tr("Colour by"), err);
      }
    }
  } else if (choice.startsWith("gene:")) {
    const QString gene = choice.mid(5);
    if (geneDoc_ == active_ && geneShown_ == gene && geneValues_ && geneValues_->size() == map_->pointCount()) {
      if (!map_->setContinuous(*geneValues_, tr("%1 (log-normalised)").arg(gene), &err)) showError(tr("Colour by"), err);
    } else if (!geneJob_ || geneJob_->isFinished()) {
      colorByGene(gene);
    }
  } else {
    map_->clearColoring();
  }
  Q_EMIT mapUpdated();
}

Job* MainWindow::colorByGene(const QString& geneIn) {
  const QString gene = geneIn.trimmed();
  if (!active_) {
    showError(tr("Colour by gene"), tr("Open a dataset first."));
    return nullptr;
  }
  if (gene.isEmpty()) return nullptr;
  DatasetDoc* doc = active_;
  auto values = std::make_shared<std::vector<float>>();
  const QString path = doc->path(), geneColumn = doc->guess().geneColumn;
  Job* job = jobs_->start(
      tr("Expression of %1 in %2").arg(gene, doc->name()),
      [values, path, gene, geneColumn](JobContext& ctx) { *values = geneExpression(path, gene, geneColumn, ctx); },
      [this, doc, values, gene] {
        if (!ws_->documents().contains(doc)) return;
        geneDoc_ = doc;
        geneShown_ = gene;
        geneValues_ = values;
        colorChoice_[doc] = "gene:" + gene;
        if (doc == active_) {
          refreshColorChoices();
          applyColoring();
        }
      });
  geneJob_ = job;
  watchJob(job, tr("Colour by gene"));
  return job;
}

QString MainWindow::mapMessage() const { return message_->isHidden() ? QString() : message_->text(); }

void MainWindow::updateMessage() {
  QString msg;
  Job* busy = active_ ? busy_.value(active_).data() : nullptr;
  const bool working = busy && !busy->isFinished();
  if (!active_) {
    msg = demoPending_.isEmpty()
              ? tr("Open a dataset (File > Open, Ctrl+O: .h5ad, 10x .h5, Matrix Market folder, CSV), drop a file "
                   "here, or open the demo atlas (File > Open demo).")
              : tr("Opening the demo atlas ...");
  } else if (map_->pointCount() > 0) {
    msg.clear();
  } else if (demoDocs_.contains(active_) && demoModelMissing_ && !active_->hasEmbedding()) {
    msg = tr("%1 (demo atlas): %2 cells loaded.\n\n"
             "The demo model is not bundled in this build (%3 is missing), so the demo cannot be embedded "
             "and there is no map to show.\n\n"
             "To see a map, choose Analysis > Embed... (Ctrl+E) and pick a UCE model file (.torch) with the "
             "asset folder it was made with - for example a model trained on the demo atlas with `uce train` "
             "(its assets are in %4) - then the map and clusters are computed.")
              .arg(active_->name())
              .arg(active_->cells())
              .arg(QDir::toNativeSeparators(demoModel_), QDir::toNativeSeparators(
                                                             (options_.demoDir.isEmpty() ? demoDir() : options_.demoDir) +
                                                             "/assets"));
  } else if (working) {
    msg = tr("%1: %2 (%3 cells) ...\nProgress and Cancel are in the Jobs panel.")
              .arg(active_->name(), busy->name())
              .arg(active_->cells());
  } else if (!active_->hasEmbedding()) {
    msg = tr("%1: %2 cells, %3 genes, not embedded yet.\n\nChoose Analysis > Embed... (Ctrl+E) to embed the cells "
             "with a UCE model; the map and clusters follow.")
              .arg(active_->name())
              .arg(active_->cells())
              .arg(active_->genes());
  } else {
    msg = tr("%1 is embedded (obsm['X_uce']).\n\nChoose Analysis > Compute map (Ctrl+M) to draw it, and "
             "Analysis > Cluster (Ctrl+K) to find clusters.")
              .arg(active_->name());
  }
  message_->setText(msg);
  message_->setVisible(!msg.isEmpty());
}

void MainWindow::updateActions() {
  const bool doc = active_ != nullptr;
  const bool emb = doc && active_->hasEmbedding();
  const bool sel = doc && !map_->selection().empty();
  action("close")->setEnabled(doc);
  action("embed")->setEnabled(doc);
  action("computeMap")->setEnabled(emb);
  action("cluster")->setEnabled(emb);
  action("markers")->setEnabled(doc && active_->clusterCount() > 1);
  action("labelSelection")->setEnabled(sel);
  action("deSelection")->setEnabled(sel);
  action("exportSelection")->setEnabled(sel);
  action("exportAnnotated")->setEnabled(doc);
  action("exportCsv")->setEnabled(doc);
  geneEdit_->setEnabled(doc);
}

// ---------------------------------------------------------------------------------------------
// Jobs started from the window.

void MainWindow::watchJob(Job* job, const QString& errorTitle) {
  if (!job) return;
  connect(job, &Job::finished, this, [this, job, errorTitle] {
    if (job->status() == JobStatus::Failed) showError(errorTitle, job->errorText());
    else if (job->status() == JobStatus::Cancelled) statusBar()->showMessage(tr("%1: cancelled").arg(job->name()), 10000);
    else statusBar()->showMessage(tr("%1: done").arg(job->name()), 5000);
    updateActions();
    updateMessage();
  });
}

void MainWindow::showEmbedDialog() {
  if (!active_) return showError(tr("Embed"), tr("Open a dataset first (File > Open, Ctrl+O)."));
  QString model = settings_->modelFile(), assets = settings_->assetsDir();
  if (model.isEmpty() && QFileInfo(demoModelFile()).isFile()) model = demoModelFile();
  if (assets.isEmpty()) assets = (options_.demoDir.isEmpty() ? demoDir() : options_.demoDir) + "/assets";
  embedDialog_->setDefaults(model, assets, settings_->device(), settings_->batchSize(), *active_);
  embedDialog_->open();
}

Job* MainWindow::embedActive(const EmbedRequest& request, bool thenMapAndCluster) {
  if (!active_) {
    showError(tr("Embed"), tr("Open a dataset first (File > Open, Ctrl+O)."));
    return nullptr;
  }
  settings_->setModelFile(request.modelFile);
  settings_->setAssetsDir(request.assetsDir);
  settings_->setDevice(request.device);
  settings_->setBatchSize(request.batchSize);
  settings_->sync();
  DatasetDoc* doc = active_;
  Job* job = ws_->embed(doc, request);
  busy_[doc] = job;
  watchJob(job, tr("Embedding %1").arg(doc->name()));
  if (thenMapAndCluster)
    connect(job, &Job::finished, this, [this, job, doc] {
      if (job->status() != JobStatus::Done || !ws_->documents().contains(doc)) return;
      if (!doc->lastEmbedReused() || !doc->obsm("X_umap")) computeMapFor(doc);
      if (!doc->lastEmbedReused() || doc->clusterCount() == 0) clusterFor(doc);
    });
  updateMessage();
  return job;
}

Job* MainWindow::computeMap() {
  if (!active_) {
    showError(tr("Compute map"), tr("Open a dataset first (File > Open, Ctrl+O)."));
    return nullptr;
  }
  return computeMapFor(active_);
}

Job* MainWindow::computeMapFor(DatasetDoc* doc) {
  UmapRequest r;
  r.seed = 0;
  r.also3d = action("map3d")->isChecked();
  Job* job = ws_->computeUmap(doc, r);
  busy_[doc] = job;
  watchJob(job, tr("Computing the map of %1").arg(doc->name()));
  updateMessage();
  return job;
}

Job* MainWindow::clusterActive() {
  if (!active_) {
    showError(tr("Cluster"), tr("Open a dataset first (File > Open, Ctrl+O)."));
    return nullptr;
  }
  return clusterFor(active_);
}

Job* MainWindow::clusterFor(DatasetDoc* doc) {
  ClusterRequest r;
  r.resolution = resolution_->value() / 10.0;
  r.seed = 0;
  Job* job = ws_->cluster(doc, r);
  watchJob(job, tr("Clustering %1").arg(doc->name()));
  connect(job, &Job::finished, this, [this, job, doc] {
    if (job->status() != JobStatus::Done || !ws_->documents().contains(doc)) return;
    colorChoice_[doc] = "obs:" + doc->clusterKey();
    if (doc == active_) {
      refreshColorChoices();
      applyColoring();
    }
    if (doc->cells() <= kAutoMarkersMaxCells && doc->clusterCount() > 1) {
      Job* m = ws_->clusterMarkers(doc, 10);
      watchJob(m, tr("Marker genes of %1").arg(doc->name()));
    }
  });
  return job;
}

Job* MainWindow::findMarkers() {
  if (!active_) return nullptr;
  Job* job = ws_->clusterMarkers(active_, 10);
  watchJob(job, tr("Marker genes"));
  return job;
}

std::vector<int64_t> MainWindow::selectedRows() const {
  const auto& s = map_->selection();
  return std::vector<int64_t>(s.begin(), s.end());
}

void MainWindow::showLabelDialog() {
  if (!active_) return showError(tr("Label selection"), tr("Open a dataset first."));
  if (map_->selection().empty())
    return showError(tr("Label selection"),
                     tr("No cells selected: select cells on the map (Box select B, Lasso select L) or in the Cells "
                        "table first."));
  labelDialog_->setup(active_->annotationColumns(), static_cast<qint64>(map_->selection().size()));
  labelDialog_->open();
}

bool MainWindow::labelSelection(const QString& column, const QString& label) {
  if (!active_) return false;
  QString err;
  if (!active_->labelCells(column, label, selectedRows(), &err)) {
    showError(tr("Label selection"), err);
    return false;
  }
  colorChoice_[active_] = "obs:" + column;
  refreshColorChoices();
  applyColoring();
  statusBar()->showMessage(tr("%1 cells labelled '%2' in obs['%3']").arg(map_->selection().size()).arg(label, column),
                           10000);
  return true;
}

Job* MainWindow::deSelection() {
  if (!active_) {
    showError(tr("Differential expression"), tr("Open a dataset first."));
    return nullptr;
  }
  if (map_->selection().empty()) {
    showError(tr("Differential expression"),
              tr("No cells selected: select cells on the map (Box select B, Lasso select L) or in the Cells table, "
                 "then compare them with the rest."));
    return nullptr;
  }
  Job* job = ws_->diffExpSelection(active_, selectedRows());
  watchJob(job, tr("Differential expression"));
  return job;
}

// ---------------------------------------------------------------------------------------------
// Exports.

QString MainWindow::askSavePath(const QString& title, const QString& suggestion, const QString& filter) {
  return QFileDialog::getSaveFileName(this, title, suggestion, filter);
}

Job* MainWindow::exportAnnotatedTo(const QString& path) {
  if (!active_) {
    showError(tr("Export"), tr("Open a dataset first."));
    return nullptr;
  }
  DatasetDoc* doc = active_;
  if (sameFile(path, doc->path()) || sameFile(path, doc->basePath())) {
    const QString text = tr("%1 is the file you opened. Replace it with the annotated copy? "
                            "Its contents are kept, with the embedding, map, clusters and annotations added.")
                             .arg(path);
    if (!options_.dialogs) {
      showError(tr("Export"), tr("%1 is the input file: choose another name (the input is never overwritten "
                                 "without confirmation).")
                                  .arg(path));
      return nullptr;
    }
    auto* box = new QMessageBox(QMessageBox::Question, tr("Overwrite the input?"), text,
                                QMessageBox::Yes | QMessageBox::Cancel, this);
    box->setObjectName("confirmOverwrite");
    box->setDefaultButton(QMessageBox::Cancel);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(box, &QMessageBox::finished, this, [this, doc, path](int result) {
      if (result != QMessageBox::Yes || !ws_->documents().contains(doc)) return;
      watchJob(ws_->exportAnnotated(doc, path, true), tr("Export"));
    });
    box->open();
    return nullptr;
  }
  Job* job = ws_->exportAnnotated(doc, path);
  watchJob(job, tr("Export"));
  return job;
}

Job* MainWindow::exportSelectionTo(const QString& path) {
  if (!active_) {
    showError(tr("Export"), tr("Open a dataset first."));
    return nullptr;
  }
  Job* job = ws_->exportSelection(active_, selectedRows(), path);
  watchJob(job, tr("Export selection"));
  return job;
}

Job* MainWindow::exportCsvTo(const QString& path) {
  if (!active_) {
    showError(tr("Export"), tr("Open a dataset first."));
    return nullptr;
  }
  Job* job = ws_->exportCsv(active_, path);
  watchJob(job, tr("Export CSV"));
  return job;
}

bool MainWindow::saveMapTo(const QString& path) {
  QString err;
  const bool ok = path.endsWith(".svg", Qt::CaseInsensitive) ? map_->saveSvg(path, &err) : map_->savePng(path, &err);
  if (!ok) showError(tr("Save map"), err);
  else statusBar()->showMessage(tr("Saved %1").arg(path), 10000);
  return ok;
}

bool MainWindow::saveChartTo(const QString& chart, const QString& path) {
  uce::views::ChartWidget* w = nullptr;
  if (chart == "composition") w = clustersDock_->chart();
  else if (chart == "volcano") w = deDock_->volcano();
  if (!w) {
    showError(tr("Save chart"), tr("There is no chart named '%1'.").arg(chart));
    return false;
  }
  QString err;
  const QSize size = w->size().isValid() && w->width() > 50 ? w->size() : QSize(800, 500);
  const bool ok = path.endsWith(".svg", Qt::CaseInsensitive) ? w->saveSvg(path, size, &err) : w->savePng(path, size, &err);
  if (!ok) showError(tr("Save chart"), err);
  else statusBar()->showMessage(tr("Saved %1").arg(path), 10000);
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Window plumbing.

void MainWindow::showError(const QString& title, const QString& text) {
  lastError_ = text;
  statusBar()->showMessage(title + ": " + text, 20000);
  Q_EMIT errorShown(text);
  if (!options_.dialogs) return;
  auto* box = new QMessageBox(QMessageBox::Warning, title, text, QMessageBox::Ok, this);
  box->setObjectName("errorBox");
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();  // window-modal, returns at once: the GUI thread never waits on it
}

void MainWindow::rebuildRecentMenu() {
  recentMenu_->clear();
  const QStringList files = settings_->recentFiles();
  if (files.isEmpty()) recentMenu_->addAction(tr("(none yet)"))->setEnabled(false);
  for (int i = 0; i < files.size(); ++i) {
    const QString f = files[i];
    QAction* a = recentMenu_->addAction(QString("&%1 %2").arg(i + 1).arg(QFileInfo(f).fileName()), this, [this, f] {
      if (!QFileInfo::exists(f)) {
        settings_->removeRecentFile(f);
        return showError(tr("Open recent"), tr("%1 no longer exists (moved or deleted); it was removed from the list.").arg(f));
      }
      openFile(f);
    });
    a->setToolTip(f);
  }
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (!e->mimeData()->hasUrls()) return;
  for (const QUrl& u : e->mimeData()->urls())
    if (u.isLocalFile()) {
      e->acceptProposedAction();
      return;
    }
}

void MainWindow::dropEvent(QDropEvent* e) {
  for (const QUrl& u : e->mimeData()->urls())
    if (u.isLocalFile()) openFile(u.toLocalFile());
  e->acceptProposedAction();
}

void MainWindow::closeEvent(QCloseEvent* e) {
  settings_->sync();
  jobs_->cancelAll();
  QMainWindow::closeEvent(e);
}

QImage MainWindow::screenshot() {
  QImage img = grab().toImage();
  QPainter p(&img);
  const QPoint at = map_->mapTo(this, QPoint(0, 0));
  p.drawImage(QRect(at, map_->size()), map_->grabFramebuffer());
  if (message_->isVisible()) message_->render(&p, message_->mapTo(this, QPoint(0, 0)));
  return img;
}

}  // namespace uce::gui
