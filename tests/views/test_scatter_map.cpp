// The VTK cell map under Xvfb: what a user sees (colours at known places, legend, colour bar),
// what they do (zoom, pan, rotate, box / lasso selection, legend clicks, hover) and what they
// export. Screenshots go to <build>/test-screenshots/scatter_map_*.png.
#include <QApplication>
#include <QDir>
#include <QDockWidget>
#include <QLabel>
#include <QMainWindow>
#include <QFile>
#include <QImage>
#include <QMouseEvent>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QWheelEvent>
#include <QXmlStreamReader>
#include <QtTest>
#include <cmath>
#include <random>

#include "test_support.h"
#include "uce/views/scatter_map.h"

using uce::views::ScatterMap;

namespace {

using uce::test::shotDir;

bool near(QRgb a, QRgb b, int tol) {
  return std::abs(qRed(a) - qRed(b)) <= tol && std::abs(qGreen(a) - qGreen(b)) <= tol &&
         std::abs(qBlue(a) - qBlue(b)) <= tol;
}

// Pixels of `img` inside `r` (logical widget pixels; scaled by the image's devicePixelRatio,
// so the suite also passes with QT_SCALE_FACTOR=2) within `tol` of `rgb`.
int countColour(const QImage& img, QRect r, QRgb rgb, int tol = 12) {
  int n = 0;
  const double dpr = img.devicePixelRatio();
  const double norm = dpr * dpr;
  r = QRect(QPoint(int(r.left() * dpr), int(r.top() * dpr)), r.size() * dpr).intersected(img.rect());
  for (int y = r.top(); y <= r.bottom(); ++y)
    for (int x = r.left(); x <= r.right(); ++x)
      if (near(img.pixel(x, y), rgb, tol)) ++n;
  return int(std::lround(n / norm));
}

QRgb pixelAt(const QImage& img, int x, int y) {
  const double dpr = img.devicePixelRatio();
  return img.pixel(int(x * dpr), int(y * dpr));
}

QRect around(QPointF c, int half) {
  return QRect(int(c.x()) - half, int(c.y()) - half, 2 * half + 1, 2 * half + 1);
}

// Four clusters of `per` points at the quadrants (-1,-1), (1,-1), (-1,1), (1,1), spread 0.12;
// rows are grouped: cluster g holds rows [g*per, (g+1)*per).
std::vector<float> quadrants(int per, int dims = 2, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.12f);
  const float cx[4] = {-1, 1, -1, 1}, cy[4] = {-1, -1, 1, 1}, cz[4] = {-1, 1, 1, -1};
  std::vector<float> xy;
  for (int g = 0; g < 4; ++g)
    for (int i = 0; i < per; ++i) {
      xy.push_back(cx[g] + std::clamp(noise(rng), -0.35f, 0.35f));
      xy.push_back(cy[g] + std::clamp(noise(rng), -0.35f, 0.35f));
      if (dims == 3) xy.push_back(cz[g] + std::clamp(noise(rng), -0.35f, 0.35f));
    }
  return xy;
}

std::vector<int32_t> groupCodes(int per) {
  std::vector<int32_t> codes;
  for (int g = 0; g < 4; ++g) codes.insert(codes.end(), size_t(per), g);
  return codes;
}

const QStringList kNames{"T cell", "B cell", "NK cell", "Monocyte"};

// Mean on-screen position of cluster g.
QPointF centreOf(const ScatterMap& m, int g, int per) {
  QPointF s;
  for (int i = g * per; i < (g + 1) * per; ++i) s += m.project(size_t(i));
  return s / per;
}

void mouse(QWidget* w, QEvent::Type t, QPointF pos, Qt::MouseButton b, Qt::MouseButtons held,
           Qt::KeyboardModifiers mods = Qt::NoModifier) {
  QMouseEvent e(t, pos, w->mapToGlobal(pos), b, held, mods);
  QApplication::sendEvent(w, &e);
}

void drag(QWidget* w, const std::vector<QPointF>& path, Qt::KeyboardModifiers mods = Qt::NoModifier) {
  mouse(w, QEvent::MouseButtonPress, path.front(), Qt::LeftButton, Qt::LeftButton, mods);
  for (size_t i = 1; i < path.size(); ++i)
    mouse(w, QEvent::MouseMove, path[i], Qt::NoButton, Qt::LeftButton, mods);
  mouse(w, QEvent::MouseButtonRelease, path.back(), Qt::LeftButton, Qt::NoButton, mods);
}

void wheel(QWidget* w, QPointF pos, int notches) {
  QWheelEvent e(pos, w->mapToGlobal(pos), QPoint(), QPoint(0, 120 * notches), Qt::NoButton,
                Qt::NoModifier, Qt::NoScrollPhase, false);
  QApplication::sendEvent(w, &e);
}

std::vector<uint32_t> rowsOf(int g, int per) {
  std::vector<uint32_t> r;
  for (int i = g * per; i < (g + 1) * per; ++i) r.push_back(uint32_t(i));
  return r;
}

struct Shown {
  std::unique_ptr<ScatterMap> map;
  explicit Shown(ScatterMap::Options o = {}) : map(std::make_unique<ScatterMap>(o)) {
    map->resize(800, 600);
    map->show();
  }
};

}  // namespace

class TestScatterMap : public QObject {
  Q_OBJECT
  static constexpr int kPer = 400;

 private Q_SLOTS:
  void quadrantsShowTheirColours() {
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QVERIFY(m.setPoints(quadrants(kPer), 2));
    QVERIFY(m.setCategories(groupCodes(kPer), kNames, "cell_type"));
    m.setPointSize(6);
    QImage img = m.grabFramebuffer();
    img.save(shotDir() + "/scatter_map_quadrants.png");
    QCOMPARE(img.deviceIndependentSize().toSize(), QSize(800, 600));
    for (int g = 0; g < 4; ++g) {
      const QPointF c = centreOf(m, g, kPer);
      const int hits = countColour(img, around(c, 6), ScatterMap::categoryColor(g));
      QVERIFY2(hits > 100, qPrintable(QString("cluster %1 at (%2, %3): %4 of 169 pixels")
                                          .arg(g).arg(c.x()).arg(c.y()).arg(hits)));
    }
    // Clusters sit in their quadrants: (-1,-1) bottom-left on screen, (1,1) top-right.
    QVERIFY(centreOf(m, 0, kPer).x() < 400 && centreOf(m, 0, kPer).y() > 300);
    QVERIFY(centreOf(m, 3, kPer).x() > 400 && centreOf(m, 3, kPer).y() < 300);
    // Background between the clusters and in the corner away from the legend.
    QCOMPARE(countColour(img, around(QPointF(400, 300), 15), ScatterMap::kBackground, 2), 31 * 31);
    QCOMPARE(countColour(img, QRect(0, 560, 40, 40), ScatterMap::kBackground, 2), 40 * 40);
    // The legend names the four categories with their colours.
    const QRect legend = m.legendRect();
    QVERIFY(!legend.isEmpty());
    for (int g = 0; g < 4; ++g)
      QVERIFY(countColour(img, m.legendEntryRect(g), ScatterMap::categoryColor(g), 6) >= 100);
    QVERIFY(m.lastFrameMs() > 0);
  }

  void wheelZoomsAboutCursorAndDragPans() {
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QVERIFY(m.setPoints(quadrants(kPer), 2));
    QVERIFY(m.setCategories(groupCodes(kPer), kNames, "cell_type"));
    m.setPointSize(6);
    QSignalSpy viewChanged(&m, &ScatterMap::viewChanged);
    const QRectF before = m.viewRect();
    const QPointF c0 = centreOf(m, 0, kPer);
    const QPointF c3 = centreOf(m, 3, kPer);
    wheel(&m, c0, 3);
    const QRectF after = m.viewRect();
    QVERIFY2(after.width() < before.width() * 0.6, "three wheel notches zoom in");
    // Zoom is about the cursor: cluster 0 stays under it, cluster 3 leaves the screen.
    const QPointF c0z = centreOf(m, 0, kPer);
    QVERIFY2(QLineF(c0, c0z).length() < 3.0, qPrintable(QString("moved to %1,%2").arg(c0z.x()).arg(c0z.y())));
    const QPointF c3z = centreOf(m, 3, kPer);
    QVERIFY(c3z.x() > 800 || c3z.y() < 0);
    QImage zoomed = m.grabFramebuffer();
    zoomed.save(shotDir() + "/scatter_map_zoomed.png");
    QVERIFY(countColour(zoomed, zoomed.rect(), ScatterMap::categoryColor(3)) <
            countColour(zoomed, m.legendRect(), ScatterMap::categoryColor(3)) + 5);
    QVERIFY(countColour(zoomed, around(c0z, 10), ScatterMap::categoryColor(0)) > 200);
    QVERIFY(viewChanged.count() > 0);

    // Reset, then drag 120 px right and 50 px down: everything moves with the mouse.
    m.resetView();
    QCOMPARE(m.viewRect(), before);
    const QPointF start(400, 300);
    drag(&m, {start, start + QPointF(40, 20), start + QPointF(120, 50)});
    const QPointF c3p = centreOf(m, 3, kPer);
    QVERIFY2(QLineF(c3 + QPointF(120, 50), c3p).length() < 2.0,
             qPrintable(QString("cluster 3 at %1,%2, expected %3,%4")
                            .arg(c3p.x()).arg(c3p.y()).arg(c3.x() + 120).arg(c3.y() + 50)));
    QImage panned = m.grabFramebuffer();
    panned.save(shotDir() + "/scatter_map_panned.png");
    QVERIFY(countColour(panned, around(c3p, 6), ScatterMap::categoryColor(3)) > 100);
    QCOMPARE(countColour(panned, around(c3, 3), ScatterMap::categoryColor(3)), 0);

    // 'r' resets the view (through VTK's key handling).
    QTest::keyClick(&m, Qt::Key_R);
    QCOMPARE(m.viewRect(), before);
  }

  void boxSelectionSelectsExactlyTheBoxedCells() {
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QVERIFY(m.setPoints(quadrants(kPer), 2));
    QVERIFY(m.setCategories(groupCodes(kPer), kNames, "cell_type"));
    m.setPointSize(5);
    QSignalSpy changed(&m, &ScatterMap::selectionChanged);
    m.setMode(ScatterMap::Mode::BoxSelect);
    // A box around cluster 1 (bottom-right): from the screen centre to the bottom-right corner.
    drag(&m, {QPointF(410, 310), QPointF(600, 450), QPointF(795, 595)});
    QCOMPARE(m.selection(), rowsOf(1, kPer));
    QCOMPARE(changed.count(), 1);
    // Shift adds cluster 2 (top-left; the legend is top-right).
    drag(&m, {QPointF(5, 5), QPointF(390, 290)}, Qt::ShiftModifier);
    std::vector<uint32_t> both = rowsOf(1, kPer);
    for (uint32_t r : rowsOf(2, kPer)) both.push_back(r);
    std::sort(both.begin(), both.end());
    QCOMPARE(m.selection(), both);
    // A box over part of cluster 0 selects exactly the cells whose points lie inside it.
    const QPointF c0 = centreOf(m, 0, kPer);
    const QRectF part(c0.x() - 30, c0.y() - 30, 30, 60);
    std::vector<uint32_t> expected;
    for (uint32_t r : rowsOf(0, kPer)) {
      const QPointF p = m.project(r);
      if (p.x() >= part.left() && p.x() <= part.right() && p.y() >= part.top() && p.y() <= part.bottom())
        expected.push_back(r);
    }
    QVERIFY(expected.size() > 20 && expected.size() < size_t(kPer));
    drag(&m, {part.topLeft(), part.bottomRight()});
    QCOMPARE(m.selection(), expected);
    QImage img = m.grabFramebuffer();
    img.save(shotDir() + "/scatter_map_box_selection.png");
    // Selected points carry a dark halo.
    QVERIFY(countColour(img, part.toRect().adjusted(-4, -4, 4, 4), qRgb(26, 26, 26), 12) > 20);
    QVERIFY(countColour(img, around(centreOf(m, 3, kPer), 30), qRgb(26, 26, 26), 12) == 0);
    // setSelection sorts and de-duplicates; out-of-range rows are dropped.
    m.setSelection({5, 3, 3, 99999});
    QCOMPARE(m.selection(), (std::vector<uint32_t>{3, 5}));
    m.clearSelection();
    QVERIFY(m.selection().empty());
  }

  void lassoSelectsTheEnclosedCluster() {
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QVERIFY(m.setPoints(quadrants(kPer), 2));
    QVERIFY(m.setCategories(groupCodes(kPer), kNames, "cell_type"));
    m.setMode(ScatterMap::Mode::LassoSelect);
    // A diamond around cluster 0 (bottom-left), drawn as a path of mouse moves.
    const QPointF c = centreOf(m, 0, kPer);
    const double r = 140;
    std::vector<QPointF> path;
    const QPointF corners[5] = {c + QPointF(0, -r), c + QPointF(r, 0), c + QPointF(0, r),
                                c + QPointF(-r, 0), c + QPointF(0, -r)};
    for (int k = 0; k < 4; ++k)
      for (int t = 0; t < 10; ++t)
        path.push_back(corners[k] + (corners[k + 1] - corners[k]) * (t / 10.0));
    drag(&m, path);
    QCOMPARE(m.selection(), rowsOf(0, kPer));
    // A thin lasso slice through the cluster takes only the points inside it.
    QPolygonF slice;
    slice << c + QPointF(-200, -10) << c + QPointF(200, -10) << c + QPointF(200, 10) << c + QPointF(-200, 10);
    std::vector<uint32_t> expected;
    for (uint32_t row : rowsOf(0, kPer))
      if (slice.containsPoint(m.project(row), Qt::OddEvenFill)) expected.push_back(row);
    QVERIFY(expected.size() > 10 && expected.size() < size_t(kPer));
    drag(&m, {slice[0], slice[1], slice[2], slice[3]});
    QCOMPARE(m.selection(), expected);
    m.grabFramebuffer().save(shotDir() + "/scatter_map_lasso.png");
  }

  void legendClickHidesAndShowsACategory() {
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QVERIFY(m.setPoints(quadrants(kPer), 2));
    QVERIFY(m.setCategories(groupCodes(kPer), kNames, "cell_type"));
    m.setPointSize(6);
    const QRgb nk = ScatterMap::categoryColor(2);
    const QRect legend = m.legendRect();
    auto outsideLegend = [&](const QImage& img) {
      return countColour(img, img.rect(), nk) - countColour(img, legend, nk);
    };
    QVERIFY(outsideLegend(m.grabFramebuffer()) > 1000);
    QSignalSpy toggled(&m, &ScatterMap::categoryVisibilityChanged);
    const QPointF entry = m.legendEntryRect(2).center();
    mouse(&m, QEvent::MouseButtonPress, entry, Qt::LeftButton, Qt::LeftButton);
    mouse(&m, QEvent::MouseButtonRelease, entry, Qt::LeftButton, Qt::NoButton);
    QCOMPARE(toggled.count(), 1);
    QVERIFY(!m.categoryVisible(2));
    QCOMPARE(m.visiblePointCount(), size_t(3 * kPer));
    QImage hidden = m.grabFramebuffer();
    hidden.save(shotDir() + "/scatter_map_legend_hidden.png");
    QCOMPARE(outsideLegend(hidden), 0);
    QVERIFY(countColour(hidden, around(centreOf(m, 1, kPer), 6), ScatterMap::categoryColor(1)) > 100);
    // Hidden cells are not selectable.
    m.setMode(ScatterMap::Mode::BoxSelect);
    drag(&m, {QPointF(1, 1), QPointF(799, 599)});
    QCOMPARE(m.selection().size(), size_t(3 * kPer));
    m.setMode(ScatterMap::Mode::Navigate);
    mouse(&m, QEvent::MouseButtonPress, entry, Qt::LeftButton, Qt::LeftButton);
    mouse(&m, QEvent::MouseButtonRelease, entry, Qt::LeftButton, Qt::NoButton);
    QVERIFY(m.categoryVisible(2));
    QVERIFY(outsideLegend(m.grabFramebuffer()) > 1000);
  }

  void continuousColouringShowsViridisAndColourBar() {
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    const std::vector<float> xy = quadrants(kPer);
    QVERIFY(m.setPoints(xy, 2));
    // Value = cluster index (0..3) except cluster 2, which is missing (NaN -> grey).
    std::vector<float> v(size_t(4 * kPer));
    for (int g = 0; g < 4; ++g)
      for (int i = 0; i < kPer; ++i) v[size_t(g * kPer + i)] = g == 2 ? NAN : float(g);
    QVERIFY(m.setContinuous(v, "CD3E"));
    QCOMPARE(m.colorMin(), 0.0);
    QCOMPARE(m.colorMax(), 3.0);
    m.setPointSize(6);
    QImage img = m.grabFramebuffer();
    img.save(shotDir() + "/scatter_map_continuous.png");
    QVERIFY(m.legendRect().isEmpty());
    const QRect bar = m.colorBarRect();
    QVERIFY(!bar.isEmpty());
    // The bar runs from viridis(0) at the bottom to viridis(1) at the top.
    const int bx = bar.center().x();
    QVERIFY(near(pixelAt(img, bx, bar.top() + 1), ScatterMap::viridis(1.0), 12));
    QVERIFY(near(pixelAt(img, bx, bar.bottom() - 1), ScatterMap::viridis(0.0), 12));
    QVERIFY(near(pixelAt(img, bx, bar.center().y()), ScatterMap::viridis(0.5), 16));
    // Points take the ramp's colour of their value; NaN is grey.
    QVERIFY(countColour(img, around(centreOf(m, 0, kPer), 6), ScatterMap::viridis(0.0)) > 100);
    QVERIFY(countColour(img, around(centreOf(m, 1, kPer), 6), ScatterMap::viridis(1.0 / 3)) > 100);
    QVERIFY(countColour(img, around(centreOf(m, 2, kPer), 6), ScatterMap::kMissingColor, 6) > 100);
    // The viridis endpoints are matplotlib's.
    QCOMPARE(ScatterMap::viridis(0.0), qRgb(68, 1, 84));
    QCOMPARE(ScatterMap::viridis(1.0), qRgb(253, 231, 37));
    // Hover reports the value; NaN says missing.
    m.setCellIds([] {
      QStringList ids;
      for (int i = 0; i < 4 * kPer; ++i) ids << QString("cell-%1").arg(i);
      return ids;
    }());
    const QPointF p = m.project(size_t(kPer + 3));
    mouse(&m, QEvent::MouseMove, p, Qt::NoButton, Qt::NoButton);
    QVERIFY2(m.hoverText().contains("CD3E: 1"), qPrintable(m.hoverText()));
    mouse(&m, QEvent::MouseMove, m.project(size_t(2 * kPer + 3)), Qt::NoButton, Qt::NoButton);
    QVERIFY2(m.hoverText().contains("CD3E: NaN (missing)"), qPrintable(m.hoverText()));
  }

  void hoverShowsCellIdAndCategory() {
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    // Three isolated points and a cluster.
    std::vector<float> xy = {-1, -1, 0, 0, 1, 1};
    std::vector<int32_t> codes = {0, 1, 2};
    QVERIFY(m.setPoints(xy, 2));
    QVERIFY(m.setCategories(codes, {"alpha", "beta", "gamma"}, "cluster"));
    m.setCellIds({"AAACCTG-1", "AAAGATG-1", "TTTGGTC-1"});
    const QPointF p = m.project(1);
    QCOMPARE(p, QPointF(400, 300));
    mouse(&m, QEvent::MouseMove, p + QPointF(3, -2), Qt::NoButton, Qt::NoButton);
    QCOMPARE(m.hoverText(), QString("AAAGATG-1\ncluster: beta"));
    QCOMPARE(m.pointAt(m.project(2)), 2L);
    mouse(&m, QEvent::MouseMove, QPointF(300, 150), Qt::NoButton, Qt::NoButton);
    QCOMPARE(m.hoverText(), QString());
    QCOMPARE(m.pointAt(QPointF(300, 150)), -1L);
  }

  void threeDimensionalMapDrawsAndRotates() {
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QVERIFY(m.setPoints(quadrants(kPer, 3), 3));
    QCOMPARE(m.dims(), 3);
    QVERIFY(m.setCategories(groupCodes(kPer), kNames, "cell_type"));
    m.setPointSize(5);
    QImage img = m.grabFramebuffer();
    img.save(shotDir() + "/scatter_map_3d.png");
    for (int g = 0; g < 4; ++g) {
      const QPointF c = centreOf(m, g, kPer);
      QVERIFY(QRectF(0, 0, 800, 600).contains(c));
      QVERIFY2(countColour(img, around(c, 5), ScatterMap::categoryColor(g)) > 30,
               qPrintable(QString("cluster %1").arg(g)));
    }
    // Left drag rotates: the clusters' screen positions change, and their depth order too.
    const QPointF before = centreOf(m, 1, kPer);
    drag(&m, {QPointF(400, 300), QPointF(450, 300), QPointF(550, 320)});
    const QPointF after = centreOf(m, 1, kPer);
    QVERIFY(QLineF(before, after).length() > 20);
    QImage rotated = m.grabFramebuffer();
    rotated.save(shotDir() + "/scatter_map_3d_rotated.png");
    QVERIFY(countColour(rotated, around(after, 5), ScatterMap::categoryColor(1)) > 30);
  }

  void levelOfDetailWhileInteracting() {
    ScatterMap::Options o;
    o.lodPoints = 1000;
    o.lodDelayMs = 100;
    Shown s(o);
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QVERIFY(m.setPoints(quadrants(5000), 2));
    m.grabFramebuffer();
    QCOMPARE(m.lastFramePoints(), size_t(20000));
    QVERIFY(!m.lodActive());
    wheel(&m, QPointF(400, 300), 1);
    QVERIFY(m.lodActive());
    QCOMPARE(m.lastFramePoints(), size_t(1000));
    // The subsample is fixed (seeded): the same frame twice in a row looks the same.
    QImage a = m.grabFramebuffer();
    QTRY_VERIFY_WITH_TIMEOUT(!m.lodActive(), 2000);
    QTRY_COMPARE_WITH_TIMEOUT(m.lastFramePoints(), size_t(20000), 2000);
    QImage full = m.grabFramebuffer();
    const QRgb blue = ScatterMap::kUniformColor;
    QVERIFY(countColour(full, full.rect(), blue) > countColour(a, a.rect(), blue));
  }

  void exportsPngAndSvg() {
    QTemporaryDir tmp;
    Shown s;
    ScatterMap& m = *s.map;
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QVERIFY(m.setPoints(quadrants(kPer), 2));
    QVERIFY(m.setCategories(groupCodes(kPer), kNames, "cell <type> & state"));
    m.setPointSize(6);
    m.setSelection(rowsOf(3, kPer));
    m.setCategoryVisible(1, false);
    const QString png = tmp.filePath("map.png"), svg = tmp.filePath("map.svg");
    QString err;
    QVERIFY2(m.savePng(png, &err), qPrintable(err));
    QVERIFY2(m.saveSvg(svg, &err), qPrintable(err));
    QImage img(png);
    img.setDevicePixelRatio(m.devicePixelRatioF());
    QCOMPARE(img.deviceIndependentSize().toSize(), QSize(800, 600));
    QVERIFY(countColour(img, around(centreOf(m, 0, kPer), 6), ScatterMap::categoryColor(0)) > 100);
    QVERIFY(countColour(img, m.legendEntryRect(0), ScatterMap::categoryColor(0), 6) >= 100);

    // The SVG parses, has one circle per visible point, three point colours, the legend and
    // the selection stroke.
    QFile f(svg);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QXmlStreamReader xml(&f);
    int circles = 0, stroked = 0, legendRects = 0;
    QSet<QString> fills;
    QStringList texts;
    bool inLegend = false;
    while (!xml.atEnd()) {
      xml.readNext();
      if (xml.isStartElement()) {
        if (xml.name() == u"circle") {
          ++circles;
          fills.insert(xml.attributes().value("fill").toString());
          if (xml.attributes().hasAttribute("stroke")) ++stroked;
        } else if (xml.name() == u"g") {
          inLegend = xml.attributes().value("id") == u"legend";
        } else if (xml.name() == u"rect" && inLegend) {
          ++legendRects;
        } else if (xml.name() == u"text") {
          texts << xml.readElementText();
        }
      }
    }
    QVERIFY2(!xml.hasError(), qPrintable(xml.errorString()));
    QCOMPARE(circles, 3 * kPer);
    QCOMPARE(stroked, kPer);
    QCOMPARE(fills, (QSet<QString>{QColor(ScatterMap::categoryColor(0)).name(), QColor(ScatterMap::categoryColor(2)).name(),
                                   QColor(ScatterMap::categoryColor(3)).name()}));
    QCOMPARE(legendRects, 1 + 4);  // the box and four swatches
    QVERIFY(texts.contains("cell <type> & state"));
    QVERIFY(texts.contains("Monocyte"));
    uce::test::writeAll(shotDir() + "/scatter_map_export.svg", uce::test::readAll(svg));

    // Above the cap the SVG holds a seeded subsample of exactly the cap.
    ScatterMap::Options o;
    o.svgMaxPoints = 500;
    Shown s2(o);
    QVERIFY(QTest::qWaitForWindowExposed(s2.map.get()));
    QVERIFY(s2.map->setPoints(quadrants(kPer), 2));
    QVERIFY(s2.map->saveSvg(svg, &err));
    const QString text = QString::fromUtf8(uce::test::readAll(svg));
    QCOMPARE(int(text.count("<circle")), 500);
    QVERIFY(text.contains("500 of 1600 points on screen"));
    // Continuous colouring exports its colour bar as a gradient.
    std::vector<float> v(size_t(4 * kPer), 1.0f);
    v[0] = 0.0f;
    QVERIFY(s2.map->setContinuous(v, "score"));
    QVERIFY(s2.map->saveSvg(svg, &err));
    QVERIFY(QString::fromUtf8(uce::test::readAll(svg)).contains("url(#viridis)"));
    // A folder that does not exist: an error naming the path, no crash.
    QVERIFY(!m.saveSvg(tmp.filePath("missing/dir/map.svg"), &err));
    QVERIFY(err.contains("missing/dir/map.svg"));
  }

  void drawsInsideAMainWindowNextToOtherWidgets() {
    // How the app hosts it: central widget of a QMainWindow with docks; the window is grabbed
    // through Qt's compositor (QWidget::grab), not the map's own framebuffer.
    QMainWindow w;
    auto* m = new ScatterMap;
    w.setCentralWidget(m);
    auto* dock = new QDockWidget("Cells");
    dock->setWidget(new QLabel("a table would be here"));
    w.addDockWidget(Qt::LeftDockWidgetArea, dock);
    w.resize(1000, 700);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(m->setPoints(quadrants(kPer), 2));
    QVERIFY(m->setCategories(groupCodes(kPer), kNames, "cell_type"));
    m->setPointSize(6);
    QTest::qWait(100);
    QImage img = w.grab().toImage();
    img.save(shotDir() + "/scatter_map_in_window.png");

    const QPoint offset = m->mapTo(&w, QPoint(0, 0));
    for (int g = 0; g < 4; ++g)
      QVERIFY2(countColour(img, around(centreOf(*m, g, kPer) + offset, 6),
                           ScatterMap::categoryColor(g)) > 100,
               qPrintable(QString("cluster %1").arg(g)));
    // The legend (painted over the VTK frame) survives the window grab too.
    for (int g = 0; g < 4; ++g)
      QVERIFY(countColour(img, m->legendEntryRect(g).translated(offset), ScatterMap::categoryColor(g), 6) >= 100);
  }

  void badInputIsRefusedWithAMessage() {
    Shown s;
    ScatterMap& m = *s.map;
    QString err;
    QVERIFY(!m.setPoints(std::vector<float>{1, 2, 3, 4}, 4, &err));
    QVERIFY(err.contains("2 or 3 columns"));
    QVERIFY(!m.setPoints(std::vector<float>{1, 2, 3}, 2, &err));
    // NaN coordinates (cells dropped before embedding) are kept in the numbering, not drawn.
    QVERIFY(m.setPoints(std::vector<float>{0, 0, NAN, 1, 1, 1}, 2, &err));
    QCOMPARE(m.pointCount(), size_t(3));
    QCOMPARE(m.unplacedCount(), size_t(1));
    QCOMPARE(m.visiblePointCount(), size_t(2));
    QVERIFY(!m.setCategories({0, 1}, {"a", "b"}, "x", &err));
    QVERIFY(err.contains("2 values but the map has 3 cells"));
    QVERIFY(!m.setCategories({0, 5, 1}, {"a", "b"}, "x", &err));
    QVERIFY(err.contains("row 1"));
    QVERIFY(!m.setContinuous({1.0f}, "y", &err));
    QVERIFY(m.setPoints(std::vector<float>{}, 2, &err));
    QCOMPARE(m.pointCount(), size_t(0));
    QVERIFY(QTest::qWaitForWindowExposed(&m));
    QImage img = m.grabFramebuffer();
    img.save(shotDir() + "/scatter_map_empty.png");
    QVERIFY(countColour(img, img.rect(), ScatterMap::kBackground, 2) > 800 * 600 * 9 / 10);
  }
};

QTEST_MAIN(TestScatterMap)
#include "test_scatter_map.moc"
