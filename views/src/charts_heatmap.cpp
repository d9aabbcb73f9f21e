#include <QFontMetricsF>
#include <algorithm>
#include <cmath>

#include "chart_axes.h"
#include "uce/views/heatmap.h"

namespace uce::views {

using namespace detail;

namespace {
const QColor kNaN(225, 225, 225);
const QColor kBlue(33, 102, 172), kRed(178, 24, 43), kWhite(247, 247, 247), kSeqHigh(8, 69, 148);

QColor mix(const QColor& a, const QColor& b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  return QColor::fromRgbF(static_cast<float>(a.redF() + (b.redF() - a.redF()) * t),
                          static_cast<float>(a.greenF() + (b.greenF() - a.greenF()) * t),
                          static_cast<float>(a.blueF() + (b.blueF() - a.blueF()) * t));
}

// Text colour readable on `bg`.
QColor textOn(const QColor& bg) { return bg.lightnessF() < 0.55 ? QColor(Qt::white) : kTextColor; }

QString elide(const QFontMetricsF& fm, const QString& s, double width) {
  return fm.elidedText(s, Qt::ElideRight, width);
}
}  // namespace

// ---------------------------------------------------------------- HeatmapChart

struct HeatmapChart::Layout {
  QRectF grid;        // the cells
  double cellW = 0, cellH = 0;
  double labelW = 0;  // row labels, left of the grid
  QRectF legend;      // colour bar
};

HeatmapChart::HeatmapChart(QWidget* parent) : ChartWidget(parent) { setEmptyText("No values to show"); }

void HeatmapChart::setData(QStringList rows, QStringList columns, std::vector<std::vector<double>> values) {
  rows_ = std::move(rows);
  columns_ = std::move(columns);
  values_ = std::move(values);
  values_.resize(static_cast<size_t>(rows_.size()));
  for (auto& r : values_) r.resize(static_cast<size_t>(columns_.size()), std::nan(""));
  update();
}

void HeatmapChart::setScale(Scale scale, double limit) {
  scale_ = scale;
  limit_ = limit;
  update();
}

void HeatmapChart::setDecimals(int decimals) {
  decimals_ = std::clamp(decimals, 0, 6);
  update();
}

void HeatmapChart::setLegendTitle(const QString& title) {
  legendTitle_ = title;
  update();
}

double HeatmapChart::value(int row, int column) const {
  if (row < 0 || row >= rowCount() || column < 0 || column >= columnCount()) return std::nan("");
  return values_[static_cast<size_t>(row)][static_cast<size_t>(column)];
}

double HeatmapChart::limit() const {
  if (limit_ > 0) return limit_;
  double m = 0;
  for (const auto& r : values_)
    for (double v : r)
      if (std::isfinite(v)) m = std::max(m, scale_ == Scale::Diverging ? std::fabs(v) : v);
  return m > 0 ? m : 1;
}

QColor HeatmapChart::colorFor(double v) const {
  if (!std::isfinite(v)) return kNaN;
  const double l = limit();
  if (scale_ == Scale::Sequential) return mix(QColor(Qt::white), kSeqHigh, v / l);
  return v >= 0 ? mix(kWhite, kRed, v / l) : mix(kWhite, kBlue, -v / l);
}

QColor HeatmapChart::cellColor(int row, int column) const { return colorFor(value(row, column)); }

HeatmapChart::Layout HeatmapChart::layout(QSizeF size) const {
  Layout l;
  const QFontMetricsF fm(chartFont());
  for (const auto& r : rows_) l.labelW = std::max(l.labelW, fm.horizontalAdvance(r));
  l.labelW = std::min(l.labelW + 8, size.width() * 0.3);
  double colLabel = 0;
  for (const auto& c : columns_) colLabel = std::max(colLabel, fm.horizontalAdvance(c));
  // Column labels turned by 35 degrees below the grid need about 0.6 of their width.
  const double bottom = std::min(colLabel * 0.6 + fm.height() + 10, size.height() * 0.35) + (xLabel_.isEmpty() ? 0 : fm.height() + 4);
  const double top = titleHeight() + 4;
  const double legendW = 70;
  const double yRoom = yLabel_.isEmpty() ? 0 : fm.height() + 6;
  l.grid = QRectF(12 + yRoom + l.labelW, top, std::max(10.0, size.width() - 12 - yRoom - l.labelW - legendW - 16),
                  std::max(10.0, size.height() - top - bottom));
  l.cellW = columns_.isEmpty() ? 0 : l.grid.width() / columnCount();
  l.cellH = rows_.isEmpty() ? 0 : l.grid.height() / rowCount();
  // Square-ish cells: no taller than 2x their width, no wider than 4x their height.
  l.cellH = std::min(l.cellH, std::max(24.0, 2 * l.cellW));
  l.cellW = std::min(l.cellW, std::max(40.0, 4 * l.cellH));
  l.grid.setWidth(l.cellW * columnCount());
  l.grid.setHeight(l.cellH * rowCount());
  l.legend = QRectF(l.grid.right() + 20, l.grid.top() + fm.height() + 4, 14,
                    std::min(160.0, std::max(40.0, l.grid.height() - fm.height() - 4)));
  return l;
}

QRectF HeatmapChart::cellRect(int row, int column) const {
  if (row < 0 || row >= rowCount() || column < 0 || column >= columnCount()) return {};
  const Layout l = layout(QSizeF(size()));
  return QRectF(l.grid.left() + column * l.cellW, l.grid.top() + row * l.cellH, l.cellW, l.cellH);
}

void HeatmapChart::draw(Canvas& c, QSizeF size) const {
  drawTitle(c, size);
  if (rows_.isEmpty() || columns_.isEmpty()) {
    drawEmpty(c, size);
    return;
  }
  const Layout l = layout(size);
  const QFontMetricsF fm(c.font());
  for (int i = 0; i < rowCount(); ++i) {
    const double y = l.grid.top() + i * l.cellH;
    c.text(QPointF(l.grid.left() - 6, y + l.cellH / 2), elide(fm, rows_[i], l.labelW), kTextColor,
           Qt::AlignRight | Qt::AlignVCenter);
    for (int j = 0; j < columnCount(); ++j) {
      const QRectF r(l.grid.left() + j * l.cellW, y, l.cellW, l.cellH);
      const double v = value(i, j);
      const QColor bg = colorFor(v);
      c.fillRect(r, bg);
      c.strokeRect(r, QColor(255, 255, 255), 1);
      const QString s = std::isfinite(v) ? QString::number(v, 'f', decimals_) : QString("n/a");
      if (fm.horizontalAdvance(s) + 4 < l.cellW && fm.height() < l.cellH)
        c.text(r.center(), s, std::isfinite(v) ? textOn(bg) : kMutedText, Qt::AlignCenter);
    }
  }
  for (int j = 0; j < columnCount(); ++j) {
    const QPointF a(l.grid.left() + (j + 0.5) * l.cellW, l.grid.bottom() + 6);
    c.text(a, elide(fm, columns_[j], size.height() * 0.5), kTextColor, Qt::AlignRight | Qt::AlignVCenter, -35);
  }
  if (!xLabel_.isEmpty())
    c.text(QPointF(l.grid.center().x(), size.height() - 4), xLabel_, kMutedText, Qt::AlignHCenter | Qt::AlignBottom);
  if (!yLabel_.isEmpty())
    c.text(QPointF(4, l.grid.center().y()), yLabel_, kMutedText, Qt::AlignHCenter | Qt::AlignTop, -90);

  // Colour bar: top = +limit, bottom = -limit (diverging) or 0 (sequential).
  const double lim = limit();
  const double lo = scale_ == Scale::Diverging ? -lim : 0;
  const int steps = 32;
  for (int k = 0; k < steps; ++k) {
    const double t0 = static_cast<double>(k) / steps;
    const QRectF r(l.legend.left(), l.legend.top() + t0 * l.legend.height(), l.legend.width(),
                   l.legend.height() / steps + 0.5);
    c.fillRect(r, colorFor(lim - (t0 + 0.5 / steps) * (lim - lo)));
  }
  c.strokeRect(l.legend, kAxisColor, 1);
  c.text(QPointF(l.legend.right() + 4, l.legend.top()), QString::number(lim, decimals_ == 0 ? 'f' : 'g', decimals_ == 0 ? 0 : 3), kTextColor,
         Qt::AlignLeft | Qt::AlignVCenter);
  c.text(QPointF(l.legend.right() + 4, l.legend.bottom()), QString::number(lo, 'g', 3), kTextColor,
         Qt::AlignLeft | Qt::AlignVCenter);
  if (!legendTitle_.isEmpty())
    c.text(QPointF(l.legend.left(), l.legend.top() - 4), legendTitle_, kMutedText, Qt::AlignLeft | Qt::AlignBottom);
}

// ---------------------------------------------------------------- BoxPlotChart

struct BoxPlotChart::Layout {
  QRectF plot;
  Scale y;
  Ticks ticks;
  double band = 0;     // width per feature
  double boxW = 0;
  double legendTop = 0;
};

BoxPlotChart::BoxPlotChart(QWidget* parent) : ChartWidget(parent) { setEmptyText("No values to show"); }

namespace {
double quantile(const std::vector<double>& sorted, double q) {
  // numpy's default (linear interpolation between closest ranks).
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(pos));
  const double f = pos - static_cast<double>(i);
  return i + 1 < sorted.size() ? sorted[i] + f * (sorted[i + 1] - sorted[i]) : sorted[i];
}
}  // namespace

void BoxPlotChart::setData(QStringList features, QStringList groups, std::vector<std::vector<std::vector<double>>> values,
                           std::vector<std::vector<double>> pvalues) {
  features_ = std::move(features);
  groups_ = std::move(groups);
  pvalues_ = std::move(pvalues);
  const size_t nf = static_cast<size_t>(features_.size()), ng = static_cast<size_t>(groups_.size());
  boxes_.assign(nf, std::vector<Box>(ng));
  outliers_.assign(nf, std::vector<std::vector<double>>(ng));
  pvalues_.resize(nf);
  for (auto& p : pvalues_) p.resize(ng, std::nan(""));
  bool any = false;
  lo_ = 0, hi_ = 1;
  for (size_t f = 0; f < nf && f < values.size(); ++f)
    for (size_t g = 0; g < ng && g < values[f].size(); ++g) {
      std::vector<double> v;
      for (double x : values[f][g])
        if (std::isfinite(x)) v.push_back(x);
      if (v.empty()) continue;
      std::sort(v.begin(), v.end());
      Box b;
      b.n = static_cast<int>(v.size());
      b.q1 = quantile(v, 0.25), b.median = quantile(v, 0.5), b.q3 = quantile(v, 0.75);
      const double iqr = b.q3 - b.q1;
      b.whiskerLow = b.q1, b.whiskerHigh = b.q3;
      for (double x : v) {
        if (x >= b.q1 - 1.5 * iqr) b.whiskerLow = std::min(b.whiskerLow, x);
        if (x <= b.q3 + 1.5 * iqr) b.whiskerHigh = std::max(b.whiskerHigh, x);
        if (x < b.q1 - 1.5 * iqr || x > b.q3 + 1.5 * iqr) outliers_[f][g].push_back(x);
      }
      if (!any) lo_ = v.front(), hi_ = v.back();
      lo_ = std::min(lo_, v.front()), hi_ = std::max(hi_, v.back());
      any = true;
      boxes_[f][g] = b;
    }
  if (hi_ - lo_ < 1e-9) hi_ = lo_ + 1;
  update();
}

BoxPlotChart::Box BoxPlotChart::box(int f, int g) const {
  if (f < 0 || f >= featureCount() || g < 0 || g >= groupCount()) return {};
  return boxes_[static_cast<size_t>(f)][static_cast<size_t>(g)];
}

QString BoxPlotChart::formatP(double p) {
  if (!std::isfinite(p)) return {};
  return "p = " + (p >= 0.001 ? QString::number(p, 'f', 3) : QString::number(p, 'e', 1));
}

BoxPlotChart::Layout BoxPlotChart::layout(QSizeF size) const {
  Layout l;
  const QFontMetricsF fm(chartFont());
  // Room above the data for the p-values.
  const double span = hi_ - lo_;
  l.ticks = niceTicks(lo_, hi_ + span * 0.12, 5);
  const Formatter fmt = [&](double v) { return tickLabel(v, l.ticks.step); };
  const double left = 14 + widestLabel(fm, l.ticks, fmt) + (yLabel_.isEmpty() ? 0 : fm.height() + 4);
  double legendW = 0;
  for (const auto& g : groups_) legendW = std::max(legendW, fm.horizontalAdvance(g));
  legendW += 30;
  const double top = titleHeight() + 6;
  const double bottom = fm.height() * 2 + 12;
  l.plot = QRectF(left, top, std::max(10.0, size.width() - left - legendW - 16), std::max(10.0, size.height() - top - bottom));
  l.y = Scale{l.ticks.lo, l.ticks.hi, l.plot.bottom(), l.plot.top()};
  l.band = features_.isEmpty() ? 0 : l.plot.width() / featureCount();
  l.boxW = groups_.isEmpty() ? 0 : std::min(48.0, l.band * 0.8 / groupCount());
  l.legendTop = top;
  return l;
}

QRectF BoxPlotChart::boxRect(int f, int g) const {
  const Box b = box(f, g);
  if (b.n == 0) return {};
  const Layout l = layout(QSizeF(size()));
  const double x0 = l.plot.left() + l.band * f + (l.band - l.boxW * groupCount()) / 2 + l.boxW * g;
  return QRectF(QPointF(x0 + l.boxW * 0.1, l.y.map(b.q3)), QPointF(x0 + l.boxW * 0.9, l.y.map(b.q1)));
}

void BoxPlotChart::draw(Canvas& c, QSizeF size) const {
  drawTitle(c, size);
  bool any = false;
  for (const auto& f : boxes_)
    for (const auto& b : f) any = any || b.n > 0;
  if (!any) {
    drawEmpty(c, size);
    return;
  }
  const Layout l = layout(size);
  const QFontMetricsF fm(c.font());
  drawYAxis(c, l.plot, l.ticks, l.y, false, true, [&](double v) { return tickLabel(v, l.ticks.step); });
  c.line(QPointF(l.plot.left(), crisp(l.plot.bottom())), QPointF(l.plot.right(), crisp(l.plot.bottom())), kAxisColor, 1);
  for (int f = 0; f < featureCount(); ++f) {
    const double cx = l.plot.left() + l.band * (f + 0.5);
    c.text(QPointF(cx, l.plot.bottom() + 6), elide(fm, features_[f], l.band - 4), kTextColor, Qt::AlignHCenter | Qt::AlignTop);
    for (int g = 0; g < groupCount(); ++g) {
      const Box b = boxes_[static_cast<size_t>(f)][static_cast<size_t>(g)];
      if (b.n == 0) continue;
      const double x0 = l.plot.left() + l.band * f + (l.band - l.boxW * groupCount()) / 2 + l.boxW * g;
      const double mid = x0 + l.boxW / 2;
      const QColor col = categoryColor(g);
      const QColor fill = mix(col, QColor(Qt::white), 0.35);
      c.line(QPointF(mid, l.y.map(b.whiskerLow)), QPointF(mid, l.y.map(b.q1)), kAxisColor, 1);
      c.line(QPointF(mid, l.y.map(b.q3)), QPointF(mid, l.y.map(b.whiskerHigh)), kAxisColor, 1);
      for (double w : {b.whiskerLow, b.whiskerHigh})
        c.line(QPointF(x0 + l.boxW * 0.3, l.y.map(w)), QPointF(x0 + l.boxW * 0.7, l.y.map(w)), kAxisColor, 1);
      const QRectF r(QPointF(x0 + l.boxW * 0.1, l.y.map(b.q3)), QPointF(x0 + l.boxW * 0.9, l.y.map(b.q1)));
      c.fillRect(r, fill);
      c.strokeRect(r, col.darker(130), 1);
      c.line(QPointF(r.left(), l.y.map(b.median)), QPointF(r.right(), l.y.map(b.median)), QColor(20, 20, 20), 2);
      for (double o : outliers_[static_cast<size_t>(f)][static_cast<size_t>(g)])
        c.circle(QPointF(mid, l.y.map(o)), 2, QColor(0, 0, 0, 0), col.darker(130), 1);
      const double p = pvalues_[static_cast<size_t>(f)][static_cast<size_t>(g)];
      if (g > 0 && std::isfinite(p))
        c.text(QPointF(mid, l.y.map(b.whiskerHigh) - 4), formatP(p), kTextColor, Qt::AlignHCenter | Qt::AlignBottom);
    }
  }
  // Legend: one swatch per group (group 0 = the reference).
  for (int g = 0; g < groupCount(); ++g) {
    const double y = l.legendTop + g * (fm.height() + 4);
    const QRectF sw(l.plot.right() + 14, y, 12, 12);
    c.fillRect(sw, mix(categoryColor(g), QColor(Qt::white), 0.35));
    c.strokeRect(sw, categoryColor(g).darker(130), 1);
    c.text(QPointF(sw.right() + 5, sw.center().y()), groups_[g], kTextColor, Qt::AlignLeft | Qt::AlignVCenter);
  }
  if (!yLabel_.isEmpty())
    c.text(QPointF(4, l.plot.center().y()), yLabel_, kMutedText, Qt::AlignHCenter | Qt::AlignTop, -90);
  if (!xLabel_.isEmpty())
    c.text(QPointF(l.plot.center().x(), size.height() - 4), xLabel_, kMutedText, Qt::AlignHCenter | Qt::AlignBottom);
}

}  // namespace uce::views
