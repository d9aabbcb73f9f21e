#include "norn_wizard.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QFileInfo>
#include <QLineEdit>
#include <QMessageBox>
#include <QListWidget>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QTabWidget>
#include <QVBoxLayout>
#include <cmath>
#include <functional>
#include <set>

#include "uce/views/heatmap.h"

namespace uce::gui {
namespace {

// A page whose Next button waits for a condition (trained, applied).
class StepPage : public QWizardPage {
 public:
  explicit StepPage(std::function<bool()> complete) : complete_(std::move(complete)) {}
  bool isComplete() const override { return complete_(); }

 private:
  std::function<bool()> complete_;
};

// The paper's Norn-cell markers (Fig. 4c), offered as the default panel.
const char* kDefaultMarkers = "DCN, LPAR1, COL1A1, CXCL12, CFH, CXCL14, EPO";
const char* kAllClasses = "(every class)";

void exportButtons(QHBoxLayout* row, views::ChartWidget* chart, QWidget* parent) {
  auto* png = new QPushButton("Export PNG…", parent);
  auto* svg = new QPushButton("Export SVG…", parent);
  row->addStretch(1);
  row->addWidget(png);
  row->addWidget(svg);
  for (auto* b : {png, svg}) {
    const bool isPng = b == png;
    QObject::connect(b, &QPushButton::clicked, parent, [chart, parent, isPng] {
      const QString path = QFileDialog::getSaveFileName(parent, "Export chart", QString(),
                                                        isPng ? "PNG image (*.png)" : "SVG image (*.svg)");
      if (path.isEmpty()) return;
      QString err;
      if (!(isPng ? chart->savePng(path, QSize(), &err) : chart->saveSvg(path, QSize(), &err)))
        QMessageBox::warning(parent, "Export chart", err);
    });
  }
}

}  // namespace

NornWizard::NornWizard(NornWorkflow* wf, QWidget* parent) : QWizard(parent), wf_(wf) {
  setWindowTitle("Find cells like a reference type (Norn workflow)");
  setWizardStyle(QWizard::ClassicStyle);
  setOption(QWizard::NoBackButtonOnStartPage, true);
  resize(900, 680);

  // ---- 1. Reference and training.
  refPage_ = new StepPage([this] { return wf_->hasClassifier(); });
  refPage_->setTitle("1. Train on a labelled reference");
  refPage_->setSubTitle("A logistic classifier on the reference's UCE embeddings; cross-validated accuracy below.");
  {
    auto* form = new QFormLayout;
    reference_ = new QComboBox(refPage_);
    labelColumn_ = new QComboBox(refPage_);
    targetClass_ = new QComboBox(refPage_);
    folds_ = new QSpinBox(refPage_);
    folds_->setRange(0, 20);
    folds_->setValue(5);
    folds_->setSpecialValueText("no cross-validation");
    seed_ = new QSpinBox(refPage_);
    seed_->setRange(0, 1000000);
    form->addRow("Reference dataset", reference_);
    form->addRow("Label column", labelColumn_);
    form->addRow("Target class", targetClass_);
    form->addRow("Cross-validation folds", folds_);
    form->addRow("Seed", seed_);
    train_ = new QPushButton("Train", refPage_);
    save_ = new QPushButton("Save classifier…", refPage_);
    load_ = new QPushButton("Load classifier…", refPage_);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(train_);
    buttons->addStretch(1);
    buttons->addWidget(load_);
    buttons->addWidget(save_);
    accuracy_ = new QLabel("No classifier yet.", refPage_);
    accuracy_->setWordWrap(true);
    QFont big = accuracy_->font();
    big.setPointSizeF(big.pointSizeF() * 1.2);
    accuracy_->setFont(big);
    auto* v = new QVBoxLayout(refPage_);
    v->addLayout(form);
    v->addLayout(buttons);
    v->addWidget(accuracy_);
    v->addStretch(1);
    connect(reference_, &QComboBox::currentIndexChanged, this, [this] {
      fillColumns(labelColumn_, docAt(reference_), "cell_type");
      fillClasses();
    });
    connect(labelColumn_, &QComboBox::currentIndexChanged, this, [this] { fillClasses(); });
    connect(train_, &QPushButton::clicked, this, &NornWizard::startTraining);
    connect(save_, &QPushButton::clicked, this, &NornWizard::saveClassifierAs);
    connect(load_, &QPushButton::clicked, this, &NornWizard::loadClassifierFrom);
  }
  setPage(ReferencePage, refPage_);

  // ---- 2. Targets.
  targetPage_ = new StepPage([this] {
    for (DatasetDoc* d : wf_->workspace()->documents())
      if (wf_->hasPrediction(d)) return true;
    return false;
  });
  targetPage_->setTitle("2. Apply to other datasets");
  targetPage_->setSubTitle("Datasets embedded by the same model. Predictions become annotation columns of each map.");
  {
    targets_ = new QListWidget(targetPage_);
    minProb_ = new QDoubleSpinBox(targetPage_);
    minProb_->setRange(0, 1);
    minProb_->setSingleStep(0.05);
    minProb_->setValue(0.5);
    apply_ = new QPushButton("Apply", targetPage_);
    applyAtlas_ = new QPushButton("Apply to the whole atlas", targetPage_);
    applyAtlas_->setToolTip("Every open embedded dataset, the reference included");
    applyStatus_ = new QLabel(targetPage_);
    applyStatus_->setWordWrap(true);
    atlasSummary_ = new QLabel(targetPage_);
    atlasSummary_->setWordWrap(true);
    atlasSummary_->setStyleSheet("font-weight: bold;");
    auto* form = new QFormLayout;
    form->addRow("Minimum probability", minProb_);
    auto* v = new QVBoxLayout(targetPage_);
    v->addWidget(new QLabel("Target datasets:", targetPage_));
    v->addWidget(targets_, 1);
    v->addLayout(form);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(apply_);
    buttons->addWidget(applyAtlas_);
    v->addLayout(buttons);
    v->addWidget(applyStatus_);
    v->addWidget(atlasSummary_);
    connect(apply_, &QPushButton::clicked, this, &NornWizard::startApply);
    connect(applyAtlas_, &QPushButton::clicked, this, &NornWizard::startApplyToAtlas);
  }
  setPage(TargetsPage, targetPage_);

  // ---- 3. Results.
  auto* results = new QWizardPage;
  results->setTitle("3. Results");
  results->setFinalPage(true);
  tabs_ = new QTabWidget(results);
  {
    auto* w = new QWidget;
    cmDataset_ = new QComboBox(w);
    cmTruth_ = new QComboBox(w);
    cmChart_ = new views::HeatmapChart(w);
    cmChart_->setScale(views::HeatmapChart::Scale::Sequential);
    cmChart_->setDecimals(0);
    cmChart_->setLegendTitle("cells");
    cmChart_->setAxisLabels("predicted", "annotation");
    cmChart_->setEmptyText("Choose a dataset with predictions and an annotation column");
    auto* row = new QHBoxLayout;
    row->addWidget(new QLabel("Dataset", w));
    row->addWidget(cmDataset_, 1);
    row->addWidget(new QLabel("Against", w));
    row->addWidget(cmTruth_, 1);
    auto* ex = new QHBoxLayout;
    exportButtons(ex, cmChart_, this);
    auto* v = new QVBoxLayout(w);
    v->addLayout(row);
    v->addWidget(cmChart_, 1);
    v->addLayout(ex);
    tabs_->addTab(w, "Confusion matrix");
    connect(cmDataset_, &QComboBox::currentIndexChanged, this, [this] {
      fillColumns(cmTruth_, docAt(cmDataset_), wf_->hasClassifier() ? QString::fromStdString(wf_->classifier().labelColumn) : QString());
      updateConfusion();
    });
    connect(cmTruth_, &QComboBox::currentIndexChanged, this, &NornWizard::updateConfusion);
  }
  {
    auto* w = new QWidget;
    markerGenes_ = new QLineEdit(kDefaultMarkers, w);
    markerRun_ = new QPushButton("Show", w);
    markerChart_ = new views::HeatmapChart(w);
    markerChart_->setLegendTitle("log2 FC");
    markerChart_->setEmptyText("Press Show for the marker panel of the predicted cells");
    auto* row = new QHBoxLayout;
    row->addWidget(new QLabel("Marker genes", w));
    row->addWidget(markerGenes_, 1);
    row->addWidget(markerRun_);
    auto* ex = new QHBoxLayout;
    exportButtons(ex, markerChart_, this);
    auto* v = new QVBoxLayout(w);
    v->addLayout(row);
    v->addWidget(markerChart_, 1);
    v->addLayout(ex);
    tabs_->addTab(w, "Marker panel");
    connect(markerRun_, &QPushButton::clicked, this, &NornWizard::startMarkerPanel);
  }
  {
    auto* w = new QWidget;
    grDataset_ = new QComboBox(w);
    grCondition_ = new QComboBox(w);
    grReference_ = new QComboBox(w);
    grFeatures_ = new QLineEdit("EPO, DCN:COL1A1", w);
    grPredictedOnly_ = new QCheckBox("Predicted cells only", w);
    grPredictedOnly_->setChecked(true);
    grRun_ = new QPushButton("Compare", w);
    grChart_ = new views::BoxPlotChart(w);
    grChart_->setEmptyText("Press Compare for genes or ratios (A:B) across a condition");
    auto* row1 = new QHBoxLayout;
    row1->addWidget(new QLabel("Dataset", w));
    row1->addWidget(grDataset_, 1);
    row1->addWidget(new QLabel("Condition", w));
    row1->addWidget(grCondition_, 1);
    row1->addWidget(new QLabel("Reference", w));
    row1->addWidget(grReference_, 1);
    auto* row2 = new QHBoxLayout;
    row2->addWidget(new QLabel("Genes / ratios", w));
    row2->addWidget(grFeatures_, 1);
    row2->addWidget(grPredictedOnly_);
    row2->addWidget(grRun_);
    auto* ex = new QHBoxLayout;
    exportButtons(ex, grChart_, this);
    auto* v = new QVBoxLayout(w);
    v->addLayout(row1);
    v->addLayout(row2);
    v->addWidget(grChart_, 1);
    v->addLayout(ex);
    tabs_->addTab(w, "Group comparison");
    connect(grDataset_, &QComboBox::currentIndexChanged, this, [this] {
      fillColumns(grCondition_, docAt(grDataset_), "disease");
      fillReferenceGroups();
    });
    connect(grCondition_, &QComboBox::currentIndexChanged, this, &NornWizard::fillReferenceGroups);
    connect(grRun_, &QPushButton::clicked, this, &NornWizard::startComparison);
  }
  message_ = new QLabel(results);
  message_->setWordWrap(true);
  auto* rv = new QVBoxLayout(results);
  rv->addWidget(tabs_, 1);
  setPage(ResultsPage, results);

  // Messages show on every page: a status line under the wizard's buttons would be hidden,
  // so each page gets the same label re-parented when shown.
  connect(this, &QWizard::currentIdChanged, this, [this](int id) {
    if (QWizardPage* p = page(id)) {
      message_->setParent(p);
      static_cast<QVBoxLayout*>(p->layout())->addWidget(message_);
      message_->show();
    }
    refreshDatasets();
  });
  static_cast<QVBoxLayout*>(refPage_->layout())->addWidget(message_);

  connect(wf_, &NornWorkflow::classifierChanged, this, &NornWizard::showClassifier);
  connect(wf_, &NornWorkflow::markerPanelReady, this, &NornWizard::showMarkerPanel);
  connect(wf_, &NornWorkflow::groupComparisonReady, this, &NornWizard::showComparison);
  connect(wf_, &NornWorkflow::applied, this, [this](DatasetDoc* d) {
    const NornPrediction* p = wf_->prediction(d);
    const QString pos = wf_->positiveClass();
    applyStatus_->setText(applyStatus_->text() + (applyStatus_->text().isEmpty() ? "" : "\n") +
                          QString("%1: %2 of %3 cells predicted '%4', %5 unassigned (columns %6, %7)")
                              .arg(d->name())
                              .arg(p->count(pos))
                              .arg(d->cells())
                              .arg(pos)
                              .arg(p->unassigned)
                              .arg(p->column, p->confidenceColumn));
    updateAtlasSummary();
    Q_EMIT targetPage_->completeChanged();
  });
  connect(wf_->workspace(), &Workspace::documentOpened, this, &NornWizard::refreshDatasets);
  connect(wf_->workspace(), &Workspace::documentClosed, this, [this] { QMetaObject::invokeMethod(this, &NornWizard::refreshDatasets, Qt::QueuedConnection); });
  refreshDatasets();
  showClassifier();
}

DatasetDoc* NornWizard::docAt(const QComboBox* box) const {
  const QString path = box->currentData().toString();
  return path.isEmpty() ? nullptr : wf_->workspace()->document(path);
}

void NornWizard::fillColumns(QComboBox* box, DatasetDoc* doc, const QString& prefer) const {
  const QString keep = box->currentText();
  QSignalBlocker block(box);
  box->clear();
  if (doc) {
    for (const auto& c : doc->obs().columns) {
      // Label-like columns only: categorical or text (a float column has no classes).
      if (c.kind != ColumnKind::Categorical && c.kind != ColumnKind::String && c.kind != ColumnKind::Bool) continue;
      const QString n = QString::fromStdString(c.name);
      if (n.startsWith("predicted_")) continue;
      box->addItem(n);
    }
  }
  int i = box->findText(keep);
  if (i < 0) i = box->findText(prefer);
  if (i >= 0) box->setCurrentIndex(i);
  block.unblock();
  Q_EMIT box->currentIndexChanged(box->currentIndex());
}

void NornWizard::fillClasses() {
  const QString keep = targetClass_->currentText();
  targetClass_->clear();
  targetClass_->addItem(kAllClasses);
  DatasetDoc* d = docAt(reference_);
  const Column* c = d ? d->column(labelColumn_->currentText()) : nullptr;
  if (c) {
    std::set<std::string> seen;
    for (size_t i = 0; i < c->size(); ++i) seen.insert(c->valueAsString(i));
    seen.erase("");
    QStringList names;
    if (c->kind == ColumnKind::Categorical) {
      for (const auto& cat : c->categories)
        if (seen.count(cat)) names << QString::fromStdString(cat);
    } else {
      for (const auto& s : seen) names << QString::fromStdString(s);
    }
    targetClass_->addItems(names);
  }
  int i = targetClass_->findText(keep);
  if (i < 0) i = targetClass_->findText("Norn cell");
  targetClass_->setCurrentIndex(std::max(0, i));
}

void NornWizard::fillReferenceGroups() {
  const QString keep = grReference_->currentText();
  grReference_->clear();
  DatasetDoc* d = docAt(grDataset_);
  const Column* c = d ? d->column(grCondition_->currentText()) : nullptr;
  if (!c) return;
  std::set<std::string> seen;
  for (size_t i = 0; i < c->size(); ++i) seen.insert(c->valueAsString(i));
  seen.erase("");
  for (const auto& s : seen) grReference_->addItem(QString::fromStdString(s));
  int i = grReference_->findText(keep);
  if (i < 0) i = grReference_->findText("normal");
  if (i >= 0) grReference_->setCurrentIndex(i);
}

void NornWizard::refreshDatasets() {
  const auto docs = wf_->workspace()->documents();
  auto fillDocs = [&](QComboBox* box, bool predictedOnly) {
    const QString keep = box->currentData().toString();
    QSignalBlocker block(box);
    box->clear();
    for (DatasetDoc* d : docs)
      if (!predictedOnly || wf_->hasPrediction(d)) box->addItem(d->name(), d->path());
    const int i = box->findData(keep);
    if (i >= 0) box->setCurrentIndex(i);
    block.unblock();
    Q_EMIT box->currentIndexChanged(box->currentIndex());
  };
  fillDocs(reference_, false);
  fillDocs(cmDataset_, true);
  fillDocs(grDataset_, false);

  // Targets: every open dataset but the reference; checked ones stay checked.
  std::set<QString> checked;
  for (int i = 0; i < targets_->count(); ++i)
    if (targets_->item(i)->checkState() == Qt::Checked) checked.insert(targets_->item(i)->data(Qt::UserRole).toString());
  const bool first = targets_->count() == 0;
  targets_->clear();
  const QString ref = reference_->currentData().toString();
  for (DatasetDoc* d : docs) {
    if (d->path() == ref) continue;
    auto* item = new QListWidgetItem(d->name() + (d->hasEmbedding() ? "" : "  (not embedded)"), targets_);
    item->setData(Qt::UserRole, d->path());
    item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
    item->setCheckState(first || checked.count(d->path()) ? Qt::Checked : Qt::Unchecked);
  }
}

void NornWizard::setMessage(const QString& text, bool error) {
  message_->setStyleSheet(error ? "color: #b2182b;" : "");
  message_->setText(text);
}

void NornWizard::watch(Job* job, const QString& what) {
  setMessage(what + "…", false);
  connect(job, &Job::finished, this, [this, job, what] {
    if (job->status() == JobStatus::Failed) setMessage(what + " failed: " + job->errorText(), true);
    else if (job->status() == JobStatus::Cancelled) setMessage(what + " cancelled.", false);
    else if (message_->text() == what + "…") setMessage("", false);
  });
}

void NornWizard::startTraining() {
  NornTrainSettings s;
  s.labelColumn = labelColumn_->currentText();
  s.positive = targetClass_->currentText() == kAllClasses ? QString() : targetClass_->currentText();
  s.folds = folds_->value() == 1 ? 2 : folds_->value();
  s.seed = static_cast<quint64>(seed_->value());
  accuracy_->setText("Training…");
  watch(wf_->train(docAt(reference_), s), "Training");
}

void NornWizard::showClassifier() {
  if (!wf_->hasClassifier()) return;
  const auto& c = wf_->classifier();
  QString text = QString("Classifier on %1 cells of %2, labels from '%3'%4.\n")
                     .arg(c.trainingCells)
                     .arg(QFileInfo(QString::fromStdString(c.trainingFile)).fileName())
                     .arg(QString::fromStdString(c.labelColumn))
                     .arg(c.positive.empty() ? QString(" (%1 classes)").arg(c.model.labels.size())
                                             : QString(": '%1' vs rest").arg(QString::fromStdString(c.positive)));
  if (c.cv.folds >= 2)
    text += QString("Cross-validated accuracy (%1-fold): %2 %  (balanced accuracy %3 %)")
                .arg(c.cv.folds)
                .arg(c.cv.accuracy * 100, 0, 'f', 1)
                .arg(c.cv.balancedAccuracy * 100, 0, 'f', 1);
  else
    text += "Not cross-validated.";
  text += "\nEmbeddings of " + QString::fromStdString(c.embeddingModelName);
  accuracy_->setText(text);
  Q_EMIT refPage_->completeChanged();
}

void NornWizard::startApply() {
  applyStatus_->clear();
  for (int i = 0; i < targets_->count(); ++i) {
    QListWidgetItem* item = targets_->item(i);
    if (item->checkState() != Qt::Checked) continue;
    DatasetDoc* d = wf_->workspace()->document(item->data(Qt::UserRole).toString());
    if (d) watch(wf_->apply(d, minProb_->value()), "Applying to " + d->name());
  }
}

void NornWizard::startApplyToAtlas() {
  applyStatus_->clear();
  atlasSummary_->clear();
  for (int i = 0; i < targets_->count(); ++i) targets_->item(i)->setCheckState(Qt::Checked);
  int started = 0;
  for (DatasetDoc* d : wf_->workspace()->documents()) {
    if (!d->hasEmbedding()) continue;
    watch(wf_->apply(d, minProb_->value()), "Applying to " + d->name());
    ++started;
  }
  if (!started) setMessage("No open dataset is embedded: embed the atlas first (Analysis > Embed).", true);
}

// Totals over every dataset with predictions: the Norn-like cells of the whole atlas.
void NornWizard::updateAtlasSummary() {
  const QString pos = wf_->positiveClass();
  qint64 hits = 0, cells = 0;
  QStringList where;
  for (DatasetDoc* d : wf_->workspace()->documents()) {
    const NornPrediction* p = wf_->prediction(d);
    if (!p) continue;
    const qint64 n = p->count(pos);
    hits += n;
    cells += d->cells();
    if (n) where << QString("%1 %2").arg(d->name()).arg(n);
  }
  if (!cells) {
    atlasSummary_->clear();
    return;
  }
  atlasSummary_->setText(QString("Atlas: %1 of %2 cells predicted '%3'%4")
                             .arg(hits)
                             .arg(cells)
                             .arg(pos)
                             .arg(where.isEmpty() ? QString() : " (" + where.join(", ") + ")"));
}

void NornWizard::updateConfusion() {
  DatasetDoc* d = docAt(cmDataset_);
  ConfusionMatrix m;
  QString err;
  if (!d || cmTruth_->currentText().isEmpty() || !wf_->confusion(d, cmTruth_->currentText(), &m, &err)) {
    cmChart_->setData({}, {}, {});
    if (!err.isEmpty()) cmChart_->setEmptyText(err);
    return;
  }
  std::vector<std::vector<double>> v(m.counts.size());
  for (size_t i = 0; i < v.size(); ++i) v[i].assign(m.counts[i].begin(), m.counts[i].end());
  cmChart_->setTitle(QString("%1: %2 vs %3 (%4 cells)").arg(d->name(), m.truthColumn, m.predictedColumn).arg(m.total));
  cmChart_->setData(m.truth, m.predicted, std::move(v));
}

void NornWizard::startMarkerPanel() {
  QStringList genes;
  QVector<QPair<QString, QString>> ratios;
  parseFeatures(markerGenes_->text(), &genes, &ratios);
  QVector<DatasetDoc*> docs;
  for (DatasetDoc* d : wf_->workspace()->documents())
    if (wf_->hasPrediction(d)) docs << d;
  watch(wf_->markerPanel(docs, genes), "Marker panel");
}

void NornWizard::showMarkerPanel() {
  const MarkerPanel& p = wf_->lastMarkerPanel();
  markerChart_->setTitle("Markers in predicted '" + p.positive + "' cells vs the rest");
  markerChart_->setData(p.genes, p.datasets, p.log2fc);
  if (!p.notes.isEmpty()) setMessage(p.notes.join("; "), false);
}

void NornWizard::startComparison() {
  QStringList genes;
  QVector<QPair<QString, QString>> ratios;
  parseFeatures(grFeatures_->text(), &genes, &ratios);
  DatasetDoc* d = docAt(grDataset_);
  watch(wf_->compareGroups(d, grCondition_->currentText(), grReference_->currentText(), genes, ratios,
                           grPredictedOnly_->isChecked()),
        "Group comparison");
}

void NornWizard::showComparison() {
  const GroupComparison& g = wf_->lastGroupComparison();
  std::vector<std::vector<double>> p(static_cast<size_t>(g.features.size()),
                                     std::vector<double>(static_cast<size_t>(g.groups.size()), std::nan("")));
  for (const auto& t : g.tests) {
    const int f = static_cast<int>(g.features.indexOf(t.feature)), k = static_cast<int>(g.groups.indexOf(t.group));
    if (f >= 0 && k >= 0) p[static_cast<size_t>(f)][static_cast<size_t>(k)] = t.pval;
  }
  grChart_->setTitle(g.dataset + ": " + (g.cellFilter.isEmpty() ? QString("all cells") : g.cellFilter) + " by " +
                     g.conditionColumn);
  grChart_->setAxisLabels(QString(), "log1p expression / log2 ratio");
  grChart_->setData(g.features, g.groups, g.values, p);
}

void NornWizard::parseFeatures(const QString& text, QStringList* genes, QVector<QPair<QString, QString>>* ratios) {
  for (const QString& part : text.split(QRegularExpression("[,;\\s]+"), Qt::SkipEmptyParts)) {
    const int colon = static_cast<int>(part.indexOf(':'));
    if (colon > 0 && colon + 1 < part.size())
      ratios->append({part.left(colon), part.mid(colon + 1)});
    else if (colon < 0)
      genes->append(part);
  }
}

bool NornWizard::exportCharts(const QString& dir, QStringList* written, QString* error) const {
  const QList<QPair<QString, views::ChartWidget*>> charts = {
      {"norn_confusion", cmChart_}, {"norn_markers", markerChart_}, {"norn_groups", grChart_}};
  const QSize size(900, 560);
  for (const auto& [name, chart] : charts) {
    const QString base = QDir(dir).filePath(name);
    if (!chart->savePng(base + ".png", size, error) || !chart->saveSvg(base + ".svg", size, error)) return false;
    if (written) *written << base + ".png" << base + ".svg";
  }
  return true;
}

void NornWizard::saveClassifierAs() {
  const QString path = QFileDialog::getSaveFileName(this, "Save classifier", "classifier.json", "Classifier (*.json)");
  if (path.isEmpty()) return;
  QString err;
  if (wf_->saveClassifier(path, &err)) setMessage("Saved " + path, false);
  else setMessage(err, true);
}

void NornWizard::loadClassifierFrom() {
  const QString path = QFileDialog::getOpenFileName(this, "Load classifier", QString(), "Classifier (*.json)");
  if (path.isEmpty()) return;
  QString err;
  if (wf_->loadClassifier(path, &err)) setMessage("Loaded " + path, false);
  else setMessage(err, true);
}

}  // namespace uce::gui
