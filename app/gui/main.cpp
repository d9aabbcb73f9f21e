// uce-atlas: the desktop app.
//   uce-atlas [FILE...] [--demo] [--demo-dataset NAME] [--screenshot PNG]
// --demo opens the demo atlas (all six datasets, or NAME), embeds it with the demo model and
// computes map and clusters. --screenshot saves the window once every job has finished, then
// quits (exit 1 when an error was shown): used by tests and for documentation pictures.
// --self-test checks an installation: the map draws known colours with this machine's OpenGL,
// and a demo dataset opens (and, with the demo model, embeds, maps and clusters); prints what
// it checked and exits 0, or 1 naming what failed.
#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QTimer>
#include <QSurfaceFormat>
#include <algorithm>
#include <cstdio>
#include <memory>

#include "main_window.h"
#include "uce/core/process.h"
#include "uce/views/scatter_map.h"

namespace {

int runSelfTest() {
  qputenv("UCE_NO_DIALOGS", "1");
  int failures = 0;
  auto check = [&failures](bool ok, const QString& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", qPrintable(what));
    failures += ok ? 0 : 1;
  };
  // 1. The map widget draws with this machine's OpenGL: four points in known colours.
  {
    uce::views::ScatterMap map;
    map.resize(320, 320);
    map.show();
    const std::vector<float> xy = {0, 0, 1, 0, 0, 1, 0.5f, 0.5f};  // none under the legend (top right)
    map.setPoints(xy, 2);
    map.setCategories({0, 1, 2, 3}, {"a", "b", "c", "d"}, "self-test");
    map.setPointSize(24);
    // Which of the four points show their category colour where they are projected (VTK's
    // drawing, not the legend's swatches); the first frames may still be empty.
    auto coloursShown = [&map] {
      const QImage img = map.grabFramebuffer();
      const double dpr = img.width() / std::max(1.0, double(map.width()));
      int found = 0;
      for (int c = 0; c < 4; ++c) {
        const QPointF p = map.project(static_cast<size_t>(c)) * dpr;
        const int x = int(p.x()), y = int(p.y());
        found += img.valid(x, y) &&
                 (img.pixel(x, y) & 0xFFFFFFu) == (uce::views::ScatterMap::categoryColor(c) & 0xFFFFFFu);
      }
      return found;
    };
    QElapsedTimer t;
    t.start();
    int found = 0;
    while ((found = coloursShown()) < 4 && t.elapsed() < 10000) QApplication::processEvents(QEventLoop::AllEvents, 50);
    check(found == 4, QString("the map draws with OpenGL (%1 of 4 test points in their colours)").arg(found));
  }
  // 2. The demo atlas opens (and, with the demo model, is embedded, mapped and clustered).
  {
    uce::gui::MainWindow w;
    w.show();
    const QStringList sets = uce::gui::MainWindow::demoDatasets(uce::gui::MainWindow::demoDir());
    check(!sets.isEmpty(), "demo atlas found in " + uce::gui::MainWindow::demoDir());
    if (!sets.isEmpty()) {
      w.openDemo(sets.first());
      const bool done = w.jobs()->waitForAll(600000);
      check(done, "demo jobs finished");
      const auto* doc = w.activeDocument();
      check(doc && doc->cells() > 0,
            QString("demo dataset %1 opened (%2 cells)").arg(sets.first()).arg(doc ? doc->cells() : 0));
      check(w.lastError().isEmpty(), "no error shown" + (w.lastError().isEmpty() ? QString() : ": " + w.lastError()));
      if (QFileInfo(uce::gui::MainWindow::demoModelFile()).isFile())
        check(w.map()->pointCount() > 0, QString("demo map drawn (%1 cells)").arg(w.map()->pointCount()));
      else
        std::printf("note the demo model is not bundled (%s): the map shows how to embed instead\n",
                    qPrintable(uce::gui::MainWindow::demoModelFile()));
    }
  }
  std::printf("%s\n", failures ? "self-test FAILED" : "self-test passed");
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  uce::preferPassiveOpenMpWait(argv);
  QSurfaceFormat::setDefaultFormat(uce::views::ScatterMap::defaultFormat());
  QApplication app(argc, argv);
  QApplication::setApplicationName("UCE Atlas");
  QApplication::setOrganizationName("UCE");
  QApplication::setApplicationVersion(UCE_VERSION);
  QCommandLineParser parser;
  parser.setApplicationDescription("Explore single-cell atlases with Universal Cell Embeddings");
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument("files", "datasets to open (.h5ad, 10x .h5, Matrix Market folder, CSV)", "[FILE...]");
  QCommandLineOption demo("demo", "open the demo atlas, embedded with the demo model, mapped and clustered");
  QCommandLineOption demoSet("demo-dataset", "open only this dataset of the demo (e.g. human_kidney)", "name");
  QCommandLineOption shot("screenshot", "save a screenshot once all jobs have finished, then quit", "png");
  QCommandLineOption selfTest("self-test", "check this installation (OpenGL map, demo atlas) and quit");
  parser.addOptions({demo, demoSet, shot, selfTest});
  parser.process(app);
  if (parser.isSet(selfTest)) return runSelfTest();

  const QString shotPath = parser.value(shot);
  if (!shotPath.isEmpty()) qputenv("UCE_NO_DIALOGS", "1");
  uce::gui::MainWindow w;
  w.show();
  for (const QString& f : parser.positionalArguments()) w.openFile(f);
  if (parser.isSet(demo) || parser.isSet(demoSet)) w.openDemo(parser.value(demoSet));

  if (!shotPath.isEmpty()) {
    // Poll until no job is queued or running (for at least half a second), then save.
    auto* timer = new QTimer(&w);
    auto idleSince = std::make_shared<int>(0);
    QObject::connect(timer, &QTimer::timeout, &w, [&w, timer, idleSince, shotPath] {
      *idleSince = w.jobs()->activeJobs().isEmpty() ? *idleSince + 1 : 0;
      if (*idleSince < 3) return;
      timer->stop();
      const bool ok = w.screenshot().save(shotPath);
      if (!w.lastError().isEmpty()) std::fprintf(stderr, "error: %s\n", qPrintable(w.lastError()));
      QApplication::exit(!ok ? 3 : w.lastError().isEmpty() ? 0 : 1);
    });
    timer->start(200);
  }
  return app.exec();
}
