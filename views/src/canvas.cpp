#include "uce/views/canvas.h"

#include <QFontInfo>
#include <QFontMetricsF>
#include <QPainter>
#include <QSaveFile>

namespace uce::views {

namespace {

// Short fixed-point numbers for SVG attributes ("12.5", not "12.500000").
QString num(double v) {
  QString s = QString::number(v, 'f', 2);
  while (s.endsWith('0')) s.chop(1);
  if (s.endsWith('.')) s.chop(1);
  if (s == "-0") s = "0";
  return s;
}

QString paint(const char* attr, const QColor& c) {
  if (c.alpha() == 0) return QStringLiteral(" %1=\"none\"").arg(QLatin1String(attr));
  QString s = QStringLiteral(" %1=\"%2\"").arg(QLatin1String(attr), c.name(QColor::HexRgb));
  if (c.alpha() < 255)
    s += QStringLiteral(" %1-opacity=\"%2\"").arg(QLatin1String(attr), num(c.alphaF()));
  return s;
}

}  // namespace

// ---- Canvas

QSizeF Canvas::textSize(const QString& s) const {
  QFontMetricsF fm(font_);
  return QSizeF(fm.horizontalAdvance(s), fm.ascent() + fm.descent());
}

QPointF Canvas::baselineOffset(const QString& s, Qt::Alignment align) const {
  QFontMetricsF fm(font_);
  const double w = fm.horizontalAdvance(s);
  double x = 0;
  if (align & Qt::AlignHCenter) x = -w / 2;
  else if (align & Qt::AlignRight) x = -w;
  double y = (fm.ascent() - fm.descent()) / 2;  // AlignVCenter (default)
  if (align & Qt::AlignTop) y = fm.ascent();
  else if (align & Qt::AlignBottom) y = -fm.descent();
  return QPointF(x, y);
}

// ---- PainterCanvas

PainterCanvas::PainterCanvas(QPainter& painter) : p_(painter) {
  p_.setRenderHint(QPainter::Antialiasing, true);
  p_.setRenderHint(QPainter::TextAntialiasing, true);
}

void PainterCanvas::fillRect(const QRectF& r, const QColor& fill) { p_.fillRect(r, fill); }

void PainterCanvas::strokeRect(const QRectF& r, const QColor& stroke, double width) {
  p_.setPen(QPen(stroke, width));
  p_.setBrush(Qt::NoBrush);
  p_.drawRect(r);
}

void PainterCanvas::line(QPointF a, QPointF b, const QColor& color, double width, bool dashed) {
  QPen pen(color, width);
  if (dashed) pen.setDashPattern({4, 3});
  p_.setPen(pen);
  p_.drawLine(a, b);
}

void PainterCanvas::polyline(const QPolygonF& points, const QColor& color, double width) {
  QPen pen(color, width);
  pen.setJoinStyle(Qt::RoundJoin);
  pen.setCapStyle(Qt::RoundCap);
  p_.setPen(pen);
  p_.setBrush(Qt::NoBrush);
  p_.drawPolyline(points);
}

void PainterCanvas::circle(QPointF centre, double radius, const QColor& fill, const QColor& stroke,
                           double strokeWidth) {
  p_.setPen(stroke.alpha() == 0 ? QPen(Qt::NoPen) : QPen(stroke, strokeWidth));
  p_.setBrush(fill.alpha() == 0 ? QBrush(Qt::NoBrush) : QBrush(fill));
  p_.drawEllipse(centre, radius, radius);
}

void PainterCanvas::text(QPointF anchor, const QString& s, const QColor& color, Qt::Alignment align,
                         double angleDeg) {
  p_.save();
  p_.setFont(font_);
  p_.setPen(color);
  p_.translate(anchor);
  if (angleDeg != 0) p_.rotate(angleDeg);
  p_.drawText(baselineOffset(s, align), s);
  p_.restore();
}

// ---- SvgCanvas

SvgCanvas::SvgCanvas(QSizeF size) : size_(size) {}

void SvgCanvas::fillRect(const QRectF& r, const QColor& fill) {
  body_ += QStringLiteral("<rect x=\"%1\" y=\"%2\" width=\"%3\" height=\"%4\"%5/>\n")
               .arg(num(r.x()), num(r.y()), num(r.width()), num(r.height()), paint("fill", fill));
}

void SvgCanvas::strokeRect(const QRectF& r, const QColor& stroke, double width) {
  body_ += QStringLiteral("<rect x=\"%1\" y=\"%2\" width=\"%3\" height=\"%4\" fill=\"none\"%5 stroke-width=\"%6\"/>\n")
               .arg(num(r.x()), num(r.y()), num(r.width()), num(r.height()), paint("stroke", stroke), num(width));
}

void SvgCanvas::line(QPointF a, QPointF b, const QColor& color, double width, bool dashed) {
  body_ += QStringLiteral("<line x1=\"%1\" y1=\"%2\" x2=\"%3\" y2=\"%4\"%5 stroke-width=\"%6\"%7/>\n")
               .arg(num(a.x()), num(a.y()), num(b.x()), num(b.y()), paint("stroke", color), num(width),
                    dashed ? QStringLiteral(" stroke-dasharray=\"4 3\"") : QString());
}

void SvgCanvas::polyline(const QPolygonF& points, const QColor& color, double width) {
  if (points.isEmpty()) return;
  QString pts;
  pts.reserve(points.size() * 12);
  for (const QPointF& p : points) {
    if (!pts.isEmpty()) pts += ' ';
    pts += num(p.x()) + ',' + num(p.y());
  }
  body_ += QStringLiteral("<polyline points=\"%1\" fill=\"none\"%2 stroke-width=\"%3\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n")
               .arg(pts, paint("stroke", color), num(width));
}

void SvgCanvas::circle(QPointF centre, double radius, const QColor& fill, const QColor& stroke,
                       double strokeWidth) {
  QString s = QStringLiteral("<circle cx=\"%1\" cy=\"%2\" r=\"%3\"%4")
                  .arg(num(centre.x()), num(centre.y()), num(radius), paint("fill", fill));
  if (stroke.alpha() != 0) s += paint("stroke", stroke) + QStringLiteral(" stroke-width=\"%1\"").arg(num(strokeWidth));
  body_ += s + "/>\n";
}

void SvgCanvas::text(QPointF anchor, const QString& s, const QColor& color, Qt::Alignment align,
                     double angleDeg) {
  const QPointF o = baselineOffset(s, align);
  QString transform = QStringLiteral("translate(%1,%2)").arg(num(anchor.x()), num(anchor.y()));
  if (angleDeg != 0) transform += QStringLiteral(" rotate(%1)").arg(num(angleDeg));
  const QFontInfo info(font_);
  body_ += QStringLiteral("<text x=\"%1\" y=\"%2\" transform=\"%3\" font-family=\"%4, sans-serif\" font-size=\"%5\"%6%7>%8</text>\n")
               .arg(num(o.x()), num(o.y()), transform, info.family().toHtmlEscaped(),
                    QString::number(info.pixelSize()), paint("fill", color),
                    font_.bold() ? QStringLiteral(" font-weight=\"bold\"") : QString(), s.toHtmlEscaped());
}

QByteArray SvgCanvas::document() const {
  const QString w = num(size_.width()), h = num(size_.height());
  QString doc = QStringLiteral(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%1\" height=\"%2\" "
                    "viewBox=\"0 0 %1 %2\">\n")
                    .arg(w, h);
  doc += body_;
  doc += QStringLiteral("</svg>\n");
  return doc.toUtf8();
}

QString writeFileAtomically(const QString& path, const QByteArray& bytes) {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly))
    return QStringLiteral("cannot write %1: %2 (choose a folder you can write to)").arg(path, f.errorString());
  if (f.write(bytes) != bytes.size()) {
    const QString why = f.errorString();
    f.cancelWriting();
    return QStringLiteral("cannot write %1: %2 (is the disk full?)").arg(path, why);
  }
  if (!f.commit()) return QStringLiteral("cannot write %1: %2").arg(path, f.errorString());
  return QString();
}

}  // namespace uce::views
