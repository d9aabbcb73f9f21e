#pragma once
// The cell map: a scatter of 2-D coordinates coloured per point, drawn with OpenGL.
// Holds no data model of its own beyond what it draws: positions [n, 2] and colours [n] RGBA.
#include <QOpenGLFunctions>
#include <QOpenGLWidget>
#include <QRectF>
#include <QString>
#include <vector>

namespace uce::views {

class MapView : public QOpenGLWidget, protected QOpenGLFunctions {
  Q_OBJECT
 public:
  explicit MapView(QWidget* parent = nullptr);

  // xy: [n * 2] float32 map coordinates; rgba: [n] packed 0xAARRGGBB. Empty = empty map.
  void setPoints(std::vector<float> xy, std::vector<unsigned> rgba);
  size_t pointCount() const { return rgba_.size(); }
  // Visible map rectangle in data units (after fit / pan / zoom).
  QRectF viewRect() const { return view_; }
  void resetView();
  // Text shown centred when there are no points (why the map is empty, what to do).
  void setMessage(const QString& text);
  QString message() const { return message_; }
  static constexpr unsigned kBackground = 0xFFFFFFFFu;

 Q_SIGNALS:
  void viewChanged(QRectF rect);

 protected:
  void initializeGL() override;
  void paintGL() override;
  void wheelEvent(QWheelEvent* e) override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;

 private:
  QString message_;
  std::vector<float> xy_;
  std::vector<unsigned> rgba_;
  QRectF bounds_;
  QRectF view_;
  QPointF dragStart_;
  QRectF dragView_;
};

}  // namespace uce::views
