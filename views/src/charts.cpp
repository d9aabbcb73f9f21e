// ChartWidget (screen, PNG, SVG from one draw()) and the axis helpers the charts share.
#include <QBuffer>
#include <QPainter>
#include <algorithm>
#include <cmath>

#include "chart_axes.h"
#include "uce/views/charts.h"

namespace uce::views {

QColor categoryColor(int i) {
  // scanpy's default_20 palette.
  static const unsigned kColors[] = {0x1f77b4, 0xff7f0e, 0x279e68, 0xd62728, 0xaa40fc, 0x8c564b, 0xe377c2,
                                     0xb5bd61, 0x17becf, 0xaec7e8, 0xffbb78, 0x98df8a, 0xff9896, 0xc5b0d5,
                                     0xc49c94, 0xf7b6d2, 0xdbdb8d, 0x9edae5, 0xad494a, 0x8c6d31};
  constexpr int n = sizeof(kColors) / sizeof(kColors[0]);
  if (i < 0) return QColor(200, 200, 200);
  if (i < n) return QColor(QRgb(kColors[i]));
  const double hue = std::fmod((i - n) * 137.508, 360.0);
  return QColor::fromHsv(static_cast<int>(hue), 160 + (i % 3) * 30, 200 - (i % 2) * 40);
}

namespace detail {

Ticks niceTicks(double lo, double hi, int target) {
  Ticks t;
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  t.step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  t.lo = std::floor(lo / t.step + 1e-9) * t.step;
  t.hi = std::ceil(hi / t.step - 1e-9) * t.step;
  for (int k = 0;; ++k) {
    const double v = t.lo + k * t.step;
    if (v > t.hi + t.step * 1e-6 || k > 1000) break;
    t.values.push_back(std::abs(v) < t.step * 1e-9 ? 0.0 : v);
  }
  return t;
}

QString tickLabel(double v, double step) {
  if (std::abs(v) >= 1e6 || (v != 0 && std::abs(v) < 1e-4)) return QString::number(v, 'g', 3);
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return QString::number(v, 'f', decimals);
}

double widestLabel(const QFontMetricsF& fm, const Ticks& t, const Formatter& fmt) {
  double w = 0;
  for (double v : t.values) w = std::max(w, fm.horizontalAdvance(fmt(v)));
  return w;
}

void drawYAxis(Canvas& c, const QRectF& plot, const Ticks& t, const Scale& s, bool right, bool grid,
               const Formatter& fmt, const QColor& color) {
  // 1 px lines on pixel centres, so they stay crisp and never blend into the data's pixels.
  const double x = right ? plot.right() + 0.5 : plot.left() - 0.5;
  for (double v : t.values) {
    const double y = crisp(s.map(v));
    if (grid) c.line(QPointF(plot.left(), y), QPointF(plot.right(), y), kGridColor, 1);
    c.line(QPointF(x, y), QPointF(right ? x + kTickLength : x - kTickLength, y), color, 1);
    c.text(QPointF(right ? x + kTickLength + 3 : x - kTickLength - 3, y), fmt(v), color,
           (right ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignVCenter);
  }
  c.line(QPointF(x, plot.top()), QPointF(x, plot.bottom() + 1), color, 1);
}

void drawXAxis(Canvas& c, const QRectF& plot, const Ticks& t, const Scale& s, bool grid,
               const Formatter& fmt) {
  const double y = plot.bottom() + 0.5;
  for (double v : t.values) {
    const double x = crisp(s.map(v));
    if (grid) c.line(QPointF(x, plot.top()), QPointF(x, plot.bottom()), kGridColor, 1);
    c.line(QPointF(x, y), QPointF(x, y + kTickLength), kAxisColor, 1);
    c.text(QPointF(x, y + kTickLength + 2), fmt(v), kAxisColor, Qt::AlignHCenter | Qt::AlignTop);
  }
  c.line(QPointF(plot.left() - 1, y), QPointF(plot.right(), y), kAxisColor, 1);
}

}  // namespace detail

// ---- ChartWidget

ChartWidget::ChartWidget(QWidget* parent) : QWidget(parent) {
  setAttribute(Qt::WA_OpaquePaintEvent);
  setMouseTracking(true);
  emptyText_ = tr("Nothing to show yet");
}

void ChartWidget::setTitle(const QString& title) {
  title_ = title;
  update();
}

void ChartWidget::setAxisLabels(const QString& x, const QString& y) {
  xLabel_ = x;
  yLabel_ = y;
  update();
}

void ChartWidget::setEmptyText(const QString& text) {
  emptyText_ = text;
  update();
}

QFont ChartWidget::chartFont() const {
  QFont f = font();
  f.setPixelSize(12);
  return f;
}

QSizeF ChartWidget::pictureSize(QSize size) const {
  return size.isValid() && !size.isEmpty() ? QSizeF(size) : QSizeF(this->size());
}

double ChartWidget::titleHeight() const {
  if (title_.isEmpty()) return 8;
  QFont f = chartFont();
  f.setPixelSize(14);
  f.setBold(true);
  return QFontMetricsF(f).height() + 12;
}

double ChartWidget::drawTitle(Canvas& canvas, QSizeF size) const {
  if (title_.isEmpty()) return titleHeight();
  QFont f = chartFont();
  f.setPixelSize(14);
  f.setBold(true);
  const QFont before = canvas.font();
  canvas.setFont(f);
  canvas.text(QPointF(size.width() / 2, 6), title_, detail::kTextColor, Qt::AlignHCenter | Qt::AlignTop);
  canvas.setFont(before);
  return titleHeight();
}

void ChartWidget::drawEmpty(Canvas& canvas, QSizeF size) const {
  canvas.text(QPointF(size.width() / 2, size.height() / 2), emptyText_, detail::kMutedText,
              Qt::AlignCenter);
}

void ChartWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), Qt::white);
  PainterCanvas canvas(p);
  canvas.setFont(chartFont());
  draw(canvas, QSizeF(size()));
}

QImage ChartWidget::renderImage(QSize size) const {
  const QSizeF s = pictureSize(size);
  QImage img(s.toSize(), QImage::Format_ARGB32_Premultiplied);
  img.fill(Qt::white);
  QPainter p(&img);
  PainterCanvas canvas(p);
  canvas.setFont(chartFont());
  draw(canvas, s);
  p.end();
  return img;
}

QByteArray ChartWidget::renderSvg(QSize size) const {
  const QSizeF s = pictureSize(size);
  SvgCanvas canvas(s);
  canvas.setFont(chartFont());
  canvas.fillRect(QRectF(QPointF(0, 0), s), Qt::white);
  draw(canvas, s);
  return canvas.document();
}

bool ChartWidget::savePng(const QString& path, QSize size, QString* error) const {
  const QImage img = renderImage(size);
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  if (img.isNull() || !img.save(&buffer, "PNG")) {
    if (error) *error = QStringLiteral("cannot draw the chart for %1 (size %2 x %3 px)")
                            .arg(path).arg(img.width()).arg(img.height());
    return false;
  }
  const QString why = writeFileAtomically(path, bytes);
  if (error) *error = why;
  return why.isEmpty();
}

bool ChartWidget::saveSvg(const QString& path, QSize size, QString* error) const {
  const QString why = writeFileAtomically(path, renderSvg(size));
  if (error) *error = why;
  return why.isEmpty();
}

}  // namespace uce::views
