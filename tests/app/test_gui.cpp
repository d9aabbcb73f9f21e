// The desktop app under Xvfb: the window, its menu, loading a real dataset onto the map, and
// errors shown instead of crashes. Screenshots go to <build>/test-screenshots/.
#include <QApplication>
#include <QDir>
#include <QImage>
#include <QMenuBar>
#include <QStatusBar>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "main_window.h"
#include "test_support.h"
#include "uce/views/map_view.h"

using uce::gui::MainWindow;

namespace {

QString shotDir() {
  QString d = QString(UCE_BINARY_DIR) + "/test-screenshots";
  QDir().mkpath(d);
  return d;
}

// Pixels of `img` inside `r` whose colour is within `tol` of `rgb`.
int countColour(const QImage& img, QRect r, QRgb rgb, int tol = 10) {
  int n = 0;
  r = r.intersected(img.rect());
  for (int y = r.top(); y <= r.bottom(); ++y)
    for (int x = r.left(); x <= r.right(); ++x) {
      QRgb p = img.pixel(x, y);
      if (std::abs(qRed(p) - qRed(rgb)) <= tol && std::abs(qGreen(p) - qGreen(rgb)) <= tol &&
          std::abs(qBlue(p) - qBlue(rgb)) <= tol)
        ++n;
    }
  return n;
}

int countNonWhite(const QImage& img, QRect r) {
  int n = 0;
  r = r.intersected(img.rect());
  for (int y = r.top(); y <= r.bottom(); ++y)
    for (int x = r.left(); x <= r.right(); ++x)
      if ((img.pixel(x, y) & 0xFFFFFF) != 0xFFFFFF) ++n;
  return n;
}

}  // namespace

class TestGui : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { qputenv("UCE_NO_DIALOGS", "1"); }

  void windowHasMenusAndEmptyMap() {
    MainWindow w;
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QStringList menus;
    for (QAction* a : w.menuBar()->actions()) menus << a->text().remove('&');
    QCOMPARE(menus, (QStringList{"File", "View", "Help"}));
    QCOMPARE(w.map()->pointCount(), size_t(0));
    QImage img = w.map()->grabFramebuffer();
    img.save(shotDir() + "/empty_map.png");
    // An empty map is white apart from the centred hint text.
    const QRect inner = img.rect().adjusted(10, 10, -10, -10);
    QVERIFY(countNonWhite(img, inner) < inner.width() * inner.height() / 50);
    QVERIFY(countNonWhite(img, inner) > 0);  // the hint text is drawn
  }

  void opensRealDatasetAndDrawsItsMap() {
    MainWindow w;
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QSignalSpy loaded(&w, &MainWindow::loaded);
    w.openFile(uce::test::sharedData("pbmc_small.h5ad"));
    QVERIFY(loaded.wait(60000));
    QVERIFY(w.summaryText().contains("cells:    80"));
    QVERIFY(w.summaryText().contains("genes:    230"));
    QCOMPARE(w.map()->pointCount(), size_t(80));
    QTest::qWait(200);
    QImage img = w.map()->grabFramebuffer();
    img.save(shotDir() + "/pbmc_small_tsne.png");
    // Cells are coloured by RNA_snn_res.1 (3 clusters): the first three palette colours appear.
    QVERIFY2(countColour(img, img.rect(), 0xFF4E79A7) > 5 * 25, "expected blue cell markers");
    QVERIFY2(countColour(img, img.rect(), 0xFFF28E2B) > 5 * 25, "expected orange cell markers");
    QVERIFY2(countColour(img, img.rect(), 0xFFE15759) > 5 * 5, "expected red cell markers");
    w.grab().save(shotDir() + "/pbmc_small_window.png");
  }

  void demoAtlasOpensWithSummary() {
    MainWindow w;
    w.show();
    QSignalSpy loaded(&w, &MainWindow::loaded);
    w.openDemo();
    QVERIFY2(loaded.wait(60000), qPrintable(w.lastError()));
    QVERIFY(w.summaryText().contains("cell_type: categorical"));
    QVERIFY(w.map()->message().contains("cells loaded"));
    QTest::qWait(200);
    w.grab().save(shotDir() + "/demo_window.png");
  }

  void badFileShowsErrorNamingIt() {
    QTemporaryDir tmp;
    QString bad = tmp.filePath("broken.h5ad");
    uce::test::writeAll(bad, "this is not an HDF5 file\n");
    MainWindow w;
    w.show();
    QSignalSpy failed(&w, &MainWindow::failed);
    w.openFile(bad);
    QVERIFY(failed.wait(30000));
    QVERIFY(w.lastError().contains("broken.h5ad"));
    QVERIFY(w.lastError().contains("not an HDF5 file"));
    QCOMPARE(w.map()->pointCount(), size_t(0));
    QVERIFY(w.isVisible());
  }

  void realAppScreenshotOfDataset() {
    QTemporaryDir tmp;
    QString png = shotDir() + "/app_pbmc_small.png";
    QFile::remove(png);
    QString out, err;
    int rc = uce::test::run(UCE_GUI_APP, {uce::test::sharedData("pbmc_small.h5ad"), "--screenshot", png},
                            &out, &err, 120000);
    QVERIFY2(rc == 0, qPrintable(err));
    QImage img(png);
    QVERIFY(!img.isNull());
    QVERIFY(img.width() >= 800);
    QVERIFY(countColour(img, img.rect(), 0xFF4E79A7) > 5 * 25);
    QVERIFY(countColour(img, img.rect(), 0xFFF28E2B) > 5 * 25);
  }

  void realAppReportsBadFile() {
    QTemporaryDir tmp;
    QString bad = tmp.filePath("notes.h5ad");
    uce::test::writeAll(bad, "hello");
    QString out, err;
    int rc = uce::test::run(UCE_GUI_APP, {bad, "--screenshot", tmp.filePath("x.png")}, &out, &err, 120000);
    QCOMPARE(rc, 1);
    QVERIFY(err.contains("notes.h5ad"));
  }
};

QTEST_MAIN(TestGui)
#include "test_gui.moc"
