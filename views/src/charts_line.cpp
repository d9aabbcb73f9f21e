// LiveLineChart: (step, value) series appended while a job runs; the axes follow the data.
#include <algorithm>
#include <cmath>

#include "chart_axes.h"
#include "uce/views/charts.h"

namespace uce::views {

using namespace detail;

struct LiveLineChart::Layout {
  QRectF plot;
  Ticks xTicks, leftTicks, rightTicks;
  Scale x, left, right;
  bool hasRight = false;
  double legendY = 0;
};

LiveLineChart::LiveLineChart(QWidget* parent) : ChartWidget(parent) {
  xLabel_ = tr("step");
  emptyText_ = tr("Waiting for the first values");
}

int LiveLineChart::addSeries(const QString& name, QColor color, Axis axis) {
  for (size_t i = 0; i < series_.size(); ++i)
    if (series_[i].name == name) return static_cast<int>(i);
  Series s;
  s.name = name;
  s.color = color.isValid() ? color : categoryColor(static_cast<int>(series_.size()));
  s.axis = axis;
  series_.push_back(std::move(s));
  update();
  return static_cast<int>(series_.size()) - 1;
}

void LiveLineChart::append(const QString& series, double step, double value) {
  append(addSeries(series), step, value);
}

void LiveLineChart::append(int series, double step, double value) {
  if (series < 0 || series >= seriesCount() || !std::isfinite(step) || !std::isfinite(value)) return;
  Series& s = series_[static_cast<size_t>(series)];
  s.steps.push_back(step);
  s.values.push_back(value);
  update();  // coalesced by Qt: many appends between frames cost one repaint
}

void LiveLineChart::clearPoints() {
  for (Series& s : series_) {
    s.steps.clear();
    s.values.clear();
  }
  update();
}

size_t LiveLineChart::pointCount(int series) const {
  if (series < 0 || series >= seriesCount()) return 0;
  return series_[static_cast<size_t>(series)].steps.size();
}

bool LiveLineChart::hasRightAxis() const {
  return std::any_of(series_.begin(), series_.end(),
                     [](const Series& s) { return s.axis == Axis::Right && !s.steps.empty(); });
}

LiveLineChart::Layout LiveLineChart::layout(QSizeF size) const {
  Layout l;
  const QFontMetricsF fm(chartFont());
  double x0 = INFINITY, x1 = -INFINITY;
  double y0[2] = {INFINITY, INFINITY}, y1[2] = {-INFINITY, -INFINITY};
  for (const Series& s : series_) {
    const int a = s.axis == Axis::Right ? 1 : 0;
    for (size_t i = 0; i < s.steps.size(); ++i) {
      x0 = std::min(x0, s.steps[i]);
      x1 = std::max(x1, s.steps[i]);
      y0[a] = std::min(y0[a], s.values[i]);
      y1[a] = std::max(y1[a], s.values[i]);
    }
  }
  if (!(x0 <= x1)) x0 = 0, x1 = 1;
  if (x0 == x1) x1 = x0 + 1;
  for (int a = 0; a < 2; ++a)
    if (!(y0[a] <= y1[a])) y0[a] = 0, y1[a] = 1;
  l.xTicks = niceTicks(x0, x1, 6);
  l.leftTicks = niceTicks(y0[0], y1[0], 5);
  l.rightTicks = niceTicks(y0[1], y1[1], 5);
  l.hasRight = hasRightAxis();

  const auto fmtL = [&](double v) { return tickLabel(v, l.leftTicks.step); };
  const auto fmtR = [&](double v) { return tickLabel(v, l.rightTicks.step); };
  l.legendY = titleHeight() + fm.height() / 2;
  const double top = l.legendY + fm.height() + 6;
  const double left = (yLabel_.isEmpty() ? 0 : fm.height() + 6) + widestLabel(fm, l.leftTicks, fmtL) + kTickLength + 8;
  const double right = l.hasRight ? widestLabel(fm, l.rightTicks, fmtR) + kTickLength + 10 : 16;
  const double bottom = fm.height() + kTickLength + 6 + (xLabel_.isEmpty() ? 0 : fm.height() + 4);
  l.plot = QRectF(std::round(left), std::round(top), std::max(10.0, std::round(size.width() - left - right)),
                  std::max(10.0, std::round(size.height() - top - bottom)));
  l.x = Scale{l.xTicks.lo, l.xTicks.hi, l.plot.left(), l.plot.right()};
  l.left = Scale{l.leftTicks.lo, l.leftTicks.hi, l.plot.bottom(), l.plot.top()};
  l.right = Scale{l.rightTicks.lo, l.rightTicks.hi, l.plot.bottom(), l.plot.top()};
  return l;
}

QRectF LiveLineChart::dataRange(Axis axis) const {
  const Layout l = layout(QSizeF(size()));
  const Ticks& y = axis == Axis::Right ? l.rightTicks : l.leftTicks;
  return QRectF(l.xTicks.lo, y.lo, l.xTicks.hi - l.xTicks.lo, y.hi - y.lo);
}

QRectF LiveLineChart::plotRect() const { return layout(QSizeF(size())).plot; }

QPointF LiveLineChart::toWidget(Axis axis, double step, double value) const {
  const Layout l = layout(QSizeF(size()));
  return QPointF(l.x.map(step), (axis == Axis::Right ? l.right : l.left).map(value));
}

void LiveLineChart::draw(Canvas& c, QSizeF size) const {
  drawTitle(c, size);
  const bool any = std::any_of(series_.begin(), series_.end(), [](const Series& s) { return !s.steps.empty(); });
  if (!any) {
    drawEmpty(c, size);
    return;
  }
  const Layout l = layout(size);
  const QFontMetricsF fm(c.font());
  drawYAxis(c, l.plot, l.leftTicks, l.left, false, true, [&](double v) { return tickLabel(v, l.leftTicks.step); });
  if (l.hasRight) {
    QColor rc = kAxisColor;
    for (const Series& s : series_)
      if (s.axis == Axis::Right) {
        rc = s.color.darker(120);
        break;
      }
    drawYAxis(c, l.plot, l.rightTicks, l.right, true, false, [&](double v) { return tickLabel(v, l.rightTicks.step); },
              rc);
  }
  drawXAxis(c, l.plot, l.xTicks, l.x, false, [&](double v) { return tickLabel(v, l.xTicks.step); });

  for (const Series& s : series_) {
    if (s.steps.empty()) continue;
    const Scale& ys = s.axis == Axis::Right ? l.right : l.left;
    const size_t n = s.steps.size();
    QPolygonF line;
    if (n <= static_cast<size_t>(2 * l.plot.width())) {
      line.reserve(static_cast<qsizetype>(n));
      for (size_t i = 0; i < n; ++i) line << QPointF(l.x.map(s.steps[i]), ys.map(s.values[i]));
    } else {
      // More points than pixels: per pixel column keep the extremes, so spikes stay visible
      // and the picture (and SVG) stays small.
      size_t i = 0;
      while (i < n) {
        const double col = std::floor(l.x.map(s.steps[i]));
        double lo = s.values[i], hi = s.values[i];
        size_t iLo = i, iHi = i, j = i;
        for (; j < n && std::floor(l.x.map(s.steps[j])) == col; ++j) {
          if (s.values[j] < lo) lo = s.values[j], iLo = j;
          if (s.values[j] > hi) hi = s.values[j], iHi = j;
        }
        const size_t a = std::min(iLo, iHi), b = std::max(iLo, iHi);
        line << QPointF(l.x.map(s.steps[a]), ys.map(s.values[a]));
        if (b != a) line << QPointF(l.x.map(s.steps[b]), ys.map(s.values[b]));
        i = j;
      }
    }
    c.polyline(line, s.color, 2);
    // The latest value is marked, so a single point is visible too.
    c.circle(line.last(), 3, s.color);
  }

  // Legend above the plot: a short line in the series' colour, then its name.
  double x = l.plot.left();
  for (const Series& s : series_) {
    const QString label = s.axis == Axis::Right ? tr("%1 (right axis)").arg(s.name) : s.name;
    c.line(QPointF(x, l.legendY), QPointF(x + 16, l.legendY), s.color, 3);
    c.text(QPointF(x + 20, l.legendY), label, kTextColor, Qt::AlignLeft | Qt::AlignVCenter);
    x += 20 + fm.horizontalAdvance(label) + 16;
  }
  if (!xLabel_.isEmpty())
    c.text(QPointF(l.plot.center().x(), size.height() - 4), xLabel_, kTextColor, Qt::AlignHCenter | Qt::AlignBottom);
  if (!yLabel_.isEmpty())
    c.text(QPointF(4, l.plot.center().y()), yLabel_, kTextColor, Qt::AlignHCenter | Qt::AlignTop, -90);
}

}  // namespace uce::views
