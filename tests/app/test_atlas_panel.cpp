// The Atlas tab (issue 7, "Atlas and centroids"): an atlas built from 4 synthetic datasets with
// a per-dataset sample, saved and reopened, its map, a 5th dataset placed on it, the centroid
// table of human vs mouse cell types (same top-1 agreement as `uce centroids`), the dendrogram
// (leaves = centroid names; clicking one selects its cells), and cell search with the vote.
// Data: `uce synth` (900 cells, 6 datasets) with obsm["X_uce"] = a PCA of log counts over the
// genes the species share (written by /usr/bin/python3 + sklearn; one model identity).
// Screenshots: <build>/test-screenshots/atlas_*.png.
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <map>
#include <set>
#include <memory>

#include "atlas_controller.h"
#include "atlas_panel.h"
#include "jobs.h"
#include "test_support.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/views/dendrogram.h"
#include "uce/views/scatter_map.h"

using namespace uce::gui;
using uce::test::cli;

namespace {

using uce::test::shotDir;

std::vector<std::string> obsText(const QString& path, const char* col) {
  auto ds = uce::openDataset(path.toStdString());
  const uce::Column* c = ds->obs().find(col);
  std::vector<std::string> v(static_cast<size_t>(ds->cells()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = c ? c->valueAsString(i) : std::string();
  return v;
}

const char* kEmbed = R"PY(
import sys, anndata as ad, numpy as np
from sklearn.decomposition import PCA
files = sys.argv[1:]
mats, names = [], []
for f in files:
    a = ad.read_h5ad(f)
    X = a.X.toarray() if hasattr(a.X, 'toarray') else np.asarray(a.X)
    mats.append(np.log1p(X / np.maximum(X.sum(1, keepdims=True), 1) * 1e4))
    names.append(list(a.var_names.str.upper()))
genes = sorted(set.intersection(*[set(n) for n in names]))
mats = [m[:, [n.index(g) for g in genes]] for m, n in zip(mats, names)]
pca = PCA(n_components=16, random_state=0).fit(np.vstack(mats))
for f, X in zip(files, mats):
    a = ad.read_h5ad(f)
    a.obsm['X_uce'] = pca.transform(X).astype(np.float32)
    a.uns['uce/model_sha256'] = 'a' * 64
    a.write_h5ad(f)
)PY";

}  // namespace

class TestAtlasPanel : public QObject {
  Q_OBJECT

  QTemporaryDir tmp_;
  QString world_;
  QString file(const char* n) const { return world_ + "/" + n + ".h5ad"; }
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<AtlasController> controller_;
  std::unique_ptr<AtlasPanel> panel_;
  QString atlasDir_;

  void waitDone(Job* j) {
    QVERIFY(j);
    QVERIFY(jobs_->waitForAll(120000));
    QVERIFY2(j->status() == JobStatus::Done, qPrintable(j->errorText()));
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    world_ = tmp_.filePath("world");
    QString out, err;
    int rc = cli({"synth", "--out", world_, "--cells", "900", "--genes", "400", "--seed", "3", "--no-assets", "--quiet"},
                 &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    const QString script = tmp_.filePath("embed.py");
    uce::test::writeAll(script, kEmbed);
    QStringList args{script};
    for (auto n : {"human_kidney", "human_lung", "human_heart", "mouse_kidney", "mouse_lung", "mouse_heart"})
      args << file(n);
    rc = uce::test::run(UCE_PYTHON, args, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    jobs_ = std::make_unique<JobManager>();
    controller_ = std::make_unique<AtlasController>(jobs_.get());
    panel_ = std::make_unique<AtlasPanel>(controller_.get());
    panel_->resize(1500, 900);
    panel_->show();
    QVERIFY(QTest::qWaitForWindowExposed(panel_.get()));
    atlasDir_ = tmp_.filePath("atlas");
  }

  void buildSampledAtlasAndReopen() {
    AtlasBuildRequest r;
    r.files = {file("human_kidney"), file("human_lung"), file("mouse_kidney"), file("mouse_lung")};
    r.outDir = atlasDir_;
    r.labelColumns = {"cell_type", "tissue", "species"};
    r.maxCellsPerDataset = 100;
    r.seed = 5;
    waitDone(panel_->buildAtlas(r));
    auto a = controller_->atlas();
    QVERIFY(a);
    QCOMPARE(a->cells(), qint64(400));
    QCOMPARE(a->info.datasets.size(), size_t(4));
    for (const auto& d : a->info.datasets) {
      QCOMPARE(d.cells, int64_t(150));
      QCOMPARE(d.sampled, int64_t(100));
    }
    QCOMPARE(int64_t(a->embedding.size()), a->cells() * 16);
    QVERIFY(QFile::exists(atlasDir_ + "/embedding.f32"));
    QVERIFY(panel_->infoLabel()->text().contains("400 cells"));

    waitDone(panel_->computeMap());
    QVERIFY(controller_->atlas()->hasMap());
    QVERIFY(QFile::exists(atlasDir_ + "/map.csv"));
    QCOMPARE(panel_->map()->pointCount(), size_t(400));

    // Reopened by a fresh controller: the same atlas, map included.
    AtlasController other(jobs_.get());
    waitDone(other.openAtlas(atlasDir_));
    auto b = other.atlas();
    QCOMPARE(b->cells(), a->cells());
    QCOMPARE(b->info.labelColumns, a->info.labelColumns);
    QCOMPARE(b->info.modelSha256, a->info.modelSha256);
    for (size_t i = 0; i < 4; ++i) QCOMPARE(b->info.datasets[i].sampled, a->info.datasets[i].sampled);
    QCOMPARE(b->labels, a->labels);
    QCOMPARE(b->row, a->row);
    QCOMPARE(b->embedding, a->embedding);
    const auto& am = controller_->atlas()->map;
    QCOMPARE(b->map.size(), am.size());
    for (size_t i = 0; i < am.size(); ++i) QVERIFY(std::abs(b->map[i] - am[i]) < 1e-5f);
  }

  void placeDataset() {
    waitDone(panel_->placeDataset(file("human_heart")));
    auto p = controller_->placement();
    auto a = controller_->atlas();
    QVERIFY(p);
    QCOMPARE(p->atlasCells, qint64(400));
    QCOMPARE(p->queryCells, qint64(150));
    QCOMPARE(p->placed, qint64(150));
    int query = 0;
    for (auto f : p->isQuery) query += f;
    QCOMPARE(query, 150);
    for (float v : p->coords) QVERIFY(std::isfinite(v));
    QCOMPARE(panel_->map()->pointCount(), size_t(550));
    // Placed cells land next to atlas cells of their own type (types the atlas knows).
    const auto types = obsText(file("human_heart"), "cell_type");
    std::set<std::string> known(a->labels[0].begin(), a->labels[0].end());
    int tested = 0, same = 0;
    for (int64_t q = 0; q < 150; ++q) {
      if (!known.count(types[static_cast<size_t>(q)])) continue;
      const float* x = p->coords.data() + (400 + q) * 2;
      double best = 1e300;
      int64_t at = -1;
      for (int64_t i = 0; i < 400; ++i) {
        const double d = std::hypot(x[0] - p->coords[i * 2], x[1] - p->coords[i * 2 + 1]);
        if (d < best) best = d, at = i;
      }
      ++tested;
      same += a->labels[0][static_cast<size_t>(at)] == types[static_cast<size_t>(q)];
    }
    QVERIFY(tested > 50);
    QVERIFY2(same > tested * 0.6, qPrintable(QString("%1 of %2").arg(same).arg(tested)));
    // Query vs atlas colouring: the placed cells drawn in palette colour 0 where they are.
    panel_->colourBy()->setCurrentIndex(panel_->colourBy()->count() - 1);
    QTest::qWait(300);
    const QImage img = panel_->map()->grabFramebuffer();
    const QRgb c0 = uce::views::ScatterMap::categoryColor(0);
    int hits = 0;
    for (int64_t q = 0; q < 150; q += 5) {
      const QPointF pt = panel_->map()->project(static_cast<size_t>(400 + q)) * img.devicePixelRatio();
      for (int dy = -2; dy <= 2; ++dy)
        for (int dx = -2; dx <= 2; ++dx) {
          const QPoint pp(int(pt.x()) + dx, int(pt.y()) + dy);
          if (!img.rect().contains(pp)) continue;
          const QRgb px = img.pixel(pp);
          if (std::abs(qRed(px) - qRed(c0)) < 40 && std::abs(qGreen(px) - qGreen(c0)) < 40 &&
              std::abs(qBlue(px) - qBlue(c0)) < 40) {
            ++hits;
            dy = dx = 3;
          }
        }
    }
    QVERIFY2(hits >= 20, qPrintable(QString::number(hits)));
    QVERIFY(panel_->grab().save(shotDir() + "/atlas_placed.png"));
  }

  void centroidAgreementMatchesCli() {
    // Reference: an atlas of the mouse files (every cell), so it holds what `uce centroids` reads.
    AtlasController mouseAtlas(jobs_.get());
    AtlasBuildRequest r;
    r.files = {file("mouse_kidney"), file("mouse_lung")};
    r.outDir = tmp_.filePath("mouse_atlas");
    r.labelColumns = {"cell_type"};
    waitDone(mouseAtlas.buildAtlas(r));
    CentroidRequest c;
    c.query.files = {file("human_kidney"), file("human_lung")};
    c.reference.atlas = true;
    const CentroidResult res = computeCentroidTable(c, mouseAtlas.atlas().get());

    QString out, err;
    const int rc = cli({"centroids", "--adata", file("human_kidney") + "," + file("human_lung"), "--adata2",
                        file("mouse_kidney") + "," + file("mouse_lung"), "--label", "cell_type", "--out",
                        tmp_.filePath("c.csv")},
                       &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    QRegularExpression re(R"(k=1\): (\d+)/(\d+).*k=3\): (\d+)/(\d+))");
    auto m = re.match(out);
    QVERIFY2(m.hasMatch(), qPrintable(out));
    QCOMPARE(res.score.hitsAt1, m.captured(1).toLongLong());
    QCOMPARE(res.score.shared, m.captured(2).toLongLong());
    QCOMPARE(res.score.hitsAt3, m.captured(3).toLongLong());
    QVERIFY(res.score.at1() > 0.7);
    // The CSV table is the CLI's, apart from the source names.
    QCOMPARE(res.csv.count('\n'), uce::test::readAll(tmp_.filePath("c.csv")).count('\n'));
  }

  void centroidTableAndDendrogram() {
    // Human vs mouse inside the (sampled) atlas: species is the group.
    CentroidRequest c;
    c.query.atlas = c.reference.atlas = true;
    c.query.group = c.reference.group = "species";
    c.query.groupValue = "human";
    c.reference.groupValue = "mouse";
    waitDone(panel_->computeCentroids(c));
    auto res = controller_->centroids();
    QVERIFY(res && res->score.shared > 10);
    QVERIFY(panel_->scoreLabel()->text().contains("top-1"));
    QCOMPARE(panel_->centroidModel()->rowCount(), int(res->query.size()));
    // Sortable: by own distance, ascending.
    panel_->centroidTable()->sortByColumn(3, Qt::AscendingOrder);
    auto* proxy = panel_->centroidTable()->model();
    double prev = -1;
    for (int r = 0; r < proxy->rowCount(); ++r) {
      const QVariant v = proxy->index(r, 3).data();
      if (!v.isValid() || v.toString().isEmpty()) continue;
      QVERIFY(v.toDouble() >= prev);
      prev = v.toDouble();
    }
    // Leaves = the reference centroid names.
    auto* tree = panel_->dendrogram();
    QStringList names;
    for (const auto& n : res->reference.names) names << QString::fromStdString(n);
    QCOMPARE(tree->labels(), names);
    QCOMPARE(tree->leafCount(), int(names.size()));

    // Click the leaf "T cell": signal with its name, its cells selected on the atlas map.
    const int leaf = int(names.indexOf("T cell"));
    QVERIFY(leaf >= 0);
    QSignalSpy spy(panel_.get(), &AtlasPanel::centroidClicked);
    const QRectF lr = tree->leafLabelRect(leaf);
    QVERIFY(!lr.isEmpty());
    QCOMPARE(tree->leafAt(lr.center()), leaf);
    QTest::mouseClick(tree, Qt::LeftButton, {}, QPoint(int(lr.left()) + 8, int(lr.center().y())));
    QCOMPARE(spy.count(), 1);
    QCOMPARE(spy.at(0).at(0).toString(), QString("T cell"));
    const auto rows = res->rowsOf("T cell");
    QVERIFY(!rows.empty());
    auto a = controller_->atlas();
    for (int64_t r : rows) {
      QCOMPARE(QString::fromStdString(a->labels[0][size_t(r)]), QString("T cell"));
      QCOMPARE(QString::fromStdString(a->labels[2][size_t(r)]), QString("mouse"));
    }
    QCOMPARE(panel_->map()->selection().size(), rows.size());
    QCOMPARE(tree->highlightedLeaf(), leaf);
    // The highlighted label is drawn red.
    const QImage img = tree->renderImage();
    int red = 0;
    const QRect box = lr.toAlignedRect();
    for (int y = box.top(); y <= box.bottom(); ++y)
      for (int x = box.left(); x <= box.right(); ++x) {
        const QRgb p = img.pixel(x, y);
        if (qRed(p) > 180 && qGreen(p) < 90 && qBlue(p) < 90) ++red;
      }
    QVERIFY2(red > 10, qPrintable(QString::number(red)));
    // Export as PNG and SVG.
    QString err;
    QVERIFY2(panel_->exportDendrogram(shotDir() + "/atlas_dendrogram.png", &err), qPrintable(err));
    QVERIFY2(panel_->exportDendrogram(tmp_.filePath("tree.svg"), &err), qPrintable(err));
    const QByteArray svg = uce::test::readAll(tmp_.filePath("tree.svg"));
    QVERIFY(svg.startsWith("<?xml") || svg.contains("<svg"));
    QVERIFY(svg.contains("T cell"));
    QVERIFY(panel_->grab().save(shotDir() + "/atlas_centroids.png"));
  }

  void cellSearchVotes() {
    const auto types = obsText(file("human_heart"), "cell_type");
    std::vector<int64_t> tcells;
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i] == "T cell") tcells.push_back(int64_t(i));
    QVERIFY(tcells.size() >= 3);
    waitDone(panel_->searchCells(file("human_heart"), tcells, 15));
    auto s = controller_->search();
    QVERIFY(s);
    QCOMPARE(s->hits.size(), tcells.size());
    int t = 0;
    for (const auto& h : s->hits) {
      QCOMPARE(int(h.neighbours.size()), 15);
      t += h.label == "T cell";
    }
    QVERIFY2(t * 2 > int(tcells.size()), qPrintable(QString("%1 of %2").arg(t).arg(tcells.size())));
    QCOMPARE(s->voteLabels.value(0), QString("T cell"));
    QCOMPARE(panel_->searchModel()->rowCount(), int(tcells.size()));
    QVERIFY(panel_->voteLabel()->text().contains("T cell"));
    QVERIFY(panel_->grab().save(shotDir() + "/atlas_search.png"));
  }

  void errorsAreMessages() {
    // A query from another model is refused with a message naming the file.
    AtlasController c(jobs_.get());
    Job* j = c.openAtlas(tmp_.filePath("no_such_atlas"));
    QVERIFY(jobs_->waitForAll(30000));
    QCOMPARE(j->status(), JobStatus::Failed);
    QVERIFY(j->errorText().contains("no_such_atlas"));
    CentroidRequest bad;
    bad.query.atlas = bad.reference.atlas = true;
    bad.query.label = "no_column";
    QVERIFY_THROWS_EXCEPTION(uce::Error, computeCentroidTable(bad, controller_->atlas().get()));
  }

  void cleanupTestCase() {
    panel_.reset();
    controller_.reset();
    jobs_.reset();
  }
};

QTEST_MAIN(TestAtlasPanel)
#include "test_atlas_panel.moc"
