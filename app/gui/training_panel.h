#pragma once
// The Training tab: choose a corpus, a model shape and the hyperparameters, then run `uce train`
// as a separate process (a trainer crash leaves the app running, and an app crash leaves the
// trainer running: its output goes to OUT/train.log, not to a pipe). The panel follows the run by
// tailing OUT/metrics.jsonl (charts) and OUT/train.log (log pane, progress line), stops it with
// SIGINT (the trainer writes a checkpoint, then exits 0), resumes it with --resume and announces
// OUT/model.torch when it is done.
#include <QElapsedTimer>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QWidget>
#include <vector>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFileSystemWatcher;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSettings;
class QSpinBox;
class QTabWidget;
class QTableWidget;
class QTimer;

namespace uce::views {
class LiveLineChart;
}

namespace uce::gui {

// One dataset of the training corpus (a row of the corpus CSV).
struct CorpusRow {
  QString path;     // absolute path of the .h5ad
  QString species;  // e.g. human, mouse
  QString layer;    // counts matrix key; "" = the trainer guesses, as the embedder does
};

// Every `uce train` option the panel sets. Defaults are the CLI's (`uce train --help`).
struct TrainRequest {
  std::vector<CorpusRow> corpus;
  QString assetsDir;       // asset bundle with all_tokens.torch
  QString outDir;          // metrics.jsonl, train.log, checkpoints/, model.torch
  QString initModel;       // "" = random init; else weights to continue training
  // Model shape (ignored when initModel or a checkpoint gives the weights)
  int nLayers = 4;
  int dModel = 512;
  int nHead = 8;
  int dHid = 0;            // 0 = 4 x dModel
  int outputDim = 0;       // 0 = dModel
  QString headHidden = "2048,512,128";  // binary decoder's hidden widths (the release's)
  // Optimisation
  int batchSize = 16;      // cells per micro-batch and process
  int gradAccum = 1;
  int maxSteps = 10000;
  double lr = 1e-4;        // peak AdamW learning rate
  int warmup = -1;         // -1 = 5 % of maxSteps
  double weightDecay = 0.01;
  double clip = 1.0;       // gradient-norm clip; 0 disables
  // Objective
  int sampleSize = 1024;   // genes per sentence
  double maskRatio = 0.2;
  int nLoss = 64;          // genes scored per cell
  QString negatives = "uniform";  // uniform | frequency
  double cellGain = 1.0;   // new model: binary-decoder weights on the cell embedding scaled
  double firstQkGain = 1.0;  // new model: layer 0's query/key weights scaled
  double encoderLrScale = 1.0;  // learning rate of the cell-embedding path relative to lr
  int downsampleTo = 0;    // thin deeper training cells to this many UMIs; 0 = off
  double viewConsistency = 0;  // weight of the two-view InfoNCE term (TrainOptions); 0 = off
  double viewIsotropy = 0;     // weight of the view-displacement anisotropy term (TrainOptions); 0 = off
  double viewDepthMin = 0.33;  // the second view's depth factor is drawn in [this, 1]
  double viewGeneSd = 0.25;    // sd of the second view's log per-gene capture factors
  // Validation and checkpoints
  double valFraction = 0.05;
  int valCells = 256;
  int validateEvery = 100;
  int checkpointEvery = 500;
  int keepCheckpoints = 3;
  int seed = 0;
  // Where
  QString device = "cpu";  // cpu | cuda
  int nproc = 1;           // local data-parallel processes (GPUs on CUDA)
  double gradBucketMb = 25;  // data parallel: gradient all-reduce bucket size (--grad-bucket-mb)
  bool activationCheckpointing = false;  // recompute activations in backward (--activation-checkpointing)
  bool equalLengths = false;  // equal-length training sentences, no attention mask (--equal-lengths)
  bool bf16Layers = false;    // transformer layers wholly in bf16 in training (--bf16-layers)
  int threads = 0;         // CPU threads per process; 0 = the trainer shares the cores

  // `uce train` arguments (without the program) for a corpus CSV written to corpusCsv.
  QStringList arguments(const QString& corpusCsv, bool resume) const;
  // "" when the request can run, else what the user has to fix.
  QString problem() const;
};

enum class TrainState { Idle, Running, Stopping, Stopped, Finished, Failed };

class TrainingPanel : public QWidget {
  Q_OBJECT
 public:
  // settings: where the fields are remembered, in group "training" (not owned; may be null).
  explicit TrainingPanel(QSettings* settings = nullptr, QWidget* parent = nullptr);
  // A running trainer is stopped with a checkpoint (SIGINT; waits up to 30 s for it).
  ~TrainingPanel() override;

  // The `uce` program to run; default: `uce` next to the running executable, else on PATH.
  void setTrainerProgram(const QString& path);
  QString trainerProgram() const { return program_; }

  TrainRequest request() const;           // the fields as they are now
  void setRequest(const TrainRequest& r);  // fills every field (and the corpus table)

  TrainState state() const { return state_; }
  static QString stateName(TrainState s);
  // Why the last run failed or could not start: the trainer's message and the log's last lines.
  QString errorText() const { return error_; }
  qint64 currentStep() const { return step_; }        // from the progress lines / metrics
  qint64 resumedFrom() const { return resumedFrom_; }  // first step of this run - 1 (0 = fresh)
  int metricsLines() const { return metricsLines_; }   // metrics.jsonl lines read for the charts
  QString lastCheckpoint() const;   // newest OUT/checkpoints/step-N/ ("" = none)
  QString modelFile() const;        // OUT/model.torch of the finished run ("" = none yet)
  QString logText() const;          // what the log pane shows
  qint64 processId() const;         // the trainer's pid while it runs, else 0

  uce::views::LiveLineChart* lossChart() const { return lossChart_; }
  uce::views::LiveLineChart* aurocChart() const { return aurocChart_; }
  uce::views::LiveLineChart* throughputChart() const { return speedChart_; }
  QTableWidget* corpusTable() const { return corpus_; }
  QProgressBar* progressBar() const { return progress_; }
  QPlainTextEdit* logView() const { return log_; }
  QPushButton* startButton() const { return startBtn_; }
  QPushButton* stopButton() const { return stopBtn_; }
  QPushButton* resumeButton() const { return resumeBtn_; }
  QLabel* stateLabel() const { return stateLabel_; }
  QLabel* errorLabel() const { return errorLabel_; }
  QTabWidget* viewTabs() const { return tabs_; }

 public Q_SLOTS:
  // Launch `uce train` (fresh run / --resume). False, with errorText(), when it cannot launch.
  bool start();
  bool resume();
  // SIGINT: the trainer checkpoints and exits; a second stop() while stopping kills it.
  void stop();
  // Adds a corpus row; an empty species is guessed from the dataset's gene names.
  void addCorpusFile(const QString& path, const QString& species = QString(), const QString& layer = QString());
  void removeSelectedCorpusRows();
  // Replaces the table with a corpus CSV (path,species[,layer]); false with a message otherwise.
  bool loadCorpusCsv(const QString& csvPath, QString* error = nullptr);
  // Shows the run already in the output folder (charts, log) when nothing runs.
  void reloadOutputFolder();
  void saveSettings() const;
  // Reads what the trainer wrote since the last look (the watcher and a timer call this).
  void poll();

 Q_SIGNALS:
  void stateChanged(uce::gui::TrainState state);
  void stepReached(qint64 step);           // a new progress line
  void metricsRead(int lines);             // new metrics.jsonl lines went into the charts
  void modelReady(const QString& modelFile);  // a run finished: OUT/model.torch

 private:
  // A text file read incrementally: new complete lines since the last read. Replaced files
  // (the trainer rewrites metrics.jsonl atomically at a start or resume) are read from the top.
  struct Tail {
    QString path;
    qint64 offset = 0;
    quint64 inode = 0;
    QByteArray partial;
    bool reset = false;  // set by read() when the file was replaced or truncated
    QList<QByteArray> read();
    void rewind(qint64 to = 0);
  };

  QWidget* buildForm();
  QWidget* buildViews();
  bool launch(bool resume);
  void setState(TrainState s);
  void updateButtons();
  void onFinished(int exitCode, QProcess::ExitStatus status);
  void onProcessError(QProcess::ProcessError e);
  void fail(const QString& message);       // shows the error; state Failed
  void showError(const QString& message);  // shows the error (and this run's log tail)
  void appendCorpusRow(const CorpusRow& row);
  void readMetrics();
  void readLog();
  void clearCharts();
  void watchOutput();
  void loadSettings();
  QString outDir() const;

  QSettings* settings_ = nullptr;
  QString program_;

  // Fields.
  QTableWidget* corpus_ = nullptr;
  QLineEdit* assets_ = nullptr;
  QLineEdit* out_ = nullptr;
  QLineEdit* initModel_ = nullptr;
  QSpinBox* layers_ = nullptr;
  QSpinBox* dModel_ = nullptr;
  QSpinBox* heads_ = nullptr;
  QSpinBox* dHid_ = nullptr;
  QSpinBox* outputDim_ = nullptr;
  QLineEdit* headHidden_ = nullptr;
  QSpinBox* batch_ = nullptr;
  QSpinBox* accum_ = nullptr;
  QSpinBox* steps_ = nullptr;
  QLineEdit* lr_ = nullptr;
  QSpinBox* warmup_ = nullptr;
  QLineEdit* weightDecay_ = nullptr;
  QDoubleSpinBox* clip_ = nullptr;
  QSpinBox* sample_ = nullptr;
  QDoubleSpinBox* mask_ = nullptr;
  QSpinBox* nLoss_ = nullptr;
  QComboBox* negatives_ = nullptr;
  QDoubleSpinBox* cellGain_ = nullptr;
  QDoubleSpinBox* firstQkGain_ = nullptr;
  QDoubleSpinBox* encoderLrScale_ = nullptr;
  QSpinBox* downsampleTo_ = nullptr;
  QDoubleSpinBox* viewConsistency_ = nullptr;
  QDoubleSpinBox* viewIsotropy_ = nullptr;
  QDoubleSpinBox* viewDepthMin_ = nullptr;
  QDoubleSpinBox* viewGeneSd_ = nullptr;
  QDoubleSpinBox* valFraction_ = nullptr;
  QSpinBox* valCells_ = nullptr;
  QSpinBox* validateEvery_ = nullptr;
  QSpinBox* checkpointEvery_ = nullptr;
  QSpinBox* keep_ = nullptr;
  QSpinBox* seed_ = nullptr;
  QComboBox* device_ = nullptr;
  QSpinBox* nproc_ = nullptr;
  QDoubleSpinBox* gradBucketMb_ = nullptr;
  QCheckBox* activationCheckpointing_ = nullptr;
  QCheckBox* equalLengths_ = nullptr;
  QCheckBox* bf16Layers_ = nullptr;
  QSpinBox* threads_ = nullptr;

  // Run view.
  QPushButton* startBtn_ = nullptr;
  QPushButton* stopBtn_ = nullptr;
  QPushButton* resumeBtn_ = nullptr;
  QLabel* stateLabel_ = nullptr;
  QLabel* errorLabel_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  uce::views::LiveLineChart* lossChart_ = nullptr;
  uce::views::LiveLineChart* aurocChart_ = nullptr;
  uce::views::LiveLineChart* speedChart_ = nullptr;
  QPlainTextEdit* log_ = nullptr;

  // Run state.
  QProcess* proc_ = nullptr;
  QFileSystemWatcher* watcher_ = nullptr;
  QTimer* timer_ = nullptr;
  TrainState state_ = TrainState::Idle;
  bool stopRequested_ = false;
  bool interrupted_ = false;   // the trainer said "interrupted" (stopped by a signal)
  int runMaxSteps_ = 0;
  qint64 step_ = 0;
  qint64 resumedFrom_ = 0;
  qint64 etaStep0_ = -1;       // first step seen in this run, for the rate
  QElapsedTimer etaClock_;
  int metricsLines_ = 0;
  QString error_;
  QStringList runLog_;         // this run's log lines (the last few hundred)
  Tail metrics_, logTail_;
};

}  // namespace uce::gui

Q_DECLARE_METATYPE(uce::gui::TrainState)
