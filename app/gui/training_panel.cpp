#include "training_panel.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QDoubleValidator>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFileSystemWatcher>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QTimer>
#include <QVBoxLayout>
#include <QComboBox>
#include <algorithm>
#include <cmath>
#include <functional>
#include <exception>

#include <csignal>
#include <sys/stat.h>
#include <sys/types.h>

#include "uce/core/dataset.h"
#include "uce/core/inspect.h"
#include "uce/model/trainer.h"
#include "uce/model/version.h"
#include "uce/views/charts.h"

namespace uce::gui {

namespace {

constexpr int kLogTailLines = 12;    // log lines shown with an error
constexpr int kRunLogKeep = 400;     // log lines of the current run kept for that
constexpr int kPollMs = 500;         // timer between file-watcher events while a run is going
constexpr qint64 kMaxReadPerPoll = 8 << 20;

QString num(double v) { return QString::number(v, 'g', 10); }

QString formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return QStringLiteral("?");
  const qint64 s = static_cast<qint64>(std::llround(seconds));
  if (s < 60) return QStringLiteral("%1 s").arg(s);
  if (s < 3600) return QStringLiteral("%1 min %2 s").arg(s / 60).arg(s % 60);
  return QStringLiteral("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60);
}

QSpinBox* spin(QWidget* parent, const char* name, int lo, int hi, int value, const QString& special = {}) {
  auto* b = new QSpinBox(parent);
  b->setObjectName(name);
  b->setRange(lo, hi);
  if (!special.isEmpty()) b->setSpecialValueText(special);
  b->setValue(value);
  return b;
}

QDoubleSpinBox* dspin(QWidget* parent, const char* name, double lo, double hi, double value, int decimals,
                      double step) {
  auto* b = new QDoubleSpinBox(parent);
  b->setObjectName(name);
  b->setDecimals(decimals);
  b->setRange(lo, hi);
  b->setSingleStep(step);
  b->setValue(value);
  return b;
}

QLineEdit* numberEdit(QWidget* parent, const char* name, double value) {
  auto* e = new QLineEdit(num(value), parent);
  e->setObjectName(name);
  auto* v = new QDoubleValidator(0.0, 1e6, 12, e);
  v->setNotation(QDoubleValidator::ScientificNotation);
  e->setValidator(v);
  return e;
}

// A line edit with a "…" button that opens a file or folder chooser.
QWidget* withBrowse(QLineEdit* edit, bool folder, const QString& caption, const QString& filter = {}) {
  auto* w = new QWidget;
  auto* h = new QHBoxLayout(w);
  h->setContentsMargins(0, 0, 0, 0);
  h->addWidget(edit, 1);
  auto* b = new QPushButton(QStringLiteral("…"), w);
  b->setFixedWidth(30);
  b->setToolTip(caption);
  h->addWidget(b);
  QObject::connect(b, &QPushButton::clicked, edit, [edit, folder, caption, filter] {
    const QString p = folder ? QFileDialog::getExistingDirectory(edit, caption, edit->text())
                             : QFileDialog::getOpenFileName(edit, caption, edit->text(), filter);
    if (!p.isEmpty()) {
      edit->setText(p);
      Q_EMIT edit->editingFinished();
    }
  });
  return w;
}

// Step number of a checkpoint folder "step-0000120" (-1 when the name is not one).
qint64 checkpointStep(const QString& dir) {
  const QString name = QFileInfo(dir).fileName();
  if (!name.startsWith(QLatin1String("step-"))) return -1;
  bool ok = false;
  const qint64 s = name.mid(5).toLongLong(&ok);
  return ok ? s : -1;
}

}  // namespace

// ---- request ------------------------------------------------------------------------------

QStringList TrainRequest::arguments(const QString& corpusCsv, bool resume) const {
  QStringList a{"train", "--corpus", corpusCsv, "--assets", assetsDir, "--out", outDir};
  a << "--nlayers" << QString::number(nLayers) << "--d-model" << QString::number(dModel) << "--nhead"
    << QString::number(nHead);
  if (dHid > 0) a << "--d-hid" << QString::number(dHid);
  if (outputDim > 0) a << "--output-dim" << QString::number(outputDim);
  a << "--head-hidden" << QString(headHidden).remove(' ');
  a << "--batch-size" << QString::number(batchSize) << "--grad-accum" << QString::number(gradAccum)
    << "--max-steps" << QString::number(maxSteps) << "--lr" << num(lr);
  if (warmup >= 0) a << "--warmup" << QString::number(warmup);
  a << "--weight-decay" << num(weightDecay) << "--clip" << num(clip) << "--sample-size" << QString::number(sampleSize)
    << "--mask-ratio" << num(maskRatio) << "--n-loss" << QString::number(nLoss) << "--negatives" << negatives
    << "--cell-gain" << num(cellGain) << "--first-qk-gain" << num(firstQkGain)
    << "--encoder-lr-scale" << num(encoderLrScale)
    << "--val-fraction" << num(valFraction) << "--val-cells" << QString::number(valCells) << "--validate-every"
    << QString::number(validateEvery) << "--checkpoint-every" << QString::number(checkpointEvery)
    << "--keep-checkpoints" << QString::number(keepCheckpoints) << "--seed" << QString::number(seed) << "--device"
    << device << "--nproc" << QString::number(nproc) << "--grad-bucket-mb" << num(gradBucketMb);
  if (downsampleTo > 0) a << "--downsample-to" << QString::number(downsampleTo);
  if (viewConsistency > 0) a << "--view-consistency" << num(viewConsistency);
  if (viewConsistency > 0 && viewIsotropy > 0) a << "--view-isotropy" << num(viewIsotropy);
  a << "--view-depth-min" << num(viewDepthMin) << "--view-gene-sd" << num(viewGeneSd);
  if (threads > 0) a << "--threads" << QString::number(threads);
  if (activationCheckpointing) a << "--activation-checkpointing";
  if (equalLengths) a << "--equal-lengths";
  if (bf16Layers) a << "--bf16-layers";
  if (!initModel.isEmpty()) a << "--init-model" << initModel;
  if (resume) a << "--resume";
  return a;
}

QString TrainRequest::problem() const {
  if (corpus.empty())
    return QObject::tr("Add at least one dataset to the corpus (Add datasets… or Load corpus CSV…).");
  for (const CorpusRow& r : corpus) {
    const QString name = QFileInfo(r.path).fileName();
    if (r.path.trimmed().isEmpty()) return QObject::tr("A corpus row has no file: fill it in or remove the row.");
    if (r.path.contains(',') || r.path.contains('"') || r.path.contains('\n'))
      return QObject::tr("The path %1 holds a comma or a quote, which a corpus CSV cannot hold: rename the file or "
                         "its folder.").arg(r.path);
    if (!QFileInfo(r.path).isFile())
      return QObject::tr("The corpus dataset %1 does not exist (was it moved?): fix the path or remove the row.")
          .arg(r.path);
    if (r.species.trimmed().isEmpty())
      return QObject::tr("Choose the species of %1 (e.g. human or mouse).").arg(name);
  }
  if (assetsDir.trimmed().isEmpty())
    return QObject::tr("Choose the asset folder (the one holding all_tokens.torch and protein_embeddings/).");
  if (outDir.trimmed().isEmpty()) return QObject::tr("Choose an output folder for the checkpoints and the model.");
  if (nHead < 1 || dModel % nHead != 0)
    return QObject::tr("d_model (%1) must be divisible by the number of attention heads (%2).").arg(dModel).arg(nHead);
  {
    const QStringList widths = QString(headHidden).remove(' ').split(',');
    bool good = widths.size() == 3;
    for (const QString& w : widths) {
      bool ok = false;
      const int x = w.toInt(&ok);
      good = good && ok && x >= 1 && x <= 65536;
    }
    if (!good)
      return QObject::tr("The training-head widths must be three whole numbers between 1 and 65536 separated by "
                         "commas, e.g. 2048,512,128 (got \"%1\").").arg(headHidden);
  }
  if (!(lr > 0) || !std::isfinite(lr)) return QObject::tr("The learning rate must be a positive number, e.g. 1e-4.");
  if (!(weightDecay >= 0) || !std::isfinite(weightDecay))
    return QObject::tr("The weight decay must be zero or a positive number, e.g. 0.01.");
  return {};
}

// ---- file tail ----------------------------------------------------------------------------

void TrainingPanel::Tail::rewind(qint64 to) {
  offset = to;
  partial.clear();
}

QList<QByteArray> TrainingPanel::Tail::read() {
  QList<QByteArray> lines;
  struct stat st {};
  if (path.isEmpty() || ::stat(QFile::encodeName(path).constData(), &st) != 0) {
    if (offset > 0 || inode != 0) {  // the file went away: read its successor from the top
      rewind(0);
      inode = 0;
      reset = true;
    }
    return lines;
  }
  const quint64 ino = static_cast<quint64>(st.st_ino);
  if ((inode != 0 && ino != inode) || static_cast<qint64>(st.st_size) < offset) {
    rewind(0);
    reset = true;
  }
  inode = ino;
  if (static_cast<qint64>(st.st_size) == offset) return lines;
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly) || !f.seek(offset)) return lines;
  const QByteArray data = f.read(kMaxReadPerPoll);
  offset += data.size();
  partial += data;
  qsizetype from = 0;
  for (qsizetype nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n', from)) {
    QByteArray line = partial.mid(from, nl - from);
    if (line.endsWith('\r')) line.chop(1);
    lines.append(line);
    from = nl + 1;
  }
  partial.remove(0, from);
  return lines;
}

// ---- panel --------------------------------------------------------------------------------

TrainingPanel::TrainingPanel(QSettings* settings, QWidget* parent) : QWidget(parent), settings_(settings) {
  setObjectName("trainingPanel");
  qRegisterMetaType<uce::gui::TrainState>();
  program_ = QDir(QCoreApplication::applicationDirPath()).filePath("uce");
  if (!QFileInfo(program_).isExecutable()) {
    const QString onPath = QStandardPaths::findExecutable("uce");
    if (!onPath.isEmpty()) program_ = onPath;
  }

  auto* split = new QSplitter(Qt::Horizontal, this);
  auto* scroll = new QScrollArea(split);
  scroll->setObjectName("trainingForm");
  scroll->setWidgetResizable(true);
  scroll->setWidget(buildForm());
  scroll->setMinimumWidth(380);
  split->addWidget(scroll);
  split->addWidget(buildViews());
  split->setStretchFactor(0, 0);
  split->setStretchFactor(1, 1);
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(4, 4, 4, 4);
  v->addWidget(split);

  watcher_ = new QFileSystemWatcher(this);
  connect(watcher_, &QFileSystemWatcher::fileChanged, this, &TrainingPanel::poll);
  connect(watcher_, &QFileSystemWatcher::directoryChanged, this, &TrainingPanel::poll);
  timer_ = new QTimer(this);
  timer_->setInterval(kPollMs);
  connect(timer_, &QTimer::timeout, this, &TrainingPanel::poll);

  loadSettings();
  reloadOutputFolder();
  updateButtons();
}

TrainingPanel::~TrainingPanel() {
  saveSettings();
  if (proc_ && proc_->state() != QProcess::NotRunning) {
    // Closing the app stops the run the way Stop does, so it can be resumed later.
    proc_->disconnect(this);
    ::kill(static_cast<pid_t>(proc_->processId()), SIGINT);
    if (!proc_->waitForFinished(30000)) {
      proc_->kill();
      proc_->waitForFinished(3000);
    }
  }
}

QWidget* TrainingPanel::buildForm() {
  auto* form = new QWidget;
  auto* v = new QVBoxLayout(form);

  // Corpus.
  auto* corpusBox = new QGroupBox(tr("Corpus"), form);
  auto* cv = new QVBoxLayout(corpusBox);
  corpus_ = new QTableWidget(0, 3, corpusBox);
  corpus_->setObjectName("corpusTable");
  corpus_->setHorizontalHeaderLabels({tr("Dataset (.h5ad)"), tr("Species"), tr("Layer (optional)")});
  corpus_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  corpus_->verticalHeader()->hide();
  corpus_->setSelectionBehavior(QAbstractItemView::SelectRows);
  corpus_->setWordWrap(false);
  corpus_->setTextElideMode(Qt::ElideMiddle);  // the file name stays readable
  corpus_->setMinimumHeight(120);
  cv->addWidget(corpus_);
  auto* cb = new QHBoxLayout;
  auto* add = new QPushButton(tr("Add datasets…"), corpusBox);
  auto* remove = new QPushButton(tr("Remove"), corpusBox);
  auto* load = new QPushButton(tr("Load corpus CSV…"), corpusBox);
  add->setObjectName("addCorpus");
  remove->setObjectName("removeCorpus");
  load->setObjectName("loadCorpus");
  cb->addWidget(add);
  cb->addWidget(remove);
  cb->addWidget(load);
  cb->addStretch(1);
  cv->addLayout(cb);
  connect(add, &QPushButton::clicked, this, [this] {
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Datasets for the training corpus"), QString(),
                                                            tr("AnnData (*.h5ad);;All files (*)"));
    for (const QString& f : files) addCorpusFile(f);
  });
  connect(remove, &QPushButton::clicked, this, &TrainingPanel::removeSelectedCorpusRows);
  connect(load, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Corpus CSV (path,species[,layer])"), QString(),
                                                   tr("CSV (*.csv);;All files (*)"));
    QString err;
    if (!f.isEmpty() && !loadCorpusCsv(f, &err)) showError(err);
  });
  v->addWidget(corpusBox);

  // Folders.
  auto* files = new QGroupBox(tr("Folders"), form);
  auto* ff = new QFormLayout(files);
  assets_ = new QLineEdit(files);
  assets_->setObjectName("assetsDir");
  assets_->setPlaceholderText(tr("folder with all_tokens.torch"));
  out_ = new QLineEdit(files);
  out_->setObjectName("outDir");
  out_->setPlaceholderText(tr("checkpoints, metrics and model.torch go here"));
  initModel_ = new QLineEdit(files);
  initModel_->setObjectName("initModel");
  initModel_->setPlaceholderText(tr("optional: weights to continue training"));
  ff->addRow(tr("Assets"), withBrowse(assets_, true, tr("Asset folder")));
  ff->addRow(tr("Output folder"), withBrowse(out_, true, tr("Output folder")));
  ff->addRow(tr("Start from model"), withBrowse(initModel_, false, tr("Model weights"), tr("Model (*.torch *.pt)")));
  connect(out_, &QLineEdit::editingFinished, this, &TrainingPanel::reloadOutputFolder);
  v->addWidget(files);

  // Model shape.
  auto* shape = new QGroupBox(tr("Model shape"), form);
  auto* sf = new QFormLayout(shape);
  layers_ = spin(shape, "layers", 1, 128, 4);
  dModel_ = spin(shape, "dModel", 8, 8192, 512);
  heads_ = spin(shape, "heads", 1, 128, 8);
  dHid_ = spin(shape, "dHid", 0, 65536, 0, tr("4 × d_model"));
  outputDim_ = spin(shape, "outputDim", 0, 8192, 0, tr("= d_model"));
  sf->addRow(tr("Layers"), layers_);
  sf->addRow(tr("d_model"), dModel_);
  sf->addRow(tr("Attention heads"), heads_);
  sf->addRow(tr("Feed-forward width"), dHid_);
  headHidden_ = new QLineEdit(QStringLiteral("2048,512,128"), shape);
  headHidden_->setObjectName("headHidden");
  headHidden_->setToolTip(tr("Hidden widths of the binary decoder that scores (cell, gene) pairs in training. The "
                             "release uses 2048,512,128; a small model trains faster with a narrower head (the "
                             "embeddings never use it)."));
  sf->addRow(tr("Output dimension"), outputDim_);
  sf->addRow(tr("Training-head widths"), headHidden_);
  v->addWidget(shape);

  // Hyperparameters.
  auto* hyper = new QGroupBox(tr("Hyperparameters"), form);
  auto* hf = new QFormLayout(hyper);
  batch_ = spin(hyper, "batchSize", 1, 65536, 16);
  accum_ = spin(hyper, "gradAccum", 1, 1024, 1);
  steps_ = spin(hyper, "maxSteps", 1, 1000000000, 10000);
  lr_ = numberEdit(hyper, "lr", 1e-4);
  warmup_ = spin(hyper, "warmup", -1, 1000000000, -1, tr("5 % of the steps"));
  weightDecay_ = numberEdit(hyper, "weightDecay", 0.01);
  clip_ = dspin(hyper, "clip", 0, 1000, 1.0, 2, 0.1);
  clip_->setSpecialValueText(tr("off"));
  sample_ = spin(hyper, "sampleSize", 8, 65536, 1024);
  mask_ = dspin(hyper, "maskRatio", 0.01, 0.95, 0.2, 3, 0.05);
  nLoss_ = spin(hyper, "nLoss", 2, 65536, 64);
  negatives_ = new QComboBox(hyper);
  negatives_->setObjectName("negatives");
  negatives_->addItems({"uniform", "frequency"});
  cellGain_ = dspin(hyper, "cellGain", 0.01, 1000, 1.0, 2, 0.5);
  cellGain_->setToolTip(tr("A new model's binary-decoder weights on the cell embedding start multiplied by this"));
  firstQkGain_ = dspin(hyper, "firstQkGain", 0.001, 1000, 1.0, 3, 0.125);
  firstQkGain_->setToolTip(tr("A new model's first attention layer starts with its query and key weights multiplied "
                              "by this; 1/sqrt(d_model) keeps its attention from starting saturated"));
  encoderLrScale_ = dspin(hyper, "encoderLrScale", 0.001, 1000, 1.0, 3, 0.1);
  encoderLrScale_->setToolTip(tr("Learning rate of the cell-embedding path (encoder, transformer, decoder) relative "
                                 "to the learning rate; the gene-scoring head keeps the full rate. 0.1 keeps a new "
                                 "model's cell embeddings from collapsing before the head learns to read them"));
  downsampleTo_ = spin(hyper, "downsampleTo", 0, 100000000, 0);
  downsampleTo_->setSpecialValueText(tr("off"));
  downsampleTo_->setToolTip(tr("Training cells with more UMIs than this are thinned to about this many, so the "
                               "objective does not reward encoding the sequencing depth"));
  viewConsistency_ = dspin(hyper, "viewConsistency", 0, 100, 0, 3, 0.05);
  viewConsistency_->setSpecialValueText(tr("off"));
  viewConsistency_->setToolTip(tr("Each training cell is also drawn shallower and with other per-gene capture "
                                  "factors; this weight asks the two views' embeddings to find each other among the "
                                  "batch (InfoNCE), so the embeddings follow the cell more than its donor or batch. "
                                  "Each cell then costs two sentences"));
  viewIsotropy_ = dspin(hyper, "viewIsotropy", 0, 100, 0, 3, 0.05);
  viewIsotropy_->setSpecialValueText(tr("off"));
  viewIsotropy_->setToolTip(tr("With view consistency on: asks the shifts between each cell's two views to point "
                               "every which way, not along one shared direction (a depth or capture axis that "
                               "marks the donor). Higher values mix donors better and separate cell types less"));
  viewDepthMin_ = dspin(hyper, "viewDepthMin", 0.01, 1, 0.33, 2, 0.05);
  viewDepthMin_->setToolTip(tr("The second view keeps a share of the cell's UMIs drawn between this and 1"));
  viewGeneSd_ = dspin(hyper, "viewGeneSd", 0, 5, 0.25, 2, 0.05);
  viewGeneSd_->setToolTip(tr("Spread (sd of the log) of the second view's random per-gene capture factors"));
  seed_ = spin(hyper, "seed", 0, 2147483647, 0);
  hf->addRow(tr("Batch size (cells)"), batch_);
  hf->addRow(tr("Gradient accumulation"), accum_);
  hf->addRow(tr("Steps"), steps_);
  hf->addRow(tr("Learning rate"), lr_);
  hf->addRow(tr("Warm-up steps"), warmup_);
  hf->addRow(tr("Weight decay"), weightDecay_);
  hf->addRow(tr("Gradient clip"), clip_);
  hf->addRow(tr("Sample size (genes)"), sample_);
  hf->addRow(tr("Mask ratio"), mask_);
  hf->addRow(tr("N_loss (genes scored)"), nLoss_);
  hf->addRow(tr("Negatives"), negatives_);
  hf->addRow(tr("Cell gain (new model)"), cellGain_);
  hf->addRow(tr("First-layer q/k gain (new model)"), firstQkGain_);
  hf->addRow(tr("Encoder learning-rate scale"), encoderLrScale_);
  hf->addRow(tr("Thin cells to (UMIs)"), downsampleTo_);
  hf->addRow(tr("View consistency"), viewConsistency_);
  hf->addRow(tr("View isotropy"), viewIsotropy_);
  hf->addRow(tr("Second view: least depth share"), viewDepthMin_);
  hf->addRow(tr("Second view: gene factor sd"), viewGeneSd_);
  hf->addRow(tr("Seed"), seed_);
  v->addWidget(hyper);

  // Validation and checkpoints.
  auto* val = new QGroupBox(tr("Validation and checkpoints"), form);
  auto* vf = new QFormLayout(val);
  valFraction_ = dspin(val, "valFraction", 0, 0.5, 0.05, 3, 0.01);
  valCells_ = spin(val, "valCells", 1, 1000000, 256);
  validateEvery_ = spin(val, "validateEvery", 0, 1000000000, 100, tr("only at the end"));
  checkpointEvery_ = spin(val, "checkpointEvery", 0, 1000000000, 500, tr("only at the end"));
  keep_ = spin(val, "keepCheckpoints", 1, 1000, 3);
  vf->addRow(tr("Held-out cells (fraction)"), valFraction_);
  vf->addRow(tr("Validation cells scored"), valCells_);
  vf->addRow(tr("Validate every (steps)"), validateEvery_);
  vf->addRow(tr("Checkpoint every (steps)"), checkpointEvery_);
  vf->addRow(tr("Checkpoints kept"), keep_);
  v->addWidget(val);

  // Device.
  auto* dev = new QGroupBox(tr("Device"), form);
  auto* df = new QFormLayout(dev);
  device_ = new QComboBox(dev);
  device_->setObjectName("device");
  device_->addItem("cpu");
  if (uce::model::cudaAvailable()) device_->addItem("cuda");
  nproc_ = spin(dev, "nproc", 1, 256, 1);
  nproc_->setToolTip(tr("Local data-parallel processes (one per GPU on CUDA); each takes a full batch."));
  gradBucketMb_ = dspin(dev, "gradBucketMb", 0.01, 4096, 25, 2, 5);
  gradBucketMb_->setToolTip(tr("With several processes, gradients are averaged in buckets of this size while the "
                               "backward pass is still running; larger buckets mean fewer, longer messages."));
  threads_ = spin(dev, "threads", 0, 1024, 0, tr("share the cores"));
  activationCheckpointing_ = new QCheckBox(tr("Recompute activations in the backward pass"), dev);
  activationCheckpointing_->setObjectName("activationCheckpointing");
  activationCheckpointing_->setToolTip(tr("Keeps far less in GPU memory (needed for 33 layers at useful batch sizes) "
                                          "for about 30 % more compute; the same gradients."));
  equalLengths_ = new QCheckBox(tr("Equal-length sentences"), dev);
  equalLengths_->setObjectName("equalLengths");
  equalLengths_->setToolTip(tr("Every training sentence is filled to one length with a few extra gene draws: no "
                               "padding and no attention mask, so the fastest attention kernels run. Embedding "
                               "is unaffected."));
  df->addRow(tr("Device"), device_);
  df->addRow(tr("Processes / GPUs"), nproc_);
  df->addRow(tr("Gradient buckets (MB)"), gradBucketMb_);
  df->addRow(tr("CPU threads per process"), threads_);
  df->addRow(tr("Activation checkpointing"), activationCheckpointing_);
  bf16Layers_ = new QCheckBox(tr("Transformer layers wholly in bf16"), dev);
  bf16Layers_->setObjectName("bf16Layers");
  bf16Layers_->setToolTip(tr("Residual adds, LayerNorm and dropout run in bf16 too, not only the matrix products: "
                             "faster on GPUs. The weights stay fp32; the residual stream is rounded to bf16."));
  df->addRow(tr("Sentences"), equalLengths_);
  df->addRow(tr("Precision"), bf16Layers_);
  v->addWidget(dev);
  v->addStretch(1);
  return form;
}

QWidget* TrainingPanel::buildViews() {
  auto* w = new QWidget;
  auto* v = new QVBoxLayout(w);
  auto* buttons = new QHBoxLayout;
  startBtn_ = new QPushButton(tr("Start"), w);
  stopBtn_ = new QPushButton(tr("Stop"), w);
  resumeBtn_ = new QPushButton(tr("Resume"), w);
  startBtn_->setObjectName("startTraining");
  stopBtn_->setObjectName("stopTraining");
  resumeBtn_->setObjectName("resumeTraining");
  startBtn_->setToolTip(tr("Start a new run in the output folder"));
  stopBtn_->setToolTip(tr("Write a checkpoint and stop (Resume continues from it)"));
  resumeBtn_->setToolTip(tr("Continue from the newest checkpoint in the output folder"));
  connect(startBtn_, &QPushButton::clicked, this, [this] { start(); });
  connect(stopBtn_, &QPushButton::clicked, this, &TrainingPanel::stop);
  connect(resumeBtn_, &QPushButton::clicked, this, [this] { resume(); });
  buttons->addWidget(startBtn_);
  buttons->addWidget(stopBtn_);
  buttons->addWidget(resumeBtn_);
  stateLabel_ = new QLabel(w);
  stateLabel_->setObjectName("trainingState");
  buttons->addWidget(stateLabel_, 1);
  v->addLayout(buttons);

  progress_ = new QProgressBar(w);
  progress_->setObjectName("trainingProgress");
  progress_->setRange(0, 1);
  progress_->setValue(0);
  progress_->setTextVisible(true);
  progress_->setFormat(tr("not started"));
  v->addWidget(progress_);

  errorLabel_ = new QLabel(w);
  errorLabel_->setObjectName("trainingError");
  errorLabel_->setWordWrap(true);
  errorLabel_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);  // long log lines wrap, never widen
  errorLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  errorLabel_->setStyleSheet("QLabel { background: #fdecea; border: 1px solid #e0a0a0; padding: 6px; }");
  errorLabel_->hide();
  v->addWidget(errorLabel_);

  tabs_ = new QTabWidget(w);
  auto* charts = new QWidget(tabs_);
  auto* cv = new QVBoxLayout(charts);
  cv->setContentsMargins(0, 0, 0, 0);
  lossChart_ = new uce::views::LiveLineChart(charts);
  lossChart_->setObjectName("lossChart");
  lossChart_->setTitle(tr("Loss"));
  lossChart_->setAxisLabels(tr("step"), tr("BCE loss"));
  lossChart_->addSeries(tr("training loss"), QColor(31, 119, 180));
  lossChart_->addSeries(tr("validation loss"), QColor(255, 127, 14));
  lossChart_->setEmptyText(tr("The loss appears here once a run starts"));
  aurocChart_ = new uce::views::LiveLineChart(charts);
  aurocChart_->setObjectName("aurocChart");
  aurocChart_->setTitle(tr("Validation masked-gene AUROC"));
  aurocChart_->setAxisLabels(tr("step"), tr("AUROC"));
  aurocChart_->addSeries(tr("validation AUROC"), QColor(44, 160, 44));
  aurocChart_->setEmptyText(tr("Appears at each validation"));
  speedChart_ = new uce::views::LiveLineChart(charts);
  speedChart_->setObjectName("throughputChart");
  speedChart_->setTitle(tr("Throughput"));
  speedChart_->setAxisLabels(tr("step"), tr("cells / s"));
  speedChart_->addSeries(tr("cells/s"), QColor(148, 103, 189));
  speedChart_->setEmptyText(tr("Cells per second appear here"));
  for (auto* c : {lossChart_, aurocChart_, speedChart_}) {
    c->setMinimumHeight(170);
    cv->addWidget(c, c == lossChart_ ? 3 : 2);
  }
  tabs_->addTab(charts, tr("Charts"));
  log_ = new QPlainTextEdit(tabs_);
  log_->setObjectName("trainingLog");
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(5000);
  log_->setLineWrapMode(QPlainTextEdit::NoWrap);
  log_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  tabs_->addTab(log_, tr("Log"));
  v->addWidget(tabs_, 1);
  return w;
}

void TrainingPanel::setTrainerProgram(const QString& path) { program_ = path; }

QString TrainingPanel::outDir() const { return out_->text().trimmed(); }

TrainRequest TrainingPanel::request() const {
  TrainRequest r;
  for (int i = 0; i < corpus_->rowCount(); ++i) {
    auto text = [&](int c) { return corpus_->item(i, c) ? corpus_->item(i, c)->text().trimmed() : QString(); };
    r.corpus.push_back({text(0), text(1), text(2)});
  }
  r.assetsDir = assets_->text().trimmed();
  r.outDir = outDir();
  r.initModel = initModel_->text().trimmed();
  r.nLayers = layers_->value();
  r.dModel = dModel_->value();
  r.nHead = heads_->value();
  r.dHid = dHid_->value();
  r.outputDim = outputDim_->value();
  r.headHidden = headHidden_->text().trimmed();
  r.batchSize = batch_->value();
  r.gradAccum = accum_->value();
  r.maxSteps = steps_->value();
  bool ok = false;
  r.lr = lr_->text().toDouble(&ok);
  if (!ok) r.lr = std::nan("");
  r.warmup = warmup_->value();
  r.weightDecay = weightDecay_->text().toDouble(&ok);
  if (!ok) r.weightDecay = std::nan("");
  r.clip = clip_->value();
  r.sampleSize = sample_->value();
  r.maskRatio = mask_->value();
  r.nLoss = nLoss_->value();
  r.negatives = negatives_->currentText();
  r.cellGain = cellGain_->value();
  r.firstQkGain = firstQkGain_->value();
  r.encoderLrScale = encoderLrScale_->value();
  r.downsampleTo = downsampleTo_->value();
  r.viewConsistency = viewConsistency_->value();
  r.viewIsotropy = viewIsotropy_->value();
  r.viewDepthMin = viewDepthMin_->value();
  r.viewGeneSd = viewGeneSd_->value();
  r.valFraction = valFraction_->value();
  r.valCells = valCells_->value();
  r.validateEvery = validateEvery_->value();
  r.checkpointEvery = checkpointEvery_->value();
  r.keepCheckpoints = keep_->value();
  r.seed = seed_->value();
  r.device = device_->currentText();
  r.nproc = nproc_->value();
  r.gradBucketMb = gradBucketMb_->value();
  r.activationCheckpointing = activationCheckpointing_->isChecked();
  r.equalLengths = equalLengths_->isChecked();
  r.bf16Layers = bf16Layers_->isChecked();
  r.threads = threads_->value();
  return r;
}

void TrainingPanel::setRequest(const TrainRequest& r) {
  corpus_->setRowCount(0);
  for (const CorpusRow& c : r.corpus) appendCorpusRow(c);
  assets_->setText(r.assetsDir);
  out_->setText(r.outDir);
  initModel_->setText(r.initModel);
  layers_->setValue(r.nLayers);
  dModel_->setValue(r.dModel);
  heads_->setValue(r.nHead);
  dHid_->setValue(r.dHid);
  outputDim_->setValue(r.outputDim);
  headHidden_->setText(r.headHidden);
  batch_->setValue(r.batchSize);
  accum_->setValue(r.gradAccum);
  steps_->setValue(r.maxSteps);
  lr_->setText(num(r.lr));
  warmup_->setValue(r.warmup);
  weightDecay_->setText(num(r.weightDecay));
  clip_->setValue(r.clip);
  sample_->setValue(r.sampleSize);
  mask_->setValue(r.maskRatio);
  nLoss_->setValue(r.nLoss);
  negatives_->setCurrentIndex(std::max(0, negatives_->findText(r.negatives)));
  cellGain_->setValue(r.cellGain);
  firstQkGain_->setValue(r.firstQkGain);
  encoderLrScale_->setValue(r.encoderLrScale);
  downsampleTo_->setValue(r.downsampleTo);
  viewConsistency_->setValue(r.viewConsistency);
  viewIsotropy_->setValue(r.viewIsotropy);
  viewDepthMin_->setValue(r.viewDepthMin);
  viewGeneSd_->setValue(r.viewGeneSd);
  valFraction_->setValue(r.valFraction);
  valCells_->setValue(r.valCells);
  validateEvery_->setValue(r.validateEvery);
  checkpointEvery_->setValue(r.checkpointEvery);
  keep_->setValue(r.keepCheckpoints);
  seed_->setValue(r.seed);
  device_->setCurrentIndex(std::max(0, device_->findText(r.device)));
  nproc_->setValue(r.nproc);
  gradBucketMb_->setValue(r.gradBucketMb);
  activationCheckpointing_->setChecked(r.activationCheckpointing);
  equalLengths_->setChecked(r.equalLengths);
  bf16Layers_->setChecked(r.bf16Layers);
  threads_->setValue(r.threads);
  reloadOutputFolder();
}

void TrainingPanel::addCorpusFile(const QString& path, const QString& species, const QString& layer) {
  QString sp = species;
  if (sp.isEmpty()) {
    // Guess from the gene names, as the embed dialog does; the user can edit the cell.
    try {
      auto ds = uce::openDataset(QFile::encodeName(path).toStdString());
      const auto genes = uce::guessGeneColumn(ds->var());
      const auto g = uce::guessSpecies(ds->var(), genes);
      if (g.species != "unknown") sp = QString::fromStdString(g.species);
    } catch (const std::exception&) {
      // Unreadable here: the trainer reports why when the run starts.
    }
  }
  appendCorpusRow({QFileInfo(path).absoluteFilePath(), sp, layer});
}

void TrainingPanel::appendCorpusRow(const CorpusRow& r) {
  const int row = corpus_->rowCount();
  corpus_->insertRow(row);
  auto* p = new QTableWidgetItem(r.path);
  p->setToolTip(r.path);
  corpus_->setItem(row, 0, p);
  corpus_->setItem(row, 1, new QTableWidgetItem(r.species));
  corpus_->setItem(row, 2, new QTableWidgetItem(r.layer));
}

void TrainingPanel::removeSelectedCorpusRows() {
  QList<int> rows;
  for (const auto& r : corpus_->selectionModel()->selectedRows()) rows.append(r.row());
  std::sort(rows.begin(), rows.end(), std::greater<int>());
  for (int r : rows) corpus_->removeRow(r);
}

bool TrainingPanel::loadCorpusCsv(const QString& csvPath, QString* error) {
  std::vector<uce::model::CorpusEntry> entries;
  try {
    entries = uce::model::readCorpus(QFile::encodeName(csvPath).toStdString());
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
  corpus_->setRowCount(0);
  for (const auto& e : entries)
    addCorpusFile(QString::fromStdString(e.path), QString::fromStdString(e.species), QString::fromStdString(e.layer));
  return true;
}

QString TrainingPanel::stateName(TrainState s) {
  switch (s) {
    case TrainState::Idle: return tr("Idle");
    case TrainState::Running: return tr("Running");
    case TrainState::Stopping: return tr("Stopping (writing a checkpoint)…");
    case TrainState::Stopped: return tr("Stopped");
    case TrainState::Finished: return tr("Finished");
    case TrainState::Failed: return tr("Failed");
  }
  return {};
}

QString TrainingPanel::lastCheckpoint() const {
  if (outDir().isEmpty()) return {};
  const QDir root(QDir(outDir()).filePath("checkpoints"));
  QString best;
  qint64 bestStep = -1;
  for (const QString& name : root.entryList({"step-*"}, QDir::Dirs | QDir::NoDotAndDotDot)) {
    const qint64 s = checkpointStep(name);
    if (s > bestStep && QFileInfo::exists(root.filePath(name + "/state.txt"))) {
      bestStep = s;
      best = root.filePath(name);
    }
  }
  return best;
}

QString TrainingPanel::modelFile() const {
  if (state_ != TrainState::Finished) return {};
  return QDir(outDir()).filePath("model.torch");
}

QString TrainingPanel::logText() const { return log_->toPlainText(); }

qint64 TrainingPanel::processId() const {
  return proc_ && proc_->state() != QProcess::NotRunning ? proc_->processId() : 0;
}

bool TrainingPanel::start() { return launch(false); }
bool TrainingPanel::resume() { return launch(true); }

bool TrainingPanel::launch(bool resume) {
  if (state_ == TrainState::Running || state_ == TrainState::Stopping) return false;
  error_.clear();
  errorLabel_->hide();
  runLog_.clear();
  // Problems found before launching are shown; the state stays as it was.
  const TrainRequest r = request();
  if (const QString p = r.problem(); !p.isEmpty()) {
    showError(p);
    return false;
  }
  if (!QFileInfo(program_).isExecutable() && QFileInfo(program_).isRelative()) {
    const QString onPath = QStandardPaths::findExecutable(program_);
    if (!onPath.isEmpty()) program_ = onPath;
  }
  if (!QFileInfo(program_).isExecutable()) {
    showError(tr("The trainer program %1 was not found; install the `uce` command next to the app.").arg(program_));
    return false;
  }
  const QString ckpt = lastCheckpoint();
  if (resume && ckpt.isEmpty()) {
    showError(tr("Nothing to resume: %1 holds no checkpoint. Start a new run instead.").arg(r.outDir));
    return false;
  }
  if (!resume && !ckpt.isEmpty()) {
    showError(tr("%1 already holds a run (checkpoint at step %2): Resume continues it, or choose another output "
                 "folder for a new run.").arg(r.outDir).arg(checkpointStep(ckpt)));
    return false;
  }
  if (!QDir().mkpath(r.outDir)) {
    showError(tr("Cannot create the output folder %1 (read-only disk or no permission?).").arg(r.outDir));
    return false;
  }
  const QDir out(r.outDir);
  // The corpus as the trainer reads it, rewritten atomically from the table at every launch.
  const QString csv = out.filePath("corpus.csv");
  {
    QSaveFile f(csv);
    QByteArray text = "path,species,layer\n";
    for (const CorpusRow& c : r.corpus)
      text += (QFileInfo(c.path).absoluteFilePath() + "," + c.species + "," + c.layer + "\n").toUtf8();
    if (!f.open(QIODevice::WriteOnly) || f.write(text) != text.size() || !f.commit()) {
      showError(tr("Cannot write %1 (disk full or no permission?).").arg(csv));
      return false;
    }
  }
  saveSettings();

  // Reset the run's state and views.
  stopRequested_ = false;
  interrupted_ = false;
  runMaxSteps_ = r.maxSteps;
  resumedFrom_ = resume ? std::max<qint64>(0, checkpointStep(ckpt)) : 0;
  step_ = resumedFrom_;
  etaStep0_ = -1;
  runLog_.clear();
  log_->clear();
  clearCharts();
  metrics_ = Tail{};
  metrics_.path = out.filePath("metrics.jsonl");
  if (resume) {
    readMetrics();  // the history so far; the trainer then drops lines past its checkpoint
  } else {
    // A fresh run replaces metrics.jsonl: skip the old file's lines until then.
    struct stat st {};
    if (::stat(QFile::encodeName(metrics_.path).constData(), &st) == 0) {
      metrics_.inode = static_cast<quint64>(st.st_ino);
      metrics_.offset = static_cast<qint64>(st.st_size);
    }
  }
  progress_->setRange(0, std::max(1, runMaxSteps_));
  progress_->setValue(static_cast<int>(std::min<qint64>(step_, runMaxSteps_)));
  progress_->setFormat(tr("step %1 / %2 · starting…").arg(step_).arg(runMaxSteps_));

  // The trainer writes to OUT/train.log (not a pipe), so it outlives the app if the app dies.
  const QString logPath = out.filePath("train.log");
  const QStringList args = r.arguments(csv, resume);
  logTail_ = Tail{};
  logTail_.path = logPath;
  {
    QFile lf(logPath);
    if (!lf.open(QIODevice::Append | QIODevice::Text)) {
      showError(tr("Cannot write the log %1 (disk full or no permission?).").arg(logPath));
      return false;
    }
    logTail_.offset = lf.size();
    lf.write(QStringLiteral("== %1 %2 %3\n")
                 .arg(QDateTime::currentDateTime().toString(Qt::ISODate), program_, args.join(' '))
                 .toUtf8());
  }
  struct stat lst {};
  if (::stat(QFile::encodeName(logPath).constData(), &lst) == 0) logTail_.inode = static_cast<quint64>(lst.st_ino);

  if (proc_) proc_->deleteLater();
  proc_ = new QProcess(this);
  proc_->setProgram(program_);
  proc_->setArguments(args);
  proc_->setWorkingDirectory(r.outDir);
  proc_->setStandardOutputFile(logPath, QIODevice::Append);
  proc_->setStandardErrorFile(logPath, QIODevice::Append);
  proc_->setStandardInputFile(QProcess::nullDevice());
  connect(proc_, &QProcess::finished, this, &TrainingPanel::onFinished);
  connect(proc_, &QProcess::errorOccurred, this, &TrainingPanel::onProcessError);
  connect(proc_, &QProcess::started, this, [this] { setState(state_); });  // shows the pid
  setState(TrainState::Running);
  watchOutput();
  timer_->start();
  proc_->start();
  readLog();  // the header line
  return state_ == TrainState::Running;
}

void TrainingPanel::stop() {
  if (!proc_ || proc_->state() == QProcess::NotRunning) return;
  if (state_ == TrainState::Stopping) {  // asked twice: do not wait for the checkpoint
    proc_->kill();
    return;
  }
  stopRequested_ = true;
  ::kill(static_cast<pid_t>(proc_->processId()), SIGINT);
  setState(TrainState::Stopping);
}

void TrainingPanel::onProcessError(QProcess::ProcessError e) {
  if (e != QProcess::FailedToStart) return;  // the others end in finished()
  timer_->stop();
  fail(tr("Cannot start the trainer %1: %2").arg(program_, proc_ ? proc_->errorString() : QString()));
}

void TrainingPanel::onFinished(int exitCode, QProcess::ExitStatus status) {
  poll();
  timer_->stop();
  const QString out = outDir();
  if (stopRequested_ && (status == QProcess::CrashExit || exitCode == 0)) {
    const QString c = lastCheckpoint();
    progress_->setFormat(tr("step %1 / %2 · stopped").arg(step_).arg(runMaxSteps_));
    setState(TrainState::Stopped);
    stateLabel_->setText(c.isEmpty() ? tr("Stopped before the first checkpoint")
                                     : tr("Stopped · checkpoint at step %1: Resume continues").arg(checkpointStep(c)));
    return;
  }
  if (status == QProcess::CrashExit) {
    fail(tr("The trainer stopped unexpectedly (it crashed or was killed)."));
    return;
  }
  if (exitCode != 0) {
    QString message;
    for (auto it = runLog_.crbegin(); it != runLog_.crend() && message.isEmpty(); ++it)
      if (it->startsWith(QLatin1String("error: "))) message = it->mid(7);
    fail(message.isEmpty() ? tr("The trainer exited with status %1.").arg(exitCode)
                           : tr("The trainer stopped: %1").arg(message));
    return;
  }
  if (interrupted_) {  // stopped by a signal from outside the app
    progress_->setFormat(tr("step %1 / %2 · stopped").arg(step_).arg(runMaxSteps_));
    setState(TrainState::Stopped);
    return;
  }
  const QString model = QDir(out).filePath("model.torch");
  if (!QFileInfo::exists(model)) {
    fail(tr("The trainer ended without writing %1.").arg(model));
    return;
  }
  step_ = std::max<qint64>(step_, runMaxSteps_);
  progress_->setValue(progress_->maximum());
  progress_->setFormat(tr("step %1 / %2 · done").arg(step_).arg(runMaxSteps_));
  setState(TrainState::Finished);
  stateLabel_->setText(tr("Finished · model: %1").arg(model));
  Q_EMIT modelReady(model);
}

void TrainingPanel::fail(const QString& message) {
  if (proc_) progress_->setFormat(tr("step %1 / %2 · failed").arg(step_).arg(runMaxSteps_));
  showError(message);
  setState(TrainState::Failed);
}

void TrainingPanel::showError(const QString& message) {
  QStringList tail = runLog_.mid(std::max<qsizetype>(0, runLog_.size() - kLogTailLines));
  error_ = message;
  QString html = QStringLiteral("<b style='color:#a00000'>%1</b>").arg(message.toHtmlEscaped());
  if (!tail.isEmpty()) {
    const QString logName = QDir(outDir()).filePath("train.log");
    error_ += "\n\n" + tr("Last lines of %1:").arg(logName) + "\n" + tail.join('\n');
    html += QStringLiteral("<br>%1<div style='white-space:pre-wrap; font-family:monospace; font-size:small'>%2</div>")
                .arg(tr("Last lines of %1:").arg(logName).toHtmlEscaped(), tail.join('\n').toHtmlEscaped());
  }
  errorLabel_->setText(html);
  errorLabel_->show();
}

void TrainingPanel::setState(TrainState s) {
  state_ = s;
  QString text = stateName(s);
  if (s == TrainState::Running && proc_) text += tr(" · pid %1").arg(proc_->processId());
  stateLabel_->setText(text);
  updateButtons();
  Q_EMIT stateChanged(s);
}

void TrainingPanel::updateButtons() {
  const bool running = state_ == TrainState::Running || state_ == TrainState::Stopping;
  startBtn_->setEnabled(!running);
  stopBtn_->setEnabled(running);
  stopBtn_->setText(state_ == TrainState::Stopping ? tr("Force stop") : tr("Stop"));
  resumeBtn_->setEnabled(!running && !lastCheckpoint().isEmpty());
  if (auto* form = findChild<QScrollArea*>("trainingForm")) form->setEnabled(!running);
}

void TrainingPanel::watchOutput() {
  const QString out = outDir();
  QStringList want{out, metrics_.path, logTail_.path};
  for (const QString& p : want)
    if (!p.isEmpty() && QFileInfo::exists(p) && !watcher_->files().contains(p) && !watcher_->directories().contains(p))
      watcher_->addPath(p);
}

void TrainingPanel::poll() {
  readLog();
  readMetrics();
  if (state_ == TrainState::Running || state_ == TrainState::Stopping) watchOutput();  // replaced files
}

void TrainingPanel::clearCharts() {
  for (auto* c : {lossChart_, aurocChart_, speedChart_}) c->clearPoints();
  metricsLines_ = 0;
}

void TrainingPanel::readMetrics() {
  int added = 0;
  // Reads are capped per call; a long file (reopening a big run) takes several.
  for (QList<QByteArray> lines = metrics_.read(); !lines.isEmpty() || metrics_.reset; lines = metrics_.read()) {
    if (metrics_.reset) {  // rewritten by the trainer (fresh start, or resume dropping a tail)
      metrics_.reset = false;
      clearCharts();
      added = 0;
    }
    for (const QByteArray& line : lines) {
      const QJsonDocument doc = QJsonDocument::fromJson(line);
      if (!doc.isObject()) continue;
      const QJsonObject o = doc.object();
      if (!o.value("step").isDouble()) continue;
      const double step = o.value("step").toDouble();
      auto put = [&](uce::views::LiveLineChart* chart, int series, const char* key) {
        const QJsonValue v = o.value(QLatin1String(key));
        if (v.isDouble()) chart->append(series, step, v.toDouble());  // null = not finite
      };
      put(lossChart_, 0, "loss");
      put(lossChart_, 1, "val_loss");
      put(aurocChart_, 0, "val_auroc");
      put(speedChart_, 0, "cells_per_s");
      step_ = std::max<qint64>(step_, static_cast<qint64>(step));
      ++added;
    }
  }
  if (added > 0) {
    metricsLines_ += added;
    Q_EMIT metricsRead(added);
  }
}

void TrainingPanel::readLog() {
  const QList<QByteArray> lines = logTail_.read();
  if (lines.isEmpty()) return;
  QStringList shown;
  for (const QByteArray& raw : lines) {
    const QString line = QString::fromUtf8(raw);
    shown.append(line);
    runLog_.append(line);
    if (line.startsWith(QLatin1String("interrupted:"))) interrupted_ = true;
    if (!line.startsWith(QLatin1String("progress {"))) continue;
    const QJsonDocument doc = QJsonDocument::fromJson(raw.mid(9));
    if (!doc.isObject() || !doc.object().value("step").isDouble()) continue;
    const qint64 step = static_cast<qint64>(doc.object().value("step").toDouble());
    step_ = std::max(step_, step);
    if (etaStep0_ < 0) {
      etaStep0_ = step;
      etaClock_.start();
    }
    const double secs = etaClock_.elapsed() / 1000.0;
    QString eta = tr("estimating time left…");
    if (step > etaStep0_ && secs > 0) {
      const double rate = static_cast<double>(step - etaStep0_) / secs;
      eta = tr("%1 steps/s · about %2 left")
                .arg(rate, 0, 'f', rate < 10 ? 2 : 0)
                .arg(formatDuration(static_cast<double>(runMaxSteps_ - step) / rate));
    }
    progress_->setValue(static_cast<int>(std::min<qint64>(step, progress_->maximum())));
    progress_->setFormat(tr("step %1 / %2 · %3").arg(step).arg(runMaxSteps_).arg(eta));
    Q_EMIT stepReached(step);
  }
  if (runLog_.size() > kRunLogKeep) runLog_ = runLog_.mid(runLog_.size() - kRunLogKeep);
  log_->appendPlainText(shown.join('\n'));
}

void TrainingPanel::reloadOutputFolder() {
  if (state_ == TrainState::Running || state_ == TrainState::Stopping) return;
  clearCharts();
  step_ = 0;
  const QString out = outDir();
  metrics_ = Tail{};
  logTail_ = Tail{};
  log_->clear();
  runLog_.clear();
  if (!out.isEmpty() && QFileInfo(out).isDir()) {
    metrics_.path = QDir(out).filePath("metrics.jsonl");
    readMetrics();
    // The end of the previous runs' log (the whole file can be long).
    const QString logPath = QDir(out).filePath("train.log");
    QFile lf(logPath);
    if (lf.open(QIODevice::ReadOnly)) {
      const qint64 from = std::max<qint64>(0, lf.size() - 64 * 1024);
      lf.seek(from);
      QByteArray tail = lf.readAll();
      if (from > 0) tail = tail.mid(tail.indexOf('\n') + 1);
      log_->setPlainText(QString::fromUtf8(tail));
    }
  }
  const int maxSteps = steps_->value();
  progress_->setRange(0, std::max(1, maxSteps));
  progress_->setValue(static_cast<int>(std::min<qint64>(step_, maxSteps)));
  progress_->setFormat(step_ > 0 ? tr("step %1 / %2 (previous run)").arg(step_).arg(maxSteps) : tr("not started"));
  if (state_ != TrainState::Failed) {
    const QString c = lastCheckpoint();
    stateLabel_->setText(c.isEmpty() ? stateName(state_)
                                     : tr("%1 · this folder has a checkpoint at step %2: Resume continues it")
                                           .arg(stateName(state_))
                                           .arg(checkpointStep(c)));
  }
  updateButtons();
}

// ---- settings -----------------------------------------------------------------------------

void TrainingPanel::saveSettings() const {
  if (!settings_) return;
  const TrainRequest r = request();
  QSettings& s = *settings_;
  s.beginGroup("training");
  s.beginWriteArray("corpus", static_cast<int>(r.corpus.size()));
  for (size_t i = 0; i < r.corpus.size(); ++i) {
    s.setArrayIndex(static_cast<int>(i));
    s.setValue("path", r.corpus[i].path);
    s.setValue("species", r.corpus[i].species);
    s.setValue("layer", r.corpus[i].layer);
  }
  s.endArray();
  s.setValue("assets", r.assetsDir);
  s.setValue("out", r.outDir);
  s.setValue("initModel", r.initModel);
  s.setValue("nlayers", r.nLayers);
  s.setValue("dModel", r.dModel);
  s.setValue("nhead", r.nHead);
  s.setValue("dHid", r.dHid);
  s.setValue("outputDim", r.outputDim);
  s.setValue("headHidden", r.headHidden);
  s.setValue("batchSize", r.batchSize);
  s.setValue("gradAccum", r.gradAccum);
  s.setValue("maxSteps", r.maxSteps);
  s.setValue("lr", lr_->text());
  s.setValue("warmup", r.warmup);
  s.setValue("weightDecay", weightDecay_->text());
  s.setValue("clip", r.clip);
  s.setValue("sampleSize", r.sampleSize);
  s.setValue("maskRatio", r.maskRatio);
  s.setValue("nLoss", r.nLoss);
  s.setValue("negatives", r.negatives);
  s.setValue("cellGain", r.cellGain);
  s.setValue("firstQkGain", r.firstQkGain);
  s.setValue("encoderLrScale", r.encoderLrScale);
  s.setValue("downsampleTo", r.downsampleTo);
  s.setValue("viewConsistency", r.viewConsistency);
  s.setValue("viewIsotropy", r.viewIsotropy);
  s.setValue("viewDepthMin", r.viewDepthMin);
  s.setValue("viewGeneSd", r.viewGeneSd);
  s.setValue("valFraction", r.valFraction);
  s.setValue("valCells", r.valCells);
  s.setValue("validateEvery", r.validateEvery);
  s.setValue("checkpointEvery", r.checkpointEvery);
  s.setValue("keepCheckpoints", r.keepCheckpoints);
  s.setValue("seed", r.seed);
  s.setValue("device", r.device);
  s.setValue("nproc", r.nproc);
  s.setValue("gradBucketMb", r.gradBucketMb);
  s.setValue("activationCheckpointing", r.activationCheckpointing);
  s.setValue("equalLengths", r.equalLengths);
  s.setValue("bf16Layers", r.bf16Layers);
  s.setValue("threads", r.threads);
  s.endGroup();
  s.sync();
}

void TrainingPanel::loadSettings() {
  if (!settings_) return;
  QSettings& s = *settings_;
  s.beginGroup("training");
  const TrainRequest d;  // defaults
  const int n = s.beginReadArray("corpus");
  for (int i = 0; i < n; ++i) {
    s.setArrayIndex(i);
    const QString path = s.value("path").toString();
    if (path.isEmpty()) continue;
    // No guessing here (no dataset reads at start-up): an empty species stays empty.
    appendCorpusRow({path, s.value("species").toString(), s.value("layer").toString()});
  }
  s.endArray();
  assets_->setText(s.value("assets").toString());
  out_->setText(s.value("out").toString());
  initModel_->setText(s.value("initModel").toString());
  layers_->setValue(s.value("nlayers", d.nLayers).toInt());
  dModel_->setValue(s.value("dModel", d.dModel).toInt());
  heads_->setValue(s.value("nhead", d.nHead).toInt());
  dHid_->setValue(s.value("dHid", d.dHid).toInt());
  outputDim_->setValue(s.value("outputDim", d.outputDim).toInt());
  headHidden_->setText(s.value("headHidden", d.headHidden).toString());
  batch_->setValue(s.value("batchSize", d.batchSize).toInt());
  accum_->setValue(s.value("gradAccum", d.gradAccum).toInt());
  steps_->setValue(s.value("maxSteps", d.maxSteps).toInt());
  lr_->setText(s.value("lr", num(d.lr)).toString());
  warmup_->setValue(s.value("warmup", d.warmup).toInt());
  weightDecay_->setText(s.value("weightDecay", num(d.weightDecay)).toString());
  clip_->setValue(s.value("clip", d.clip).toDouble());
  sample_->setValue(s.value("sampleSize", d.sampleSize).toInt());
  mask_->setValue(s.value("maskRatio", d.maskRatio).toDouble());
  nLoss_->setValue(s.value("nLoss", d.nLoss).toInt());
  negatives_->setCurrentIndex(std::max(0, negatives_->findText(s.value("negatives", d.negatives).toString())));
  cellGain_->setValue(s.value("cellGain", d.cellGain).toDouble());
  firstQkGain_->setValue(s.value("firstQkGain", d.firstQkGain).toDouble());
  encoderLrScale_->setValue(s.value("encoderLrScale", d.encoderLrScale).toDouble());
  downsampleTo_->setValue(s.value("downsampleTo", d.downsampleTo).toInt());
  viewConsistency_->setValue(s.value("viewConsistency", d.viewConsistency).toDouble());
  viewIsotropy_->setValue(s.value("viewIsotropy", d.viewIsotropy).toDouble());
  viewDepthMin_->setValue(s.value("viewDepthMin", d.viewDepthMin).toDouble());
  viewGeneSd_->setValue(s.value("viewGeneSd", d.viewGeneSd).toDouble());
  valFraction_->setValue(s.value("valFraction", d.valFraction).toDouble());
  valCells_->setValue(s.value("valCells", d.valCells).toInt());
  validateEvery_->setValue(s.value("validateEvery", d.validateEvery).toInt());
  checkpointEvery_->setValue(s.value("checkpointEvery", d.checkpointEvery).toInt());
  keep_->setValue(s.value("keepCheckpoints", d.keepCheckpoints).toInt());
  seed_->setValue(s.value("seed", d.seed).toInt());
  device_->setCurrentIndex(std::max(0, device_->findText(s.value("device", d.device).toString())));
  nproc_->setValue(s.value("nproc", d.nproc).toInt());
  gradBucketMb_->setValue(s.value("gradBucketMb", d.gradBucketMb).toDouble());
  activationCheckpointing_->setChecked(s.value("activationCheckpointing", d.activationCheckpointing).toBool());
  equalLengths_->setChecked(s.value("equalLengths", d.equalLengths).toBool());
  bf16Layers_->setChecked(s.value("bf16Layers", d.bf16Layers).toBool());
  threads_->setValue(s.value("threads", d.threads).toInt());
  s.endGroup();
}

}  // namespace uce::gui
