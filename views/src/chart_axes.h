#pragma once
// Shared pieces of the charts: nice tick steps, linear scales, axes. Internal to uce_views.
#include <QColor>
#include <QFontMetricsF>
#include <QRectF>
#include <QString>
#include <cmath>
#include <functional>
#include <vector>

#include "uce/views/canvas.h"

namespace uce::views::detail {

inline const QColor kAxisColor(70, 70, 70);
inline const QColor kGridColor(232, 232, 232);
inline const QColor kTextColor(34, 34, 34);
inline const QColor kMutedText(110, 110, 110);
constexpr double kTickLength = 4;

// Round tick positions (steps of 1, 2 or 5 x 10^k) covering [lo, hi] with about `target`
// intervals; lo/hi are widened to the outer ticks.
struct Ticks {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values;
};
Ticks niceTicks(double lo, double hi, int target);
// A tick value with as many decimals as the step needs ("0.25", "1e+06" for huge values).
QString tickLabel(double v, double step);

// Data interval [d0, d1] onto pixel interval [p0, p1] (p1 < p0 for a y axis).
struct Scale {
  double d0 = 0, d1 = 1, p0 = 0, p1 = 1;
  double map(double v) const { return p0 + (v - d0) / (d1 - d0) * (p1 - p0); }
  double unmap(double p) const { return d0 + (p - p0) / (p1 - p0) * (d1 - d0); }
};

// The centre of the pixel a coordinate falls in: where a 1 px line is drawn crisply.
inline double crisp(double v) { return std::floor(v) + 0.5; }

using Formatter = std::function<QString(double)>;
double widestLabel(const QFontMetricsF& fm, const Ticks& t, const Formatter& fmt);

// Axis line, ticks and labels; `grid` draws light lines across the plot at each tick.
void drawYAxis(Canvas& c, const QRectF& plot, const Ticks& t, const Scale& s, bool right, bool grid,
               const Formatter& fmt, const QColor& color = kAxisColor);
void drawXAxis(Canvas& c, const QRectF& plot, const Ticks& t, const Scale& s, bool grid,
               const Formatter& fmt);

}  // namespace uce::views::detail
