// CellsDock, ClustersDock and DeDock.
#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSplitter>
#include <QTableView>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>

#include "doc_adapters.h"
#include "docks.h"
#include "uce/views/charts.h"
#include "uce/views/table_models.h"

namespace uce::gui {

using uce::views::ObsFilterProxy;
using uce::views::ObsTableModel;

// ---------------------------------------------------------------------------------------------
// CellsDock.

CellsDock::CellsDock(QWidget* parent) : QDockWidget(tr("Cells"), parent) {
  setObjectName("cellsDock");
  auto* body = new QWidget(this);
  auto* v = new QVBoxLayout(body);
  auto* h = new QHBoxLayout;
  filter_ = new QLineEdit(body);
  filter_->setObjectName("cellFilter");
  filter_->setPlaceholderText(tr("Filter cells (any column contains...)"));
  filter_->setClearButtonEnabled(true);
  selectedOnly_ = new QCheckBox(tr("Selected only"), body);
  selectedOnly_->setObjectName("selectedOnly");
  h->addWidget(filter_, 1);
  h->addWidget(selectedOnly_);
  v->addLayout(h);
  model_ = new ObsTableModel(this);
  proxy_ = new ObsFilterProxy(this);
  proxy_->setSourceModel(model_);
  view_ = new QTableView(body);
  view_->setModel(proxy_);
  view_->setSortingEnabled(true);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  view_->verticalHeader()->setDefaultSectionSize(20);
  view_->verticalHeader()->hide();
  view_->horizontalHeader()->setSortIndicator(-1, Qt::AscendingOrder);
  v->addWidget(view_, 1);
  count_ = new QLabel(body);
  count_->setObjectName("cellCount");
  v->addWidget(count_);
  setWidget(body);

  connect(filter_, &QLineEdit::textChanged, this, [this](const QString& t) {
    proxy_->setFilterText(t);
    updateCount();
  });
  connect(selectedOnly_, &QCheckBox::toggled, this, [this](bool on) {
    syncing_ = true;  // the view's selection shrinks with the rows: not a user choice
    proxy_->setShowSelectedOnly(on);
    syncing_ = false;
    updateCount();
  });
  connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &CellsDock::onViewSelection);
  connect(proxy_, &QAbstractItemModel::modelReset, this, &CellsDock::updateCount);
  connect(proxy_, &QAbstractItemModel::layoutChanged, this, &CellsDock::updateCount);
  connect(proxy_, &QAbstractItemModel::rowsInserted, this, &CellsDock::updateCount);
  connect(proxy_, &QAbstractItemModel::rowsRemoved, this, &CellsDock::updateCount);
  // Large tables are sorted and filtered off the GUI thread; say so while the old order shows.
  connect(proxy_, &ObsFilterProxy::busyChanged, this, &CellsDock::updateCount);
  updateCount();
}

void CellsDock::setDocument(const DatasetDoc* doc) {
  syncing_ = true;
  const std::vector<int64_t> keep = model_->selectedRows();
  if (!doc) {
    model_->clear();
  } else {
    const DataFrame& obs = doc->obs();
    const bool same = model_->rows() == obs.rows() && model_->rows() > 0 &&
                      (obs.rows() == 0 || model_->rowName(0) == obs.index.front());
    if (!same) {
      std::vector<uce::views::TableColumn> cols;
      for (const Column& c : obs.columns) cols.push_back(toTableColumn(c));
      model_->setTable(obs.index, std::move(cols), QString::fromStdString(obs.indexName == "_index" ? "cell" : obs.indexName));
    } else {
      // Same cells: update columns in place so sorting, filter and scroll position stay.
      QStringList names;
      for (const Column& c : obs.columns) {
        names << QString::fromStdString(c.name);
        model_->setColumn(toTableColumn(c));
      }
      for (const QString& n : model_->columnNames())
        if (!names.contains(n)) model_->removeColumn(n);
      model_->setSelectedRows(keep);
    }
  }
  syncing_ = false;
  updateCount();
}

void CellsDock::setSelection(const std::vector<uint32_t>& rows) {
  syncing_ = true;
  model_->setSelectedRows(std::vector<int64_t>(rows.begin(), rows.end()));
  view_->selectionModel()->clearSelection();  // the highlight shows the shared selection
  syncing_ = false;
  updateCount();
}

void CellsDock::onViewSelection() {
  if (syncing_) return;
  std::vector<int64_t> rows = proxy_->sourceRows(view_->selectionModel()->selectedRows());
  syncing_ = true;
  model_->setSelectedRows(rows);
  syncing_ = false;
  updateCount();
  Q_EMIT rowsSelected(rows);
}

void CellsDock::updateCount() {
  count_->setText(tr("%1 cells \u00b7 %2 selected \u00b7 %3 shown")
                      .arg(model_->rows())
                      .arg(model_->selectedRows().size())
                      .arg(proxy_->rowCount()) +
                  (proxy_->isBusy() ? tr(" \u00b7 sorting\u2026") : QString()));
}

// ---------------------------------------------------------------------------------------------
// ClustersDock.

ClustersDock::ClustersDock(QWidget* parent) : QDockWidget(tr("Clusters"), parent) {
  setObjectName("clustersDock");
  auto* body = new QWidget(this);
  auto* v = new QVBoxLayout(body);
  summary_ = new QLabel(tr("No clusters yet: embed the dataset, then Analysis > Cluster."), body);
  summary_->setWordWrap(true);
  v->addWidget(summary_);
  auto* split = new QSplitter(Qt::Vertical, body);
  table_ = new QTableWidget(0, 4, split);
  table_->setHorizontalHeaderLabels({tr("Cluster"), tr("Cells"), tr("Name"), tr("Top marker genes")});
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->verticalHeader()->hide();
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setToolTip(tr("Click a cluster to select its cells; type names in the Name column"));
  auto* chartBox = new QWidget(split);
  auto* cv = new QVBoxLayout(chartBox);
  cv->setContentsMargins(0, 0, 0, 0);
  auto* ch = new QHBoxLayout;
  ch->addWidget(new QLabel(tr("Composition by"), chartBox));
  composition_ = new QComboBox(chartBox);
  composition_->setObjectName("compositionColumn");
  ch->addWidget(composition_, 1);
  cv->addLayout(ch);
  chart_ = new uce::views::StackedBarChart(chartBox);
  chart_->setEmptyText(tr("no clusters yet"));
  chart_->setMinimumHeight(200);
  cv->addWidget(chart_, 1);
  split->addWidget(table_);
  split->addWidget(chartBox);
  v->addWidget(split, 1);
  auto* rh = new QHBoxLayout;
  markersButton_ = new QPushButton(tr("Find marker genes"), body);
  rh->addWidget(markersButton_);
  rh->addStretch(1);
  rh->addWidget(new QLabel(tr("Save names as"), body));
  renameColumn_ = new QLineEdit("cluster_names", body);
  renameColumn_->setObjectName("renameColumn");
  rh->addWidget(renameColumn_);
  rename_ = new QPushButton(tr("Save"), body);
  rename_->setToolTip(tr("New annotation column whose label is each cell's cluster name"));
  rh->addWidget(rename_);
  v->addLayout(rh);
  setWidget(body);

  connect(composition_, &QComboBox::currentTextChanged, this, &ClustersDock::updateChart);
  connect(markersButton_, &QPushButton::clicked, this, &ClustersDock::markersRequested);
  connect(rename_, &QPushButton::clicked, this, [this] { Q_EMIT renameRequested(renameColumn_->text().trimmed(), names()); });
  connect(table_, &QTableWidget::cellClicked, this, [this](int row, int col) {
    if (col != 2) Q_EMIT clusterActivated(table_->item(row, 0)->data(Qt::UserRole).toInt());
  });
}

void ClustersDock::setDocument(const DatasetDoc* doc) {
  doc_ = doc;
  const int k = doc ? doc->clusterCount() : 0;
  filling_ = true;
  const QMap<int, QString> typed = names();
  std::vector<int64_t> sizes(static_cast<size_t>(k), 0);
  if (doc)
    for (int32_t c : doc->clusters())
      if (c >= 0 && c < k) ++sizes[static_cast<size_t>(c)];
  if (table_->rowCount() != k) table_->setRowCount(k);
  for (int c = 0; c < k; ++c) {
    auto* id = new QTableWidgetItem(QString::number(c));
    id->setData(Qt::UserRole, c);
    id->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
    auto* n = new QTableWidgetItem;
    n->setData(Qt::DisplayRole, static_cast<qlonglong>(sizes[static_cast<size_t>(c)]));
    n->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
    auto* name = new QTableWidgetItem(typed.value(c));
    auto* mk = new QTableWidgetItem(markers_.value(c).mid(0, 8).join(", "));
    mk->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
    table_->setItem(c, 0, id);
    table_->setItem(c, 1, n);
    table_->setItem(c, 2, name);
    table_->setItem(c, 3, mk);
  }
  summary_->setText(!doc ? tr("No dataset open.")
                    : k == 0 ? tr("No clusters yet: embed the dataset, then Analysis > Cluster.")
                             : tr("%1 clusters in obs['%2'] of %3").arg(k).arg(doc->clusterKey(), doc->name()));
  // Composition columns: categorical obs columns with few enough categories to read as bars.
  const QString was = composition_->currentText();
  QStringList cols;
  if (doc)
    for (const Column& c : doc->obs().columns)
      if (c.kind == ColumnKind::Categorical && QString::fromStdString(c.name) != doc->clusterKey() &&
          c.categories.size() <= 60)
        cols << QString::fromStdString(c.name);
  composition_->blockSignals(true);
  composition_->clear();
  composition_->addItems(cols);
  const int at = cols.indexOf(was);
  composition_->setCurrentIndex(at >= 0 ? at : cols.indexOf("cell_type") >= 0 ? cols.indexOf("cell_type") : 0);
  composition_->blockSignals(false);
  filling_ = false;
  updateChart();
}

void ClustersDock::setMarkers(const QMap<int, QStringList>& markers) {
  markers_ = markers;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (QTableWidgetItem* it = table_->item(r, 3)) it->setText(markers_.value(r).mid(0, 8).join(", "));
}

QMap<int, QString> ClustersDock::names() const {
  QMap<int, QString> out;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (QTableWidgetItem* it = table_->item(r, 2))
      if (!it->text().trimmed().isEmpty()) out[r] = it->text().trimmed();
  return out;
}

void ClustersDock::updateChart() {
  if (filling_) return;
  const int k = doc_ ? doc_->clusterCount() : 0;
  const Column* c = doc_ ? doc_->column(composition_->currentText()) : nullptr;
  if (k == 0 || !c || c->kind != ColumnKind::Categorical) {
    chart_->setData({}, {}, {});
    chart_->setTitle(QString());
    return;
  }
  QStringList clusters, cats;
  for (int i = 0; i < k; ++i) clusters << QString::number(i);
  for (const auto& s : c->categories) cats << QString::fromStdString(s);
  chart_->setFromCodes(doc_->clusters(), clusters, c->codes, cats);
  chart_->setTitle(tr("Clusters by %1").arg(composition_->currentText()));
  chart_->setAxisLabels(tr("cluster"), tr("share of cells"));
}

// ---------------------------------------------------------------------------------------------
// DeDock.

DeDock::DeDock(QWidget* parent) : QDockWidget(tr("Differential expression"), parent) {
  setObjectName("deDock");
  auto* body = new QWidget(this);
  auto* v = new QVBoxLayout(body);
  title_ = new QLabel(tr("Select cells, then Analysis > DE of selection vs rest."), body);
  title_->setWordWrap(true);
  v->addWidget(title_);
  auto* split = new QSplitter(Qt::Horizontal, body);
  model_ = new uce::views::DeTableModel(this);
  view_ = new QTableView(split);
  view_->setModel(model_);
  view_->setSortingEnabled(true);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->verticalHeader()->hide();
  view_->verticalHeader()->setDefaultSectionSize(20);
  // The workspace's DE tables carry fold changes, detection rates and p-values, not means.
  view_->setColumnHidden(uce::views::DeTableModel::MeanIn, true);
  view_->setColumnHidden(uce::views::DeTableModel::MeanOut, true);
  volcano_ = new uce::views::VolcanoPlot(split);
  volcano_->setEmptyText(tr("no results yet"));
  split->addWidget(view_);
  split->addWidget(volcano_);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  v->addWidget(split, 1);
  setWidget(body);
  connect(volcano_, &uce::views::VolcanoPlot::geneClicked, this, [this](const QString& g) {
    const int row = model_->rowOfGene(g);
    if (row >= 0) view_->selectRow(row);
    volcano_->setHighlightedGene(g);
    Q_EMIT geneChosen(g);
  });
  connect(view_, &QTableView::clicked, this, [this](const QModelIndex& i) {
    if (!i.isValid()) return;
    const QString g = model_->rowAt(i.row()).gene;
    volcano_->setHighlightedGene(g);
    Q_EMIT geneChosen(g);
  });
}

void DeDock::setTable(const DeTable& t) {
  table_ = t;
  const QString what = t.groupby == "selection" ? tr("the selection") : QString("%1 = %2").arg(t.groupby, t.group);
  title_->setText(tr("%1 (%2 cells) vs %3 (%4 cells) \u00b7 %5 on %6 \u00b7 %7 genes")
                      .arg(what)
                      .arg(t.cellsIn)
                      .arg(t.reference)
                      .arg(t.cellsOut)
                      .arg(t.method, t.countsKey)
                      .arg(t.genes.size()));
  const std::vector<uce::views::DeRow> rows = toDeRows(t);
  model_->setRows(rows);
  model_->sort(uce::views::DeTableModel::PAdj, Qt::AscendingOrder);
  view_->horizontalHeader()->setSortIndicator(uce::views::DeTableModel::PAdj, Qt::AscendingOrder);
  volcano_->setResults(rows);
  volcano_->setTitle(tr("%1 vs %2").arg(what, t.reference));
  volcano_->setHighlightedGene(QString());
}

}  // namespace uce::gui
