// The Norn workflow (issue 7) on the demo world with real UCE embeddings: human kidney, lung and
// heart drawn from the demo model's world (`uce synth --seed 7 --genes 2000 --type-genes 80`,
// the demo atlas's genes and tokens; 2,500 cells a dataset so that lung and heart hold enough
// Norn cells to count), embedded with the bundled demo model by `uce embed`, then NornWorkflow:
// a Norn-vs-rest classifier trained on kidney finds the Norn cells of lung and heart, and the
// marker panel shows their markers up. (test_norn_workflow.cpp covers every step of the wizard
// on stand-in embeddings.)
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>

#include "norn_workflow.h"
#include "test_support.h"

using namespace uce::gui;
using uce::test::cli;

class TestNornDemo : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  JobManager* jobs_ = nullptr;
  Workspace* ws_ = nullptr;
  NornWorkflow* wf_ = nullptr;
  DatasetDoc *kidney_ = nullptr, *lung_ = nullptr, *heart_ = nullptr;

  QString embedded(const QString& tissue) const { return tmp_.filePath("human_" + tissue + "_uce.h5ad"); }

  bool waitJob(Job* job, int ms = 120000) {
    QElapsedTimer t;
    t.start();
    while (!job->isFinished() && t.elapsed() < ms) QTest::qWait(20);
    return job->isFinished();
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    const QString model = UCE_SOURCE_DIR "/resources/demo_model/model.torch";
    QVERIFY2(QFile::exists(model), qPrintable(model));
    const QString world = tmp_.filePath("world");
    QString out, err;
    QCOMPARE(cli({"synth", "--out", world, "--cells", "15000", "--genes", "2000", "--seed", "7", "--type-genes", "80",
                  "--gene-positions", UCE_GENE_POSITIONS, "--quiet"},
                 &out, &err),
             0);
    // The same token table as the demo atlas the model belongs to.
    QCOMPARE(uce::test::readAll(world + "/assets/all_tokens.torch"),
             uce::test::readAll(QString(UCE_DEMO_DIR) + "/assets/all_tokens.torch"));
    for (const char* t : {"kidney", "lung", "heart"}) {
      const int rc = cli({"embed", "--adata", world + "/human_" + t + ".h5ad", "--out", embedded(t), "--assets",
                          world + "/assets", "--model", model, "--species", "human", "--nhead", "4", "--sample-size",
                          "512", "--threads", "2", "--quiet"},
                         &out, &err);
      QVERIFY2(rc == 0, qPrintable(err));
    }
    jobs_ = new JobManager(this);
    ws_ = new Workspace(jobs_, nullptr, this);
    for (const char* t : {"kidney", "lung", "heart"}) {
      Job* j = ws_->open(embedded(t));
      QVERIFY(waitJob(j));
      QVERIFY2(j->status() == JobStatus::Done, qPrintable(j->errorText()));
    }
    kidney_ = ws_->document(embedded("kidney"));
    lung_ = ws_->document(embedded("lung"));
    heart_ = ws_->document(embedded("heart"));
    QVERIFY(kidney_ && lung_ && heart_);
    QVERIFY(kidney_->hasEmbedding());
    QVERIFY(!kidney_->embeddingModelSha256().isEmpty());
    wf_ = new NornWorkflow(ws_, this);
  }

  void classifierFromKidneyFindsNornCellsInLungAndHeart() {
    NornTrainSettings s;
    s.positive = "Norn cell";
    Job* j = wf_->train(kidney_, s);
    QVERIFY(waitJob(j));
    QVERIFY2(j->status() == JobStatus::Done, qPrintable(j->errorText()));
    QVERIFY(wf_->hasClassifier());
    QVERIFY2(wf_->classifier().cv.balancedAccuracy > 0.95, qPrintable(QString::number(wf_->classifier().cv.balancedAccuracy)));
    for (DatasetDoc* d : {lung_, heart_}) {
      Job* a = wf_->apply(d);
      QVERIFY(waitJob(a));
      QVERIFY2(a->status() == JobStatus::Done, qPrintable(a->errorText()));
      const uce::Column* truth = d->column("cell_type");
      const uce::Column* pred = d->column("predicted_cell_type");
      QVERIFY(truth && pred && truth->size() == pred->size());
      int tp = 0, fp = 0, fn = 0;
      for (size_t i = 0; i < truth->size(); ++i) {
        const bool t = truth->valueAsString(i) == "Norn cell", p = pred->valueAsString(i) == "Norn cell";
        tp += t && p, fp += !t && p, fn += t && !p;
      }
      const double recall = double(tp) / std::max(1, tp + fn), precision = double(tp) / std::max(1, tp + fp);
      qInfo("%s: %d Norn cells, %d predicted, recall %.3f, precision %.3f", qPrintable(d->name()), tp + fn, tp + fp,
            recall, precision);
      QVERIFY2(tp + fn >= 8, "too few true Norn cells for the check");
      QVERIFY2(recall >= 0.9 && precision >= 0.8,
               qPrintable(QString("%1: recall %2 precision %3").arg(d->name()).arg(recall).arg(precision)));
    }
  }

  // The same classifier on the demo atlas the app ships (build/demo: 500 cells a dataset, a
  // few Norn cells in lung and heart), embedded the way `uce-atlas --demo` does (1,024 genes).
  void findsTheNornCellsOfTheShippedDemoAtlas() {
    QVERIFY(wf_->hasClassifier());
    const QString model = UCE_SOURCE_DIR "/resources/demo_model/model.torch";
    int truthAll = 0, hitAll = 0, predAll = 0;
    for (const char* t : {"lung", "heart"}) {
      const QString out = tmp_.filePath(QString("demo_") + t + ".h5ad");
      QString o, e;
      const int rc = cli({"embed", "--adata", QString(UCE_DEMO_DIR) + "/human_" + t + ".h5ad", "--out", out, "--assets",
                          QString(UCE_DEMO_DIR) + "/assets", "--model", model, "--species", "human", "--nhead", "4",
                          "--sample-size", "1024", "--threads", "2", "--quiet"},
                         &o, &e);
      QVERIFY2(rc == 0, qPrintable(e));
      Job* j = ws_->open(out);
      QVERIFY(waitJob(j));
      DatasetDoc* d = ws_->document(out);
      QVERIFY(d);
      Job* a = wf_->apply(d);
      QVERIFY(waitJob(a));
      QVERIFY2(a->status() == JobStatus::Done, qPrintable(a->errorText()));
      const uce::Column* truth = d->column("cell_type");
      const uce::Column* pred = d->column("predicted_cell_type");
      int n = 0, hit = 0, p = 0;
      for (size_t i = 0; i < truth->size(); ++i) {
        const bool isNorn = truth->valueAsString(i) == "Norn cell", said = pred->valueAsString(i) == "Norn cell";
        n += isNorn, hit += isNorn && said, p += said;
      }
      qInfo("demo atlas human %s: %d Norn cells, %d predicted, %d of them right", t, n, p, hit);
      truthAll += n, hitAll += hit, predAll += p;
    }
    QVERIFY2(truthAll >= 3, qPrintable(QString::number(truthAll)));
    QVERIFY2(hitAll >= truthAll - 1 && predAll <= truthAll + 2,
             qPrintable(QString("%1 Norn cells, %2 found, %3 predicted").arg(truthAll).arg(hitAll).arg(predAll)));
  }

  void predictedCellsShowTheNornMarkers() {
    Job* j = wf_->markerPanel({lung_, heart_}, {"DCN", "LPAR1", "COL1A1", "CXCL12", "CFH", "CXCL14", "EPO"});
    QVERIFY(waitJob(j));
    QVERIFY2(j->status() == JobStatus::Done, qPrintable(j->errorText()));
    const MarkerPanel& p = wf_->lastMarkerPanel();
    QCOMPARE(p.genes.size(), 7);
    QCOMPARE(p.datasets.size(), 2);  // lung and heart carry predictions
    for (int d = 0; d < p.datasets.size(); ++d) {
      int up = 0;
      for (int g = 0; g < 7; ++g) up += p.log2fc[size_t(g)][size_t(d)] > 1;
      QVERIFY2(up >= 5, qPrintable(p.datasets[d] + ": " + QString::number(up) + " of 7 markers up"));
    }
  }
};

QTEST_MAIN(TestNornDemo)
#include "test_norn_demo.moc"
