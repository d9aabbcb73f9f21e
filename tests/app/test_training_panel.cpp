// The Training tab: its defaults are the CLI's, bad input is explained, and a tiny model trained
// by `uce train` in a separate process can be followed (charts gain points, progress moves),
// stopped (clean exit with a checkpoint), resumed (steps continue), finished (modelReady) and
// used by `uce embed`. Data: `uce synth` (300 cells, 300 genes, human and mouse kidney).
// Screenshots: <build>/test-screenshots/training_*.png.
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QSettings>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QtTest>
#include <cmath>
#include <csignal>
#include <memory>

#include "test_support.h"
#include "training_panel.h"
#include "uce/core/dataset.h"
#include "uce/views/charts.h"

using namespace uce::gui;
using uce::test::cli;

namespace {

using uce::test::shotDir;

// Pixels of `img` inside `r` within `tol` of `rgb`.
int countColour(const QImage& img, QRect r, QRgb rgb, int tol = 30) {
  int n = 0;
  r = r.intersected(img.rect());
  for (int y = r.top(); y <= r.bottom(); ++y)
    for (int x = r.left(); x <= r.right(); ++x) {
      const QRgb p = img.pixel(x, y);
      if (std::abs(qRed(p) - qRed(rgb)) <= tol && std::abs(qGreen(p) - qGreen(rgb)) <= tol &&
          std::abs(qBlue(p) - qBlue(rgb)) <= tol)
        ++n;
    }
  return n;
}

// Step numbers of metrics.jsonl, in file order.
std::vector<long long> metricSteps(const QString& path) {
  std::vector<long long> steps;
  for (const auto& line : uce::test::lines(path)) {
    const double s = uce::test::jsonNumber(line, "step");
    if (std::isfinite(s)) steps.push_back(static_cast<long long>(s));
  }
  return steps;
}

const QRgb kLossBlue = qRgb(31, 119, 180);

}  // namespace

class TestTrainingPanel : public QObject {
  Q_OBJECT

  QTemporaryDir tmp_;
  QString world_, assets_, human_, mouse_;
  std::unique_ptr<QSettings> settings_;
  std::unique_ptr<TrainingPanel> panel_;
  QString model_;

  // A tiny run: 2 layers, d_model 32, 4 heads, 64-gene sentences, one CPU thread.
  TrainRequest tiny(const QString& out, int maxSteps) const {
    TrainRequest r;
    r.corpus = {{human_, "human", ""}, {mouse_, "mouse", ""}};
    r.assetsDir = assets_;
    r.outDir = out;
    r.nLayers = 2;
    r.dModel = 32;
    r.nHead = 4;
    r.dHid = 64;
    r.outputDim = 32;
    r.batchSize = 8;
    r.maxSteps = maxSteps;
    r.lr = 2e-3;
    r.warmup = 3;
    r.sampleSize = 64;
    r.nLoss = 32;
    r.valFraction = 0.1;
    r.valCells = 32;
    r.validateEvery = 10;
    r.checkpointEvery = 10;
    r.keepCheckpoints = 2;
    r.seed = 3;
    r.threads = 1;
    return r;
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    world_ = tmp_.filePath("world");
    QString out, err;
    const int rc = cli({"synth", "--out", world_, "--cells", "300", "--genes", "300", "--seed", "3", "--token-dim",
                        "32", "--species", "human,mouse", "--tissues", "kidney", "--quiet"},
                       &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    assets_ = world_ + "/assets";
    human_ = world_ + "/human_kidney.h5ad";
    mouse_ = world_ + "/mouse_kidney.h5ad";
    QVERIFY(QFile::exists(human_) && QFile::exists(mouse_));
    settings_ = std::make_unique<QSettings>(tmp_.filePath("settings.ini"), QSettings::IniFormat);
    panel_ = std::make_unique<TrainingPanel>(settings_.get());
    panel_->setTrainerProgram(UCE_CLI);
    panel_->resize(1400, 900);
    panel_->show();
    QVERIFY(QTest::qWaitForWindowExposed(panel_.get()));
  }

  // A fresh panel offers the CLI's documented defaults (`uce train --help`), and the species of
  // an added dataset is guessed from its gene names.
  void defaultsAreTheClis() {
    QSettings blank(tmp_.filePath("blank.ini"), QSettings::IniFormat);
    TrainingPanel fresh(&blank);
    const TrainRequest r = fresh.request();
    const QStringList args = r.arguments("c.csv", false);
    QString help, err;
    QCOMPARE(cli({"train", "--help"}, &help, &err), 0);
    // "[--batch-size B (16)]": every option with a plain number default.
    QRegularExpression re(R"(--([a-z-]+) \S+ \(([0-9.e+-]+)\))");
    int checked = 0;
    for (auto it = re.globalMatch(help); it.hasNext();) {
      const auto m = it.next();
      const QString opt = "--" + m.captured(1);
      const int at = static_cast<int>(args.indexOf(opt));
      QVERIFY2(at >= 0, qPrintable(opt + " missing from " + args.join(' ')));
      QVERIFY2(std::abs(args[at + 1].toDouble() - m.captured(2).toDouble()) < 1e-12,
               qPrintable(opt + ": panel " + args[at + 1] + ", CLI " + m.captured(2)));
      ++checked;
    }
    QVERIFY2(checked >= 14, qPrintable(QString::number(checked)));
    // Derived defaults are left to the trainer: no --d-hid, --output-dim or --warmup.
    QVERIFY(!args.contains("--d-hid") && !args.contains("--output-dim") && !args.contains("--warmup"));
    // The CLI's switches that are off by default are off in the panel too.
    QVERIFY(!args.contains("--activation-checkpointing") && !args.contains("--equal-lengths") &&
            !args.contains("--bf16-layers"));
    QVERIFY(help.contains("[--activation-checkpointing]") && help.contains("[--equal-lengths]") &&
            help.contains("[--bf16-layers]"));
    // The one list-valued default: the training head's widths.
    QVERIFY2(help.contains("--head-hidden A,B,C (2048,512,128)"), qPrintable(help));
    QCOMPARE(args[args.indexOf("--head-hidden") + 1], QString("2048,512,128"));
    QCOMPARE(r.device, QString("cpu"));

    fresh.addCorpusFile(mouse_);
    QCOMPARE(fresh.corpusTable()->rowCount(), 1);
    QCOMPARE(fresh.corpusTable()->item(0, 1)->text(), QString("mouse"));
  }

  // Input the trainer cannot use is explained; the panel stays usable.
  void badInputShowsTheError() {
    // A corpus file that is not there: refused before launching, naming the file.
    TrainRequest r = tiny(tmp_.filePath("bad"), 20);
    r.corpus.push_back({world_ + "/gone.h5ad", "human", ""});
    panel_->setRequest(r);
    QVERIFY(!panel_->start());
    QCOMPARE(panel_->processId(), qint64(0));
    QVERIFY(panel_->errorLabel()->isVisible());
    QVERIFY2(panel_->errorText().contains("gone.h5ad"), qPrintable(panel_->errorText()));

    // Training-head widths that are not three positive numbers: refused before launching.
    r = tiny(tmp_.filePath("bad"), 20);
    r.headHidden = "256,x,64";
    panel_->setRequest(r);
    QVERIFY(!panel_->start());
    QCOMPARE(panel_->processId(), qint64(0));
    QVERIFY2(panel_->errorText().contains("256,x,64"), qPrintable(panel_->errorText()));

    // An asset folder without the token table: the trainer itself fails; its message and the
    // log's last lines are shown, and the state says Failed.
    QDir().mkpath(tmp_.filePath("noassets"));
    r = tiny(tmp_.filePath("bad"), 20);
    r.assetsDir = tmp_.filePath("noassets");
    panel_->setRequest(r);
    QSignalSpy state(panel_.get(), &TrainingPanel::stateChanged);
    QVERIFY(panel_->start());
    QTRY_VERIFY_WITH_TIMEOUT(panel_->state() == TrainState::Failed, 30000);
    QVERIFY2(panel_->errorText().contains("noassets") && panel_->errorText().contains("missing"),
             qPrintable(panel_->errorText()));
    QVERIFY2(panel_->errorText().contains("Last lines"), qPrintable(panel_->errorText()));
    QVERIFY(panel_->errorLabel()->isVisible());
    QVERIFY(panel_->startButton()->isEnabled());
    QVERIFY(!panel_->stopButton()->isEnabled());
    QVERIFY(panel_->logText().contains("error:"));
    panel_->grab().save(shotDir() + "/training_error.png");

    // The trainer dying (here: killed) is reported; the app carries on.
    r = tiny(tmp_.filePath("crash"), 1000);
    panel_->setRequest(r);
    QVERIFY(panel_->start());
    QTRY_VERIFY_WITH_TIMEOUT(panel_->currentStep() >= 1, 60000);
    QVERIFY(panel_->processId() > 0);
    ::kill(static_cast<pid_t>(panel_->processId()), SIGKILL);
    QTRY_VERIFY_WITH_TIMEOUT(panel_->state() == TrainState::Failed, 30000);
    QVERIFY2(panel_->errorText().contains("unexpectedly"), qPrintable(panel_->errorText()));
    QVERIFY2(panel_->progressBar()->text().contains("failed"), qPrintable(panel_->progressBar()->text()));
  }

  // Start, watch the charts move, stop (checkpoint, clean exit), resume (steps continue),
  // finish (modelReady).
  void startStopResumeFinish() {
    const QString out = tmp_.filePath("run");
    const int maxSteps = 60;
    panel_->setRequest(tiny(out, maxSteps));
    QSignalSpy ready(panel_.get(), &TrainingPanel::modelReady);
    QVERIFY(panel_->start());
    QVERIFY(!panel_->errorLabel()->isVisible());
    QCOMPARE(panel_->state(), TrainState::Running);
    QVERIFY(panel_->processId() > 0);
    QVERIFY(!panel_->startButton()->isEnabled() && panel_->stopButton()->isEnabled());

    // The loss chart gains points and draws them.
    auto* loss = panel_->lossChart();
    QTRY_VERIFY_WITH_TIMEOUT(loss->pointCount(0) >= 3, 60000);
    QVERIFY(panel_->throughputChart()->pointCount(0) >= 3);
    QVERIFY(panel_->progressBar()->value() >= 3);
    QVERIFY2(panel_->progressBar()->text().contains("/ 60"), qPrintable(panel_->progressBar()->text()));
    QTest::qWait(50);
    const QImage chart = loss->grab().toImage();
    const int blue = countColour(chart, loss->plotRect().toRect(), kLossBlue);
    QVERIFY2(blue > 20, qPrintable(QString::number(blue)));
    panel_->grab().save(shotDir() + "/training_running.png");

    // Stop: the trainer checkpoints and exits 0.
    panel_->stop();
    QTRY_VERIFY_WITH_TIMEOUT(panel_->state() == TrainState::Stopped, 60000);
    const QString ckpt = panel_->lastCheckpoint();
    QVERIFY(!ckpt.isEmpty());
    const int stoppedAt = QFileInfo(ckpt).fileName().mid(5).toInt();
    QVERIFY(stoppedAt >= 3);
    QVERIFY2(stoppedAt < maxSteps, "the run ended before it could be stopped");
    QVERIFY(panel_->logText().contains("interrupted: continue with --resume"));
    QVERIFY2(panel_->progressBar()->text().contains("stopped"), qPrintable(panel_->progressBar()->text()));
    QVERIFY(!QFile::exists(out + "/model.torch"));
    QCOMPARE(ready.count(), 0);
    QVERIFY(panel_->resumeButton()->isEnabled());
    QVERIFY(panel_->stateLabel()->text().contains(QString::number(stoppedAt)));
    panel_->grab().save(shotDir() + "/training_stopped.png");

    // Resume: continues from that step, to the end.
    QVERIFY(panel_->resume());
    QCOMPARE(panel_->resumedFrom(), qint64(stoppedAt));
    QVERIFY(ready.wait(120000) || ready.count() == 1);
    QCOMPARE(panel_->state(), TrainState::Finished);
    model_ = ready.first().first().toString();
    QCOMPARE(model_, QDir(out).filePath("model.torch"));
    QVERIFY(QFile::exists(model_));
    QVERIFY2(panel_->logText().contains(QString("resumed from %1").arg(stoppedAt)), qPrintable(panel_->logText()));
    // The first progress line of the resumed run is the step after the checkpoint.
    QVERIFY(panel_->logText().contains(QString("progress {\"step\":%1,").arg(stoppedAt + 1)));
    // metrics.jsonl holds each step once, in order, across the stop.
    const std::vector<long long> steps = metricSteps(out + "/metrics.jsonl");
    QCOMPARE(steps.size(), size_t(maxSteps));
    for (size_t i = 0; i < steps.size(); ++i) QCOMPARE(steps[i], static_cast<long long>(i + 1));
    QCOMPARE(loss->pointCount(0), size_t(maxSteps));
    QCOMPARE(loss->pointCount(1), size_t(maxSteps / 10));  // validation every 10 steps
    QCOMPARE(panel_->aurocChart()->pointCount(0), size_t(maxSteps / 10));
    QCOMPARE(panel_->progressBar()->value(), maxSteps);
    QTest::qWait(50);
    const QImage auroc = panel_->aurocChart()->grab().toImage();
    QVERIFY(countColour(auroc, panel_->aurocChart()->plotRect().toRect(), qRgb(44, 160, 44)) > 20);
    panel_->grab().save(shotDir() + "/training_finished.png");
    panel_->viewTabs()->setCurrentIndex(1);
    QTest::qWait(50);
    panel_->grab().save(shotDir() + "/training_log.png");
    panel_->viewTabs()->setCurrentIndex(0);
  }

  // The finished model embeds the synthetic data with `uce embed`.
  void finishedModelEmbeds() {
    QVERIFY(!model_.isEmpty());
    const QString out = tmp_.filePath("embedded.h5ad");
    QString o, e;
    const int rc = cli({"embed", "--adata", human_, "--out", out, "--assets", assets_, "--model", model_, "--species",
                        "human", "--nlayers", "2", "--nhead", "4", "--sample-size", "64", "--pad-length", "576",
                        "--threads", "1", "--quiet"},
                       &o, &e);
    QVERIFY2(rc == 0, qPrintable(e + o));
    auto ds = uce::openDataset(out.toStdString());
    const auto x = ds->readObsm("X_uce");
    QCOMPARE(static_cast<long long>(x.rows), static_cast<long long>(ds->cells()));
    QCOMPARE(static_cast<long long>(x.cols), 32LL);
  }

  // The fields come back in a new panel with the same settings; the output folder's run too.
  void settingsAreRemembered() {
    TrainRequest changed = panel_->request();
    changed.firstQkGain = 0.125;
    changed.encoderLrScale = 0.1;
    changed.downsampleTo = 1500;
    changed.viewConsistency = 0.1;
    changed.viewIsotropy = 0.3;
    changed.headHidden = "64, 32,16";
    changed.gradBucketMb = 2.5;
    changed.activationCheckpointing = true;
    changed.equalLengths = true;
    changed.bf16Layers = true;
    panel_->setRequest(changed);
    const TrainRequest before = panel_->request();
    const QStringList args = before.arguments("c.csv", false);
    QCOMPARE(args[args.indexOf("--first-qk-gain") + 1], QString("0.125"));
    QCOMPARE(args[args.indexOf("--encoder-lr-scale") + 1], QString("0.1"));
    QCOMPARE(args[args.indexOf("--downsample-to") + 1], QString("1500"));
    QCOMPARE(args[args.indexOf("--view-consistency") + 1], QString("0.1"));
    QCOMPARE(args[args.indexOf("--view-isotropy") + 1], QString("0.3"));
    QCOMPARE(args[args.indexOf("--head-hidden") + 1], QString("64,32,16"));
    QCOMPARE(args[args.indexOf("--grad-bucket-mb") + 1], QString("2.5"));
    QVERIFY2(args.contains("--activation-checkpointing") && args.contains("--equal-lengths") &&
                 args.contains("--bf16-layers"), qPrintable(args.join(' ')));
    auto* equal = panel_->findChild<QCheckBox*>("equalLengths");
    QVERIFY(equal && equal->isChecked());
    auto* bf16 = panel_->findChild<QCheckBox*>("bf16Layers");
    QVERIFY(bf16 && bf16->isChecked());
    equal->parentWidget()->grab().save(shotDir() + "/training_device.png");  // the Device group
    panel_.reset();  // saves
    TrainingPanel again(settings_.get());
    const TrainRequest after = again.request();
    QCOMPARE(after.arguments("c.csv", false), before.arguments("c.csv", false));
    auto* iso = again.findChild<QDoubleSpinBox*>("viewIsotropy");
    QVERIFY(iso && std::abs(iso->value() - 0.3) < 1e-9);
    iso->parentWidget()->grab().save(shotDir() + "/training_hyperparameters.png");  // the views' fields
    QCOMPARE(after.corpus.size(), size_t(2));
    QCOMPARE(after.corpus[1].species, QString("mouse"));
    // The finished run is shown again: its charts and a checkpoint to resume from.
    QCOMPARE(again.lossChart()->pointCount(0), size_t(60));
    QVERIFY(!again.lastCheckpoint().isEmpty());
    QVERIFY(again.resumeButton()->isEnabled());
  }
};

QTEST_MAIN(TestTrainingPanel)
#include "test_training_panel.moc"
