// uce-atlas: the desktop app. Usage: uce-atlas [FILE] [--demo] [--screenshot PNG]
// (--screenshot saves the window once the file has loaded, then quits: used by tests.)
#include <QApplication>
#include <QCommandLineParser>
#include <QPainter>
#include <QTimer>

#include "uce/views/map_view.h"

#include "main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("UCE Atlas");
  QApplication::setApplicationVersion(UCE_VERSION);
  QCommandLineParser parser;
  parser.setApplicationDescription("Explore single-cell atlases with Universal Cell Embeddings");
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument("file", "dataset to open (.h5ad, 10x .h5, MTX folder, CSV)");
  QCommandLineOption demo("demo", "open the bundled demo atlas");
  QCommandLineOption shot("screenshot", "save a screenshot after loading, then quit", "png");
  parser.addOptions({demo, shot});
  parser.process(app);

  uce::gui::MainWindow w;
  w.show();
  const QString shotPath = parser.value(shot);
  if (!shotPath.isEmpty()) {
    qputenv("UCE_NO_DIALOGS", "1");
    auto save = [&w, shotPath](int code) {
      QTimer::singleShot(300, &w, [&w, shotPath, code] {
        // QWidget::grab() does not capture OpenGL content reliably: paint the map's framebuffer over it.
        QImage img = w.grab().toImage();
        QPainter painter(&img);
        painter.drawImage(w.map()->mapTo(&w, QPoint(0, 0)), w.map()->grabFramebuffer());
        painter.end();
        bool ok = img.save(shotPath);
        QApplication::exit(ok ? code : 3);
      });
    };
    QObject::connect(&w, &uce::gui::MainWindow::loaded, &w, [save] { save(0); });
    QObject::connect(&w, &uce::gui::MainWindow::failed, &w, [save](const QString& m) {
      fprintf(stderr, "error: %s\n", qPrintable(m));
      save(1);
    });
    if (parser.positionalArguments().isEmpty() && !parser.isSet(demo)) save(0);
  }
  if (!parser.positionalArguments().isEmpty()) w.openFile(parser.positionalArguments().first());
  else if (parser.isSet(demo)) w.openDemo();
  return app.exec();
}
