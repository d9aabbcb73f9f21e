#include "uce/views/map_view.h"

#include <QMouseEvent>
#include <QPainter>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>

namespace uce::views {

MapView::MapView(QWidget* parent) : QOpenGLWidget(parent) {
  setMinimumSize(320, 240);
  setMouseTracking(true);
  view_ = bounds_ = QRectF(-1, -1, 2, 2);
  message_ = tr("No cells loaded: open a dataset (File > Open)");
}

void MapView::setMessage(const QString& text) {
  message_ = text;
  update();
}

void MapView::setPoints(std::vector<float> xy, std::vector<unsigned> rgba) {
  xy_ = std::move(xy);
  rgba_ = std::move(rgba);
  if (rgba_.empty()) {
    bounds_ = QRectF(-1, -1, 2, 2);
  } else {
    float x0 = xy_[0], x1 = xy_[0], y0 = xy_[1], y1 = xy_[1];
    for (size_t i = 0; i < rgba_.size(); ++i) {
      x0 = std::min(x0, xy_[2 * i]); x1 = std::max(x1, xy_[2 * i]);
      y0 = std::min(y0, xy_[2 * i + 1]); y1 = std::max(y1, xy_[2 * i + 1]);
    }
    double pad = 0.05 * std::max<double>({x1 - x0, y1 - y0, 1e-6});
    bounds_ = QRectF(x0 - pad, y0 - pad, (x1 - x0) + 2 * pad, (y1 - y0) + 2 * pad);
  }
  resetView();
}

void MapView::resetView() {
  view_ = bounds_;
  update();
  Q_EMIT viewChanged(view_);
}

void MapView::initializeGL() { initializeOpenGLFunctions(); }

void MapView::paintGL() {
  glClearColor(1.f, 1.f, 1.f, 1.f);
  glClear(GL_COLOR_BUFFER_BIT);
  if (rgba_.empty()) {
    QPainter p(this);
    p.setPen(QColor(120, 120, 120));
    p.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap, message_);
    return;
  }
  // Software path until the VTK-hosted renderer lands: draw points with QPainter.
  QPainter p(this);
  // Marker size shrinks with the number of cells: 7 px for a hundred, 1 px for millions.
  const double size = std::clamp(9.0 - std::log10(static_cast<double>(rgba_.size()) + 1.0) * 1.3, 1.0, 7.0);
  const double sx = width() / view_.width(), sy = height() / view_.height();
  for (size_t i = 0; i < rgba_.size(); ++i) {
    double x = (xy_[2 * i] - view_.left()) * sx;
    double y = height() - (xy_[2 * i + 1] - view_.top()) * sy;
    p.fillRect(QRectF(x - size / 2, y - size / 2, size, size), QColor::fromRgba(rgba_[i]));
  }
}

void MapView::wheelEvent(QWheelEvent* e) {
  double f = std::pow(0.999, e->angleDelta().y());
  QPointF c = view_.center();
  view_ = QRectF(c.x() - view_.width() * f / 2, c.y() - view_.height() * f / 2,
                 view_.width() * f, view_.height() * f);
  update();
  Q_EMIT viewChanged(view_);
}

void MapView::mousePressEvent(QMouseEvent* e) {
  dragStart_ = e->position();
  dragView_ = view_;
}

void MapView::mouseMoveEvent(QMouseEvent* e) {
  if (!(e->buttons() & Qt::LeftButton)) return;
  QPointF d = e->position() - dragStart_;
  view_ = dragView_.translated(-d.x() * view_.width() / width(), d.y() * view_.height() / height());
  update();
  Q_EMIT viewChanged(view_);
}

}  // namespace uce::views
