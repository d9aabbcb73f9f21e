#include "atlas_panel.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <cmath>
#include <map>

#include "uce/views/dendrogram.h"
#include "uce/views/scatter_map.h"

namespace uce::gui {

namespace {

QStandardItem* textItem(const QString& s) {
  auto* it = new QStandardItem(s);
  it->setEditable(false);
  return it;
}

// Numbers sort as numbers (the proxy compares the DisplayRole QVariants).
QStandardItem* numberItem(double v, int decimals = 3) {
  auto* it = new QStandardItem;
  it->setEditable(false);
  if (std::isfinite(v)) it->setData(decimals == 0 ? QVariant(static_cast<qlonglong>(std::llround(v)))
                                                  : QVariant(std::round(v * std::pow(10, decimals)) / std::pow(10, decimals)),
                                    Qt::DisplayRole);
  return it;
}

QString ratio(int64_t hits, int64_t n) {
  return n ? QStringLiteral("%1/%2 = %3").arg(hits).arg(n).arg(static_cast<double>(hits) / static_cast<double>(n), 0, 'f', 3)
           : QStringLiteral("n/a");
}

QStringList splitFiles(const QString& text) {
  QStringList out;
  for (const auto& p : text.split(';', Qt::SkipEmptyParts))
    if (!p.trimmed().isEmpty()) out << p.trimmed();
  return out;
}

QTableView* makeTable(QStandardItemModel* model, QWidget* parent) {
  auto* proxy = new QSortFilterProxyModel(parent);
  proxy->setSourceModel(model);
  auto* view = new QTableView(parent);
  view->setModel(proxy);
  view->setSortingEnabled(true);
  view->setSelectionBehavior(QAbstractItemView::SelectRows);
  view->setSelectionMode(QAbstractItemView::SingleSelection);
  view->horizontalHeader()->setStretchLastSection(true);
  view->verticalHeader()->setVisible(false);
  return view;
}

}  // namespace

AtlasPanel::AtlasPanel(AtlasController* controller, QWidget* parent) : QWidget(parent), controller_(controller) {
  buildUi();
  connect(controller_, &AtlasController::atlasChanged, this, &AtlasPanel::onAtlasChanged);
  connect(controller_, &AtlasController::mapReady, this, &AtlasPanel::showMap);
  connect(controller_, &AtlasController::placementReady, this, &AtlasPanel::showMap);
  connect(controller_, &AtlasController::centroidsReady, this, &AtlasPanel::onCentroids);
  connect(controller_, &AtlasController::searchReady, this, &AtlasPanel::onSearch);
}

void AtlasPanel::buildUi() {
  auto* root = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  auto* build = new QPushButton(tr("Build atlas…"), this);
  auto* open = new QPushButton(tr("Open atlas…"), this);
  mapButton_ = new QPushButton(tr("Compute atlas map"), this);
  placeButton_ = new QPushButton(tr("Place dataset…"), this);
  colourBy_ = new QComboBox(this);
  colourBy_->setToolTip(tr("Colour the atlas cells by"));
  colourBy_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  bar->addWidget(build);
  bar->addWidget(open);
  bar->addWidget(mapButton_);
  bar->addWidget(placeButton_);
  bar->addWidget(new QLabel(tr("Colour by:"), this));
  bar->addWidget(colourBy_);
  bar->addStretch(1);
  root->addLayout(bar);
  info_ = new QLabel(tr("No atlas open: build one from embedded datasets or open an atlas folder."), this);
  info_->setWordWrap(true);
  root->addWidget(info_);
  status_ = new QLabel(this);
  status_->setWordWrap(true);
  root->addWidget(status_);

  auto* split = new QSplitter(Qt::Horizontal, this);
  map_ = new uce::views::ScatterMap(split);
  map_->setMinimumSize(420, 360);
  split->addWidget(map_);
  tabs_ = new QTabWidget(split);
  split->addWidget(tabs_);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  root->addWidget(split, 1);

  // Centroids tab: form, score, table, dendrogram.
  auto* cw = new QWidget(tabs_);
  auto* cl = new QVBoxLayout(cw);
  auto* forms = new QHBoxLayout;
  auto sourceBox = [&](const QString& title, QLineEdit*& files, QLineEdit*& label, QLineEdit*& group,
                       QLineEdit*& value) {
    auto* box = new QGroupBox(title, cw);
    auto* f = new QFormLayout(box);
    files = new QLineEdit(box);
    files->setPlaceholderText(tr("the atlas (or files; separated by ;)"));
    label = new QLineEdit(QStringLiteral("cell_type"), box);
    group = new QLineEdit(box);
    group->setPlaceholderText(tr("optional, e.g. species"));
    value = new QLineEdit(box);
    value->setPlaceholderText(tr("optional, e.g. human"));
    f->addRow(tr("Cells"), files);
    f->addRow(tr("Label"), label);
    f->addRow(tr("Group"), group);
    f->addRow(tr("Group value"), value);
    forms->addWidget(box);
  };
  sourceBox(tr("Query"), qFiles_, qLabel_, qGroup_, qGroupValue_);
  sourceBox(tr("Reference"), rFiles_, rLabel_, rGroup_, rGroupValue_);
  cl->addLayout(forms);
  auto* crow = new QHBoxLayout;
  linkage_ = new QComboBox(cw);
  linkage_->addItems({"average", "ward", "complete", "single"});
  auto* compute = new QPushButton(tr("Compute centroids"), cw);
  auto* exportTree = new QPushButton(tr("Export dendrogram…"), cw);
  crow->addWidget(new QLabel(tr("Tree linkage:"), cw));
  crow->addWidget(linkage_);
  crow->addWidget(compute);
  crow->addWidget(exportTree);
  crow->addStretch(1);
  cl->addLayout(crow);
  score_ = new QLabel(cw);
  score_->setWordWrap(true);
  cl->addWidget(score_);
  auto* csplit = new QSplitter(Qt::Vertical, cw);
  centroidModel_ = new QStandardItemModel(0, 0, this);
  centroidView_ = makeTable(centroidModel_, csplit);
  csplit->addWidget(centroidView_);
  tree_ = new uce::views::DendrogramChart(csplit);
  tree_->setTitle(tr("Reference centroids"));
  csplit->addWidget(tree_);
  cl->addWidget(csplit, 1);
  tabs_->addTab(cw, tr("Centroids"));

  // Cell search tab.
  auto* sw = new QWidget(tabs_);
  auto* sl = new QVBoxLayout(sw);
  auto* srow = new QHBoxLayout;
  searchK_ = new QSpinBox(sw);
  searchK_->setRange(1, 1024);
  searchK_->setValue(15);
  auto* searchSel = new QPushButton(tr("Search selected query cells"), sw);
  srow->addWidget(new QLabel(tr("Neighbours k:"), sw));
  srow->addWidget(searchK_);
  srow->addWidget(searchSel);
  srow->addStretch(1);
  sl->addLayout(srow);
  vote_ = new QLabel(tr("Select placed query cells on the map, then search."), sw);
  vote_->setWordWrap(true);
  sl->addWidget(vote_);
  searchModel_ = new QStandardItemModel(0, 0, this);
  searchView_ = makeTable(searchModel_, sw);
  sl->addWidget(searchView_, 1);
  tabs_->addTab(sw, tr("Cell search"));

  connect(build, &QPushButton::clicked, this, &AtlasPanel::chooseBuild);
  connect(open, &QPushButton::clicked, this, &AtlasPanel::chooseOpen);
  connect(mapButton_, &QPushButton::clicked, this, [this] { computeMap(); });
  connect(placeButton_, &QPushButton::clicked, this, &AtlasPanel::choosePlace);
  connect(compute, &QPushButton::clicked, this, [this] { computeCentroids(centroidRequestFromForm()); });
  connect(exportTree, &QPushButton::clicked, this, &AtlasPanel::chooseExport);
  connect(searchSel, &QPushButton::clicked, this, &AtlasPanel::searchSelection);
  connect(colourBy_, &QComboBox::currentIndexChanged, this, [this] { showMap(); });
  connect(tree_, &uce::views::DendrogramChart::leafClicked, this,
          [this](int, const QString& name) { selectCentroid(name); });
  connect(centroidView_, &QTableView::clicked, this, [this](const QModelIndex& idx) {
    // Clicking a nearest-centroid cell selects that reference centroid.
    const QString text = idx.data().toString();
    if (!text.isEmpty()) selectCentroid(text);
  });
  mapButton_->setEnabled(false);
  placeButton_->setEnabled(false);
}

QString AtlasPanel::statusText() const { return statusText_; }

void AtlasPanel::setStatus(const QString& text, bool error) {
  statusText_ = text;
  status_->setText(text);
  status_->setStyleSheet(error ? QStringLiteral("color: #b00020") : QString());
}

void AtlasPanel::onJobFinished(Job* job, const QString& what) {
  if (!job) return;
  connect(job, &Job::finished, this, [this, job, what] {
    if (job->status() == JobStatus::Failed)
      setStatus(what + tr(" failed: ") + job->errorText(), true);
    else if (job->status() == JobStatus::Cancelled)
      setStatus(what + tr(" cancelled"));
    else
      setStatus(what + tr(" done"));
  });
}

Job* AtlasPanel::buildAtlas(const AtlasBuildRequest& r) {
  setStatus(tr("Building the atlas…"));
  Job* j = controller_->buildAtlas(r);
  onJobFinished(j, tr("Building the atlas"));
  return j;
}

Job* AtlasPanel::openAtlas(const QString& dir) {
  setStatus(tr("Opening %1…").arg(dir));
  Job* j = controller_->openAtlas(dir);
  onJobFinished(j, tr("Opening the atlas"));
  return j;
}

Job* AtlasPanel::computeMap(const AtlasMapRequest& r) {
  setStatus(tr("Computing the atlas map…"));
  Job* j = controller_->computeMap(r);
  onJobFinished(j, tr("The atlas map"));
  return j;
}

Job* AtlasPanel::placeDataset(const QString& path, std::shared_ptr<const uce::DenseMatrix> embedding) {
  setStatus(tr("Placing %1 on the atlas…").arg(QFileInfo(path).fileName()));
  Job* j = controller_->placeDataset(path, std::move(embedding));
  onJobFinished(j, tr("Placing the dataset"));
  return j;
}

Job* AtlasPanel::computeCentroids(const CentroidRequest& r) {
  setStatus(tr("Computing centroids…"));
  Job* j = controller_->computeCentroids(r);
  onJobFinished(j, tr("Centroids"));
  return j;
}

CentroidRequest AtlasPanel::centroidRequestFromForm() const {
  CentroidRequest r;
  auto fill = [](CentroidSource& s, QLineEdit* files, QLineEdit* label, QLineEdit* group, QLineEdit* value) {
    s.files = splitFiles(files->text());
    s.atlas = s.files.isEmpty();
    s.label = label->text().trimmed();
    s.group = group->text().trimmed();
    s.groupValue = value->text().trimmed();
  };
  fill(r.query, qFiles_, qLabel_, qGroup_, qGroupValue_);
  fill(r.reference, rFiles_, rLabel_, rGroup_, rGroupValue_);
  r.linkage = linkage_->currentText();
  return r;
}

Job* AtlasPanel::searchCells(const QString& queryPath, const std::vector<int64_t>& rows, int k,
                             std::shared_ptr<const uce::DenseMatrix> embedding) {
  CellSearchRequest r;
  r.queryPath = queryPath;
  r.rows = rows;
  r.k = k;
  r.embedding = std::move(embedding);
  setStatus(tr("Searching the atlas for %1 cells…").arg(rows.size()));
  Job* j = controller_->searchCells(r);
  onJobFinished(j, tr("Cell search"));
  return j;
}

void AtlasPanel::onAtlasChanged() {
  auto a = controller_->atlas();
  if (!a) return;
  qint64 sampled = 0;
  QStringList parts;
  for (const auto& d : a->info.datasets) {
    parts << tr("%1: %2 of %3").arg(QFileInfo(QString::fromStdString(d.path)).completeBaseName()).arg(d.sampled).arg(d.cells);
    sampled += d.sampled;
  }
  info_->setText(tr("Atlas %1 — %2 cells × %3 dims (%4 index); labels: %5. %6")
                     .arg(a->dir)
                     .arg(a->cells())
                     .arg(a->info.dim)
                     .arg(QString::fromStdString(a->info.index))
                     .arg(QString::fromStdString([&] {
                       std::string t;
                       for (const auto& c : a->info.labelColumns) t += (t.empty() ? "" : ", ") + c;
                       return t;
                     }()))
                     .arg(parts.join("; ")));
  {
    const QSignalBlocker block(colourBy_);
    colourBy_->clear();
    for (const auto& c : a->info.labelColumns) colourBy_->addItem(QString::fromStdString(c));
    colourBy_->addItem(tr("query vs atlas"));
  }
  mapButton_->setEnabled(true);
  placeButton_->setEnabled(a->hasMap());
  centroidModel_->clear();
  searchModel_->clear();
  tree_->clear();
  score_->clear();
  if (a->hasMap()) showMap();
  else map_->setPoints(std::vector<float>{}, 2);
}

void AtlasPanel::showMap() {
  auto a = controller_->atlas();
  if (!a || !a->hasMap()) return;
  placeButton_->setEnabled(true);
  auto p = controller_->placement();
  const std::vector<float>& coords = p ? p->coords : a->map;
  const size_t n = coords.size() / 2;
  QString err;
  if (!map_->setPoints(coords, 2, &err)) {
    setStatus(err, true);
    return;
  }
  QStringList ids;
  for (int64_t i = 0; i < a->cells(); ++i) ids << QString::fromStdString(a->obsName[static_cast<size_t>(i)]);
  for (size_t i = static_cast<size_t>(a->cells()); i < n; ++i)
    ids << tr("query row %1").arg(static_cast<qint64>(i) - a->cells());
  map_->setCellIds(ids);
  const int li = a->labelIndex(colourBy_->currentText());
  std::vector<int32_t> codes(n, -1);
  QStringList names;
  const QString queryName = p ? tr("%1 (placed)").arg(QFileInfo(p->queryPath).completeBaseName()) : QString();
  if (li >= 0) {
    std::map<std::string, int32_t> code;
    for (const auto& l : a->labels[static_cast<size_t>(li)])
      if (!l.empty()) code.emplace(l, 0);
    for (auto& [l, c] : code) {
      c = static_cast<int32_t>(names.size());
      names << QString::fromStdString(l);
    }
    for (int64_t i = 0; i < a->cells(); ++i) {
      const auto& l = a->labels[static_cast<size_t>(li)][static_cast<size_t>(i)];
      codes[static_cast<size_t>(i)] = l.empty() ? -1 : code[l];
    }
    if (p) {
      names << queryName;
      for (size_t i = static_cast<size_t>(a->cells()); i < n; ++i) codes[i] = static_cast<int32_t>(names.size() - 1);
    }
  } else {
    // Query vs atlas: atlas cells grey, query cells in the first palette colour.
    names << (p ? queryName : tr("atlas"));
    for (size_t i = 0; i < n; ++i) codes[i] = p ? (i >= static_cast<size_t>(a->cells()) ? 0 : -1) : 0;
  }
  map_->setCategories(codes, names, li >= 0 ? colourBy_->currentText() : tr("source"));
  if (p)
    info_->setText(info_->text().section(QStringLiteral(" · placed"), 0, 0) +
                   tr(" · placed %1: %2 of %3 cells").arg(QFileInfo(p->queryPath).fileName()).arg(p->placed).arg(p->queryCells));
}

void AtlasPanel::onCentroids() {
  auto c = controller_->centroids();
  if (!c) return;
  const auto& s = c->score;
  score_->setText(s.shared ? tr("%1 → %2: %3 shared labels · own centroid nearest (top-1): %4 · among the 3 nearest (top-3): %5")
                                 .arg(c->querySource, c->referenceSource)
                                 .arg(s.shared)
                                 .arg(ratio(s.hitsAt1, s.shared), ratio(s.hitsAt3, s.shared))
                           : tr("%1 → %2: no label in common").arg(c->querySource, c->referenceSource));
  centroidModel_->clear();
  QStringList headers{tr("query centroid"), tr("cells"), tr("own rank"), tr("own distance")};
  const int k = static_cast<int>(std::min<int64_t>(3, c->reference.size()));
  for (int i = 1; i <= k; ++i) headers << tr("nearest %1").arg(i) << tr("distance %1").arg(i);
  centroidModel_->setHorizontalHeaderLabels(headers);
  for (const auto& m : c->matches) {
    QList<QStandardItem*> row;
    row << textItem(QString::fromStdString(m.query)) << numberItem(static_cast<double>(m.queryCells), 0)
        << (m.ownRank > 0 ? numberItem(static_cast<double>(m.ownRank), 0) : textItem(QString()))
        << (m.ownRank > 0 ? numberItem(m.ownDistance) : textItem(QString()));
    for (int i = 0; i < k && static_cast<size_t>(i) < m.nearest.size(); ++i)
      row << textItem(QString::fromStdString(c->reference.names[static_cast<size_t>(m.nearest[static_cast<size_t>(i)])]))
          << numberItem(m.distances[static_cast<size_t>(i)]);
    centroidModel_->appendRow(row);
  }
  centroidView_->resizeColumnsToContents();
  QStringList leaves;
  for (const auto& n : c->reference.names) leaves << QString::fromStdString(n);
  std::vector<uce::views::DendrogramMerge> merges;
  for (const auto& m : c->tree) merges.push_back({m.a, m.b, m.distance, m.size});
  tree_->setTitle(tr("Centroids of %1").arg(c->referenceSource));
  QString err;
  if (leaves.size() >= 2 ? !tree_->setTree(leaves, merges, &err) : !tree_->setTree(leaves, {}, &err))
    setStatus(err, true);
}

bool AtlasPanel::selectCentroid(const QString& name) {
  auto c = controller_->centroids();
  if (!c) return false;
  int leaf = -1;
  for (int64_t i = 0; i < c->reference.size(); ++i)
    if (QString::fromStdString(c->reference.names[static_cast<size_t>(i)]) == name) leaf = static_cast<int>(i);
  if (leaf < 0) return false;
  tree_->setHighlightedLeaf(leaf);
  const auto rows = c->rowsOf(name);
  QVector<qint64> qrows(rows.begin(), rows.end());
  if (c->referenceIsAtlas && controller_->atlas() && controller_->atlas()->hasMap()) {
    std::vector<uint32_t> sel(rows.begin(), rows.end());
    map_->setSelection(std::move(sel));
  }
  setStatus(tr("%1: %2 cells").arg(name).arg(rows.size()));
  Q_EMIT centroidClicked(name, QString::fromStdString(c->reference.labels[static_cast<size_t>(leaf)]),
                         QString::fromStdString(c->reference.groups[static_cast<size_t>(leaf)]), qrows,
                         c->referenceIsAtlas);
  return true;
}

void AtlasPanel::onSearch() {
  auto r = controller_->search();
  auto a = controller_->atlas();
  if (!r || !a) return;
  searchModel_->clear();
  searchModel_->setHorizontalHeaderLabels({tr("query row"), tr("predicted ") + r->labelColumn, tr("confidence"),
                                           tr("nearest atlas cell"), tr("its dataset"), tr("distance")});
  for (const auto& h : r->hits) {
    QList<QStandardItem*> row;
    row << numberItem(static_cast<double>(h.queryRow), 0) << textItem(h.label) << numberItem(h.confidence);
    if (!h.neighbours.empty()) {
      const auto n = static_cast<size_t>(h.neighbours[0]);
      const auto& d = a->info.datasets[static_cast<size_t>(a->dataset[n])];
      row << textItem(QString::fromStdString(a->obsName[n]))
          << textItem(QFileInfo(QString::fromStdString(d.path)).completeBaseName()) << numberItem(h.distances[0]);
    }
    searchModel_->appendRow(row);
  }
  searchView_->sortByColumn(0, Qt::AscendingOrder);
  searchView_->resizeColumnsToContents();
  QStringList parts;
  int64_t total = 0;
  for (size_t i = 0; i < r->voteCounts.size(); ++i) total += r->voteCounts[i];
  for (int i = 0; i < r->voteLabels.size() && i < 5; ++i)
    parts << tr("%1 %2").arg(r->voteLabels[i]).arg(r->voteCounts[static_cast<size_t>(i)]);
  vote_->setText(total ? tr("Vote of %1 cells (k = %2, %3): %4").arg(total).arg(r->k).arg(r->labelColumn, parts.join(", "))
                       : tr("No searched cell has an embedding."));
  tabs_->setCurrentIndex(1);
}

bool AtlasPanel::exportDendrogram(const QString& path, QString* error) const {
  const QSize size(900, std::max(480, tree_->leafCount() * 18 + 120));
  if (path.endsWith(QStringLiteral(".svg"), Qt::CaseInsensitive)) return tree_->saveSvg(path, size, error);
  return tree_->savePng(path, size, error);
}

void AtlasPanel::chooseBuild() {
  const QStringList files = QFileDialog::getOpenFileNames(this, tr("Embedded datasets for the atlas"), QString(),
                                                          tr("AnnData (*.h5ad)"));
  if (files.isEmpty()) return;
  bool ok = false;
  const QString labels = QInputDialog::getText(this, tr("Label columns"), tr("obs columns to keep (comma-separated):"),
                                               QLineEdit::Normal, QStringLiteral("cell_type,tissue,species"), &ok);
  if (!ok) return;
  const int maxCells = QInputDialog::getInt(this, tr("Sample"), tr("Up to N cells per dataset (0 = all):"), 0, 0,
                                            100000000, 1000, &ok);
  if (!ok) return;
  const QString dir = QFileDialog::getSaveFileName(this, tr("Atlas folder"));
  if (dir.isEmpty()) return;
  AtlasBuildRequest r;
  r.files = files;
  r.outDir = dir;
  for (const auto& l : labels.split(',', Qt::SkipEmptyParts)) r.labelColumns << l.trimmed();
  r.maxCellsPerDataset = maxCells;
  buildAtlas(r);
}

void AtlasPanel::chooseOpen() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Atlas folder"));
  if (!dir.isEmpty()) openAtlas(dir);
}

void AtlasPanel::choosePlace() {
  const QString f = QFileDialog::getOpenFileName(this, tr("Embedded dataset to place"), QString(), tr("AnnData (*.h5ad)"));
  if (!f.isEmpty()) placeDataset(f);
}

void AtlasPanel::chooseExport() {
  const QString f = QFileDialog::getSaveFileName(this, tr("Export dendrogram"), QStringLiteral("centroids.svg"),
                                                 tr("SVG (*.svg);;PNG (*.png)"));
  if (f.isEmpty()) return;
  QString err;
  if (!exportDendrogram(f, &err)) setStatus(err, true);
  else setStatus(tr("Wrote %1").arg(f));
}

void AtlasPanel::searchSelection() {
  auto p = controller_->placement();
  if (!p) {
    setStatus(tr("Place a dataset on the atlas first, then select its cells on the map."), true);
    return;
  }
  std::vector<int64_t> rows;
  for (uint32_t r : map_->selection())
    if (static_cast<int64_t>(r) >= p->atlasCells) rows.push_back(static_cast<int64_t>(r) - p->atlasCells);
  if (rows.empty()) {
    setStatus(tr("Select placed query cells on the map (box or lasso) first."), true);
    return;
  }
  searchCells(p->queryPath, rows, searchK_->value());
}

}  // namespace uce::gui
