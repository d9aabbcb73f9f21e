// The Norn workflow (issue 7) end to end through NornWizard and NornWorkflow, on `uce synth`
// human kidney / lung / heart (4000 cells each). No trained UCE model exists in tests, so X_uce is
// a real-signal stand-in: a PCA (30 components, fitted on the three datasets together) of the
// log-normalised counts, written with uns['uce/model_sha256'] = "pca-test-model" by Python.
// A copy of lung carries another model identity, which the classifier must refuse.
// Steps build on each other (train -> apply -> results). Screenshots: norn_*.png.
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "norn_wizard.h"
#include "norn_workflow.h"
#include "test_support.h"
#include "uce/views/heatmap.h"

using namespace uce::gui;
using uce::test::cli;

namespace {
using uce::test::shotDir;
}  // namespace

class TestNornWorkflow : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  JobManager* jobs_ = nullptr;
  Workspace* ws_ = nullptr;
  NornWorkflow* wf_ = nullptr;
  NornWizard* wiz_ = nullptr;
  DatasetDoc *kidney_ = nullptr, *lung_ = nullptr, *heart_ = nullptr, *other_ = nullptr;

  QString file(const QString& tissue) const { return tmp_.filePath("world/human_" + tissue + ".h5ad"); }

  bool waitJob(Job* job, int ms = 60000) {
    QElapsedTimer t;
    t.start();
    while (!job->isFinished() && t.elapsed() < ms) QTest::qWait(20);
    return job->isFinished();
  }

  static std::vector<std::string> labels(const DatasetDoc* d, const QString& col) {
    std::vector<std::string> v;
    const uce::Column* c = d->column(col);
    for (size_t i = 0; c && i < c->size(); ++i) v.push_back(c->valueAsString(i));
    return v;
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    QString out, err;
    int rc = cli({"synth", "--out", tmp_.filePath("world"), "--cells", "12000", "--genes", "400", "--seed", "3",
                  "--species", "human", "--no-assets", "--quiet"},
                 &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    const QString script = QString(R"(
import anndata, numpy as np, shutil
from sklearn.decomposition import PCA
d = '%1'
ts = ['kidney', 'lung', 'heart']
ad = [anndata.read_h5ad(f'{d}/human_{t}.h5ad') for t in ts]
def lognorm(a):
    X = a.X.toarray().astype(np.float64)
    return np.log1p(X / np.maximum(X.sum(1, keepdims=True), 1) * 1e4)
L = [lognorm(a) for a in ad]
p = PCA(30, random_state=0).fit(np.vstack(L))
for t, a, x in zip(ts, ad, L):
    a.obsm['X_uce'] = p.transform(x).astype(np.float32)
    a.uns['uce/model_sha256'] = 'pca-test-model'
    a.write_h5ad(f'{d}/human_{t}.h5ad')
a = ad[1].copy()
a.uns['uce/model_sha256'] = 'another-model'
a.write_h5ad(f'{d}/human_other.h5ad')
)").arg(tmp_.filePath("world"));
    rc = uce::test::python(script, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));

    jobs_ = new JobManager(this);
    ws_ = new Workspace(jobs_, nullptr, this);
    for (const char* t : {"kidney", "lung", "heart", "other"}) {
      Job* j = ws_->open(file(t));
      QVERIFY(waitJob(j));
      QVERIFY2(j->status() == JobStatus::Done, qPrintable(j->errorText()));
    }
    kidney_ = ws_->document(file("kidney"));
    lung_ = ws_->document(file("lung"));
    heart_ = ws_->document(file("heart"));
    other_ = ws_->document(file("other"));
    QVERIFY(kidney_ && lung_ && heart_ && other_);
    QCOMPARE(kidney_->embeddingModelSha256(), QString("pca-test-model"));
    wf_ = new NornWorkflow(ws_, this);
    wiz_ = new NornWizard(wf_);
    wiz_->resize(960, 720);
    wiz_->show();
    QVERIFY(QTest::qWaitForWindowExposed(wiz_));
  }

  void cleanupTestCase() { delete wiz_; }

  void trainShowsCrossValidatedAccuracy() {
    QCOMPARE(wiz_->currentId(), int(NornWizard::ReferencePage));
    QVERIFY(!wiz_->button(QWizard::NextButton)->isEnabled());  // nothing trained yet
    wiz_->referenceBox()->setCurrentIndex(wiz_->referenceBox()->findText("human_kidney.h5ad"));
    QCOMPARE(wiz_->labelColumnBox()->currentText(), QString("cell_type"));
    QCOMPARE(wiz_->targetClassBox()->currentText(), QString("Norn cell"));  // offered by default
    QCOMPARE(wiz_->foldsBox()->value(), 5);
    QTest::mouseClick(wiz_->trainButton(), Qt::LeftButton);
    QVERIFY(jobs_->waitForAll(60000));
    QVERIFY2(wf_->hasClassifier(), qPrintable(wiz_->messageLabel()->text()));
    const auto& c = wf_->classifier();
    QCOMPARE(c.positive, std::string("Norn cell"));
    QCOMPARE(c.cv.folds, 5);
    QVERIFY2(c.cv.accuracy > 0.9, qPrintable(QString::number(c.cv.accuracy)));
    QVERIFY(c.cv.balancedAccuracy > 0.9);
    QVERIFY(c.fit.converged);
    QCOMPARE(c.embeddingModel, std::string("pca-test-model"));
    const QString shown = wiz_->accuracyLabel()->text();
    QVERIFY2(shown.contains("Cross-validated accuracy (5-fold): " + QString::number(c.cv.accuracy * 100, 'f', 1) + " %"),
             qPrintable(shown));
    QVERIFY(wiz_->button(QWizard::NextButton)->isEnabled());
    wiz_->grab().save(shotDir() + "/norn_1_train.png");
  }

  void applyFindsNornCellsInOtherTissues() {
    wiz_->next();
    QCOMPARE(wiz_->currentId(), int(NornWizard::TargetsPage));
    QListWidget* list = wiz_->targetList();
    QCOMPARE(list->count(), 3);  // every open dataset but the reference
    for (int i = 0; i < list->count(); ++i)
      if (list->item(i)->text().contains("other")) list->item(i)->setCheckState(Qt::Unchecked);
    QTest::mouseClick(wiz_->applyButton(), Qt::LeftButton);
    QVERIFY(jobs_->waitForAll(60000));
    for (DatasetDoc* d : {lung_, heart_}) {
      QVERIFY(wf_->hasPrediction(d));
      const auto truth = labels(d, "cell_type");
      const auto pred = labels(d, "predicted_cell_type");  // the annotation column the map colours by
      QCOMPARE(pred.size(), truth.size());
      QVERIFY(d->annotationColumns().contains("predicted_cell_type"));
      QVERIFY(d->annotationColumns().contains("predicted_cell_type_confidence"));
      // The probability as a numeric column, equal to the prediction's.
      const uce::Column* prob = d->column("predicted_cell_type_probability");
      QVERIFY(prob && prob->kind == uce::ColumnKind::Float);
      const auto* pr = wf_->prediction(d);
      QVERIFY(pr);
      for (size_t i = 0; i < prob->floats.size(); ++i)
        QVERIFY(std::isnan(prob->floats[i]) ? std::isnan(pr->probability[i]) : prob->floats[i] == pr->probability[i]);
      int tp = 0, fp = 0, fn = 0;
      for (size_t i = 0; i < truth.size(); ++i) {
        const bool t = truth[i] == "Norn cell", p = pred[i] == "Norn cell";
        tp += t && p, fp += !t && p, fn += t && !p;
      }
      const double recall = double(tp) / (tp + fn), precision = double(tp) / std::max(1, tp + fp);
      QVERIFY2(tp + fn >= 10, "too few true Norn cells for the check");
      QVERIFY2(recall > 0.8 && precision > 0.8,
               qPrintable(QString("%1: recall %2 precision %3").arg(d->name()).arg(recall).arg(precision)));
      QCOMPARE(wf_->prediction(d)->count("Norn cell"), qint64(tp + fp));
      QVERIFY(wiz_->applyStatus()->text().contains(d->name()));
    }
    QVERIFY(!wf_->hasPrediction(other_));
    QVERIFY(wiz_->button(QWizard::NextButton)->isEnabled());
    wiz_->grab().save(shotDir() + "/norn_2_apply.png");
  }

  void anotherModelsEmbeddingIsRefused() {
    Job* j = wf_->apply(other_);
    QVERIFY(waitJob(j));
    QCOMPARE(j->status(), JobStatus::Failed);
    QVERIFY2(j->errorText().contains("another-mode") && j->errorText().contains("pca-test-mod") &&
                 j->errorText().contains("embed this dataset with that model"),
             qPrintable(j->errorText()));
    QVERIFY(!wf_->hasPrediction(other_));
  }

  // "Apply to the whole atlas": one click predicts every open embedded dataset (the reference
  // too); the dataset embedded by another model is refused with a message; the atlas line adds
  // up the Norn-like cells of every dataset.
  void wholeAtlasInOneAction() {
    QCOMPARE(wiz_->currentId(), int(NornWizard::TargetsPage));
    QVERIFY(!wf_->hasPrediction(kidney_));
    QTest::mouseClick(wiz_->applyAtlasButton(), Qt::LeftButton);
    QVERIFY(jobs_->waitForAll(60000));
    qint64 total = 0, cells = 0;
    for (DatasetDoc* d : {kidney_, lung_, heart_}) {
      QVERIFY2(wf_->hasPrediction(d), qPrintable(d->name()));
      total += wf_->prediction(d)->count("Norn cell");
      cells += d->cells();
      QVERIFY(wiz_->applyStatus()->text().contains(d->name()));
    }
    QVERIFY(!wf_->hasPrediction(other_));
    QVERIFY2(wiz_->messageLabel()->text().contains("another-mode"), qPrintable(wiz_->messageLabel()->text()));
    // Kidney holds the most Norn cells (its reference labels), lung and heart a few.
    QVERIFY(wf_->prediction(kidney_)->count("Norn cell") > wf_->prediction(heart_)->count("Norn cell"));
    const QString summary = wiz_->atlasSummary()->text();
    QVERIFY2(summary.startsWith(QString("Atlas: %1 of %2 cells predicted 'Norn cell'").arg(total).arg(cells)),
             qPrintable(summary));
    for (DatasetDoc* d : {kidney_, lung_, heart_}) QVERIFY2(summary.contains(d->name()), qPrintable(summary));
    wiz_->grab().save(shotDir() + "/norn_2b_whole_atlas.png");
  }

  void confusionMatrixCountsCells() {
    wiz_->next();
    QCOMPARE(wiz_->currentId(), int(NornWizard::ResultsPage));
    wiz_->resultTabs()->setCurrentIndex(0);
    wiz_->confusionDatasetBox()->setCurrentIndex(wiz_->confusionDatasetBox()->findText("human_heart.h5ad"));
    wiz_->confusionTruthBox()->setCurrentIndex(wiz_->confusionTruthBox()->findText("cell_type"));
    ConfusionMatrix m;
    QVERIFY(wf_->confusion(heart_, "cell_type", &m));
    const auto truth = labels(heart_, "cell_type"), pred = labels(heart_, "predicted_cell_type");
    qint64 total = 0;
    for (int i = 0; i < m.truth.size(); ++i)
      for (int j = 0; j < m.predicted.size(); ++j) {
        qint64 direct = 0;
        for (size_t k = 0; k < truth.size(); ++k)
          direct += truth[k] == m.truth[i].toStdString() && pred[k] == m.predicted[j].toStdString();
        QCOMPARE(m.counts[size_t(i)][size_t(j)], direct);
        total += direct;
      }
    QCOMPARE(m.total, qint64(truth.size()));
    QCOMPARE(total, m.total);
    auto* chart = wiz_->confusionChart();
    QCOMPARE(chart->rowCount(), int(m.truth.size()));
    QCOMPARE(chart->value(int(m.truth.indexOf("Norn cell")), int(m.predicted.indexOf("Norn cell"))),
             double(m.at("Norn cell", "Norn cell")));
    // The biggest count is the darkest cell on screen.
    QTest::qWait(50);
    const QImage img = chart->grab().toImage();
    const int r = int(m.truth.indexOf("cardiac muscle cell")), c = int(m.predicted.indexOf("rest"));
    const QColor px = img.pixelColor(chart->cellRect(r, c).topLeft().toPoint() + QPoint(3, 3));
    QVERIFY2(px.blue() > px.red() + 60, qPrintable(px.name()));
    wiz_->grab().save(shotDir() + "/norn_3_confusion.png");
  }

  void markerPanelShowsNornMarkersUp() {
    wiz_->resultTabs()->setCurrentIndex(1);
    QCOMPARE(wiz_->markerGenesEdit()->text(), QString("DCN, LPAR1, COL1A1, CXCL12, CFH, CXCL14, EPO"));
    QTest::mouseClick(wiz_->markerButton(), Qt::LeftButton);
    QVERIFY(jobs_->waitForAll(60000));
    const MarkerPanel& p = wf_->lastMarkerPanel();
    QCOMPARE(p.genes.size(), 7);
    QCOMPARE(p.datasets.size(), 3);  // datasets with predictions (the whole atlas): kidney, lung, heart
    for (const char* tissue : {"(kidney)", "(lung)", "(heart)"})
      QVERIFY2(p.datasets.filter(tissue).size() == 1, qPrintable(p.datasets.join("|")));
    for (int d = 0; d < 3; ++d) {
      int up = 0;
      for (int g = 0; g < 7; ++g) up += p.log2fc[size_t(g)][size_t(d)] > 1;
      QVERIFY2(up >= 5, qPrintable(p.datasets[d] + ": " + QString::number(up) + " of 7 markers up"));
    }
    auto* chart = wiz_->markerChart();
    QCOMPARE(chart->rowCount(), 7);
    QTest::qWait(50);
    const QImage img = chart->grab().toImage();
    const QColor dcn = img.pixelColor(chart->cellRect(0, 0).topLeft().toPoint() + QPoint(3, 3));
    QVERIFY2(dcn.red() > dcn.blue() + 40, qPrintable(dcn.name()));  // red = up
    wiz_->grab().save(shotDir() + "/norn_4_markers.png");
  }

  void groupComparisonMatchesScipy() {
    wiz_->resultTabs()->setCurrentIndex(2);
    wiz_->groupDatasetBox()->setCurrentIndex(wiz_->groupDatasetBox()->findText("human_kidney.h5ad"));
    // Kidney has no predictions yet: apply there too, then compare Norn cells by disease.
    Job* j = wf_->apply(kidney_);
    QVERIFY(waitJob(j));
    QCOMPARE(j->status(), JobStatus::Done);
    wiz_->conditionBox()->setCurrentIndex(wiz_->conditionBox()->findText("disease"));
    QCOMPARE(wiz_->referenceGroupBox()->currentText(), QString("normal"));
    wiz_->featuresEdit()->setText("EPO, DCN, DCN:COL1A1");
    QTest::mouseClick(wiz_->compareButton(), Qt::LeftButton);
    QVERIFY(jobs_->waitForAll(60000));
    const GroupComparison& g = wf_->lastGroupComparison();
    QVERIFY2(g.tests.size() == 3, qPrintable(wiz_->messageLabel()->text()));
    QCOMPARE(g.groups, QStringList({"normal", "chronic kidney disease"}));
    // Every compared cell is a predicted Norn cell.
    const qint64 n = g.tests[0].nGroup + g.tests[0].nReference;
    QCOMPARE(n, wf_->prediction(kidney_)->count("Norn cell"));
    // scipy on the same numbers.
    QString py = "from scipy.stats import mannwhitneyu\nres=[]\n";
    for (int f = 0; f < 3; ++f) {
      QStringList a, b;
      for (double v : g.values[size_t(f)][1]) a << QString::number(v, 'g', 17);
      for (double v : g.values[size_t(f)][0]) b << QString::number(v, 'g', 17);
      py += QString("res.append(mannwhitneyu([%1],[%2],method='asymptotic',use_continuity=False).pvalue)\n")
                .arg(a.join(","), b.join(","));
    }
    py += "print(' '.join(repr(float(x)) for x in res))\n";
    QString out, err;
    QVERIFY2(uce::test::python(py, &out, &err) == 0, qPrintable(err));
    const QStringList ps = out.trimmed().split(' ');
    QCOMPARE(ps.size(), 3);
    for (int f = 0; f < 3; ++f) {
      const double ref = ps[f].toDouble(), got = g.tests[f].pval;
      QVERIFY2(std::fabs(got - ref) <= 1e-9 * std::max(ref, 1e-300) + 1e-15,
               qPrintable(QString("%1: %2 vs scipy %3").arg(g.tests[f].feature).arg(got).arg(ref)));
    }
    // EPO falls in kidney Norn cells under chronic kidney disease (synth's design).
    const GroupTest* epo = g.test("EPO", "chronic kidney disease");
    QVERIFY(epo && epo->pval < 0.01 && epo->meanGroup < epo->meanReference);
    auto* chart = wiz_->groupChart();
    QCOMPARE(chart->featureCount(), 3);
    QVERIFY(!chart->boxRect(0, 0).isEmpty());
    wiz_->grab().save(shotDir() + "/norn_5_groups.png");
  }

  void chartsExportPngAndSvg() {
    QStringList written;
    QString err;
    QVERIFY(QDir().mkpath(tmp_.filePath("charts")));
    QVERIFY2(wiz_->exportCharts(tmp_.filePath("charts"), &written, &err), qPrintable(err));
    QCOMPARE(written.size(), 6);
    for (const QString& f : written) QVERIFY2(QFileInfo(f).size() > 500, qPrintable(f));
    const QByteArray svg = uce::test::readAll(tmp_.filePath("charts/norn_markers.svg"));
    QVERIFY(svg.contains("<svg") && svg.contains("DCN") && svg.contains("<rect"));
    QVERIFY(QImage(tmp_.filePath("charts/norn_groups.png")).width() == 900);
  }

  void classifierSavesAndLoads() {
    const QString path = tmp_.filePath("norn.json");
    QVERIFY(wf_->saveClassifier(path));
    const auto before = wf_->prediction(lung_)->code;
    NornWorkflow other(ws_);
    QString err;
    QVERIFY(!other.loadClassifier(tmp_.filePath("missing.json"), &err));
    QVERIFY2(err.contains("missing.json"), qPrintable(err));
    QVERIFY2(other.loadClassifier(path, &err), qPrintable(err));
    QCOMPARE(other.classifier().positive, std::string("Norn cell"));
    QCOMPARE(other.classifier().cv.accuracy, wf_->classifier().cv.accuracy);
    Job* j = other.apply(lung_);
    QVERIFY(waitJob(j));
    QCOMPARE(j->status(), JobStatus::Done);
    QVERIFY(other.prediction(lung_)->code == before);
    Job* refused = other.apply(other_);
    QVERIFY(waitJob(refused));
    QCOMPARE(refused->status(), JobStatus::Failed);
    QVERIFY2(refused->errorText().contains("another-mode"), qPrintable(refused->errorText()));
  }
};

QTEST_MAIN(TestNornWorkflow)
#include "test_norn_workflow.moc"
