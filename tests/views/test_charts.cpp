// Charts under Xvfb: colours at known places, hover and click, autoscaling, and the PNG / SVG
// exports (same drawing code as the screen). Screenshots go to <build>/test-screenshots/.
#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QXmlStreamReader>
#include <QtTest>

#include "test_support.h"
#include <cmath>
#include <map>
#include <random>

#include "uce/views/charts.h"

using namespace uce::views;

namespace {

using uce::test::shotDir;

bool near(QColor a, QColor b, int tol = 12) {
  return std::abs(a.red() - b.red()) <= tol && std::abs(a.green() - b.green()) <= tol &&
         std::abs(a.blue() - b.blue()) <= tol;
}

// Pixels of colour `c` in the column x = `x` of `img`.
int countInColumn(const QImage& img, int x, QColor c) {
  int n = 0;
  for (int y = 0; y < img.height(); ++y) n += near(img.pixelColor(x, y), c, 2);
  return n;
}

int countInRect(const QImage& img, QRect r, QColor c) {
  int n = 0;
  r = r.intersected(img.rect());
  for (int y = r.top(); y <= r.bottom(); ++y)
    for (int x = r.left(); x <= r.right(); ++x) n += near(img.pixelColor(x, y), c, 2);
  return n;
}

// Element name -> count in an SVG file; fails the test when it is not well-formed XML.
std::map<QString, int> svgElements(const QString& path, QString* rootWidth = nullptr, QStringList* texts = nullptr) {
  std::map<QString, int> counts;
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return counts;
  QXmlStreamReader xml(&f);
  while (!xml.atEnd()) {
    if (xml.readNext() != QXmlStreamReader::StartElement) continue;
    const QString name = xml.name().toString();
    ++counts[name];
    if (name == "svg" && rootWidth) *rootWidth = xml.attributes().value("width").toString();
    if (name == "text" && texts) *texts << xml.readElementText();
  }
  if (xml.hasError()) {
    qWarning("%s: %s", qPrintable(path), qPrintable(xml.errorString()));
    counts.clear();
    counts["<xml error>"] = 1;
  }
  return counts;
}

const QColor kRed(255, 0, 0), kBlue(0, 0, 255);

}  // namespace

class TestCharts : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void stackedBarsDrawEachCategorysShare() {
    StackedBarChart chart;
    // c0: half / half, c1: all category A, c2: a quarter A, three quarters B.
    chart.setData({"c0", "c1", "c2"}, {"A", "B"}, {{50, 50}, {100, 0}, {25, 75}});
    chart.setColors({kRed, kBlue});
    chart.setTitle("composition by cell type");
    chart.resize(600, 400);
    chart.show();
    QVERIFY(QTest::qWaitForWindowExposed(&chart));
    const QImage img = chart.grab().toImage();
    img.save(shotDir() + "/charts_stacked_bar_small.png");

    // Scan each bar's centre column: the share of red vs blue pixels is the share of cells.
    const int x0 = qRound(chart.segmentRect(0, 0).center().x());
    const int x1 = qRound(chart.segmentRect(1, 0).center().x());
    const int x2 = qRound(chart.segmentRect(2, 0).center().x());
    QVERIFY(x0 < x1 && x1 < x2);
    const int r0 = countInColumn(img, x0, kRed), b0 = countInColumn(img, x0, kBlue);
    const int r1 = countInColumn(img, x1, kRed), b1 = countInColumn(img, x1, kBlue);
    const int r2 = countInColumn(img, x2, kRed), b2 = countInColumn(img, x2, kBlue);
    QVERIFY2(r0 > 100 && std::abs(r0 - b0) <= 1, qPrintable(QString("%1 red, %2 blue").arg(r0).arg(b0)));
    QVERIFY2(b1 == 0 && std::abs(r1 - (r0 + b0)) <= 1, qPrintable(QString("%1 red, %2 blue").arg(r1).arg(b1)));
    QVERIFY2(std::abs(b2 - 3 * r2) <= 3 && std::abs(r2 + b2 - r1) <= 1,
             qPrintable(QString("%1 red, %2 blue").arg(r2).arg(b2)));
    // Category A sits at the bottom of each bar: the pixel just above the x axis is red.
    const QRectF seg = chart.segmentRect(2, 0);
    QCOMPARE(img.pixelColor(x2, qRound(seg.bottom()) - 2), kRed);
    QCOMPARE(img.pixelColor(x2, qRound(chart.segmentRect(2, 1).top()) + 2), kBlue);
    // Bars are solid: every pixel of a segment has its colour.
    const QRect whole = chart.segmentRect(0, 1).toRect().adjusted(1, 1, -1, -1);
    QCOMPARE(countInRect(img, whole, kBlue), whole.width() * whole.height());
    // Legend: a red and a blue swatch to the right of the bars.
    const QRect legend(qRound(chart.segmentRect(2, 0).right()) + 20, 0, 200, img.height());
    QVERIFY(countInRect(img, legend, kRed) >= 100);
    QVERIFY(countInRect(img, legend, kBlue) >= 100);

    // Hovering a segment tells cluster, category and count.
    QSignalSpy hovered(&chart, &StackedBarChart::hovered);
    QTest::mouseMove(&chart, chart.segmentRect(2, 1).center().toPoint());
    QTRY_COMPARE(hovered.count(), 1);
    QCOMPARE(hovered.at(0).at(0).toInt(), 2);
    QCOMPARE(hovered.at(0).at(1).toInt(), 1);
    QCOMPARE(hovered.at(0).at(2).toLongLong(), 75);
    const QString tip = chart.hoverText(chart.segmentRect(2, 1).center());
    QVERIFY2(tip.contains("c2") && tip.contains("B") && tip.contains("75 cells") && tip.contains("75.0 %"),
             qPrintable(tip));
    QVERIFY(chart.hoverText(QPointF(2, 2)).isEmpty());
  }

  void stackedBarsCountCodesAndExport() {
    StackedBarChart chart;
    // 6 cells: cluster codes and category codes; missing codes are left out.
    chart.setFromCodes({0, 0, 1, 1, 1, -1}, {"0", "1"}, {0, 1, 1, 1, -1, 0}, {"A", "B"});
    QCOMPARE(chart.count(0, 0), 1);
    QCOMPARE(chart.count(0, 1), 1);
    QCOMPARE(chart.count(1, 1), 2);
    QCOMPARE(chart.count(1, 0), 0);

    chart.setData({"c0", "c1", "c2"}, {"A", "B"}, {{50, 50}, {100, 0}, {25, 75}});
    chart.setColors({kRed, kBlue});
    chart.resize(600, 400);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QString err;
    QVERIFY2(chart.saveSvg(dir.filePath("bars.svg"), QSize(), &err), qPrintable(err));
    QString width;
    QStringList texts;
    auto el = svgElements(dir.filePath("bars.svg"), &width, &texts);
    QCOMPARE(el.count("<xml error>"), size_t(0));
    QCOMPARE(width, QString("600"));
    // 1 background + 5 non-empty segments + 2 legend swatches.
    QCOMPARE(el["rect"], 8);
    QVERIFY(texts.contains("c2") && texts.contains("A") && texts.contains("B") && texts.contains("100 %"));

    QVERIFY2(chart.savePng(dir.filePath("bars.png"), QSize(900, 500), &err), qPrintable(err));
    QImage png(dir.filePath("bars.png"));
    QCOMPARE(png.size(), QSize(900, 500));
    QVERIFY(countInRect(png, png.rect(), kRed) > 5000);
    QVERIFY(countInRect(png, png.rect(), kBlue) > 5000);
    // Atomic writes leave no temporary files behind.
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files), (QStringList{"bars.png", "bars.svg"}));
    // A folder that does not exist: an error naming the file, no crash.
    QVERIFY(!chart.savePng("/nonexistent-folder/bars.png", QSize(), &err));
    QVERIFY2(err.contains("/nonexistent-folder/bars.png"), qPrintable(err));
  }

  void volcanoColoursAndClicks() {
    std::vector<DeRow> rows;
    auto add = [&rows](const char* g, double fc, double padj) {
      DeRow r;
      r.gene = g;
      r.log2FoldChange = fc;
      r.pAdjusted = padj;
      r.pValue = padj / 10;
      rows.push_back(r);
    };
    add("UP1", 4.0, 1e-20);
    add("UP2", 2.0, 1e-5);
    add("DOWN1", -3.0, 1e-12);
    add("ZERO_P", 1.5, 0.0);       // p below the smallest double: drawn at the top
    add("NO_FC", NAN, 1e-3);       // not drawn
    std::mt19937 rng(3);
    std::normal_distribution<double> fc(0, 0.3);
    std::uniform_real_distribution<double> lp(0, 1.5);
    for (int i = 0; i < 200; ++i) add(qPrintable(QString("G%1").arg(i)), fc(rng), std::pow(10.0, -lp(rng)));
    VolcanoPlot plot;
    plot.setResults(rows);
    plot.setTitle("cluster 3 vs rest");
    plot.resize(640, 460);
    plot.show();
    QVERIFY(QTest::qWaitForWindowExposed(&plot));
    QCOMPARE(plot.pointCount(), 204);
    const QImage img = plot.grab().toImage();
    img.save(shotDir() + "/charts_volcano_small.png");

    QPointF up, down, zero, grey;
    QVERIFY(plot.pointPosition("UP1", &up));
    QVERIFY(plot.pointPosition("DOWN1", &down));
    QVERIFY(plot.pointPosition("ZERO_P", &zero));
    QVERIFY(!plot.pointPosition("NO_FC", nullptr));
    QVERIFY(up.x() > down.x());              // right = higher in the group
    QVERIFY(zero.y() < up.y());              // p = 0 is the most significant
    QVERIFY(near(img.pixelColor(up.toPoint()), VolcanoPlot::kUp));
    QVERIFY(near(img.pixelColor(down.toPoint()), VolcanoPlot::kDown));
    // An ordinary gene is grey.
    QVERIFY(plot.pointPosition("G0", &grey));
    QVERIFY(near(img.pixelColor(grey.toPoint()), VolcanoPlot::kOther, 30));
    const QStringList labelled = plot.labelledGenes();
    QVERIFY2(labelled.contains("UP1") && labelled.contains("DOWN1") && labelled.contains("ZERO_P"),
             qPrintable(labelled.join(",")));

    QSignalSpy clicked(&plot, &VolcanoPlot::geneClicked);
    QTest::mouseClick(&plot, Qt::LeftButton, {}, (down + QPointF(2, 1)).toPoint());
    QCOMPARE(clicked.count(), 1);
    QCOMPARE(clicked.at(0).at(0).toString(), QString("DOWN1"));
    QTest::mouseClick(&plot, Qt::LeftButton, {}, QPoint(plot.width() - 3, plot.height() - 3));  // no point there
    QCOMPARE(clicked.count(), 1);

    QTemporaryDir dir;
    QString err;
    QVERIFY2(plot.saveSvg(dir.filePath("volcano.svg"), QSize(), &err), qPrintable(err));
    QStringList texts;
    auto el = svgElements(dir.filePath("volcano.svg"), nullptr, &texts);
    QCOMPARE(el.count("<xml error>"), size_t(0));
    QCOMPARE(el["circle"], 204 + 1);  // every gene + the ring around the clicked one
    QVERIFY(texts.contains("UP1") && texts.contains("DOWN1"));
    QVERIFY(plot.savePng(dir.filePath("volcano.png"), QSize(1200, 800), &err));
    QCOMPARE(QImage(dir.filePath("volcano.png")).size(), QSize(1200, 800));
  }

  void liveLineChartFollowsItsData() {
    LiveLineChart chart;
    chart.setTitle("training");
    const QColor lossColour(200, 30, 30), aurocColour(30, 90, 200);
    const int loss = chart.addSeries("training loss", lossColour);
    const int auroc = chart.addSeries("validation AUROC", aurocColour, LiveLineChart::Axis::Right);
    QCOMPARE(chart.addSeries("training loss"), loss);
    chart.resize(640, 360);
    chart.show();
    QVERIFY(QTest::qWaitForWindowExposed(&chart));
    for (int s = 1; s <= 10; ++s) chart.append(loss, s, 2.0 - 0.15 * s);
    chart.append(auroc, 5, 0.62);
    chart.append(auroc, 10, 0.81);
    chart.append(loss, 11, NAN);  // skipped
    QCOMPARE(chart.pointCount(loss), size_t(10));
    QRectF r = chart.dataRange();
    QVERIFY2(r.left() <= 1 && r.right() >= 10 && r.right() < 20, qPrintable(QString::number(r.right())));
    QVERIFY(r.top() <= 0.5 && r.bottom() >= 1.85 && r.bottom() < 3);
    const QRectF right = chart.dataRange(LiveLineChart::Axis::Right);
    QVERIFY(right.top() <= 0.62 && right.bottom() >= 0.81 && right.bottom() <= 1.0);

    // A far-away point widens both axes.
    chart.append("training loss", 50, 3.0);
    r = chart.dataRange();
    QVERIFY(r.right() >= 50 && r.right() < 100);
    QVERIFY(r.bottom() >= 3.0 && r.bottom() < 5);
    QTest::qWait(30);
    QImage img = chart.grab().toImage();
    img.save(shotDir() + "/charts_live_line_small.png");
    // The newest points are drawn where the axes put them, in their series' colours.
    QVERIFY(chart.plotRect().contains(chart.toWidget(LiveLineChart::Axis::Left, 50, 3.0)));
    QVERIFY(near(img.pixelColor(chart.toWidget(LiveLineChart::Axis::Left, 50, 3.0).toPoint()), lossColour));
    QVERIFY(near(img.pixelColor(chart.toWidget(LiveLineChart::Axis::Right, 10, 0.81).toPoint()), aurocColour));
    // Midway along the loss line between steps 3 and 4 (linear in between).
    const QPointF mid = (chart.toWidget(LiveLineChart::Axis::Left, 3, 2.0 - 0.45) +
                         chart.toWidget(LiveLineChart::Axis::Left, 4, 2.0 - 0.6)) / 2;
    QVERIFY(near(img.pixelColor(mid.toPoint()), lossColour, 40));

    QTemporaryDir dir;
    QString err;
    QVERIFY2(chart.saveSvg(dir.filePath("line.svg"), QSize(), &err), qPrintable(err));
    auto el = svgElements(dir.filePath("line.svg"));
    QCOMPARE(el["polyline"], 2);
    QCOMPARE(el["circle"], 2);  // the newest point of each series
    QVERIFY(chart.savePng(dir.filePath("line.png"), QSize(500, 300), &err));
    QCOMPARE(QImage(dir.filePath("line.png")).size(), QSize(500, 300));

    chart.clearPoints();
    QCOMPARE(chart.pointCount(loss), size_t(0));
    QCOMPARE(chart.seriesCount(), 2);
  }

  void longRunsStaySmall() {
    // 200,000 steps: drawn as per-pixel extremes, so the SVG stays small and a spike shows.
    LiveLineChart chart;
    chart.resize(600, 300);
    const int s = chart.addSeries("loss", QColor(200, 30, 30));
    for (int i = 0; i < 200000; ++i) chart.append(s, i, 1.0 + 0.1 * std::sin(i * 0.001) + (i == 123456 ? 5.0 : 0.0));
    QElapsedTimer t;
    t.start();
    const QImage img = chart.renderImage();
    const qint64 pngMs = t.restart();
    const QByteArray svg = chart.renderSvg();
    const qint64 svgMs = t.elapsed();
    QVERIFY2(svg.size() < 200000, qPrintable(QString::number(svg.size())));
    QVERIFY(chart.dataRange().bottom() >= 6.0);  // the spike is inside the axes
    const QPoint spike = chart.toWidget(LiveLineChart::Axis::Left, 123456, 6.0).toPoint();
    QVERIFY(near(img.pixelColor(spike + QPoint(0, 2)), QColor(200, 30, 30), 60));
    qInfo("200,000 points: draw %lld ms, SVG %lld ms (%lld bytes)", pngMs, svgMs, qint64(svg.size()));
  }

  void screenshotsOfRealisticCharts() {
    // What the cluster browser and the DE panel show on a typical atlas, for a human to look at.
    QStringList clusters, types = {"T cell", "B cell", "NK cell", "classical monocyte", "dendritic cell",
                                   "platelet", "erythrocyte", "plasma cell"};
    std::vector<std::vector<int64_t>> counts;
    std::mt19937 rng(11);
    for (int c = 0; c < 14; ++c) {
      clusters << QString::number(c);
      std::vector<int64_t> row;
      for (int k = 0; k < types.size(); ++k) row.push_back(k == c % types.size() ? 400 + rng() % 400 : rng() % 60);
      counts.push_back(row);
    }
    StackedBarChart bars;
    bars.setData(clusters, types, counts);
    bars.setTitle("leiden clusters by cell_type");
    bars.resize(760, 420);
    bars.show();
    QVERIFY(QTest::qWaitForWindowExposed(&bars));
    bars.grab().save(shotDir() + "/charts_stacked_bar.png");
    QVERIFY(bars.saveSvg(shotDir() + "/charts_stacked_bar.svg"));

    std::vector<DeRow> rows;
    std::normal_distribution<double> fc(0, 0.8);
    std::uniform_real_distribution<double> u(0, 1);
    for (int g = 0; g < 3000; ++g) {
      DeRow r;
      r.gene = QString("GENE%1").arg(g);
      r.log2FoldChange = fc(rng);
      r.pValue = std::pow(u(rng), 1 + 8 * r.log2FoldChange * r.log2FoldChange);
      r.pAdjusted = std::min(1.0, r.pValue * 50);
      rows.push_back(r);
    }
    VolcanoPlot volcano;
    volcano.setResults(rows);
    volcano.setTitle("selection vs rest");
    volcano.resize(700, 500);
    volcano.show();
    QVERIFY(QTest::qWaitForWindowExposed(&volcano));
    volcano.grab().save(shotDir() + "/charts_volcano.png");
    QVERIFY(volcano.saveSvg(shotDir() + "/charts_volcano.svg"));

    LiveLineChart line;
    line.setTitle("UCE training");
    line.setAxisLabels("step", "masked-expression loss");
    line.addSeries("training loss");
    line.addSeries("validation AUROC", QColor(), LiveLineChart::Axis::Right);
    for (int s = 0; s <= 400; ++s) {
      line.append("training loss", s, 0.69 * std::exp(-s / 150.0) + 0.25 + 0.02 * u(rng));
      if (s % 50 == 0) line.append("validation AUROC", s, 0.5 + 0.4 * (1 - std::exp(-s / 120.0)));
    }
    line.resize(700, 380);
    line.show();
    QVERIFY(QTest::qWaitForWindowExposed(&line));
    line.grab().save(shotDir() + "/charts_live_line.png");
    QVERIFY(line.saveSvg(shotDir() + "/charts_live_line.svg"));
  }
};

QTEST_MAIN(TestCharts)
#include "test_charts.moc"
