// Frame time of the cell map (uce::views::ScatterMap, VTK in a Qt 6 QOpenGLWidget) with
// 2,000,000 points at 1600x1000: the full frame, the level-of-detail frame drawn while the user
// drags or zooms, their ratio, and frames per second during a simulated drag (each mouse move
// renders a LOD frame and the widget repaints).
//
//   xvfb-run -a -s "-screen 0 1600x1000x24" build/bench/bench_map_frame [--points N] [--seed S]
//       [--point-size PX]
//
// Points: 24 Gaussian clusters in 2-D (seeded), coloured by cluster (categorical legend).
#include <QApplication>
#include <QElapsedTimer>
#include <QMouseEvent>
#include <QWheelEvent>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "uce/views/scatter_map.h"

using uce::views::ScatterMap;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

void mouse(QWidget* w, QEvent::Type t, QPointF pos, Qt::MouseButton b, Qt::MouseButtons held) {
  QMouseEvent e(t, pos, w->mapToGlobal(pos), b, held, Qt::NoModifier);
  QApplication::sendEvent(w, &e);
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 2000000;
  uint64_t seed = 1;
  float pointSize = 2.0f;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--points")) n = std::stoul(argv[++i]);
    else if (!std::strcmp(argv[i], "--seed")) seed = std::stoull(argv[++i]);
    else if (!std::strcmp(argv[i], "--point-size")) pointSize = std::stof(argv[++i]);
  }
  QApplication app(argc, argv);

  const int clusters = 24;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> centre(-10.0f, 10.0f);
  std::uniform_real_distribution<float> spread(0.3f, 1.2f);
  std::vector<float> cx(clusters), cy(clusters), sd(clusters);
  for (int c = 0; c < clusters; ++c) cx[size_t(c)] = centre(rng), cy[size_t(c)] = centre(rng), sd[size_t(c)] = spread(rng);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  std::vector<float> xy(n * 2);
  std::vector<int32_t> codes(n);
  QStringList names;
  for (int c = 0; c < clusters; ++c) names << QString("cluster %1").arg(c);
  for (size_t i = 0; i < n; ++i) {
    const int c = pick(rng);
    codes[i] = c;
    xy[2 * i] = cx[size_t(c)] + sd[size_t(c)] * g(rng);
    xy[2 * i + 1] = cy[size_t(c)] + sd[size_t(c)] * g(rng);
  }

  ScatterMap map;
  map.resize(1600, 1000);
  map.show();
  QElapsedTimer t;
  t.start();
  while (!map.isVisible() || t.elapsed() < 200) app.processEvents();
  QString err;
  t.restart();
  if (!map.setPoints(xy, 2, &err) || !map.setCategories(codes, names, "cluster", &err)) {
    std::fprintf(stderr, "error: %s\n", qPrintable(err));
    return 1;
  }
  const double setMs = double(t.nsecsElapsed()) / 1e6;
  map.setPointSize(pointSize);

  // First frame: uploads the points to the GPU and compiles shaders.
  t.restart();
  map.grabFramebuffer();
  const double firstMs = double(t.nsecsElapsed()) / 1e6;
  const double firstRender = map.lastFrameMs();

  // Full frames: a camera change, then a render.
  std::vector<double> full, fullWall;
  for (int k = 0; k < 5; ++k) {
    map.resetView();
    t.restart();
    map.grabFramebuffer();
    fullWall.push_back(double(t.nsecsElapsed()) / 1e6);
    full.push_back(map.lastFrameMs());
    if (map.lastFramePoints() != n) std::fprintf(stderr, "warning: full frame drew %zu points\n", map.lastFramePoints());
  }

  // LOD frames: each wheel notch renders the subsample at once.
  std::vector<double> lod;
  const QPointF mid(800, 500);
  for (int k = 0; k < 10; ++k) {
    QWheelEvent e(mid, map.mapToGlobal(mid), QPoint(), QPoint(0, k % 2 ? -120 : 120), Qt::NoButton,
                  Qt::NoModifier, Qt::NoScrollPhase, false);
    QApplication::sendEvent(&map, &e);
    lod.push_back(map.lastFrameMs());
  }
  const size_t lodPoints = map.lastFramePoints();

  // Drag: 60 mouse moves; each renders a LOD frame, then the event loop repaints (blit).
  const int moves = 60;
  mouse(&map, QEvent::MouseButtonPress, mid, Qt::LeftButton, Qt::LeftButton);
  std::vector<double> dragFrames;
  t.restart();
  for (int k = 1; k <= moves; ++k) {
    mouse(&map, QEvent::MouseMove, mid + QPointF(3.0 * k, 1.5 * k), Qt::NoButton, Qt::LeftButton);
    app.processEvents();
    dragFrames.push_back(map.lastFrameMs());
  }
  const double dragMs = double(t.nsecsElapsed()) / 1e6;
  mouse(&map, QEvent::MouseButtonRelease, mid + QPointF(3.0 * moves, 1.5 * moves), Qt::LeftButton,
        Qt::NoButton);
  // When the drag stops the full set comes back after the LOD delay.
  t.restart();
  while (map.lodActive() && t.elapsed() < 10000) app.processEvents();
  map.grabFramebuffer();
  const double settleMs = double(t.nsecsElapsed()) / 1e6;

  // Hover: the first lookup after a camera change builds the screen grid, later ones reuse it.
  t.restart();
  const long hit = map.pointAt(mid);
  const double hoverBuildMs = double(t.nsecsElapsed()) / 1e6;
  t.restart();
  for (int k = 0; k < 100; ++k) map.pointAt(mid + QPointF(k, k % 7));
  const double hoverQueryUs = double(t.nsecsElapsed()) / 1e3 / 100;

  // Box selection of the middle quarter of the screen.
  t.restart();
  const size_t boxed = map.pointsInRect(QRectF(400, 250, 800, 500)).size();
  const double boxMs = double(t.nsecsElapsed()) / 1e6;

  const double fullMs = median(full), lodMs = median(lod);
  std::printf("bench_map_frame: %zu points (%d clusters, seed %llu), %dx%d, point size %g px\n", n,
              clusters, static_cast<unsigned long long>(seed), map.width(), map.height(),
              double(pointSize));
  std::printf("  setPoints + setCategories        %9.1f ms\n", setMs);
  std::printf("  first frame (upload + shaders)   %9.1f ms (render %.1f ms)\n", firstMs, firstRender);
  std::printf("  full frame, median of 5          %9.1f ms render (%.1f ms incl. grab)\n", fullMs,
              median(fullWall));
  std::printf("  LOD frame (%zu points), med of 10 %8.1f ms render\n", lodPoints, lodMs);
  std::printf("  full / LOD                       %9.2fx\n", lodMs > 0 ? fullMs / lodMs : 0.0);
  std::printf("  drag: %d moves in %.0f ms        %9.1f frames/s (LOD render median %.1f ms)\n",
              moves, dragMs, moves * 1000.0 / dragMs, median(dragFrames));
  std::printf("  full frame back after release    %9.1f ms (LOD delay %d ms)\n", settleMs,
              map.options().lodDelayMs);
  std::printf("  hover: first lookup (grid build)  %9.1f ms, then %.1f us per lookup (hit row %ld)\n",
              hoverBuildMs, hoverQueryUs, hit);
  std::printf("  box selection (%zu points)     %9.1f ms\n", boxed, boxMs);
  return 0;
}
