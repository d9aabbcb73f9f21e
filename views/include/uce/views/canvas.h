#pragma once
// A tiny drawing interface that charts draw through, so the screen, PNG and SVG show the same
// picture from the same code: PainterCanvas paints with QPainter (widget, QImage), SvgCanvas
// writes SVG 1.1 text (no Qt Svg module needed). Coordinates are pixels, y down.
#include <QByteArray>
#include <QColor>
#include <QFont>
#include <QPointF>
#include <QPolygonF>
#include <QRectF>
#include <QSizeF>
#include <QString>

class QPainter;

namespace uce::views {

class Canvas {
 public:
  virtual ~Canvas() = default;

  virtual void fillRect(const QRectF& r, const QColor& fill) = 0;
  virtual void strokeRect(const QRectF& r, const QColor& stroke, double width) = 0;
  virtual void line(QPointF a, QPointF b, const QColor& color, double width, bool dashed = false) = 0;
  virtual void polyline(const QPolygonF& points, const QColor& color, double width) = 0;
  // A disc; `stroke` transparent = no outline.
  virtual void circle(QPointF centre, double radius, const QColor& fill,
                      const QColor& stroke = QColor(Qt::transparent), double strokeWidth = 1) = 0;
  // Text placed so that the point of its box named by `align` sits at `anchor` (e.g.
  // Qt::AlignRight | Qt::AlignVCenter: right end, middle of the line), then turned by
  // `angleDeg` (clockwise) about the anchor. One line, in the current font.
  virtual void text(QPointF anchor, const QString& s, const QColor& color, Qt::Alignment align,
                    double angleDeg = 0) = 0;

  void setFont(const QFont& font) { font_ = font; }
  const QFont& font() const { return font_; }
  // Width and height (ascent + descent) of a line of text in the current font.
  QSizeF textSize(const QString& s) const;

 protected:
  // Offset from the anchor to the text's baseline start, before rotation.
  QPointF baselineOffset(const QString& s, Qt::Alignment align) const;
  QFont font_;
};

class PainterCanvas : public Canvas {
 public:
  explicit PainterCanvas(QPainter& painter);
  void fillRect(const QRectF& r, const QColor& fill) override;
  void strokeRect(const QRectF& r, const QColor& stroke, double width) override;
  void line(QPointF a, QPointF b, const QColor& color, double width, bool dashed) override;
  void polyline(const QPolygonF& points, const QColor& color, double width) override;
  void circle(QPointF centre, double radius, const QColor& fill, const QColor& stroke,
              double strokeWidth) override;
  void text(QPointF anchor, const QString& s, const QColor& color, Qt::Alignment align,
            double angleDeg) override;

 private:
  QPainter& p_;
};

// Collects elements as SVG text: one <rect> per fillRect/strokeRect, one <circle> per circle,
// <line>, <polyline>, <text>.
class SvgCanvas : public Canvas {
 public:
  explicit SvgCanvas(QSizeF size);
  void fillRect(const QRectF& r, const QColor& fill) override;
  void strokeRect(const QRectF& r, const QColor& stroke, double width) override;
  void line(QPointF a, QPointF b, const QColor& color, double width, bool dashed) override;
  void polyline(const QPolygonF& points, const QColor& color, double width) override;
  void circle(QPointF centre, double radius, const QColor& fill, const QColor& stroke,
              double strokeWidth) override;
  void text(QPointF anchor, const QString& s, const QColor& color, Qt::Alignment align,
            double angleDeg) override;

  // The complete document (UTF-8).
  QByteArray document() const;

 private:
  QSizeF size_;
  QString body_;
};

// Writes `bytes` to `path` through a temporary file renamed over it, so readers never see a
// half-written file. Returns "" or a message naming the file and the reason.
QString writeFileAtomically(const QString& path, const QByteArray& bytes);

}  // namespace uce::views
