#include "dialogs.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <functional>

#include "uce/model/version.h"

namespace uce::gui {

namespace {

// A line edit with a "Browse..." button beside it.
QWidget* withBrowse(QLineEdit* edit, QWidget* parent, std::function<void()> browse) {
  auto* w = new QWidget(parent);
  auto* h = new QHBoxLayout(w);
  h->setContentsMargins(0, 0, 0, 0);
  h->addWidget(edit, 1);
  auto* b = new QPushButton(QObject::tr("Browse..."), w);
  QObject::connect(b, &QPushButton::clicked, w, browse);
  h->addWidget(b);
  return w;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// EmbedDialog.

QStringList EmbedDialog::availableDevices() {
  QStringList d{"cpu"};
  if (uce::model::cudaAvailable()) d << "cuda";
  return d;
}

EmbedDialog::EmbedDialog(QWidget* parent) : QDialog(parent) {
  setObjectName("embedDialog");
  setWindowTitle(tr("Embed cells with a UCE model"));
  model_ = new QLineEdit(this);
  model_->setObjectName("modelFile");
  model_->setPlaceholderText(tr("model weights, e.g. 4layer_model.torch"));
  assets_ = new QLineEdit(this);
  assets_->setObjectName("assetsDir");
  assets_->setPlaceholderText(tr("folder with species_offsets.pkl and protein_embeddings/"));
  species_ = new QComboBox(this);
  species_->setEditable(true);
  species_->addItems({"human", "mouse", "frog", "zebrafish", "mouse_lemur", "pig", "macaca_fascicularis",
                      "macaca_mulatta"});
  geneColumn_ = new QComboBox(this);
  geneColumn_->setEditable(true);
  device_ = new QComboBox(this);
  device_->addItems(availableDevices());
  batch_ = new QSpinBox(this);
  batch_->setRange(1, 4096);
  batch_->setValue(32);
  sample_ = new QSpinBox(this);
  sample_->setRange(16, 8192);
  sample_->setValue(1024);
  sample_->setToolTip(tr("genes sampled per cell sentence (the release uses 1024)"));
  pad_ = new QSpinBox(this);
  pad_->setRange(32, 16384);
  pad_->setValue(1536);
  pad_->setToolTip(tr("longest sentence in tokens (the release uses 1536)"));
  thenMap_ = new QCheckBox(tr("Then compute the map (UMAP) and clusters (Leiden)"), this);
  thenMap_->setChecked(true);
  guessNote_ = new QLabel(this);
  guessNote_->setWordWrap(true);
  guessNote_->setStyleSheet("color: #555");
  problemNote_ = new QLabel(this);
  problemNote_->setWordWrap(true);
  problemNote_->setStyleSheet("color: #b00020");
  problemNote_->hide();

  auto* form = new QFormLayout;
  form->addRow(tr("Model file"), withBrowse(model_, this, [this] {
                 const QString f = QFileDialog::getOpenFileName(this, tr("UCE model weights"), model_->text(),
                                                                tr("PyTorch weights (*.torch *.pt);;All files (*)"));
                 if (!f.isEmpty()) model_->setText(f);
               }));
  form->addRow(tr("Assets folder"), withBrowse(assets_, this, [this] {
                 const QString d = QFileDialog::getExistingDirectory(this, tr("UCE asset folder"), assets_->text());
                 if (!d.isEmpty()) assets_->setText(d);
               }));
  form->addRow(tr("Species"), species_);
  form->addRow(tr("Gene column"), geneColumn_);
  form->addRow(tr("Device"), device_);
  form->addRow(tr("Batch size"), batch_);
  auto* adv = new QGroupBox(tr("Advanced"), this);
  auto* advForm = new QFormLayout(adv);
  advForm->addRow(tr("Sample size"), sample_);
  advForm->addRow(tr("Pad length"), pad_);
  buttons_ = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  buttons_->button(QDialogButtonBox::Ok)->setText(tr("Embed"));
  connect(buttons_, &QDialogButtonBox::accepted, this, &EmbedDialog::accept);
  connect(buttons_, &QDialogButtonBox::rejected, this, &QDialog::reject);
  auto* v = new QVBoxLayout(this);
  v->addLayout(form);
  v->addWidget(guessNote_);
  v->addWidget(adv);
  v->addWidget(thenMap_);
  v->addWidget(problemNote_);
  v->addWidget(buttons_);
}

void EmbedDialog::setDefaults(const QString& modelFile, const QString& assetsDir, const QString& device,
                              int batchSize, const DatasetDoc& doc) {
  model_->setText(modelFile);
  assets_->setText(assetsDir);
  const EmbedGuess g = doc.guess();
  species_->setCurrentText(g.species);
  geneColumn_->clear();
  geneColumn_->addItem(tr("(var_names)"), QString());
  for (const Column& c : doc.var().columns)
    if (c.kind == ColumnKind::String || c.kind == ColumnKind::Categorical)
      geneColumn_->addItem(QString::fromStdString(c.name), QString::fromStdString(c.name));
  const int at = g.geneColumn.isEmpty() ? 0 : geneColumn_->findData(g.geneColumn);
  if (at >= 0) geneColumn_->setCurrentIndex(at);
  else geneColumn_->setCurrentText(g.geneColumn);
  const int dev = device_->findText(device);
  device_->setCurrentIndex(dev >= 0 ? dev : 0);
  batch_->setValue(batchSize > 0 ? batchSize : 32);
  QStringList notes;
  notes << tr("%1: %2 cells, %3 genes.").arg(doc.name()).arg(doc.cells()).arg(doc.genes());
  if (!g.speciesReason.isEmpty()) notes << tr("Species: %1.").arg(g.speciesReason);
  if (!g.geneReason.isEmpty()) notes << tr("Genes: %1.").arg(g.geneReason);
  if (!g.countsReason.isEmpty()) notes << tr("Counts: %1.").arg(g.countsReason);
  guessNote_->setText(notes.join(' '));
  problemNote_->hide();
}

EmbedRequest EmbedDialog::request() const {
  EmbedRequest r;
  r.modelFile = model_->text().trimmed();
  r.assetsDir = assets_->text().trimmed();
  r.species = species_->currentText().trimmed();
  // An item picked from the list carries the column name as data; typed text is the name.
  const int i = geneColumn_->currentIndex();
  r.geneColumn = (i >= 0 && geneColumn_->itemText(i) == geneColumn_->currentText())
                     ? geneColumn_->itemData(i).toString()
                     : geneColumn_->currentText().trimmed();
  r.device = device_->currentText();
  r.batchSize = batch_->value();
  r.sampleSize = sample_->value();
  r.padLength = pad_->value();
  return r;
}

bool EmbedDialog::thenMapAndCluster() const { return thenMap_->isChecked(); }

QString EmbedDialog::problem() const {
  const EmbedRequest r = request();
  if (r.modelFile.isEmpty() || !QFileInfo(r.modelFile).isFile())
    return tr("Choose the model's weights file (.torch): '%1' is not a file.").arg(r.modelFile);
  if (r.assetsDir.isEmpty() || !QFileInfo(r.assetsDir).isDir())
    return tr("Choose the UCE asset folder (with species_offsets.pkl and protein_embeddings/): '%1' is not a folder.")
        .arg(r.assetsDir);
  if (r.species.isEmpty()) return tr("Name the species of the cells (e.g. human).");
  if (r.padLength < r.sampleSize) return tr("The pad length must be at least the sample size.");
  return {};
}

void EmbedDialog::accept() {
  const QString p = problem();
  if (!p.isEmpty()) {
    problemNote_->setText(p);
    problemNote_->show();
    return;
  }
  QDialog::accept();
}

// ---------------------------------------------------------------------------------------------
// LabelDialog.

LabelDialog::LabelDialog(QWidget* parent) : QDialog(parent) {
  setObjectName("labelDialog");
  setWindowTitle(tr("Label the selected cells"));
  column_ = new QComboBox(this);
  column_->setEditable(true);
  label_ = new QLineEdit(this);
  label_->setPlaceholderText(tr("e.g. Norn cell"));
  note_ = new QLabel(this);
  note_->setWordWrap(true);
  buttons_ = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  buttons_->button(QDialogButtonBox::Ok)->setText(tr("Label"));
  connect(buttons_, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons_, &QDialogButtonBox::rejected, this, &QDialog::reject);
  auto* form = new QFormLayout;
  form->addRow(tr("Annotation column"), column_);
  form->addRow(tr("Label"), label_);
  auto* v = new QVBoxLayout(this);
  v->addWidget(note_);
  v->addLayout(form);
  v->addWidget(buttons_);
}

void LabelDialog::setup(const QStringList& annotationColumns, qint64 selectedCells) {
  column_->clear();
  column_->addItems(annotationColumns.isEmpty() ? QStringList{"annotation"} : annotationColumns);
  label_->clear();
  note_->setText(tr("%1 selected cells get this label; other cells keep theirs. The column is saved "
                    "with Export annotated .h5ad.")
                     .arg(selectedCells));
  label_->setFocus();
}

QString LabelDialog::column() const { return column_->currentText().trimmed(); }
QString LabelDialog::label() const { return label_->text().trimmed(); }

}  // namespace uce::gui
