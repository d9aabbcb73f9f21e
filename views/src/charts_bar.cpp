// StackedBarChart: cluster composition as stacked fractions.
#include <QMouseEvent>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "chart_axes.h"
#include "uce/views/charts.h"

namespace uce::views {

using namespace detail;

struct StackedBarChart::Layout {
  QRectF plot;
  Scale y;                // fraction [0, 1] -> pixels
  double band = 0;        // px per cluster
  double barWidth = 0;
  bool rotateLabels = false;
  double labelRoom = 0;   // px for a (possibly rotated) cluster label
  double legendX = 0;
  double legendWidth = 0;
  double rowHeight = 18;
  int legendShown = 0;    // categories listed; the rest are summarised in one line
};

StackedBarChart::StackedBarChart(QWidget* parent) : ChartWidget(parent) {
  xLabel_ = tr("cluster");
  yLabel_ = tr("fraction of cells");
  emptyText_ = tr("No clusters yet: compute clusters to see their composition");
}

void StackedBarChart::setData(QStringList clusters, QStringList categories,
                              std::vector<std::vector<int64_t>> counts) {
  clusters_ = std::move(clusters);
  categories_ = std::move(categories);
  counts_ = std::move(counts);
  // Missing rows/cells count as zero; negative counts are not cells.
  counts_.resize(static_cast<size_t>(clusters_.size()));
  totals_.assign(counts_.size(), 0);
  for (size_t i = 0; i < counts_.size(); ++i) {
    counts_[i].resize(static_cast<size_t>(categories_.size()), 0);
    for (int64_t& c : counts_[i]) {
      c = std::max<int64_t>(c, 0);
      totals_[i] += c;
    }
  }
  lastHover_ = Hit();
  update();
}

void StackedBarChart::setFromCodes(const std::vector<int32_t>& clusterCodes, QStringList clusters,
                                   const std::vector<int32_t>& categoryCodes, QStringList categories) {
  std::vector<std::vector<int64_t>> counts(static_cast<size_t>(clusters.size()),
                                           std::vector<int64_t>(static_cast<size_t>(categories.size()), 0));
  const size_t n = std::min(clusterCodes.size(), categoryCodes.size());
  for (size_t i = 0; i < n; ++i) {
    const int32_t a = clusterCodes[i], b = categoryCodes[i];
    if (a < 0 || a >= clusters.size() || b < 0 || b >= categories.size()) continue;
    ++counts[static_cast<size_t>(a)][static_cast<size_t>(b)];
  }
  setData(std::move(clusters), std::move(categories), std::move(counts));
}

void StackedBarChart::setColors(std::vector<QColor> colors) {
  colors_ = std::move(colors);
  update();
}

QColor StackedBarChart::colorOf(int category) const {
  if (category >= 0 && static_cast<size_t>(category) < colors_.size() && colors_[static_cast<size_t>(category)].isValid())
    return colors_[static_cast<size_t>(category)];
  return categoryColor(category);
}

int64_t StackedBarChart::count(int cluster, int category) const {
  if (cluster < 0 || cluster >= clusterCount() || category < 0 || category >= categoryCount()) return 0;
  return counts_[static_cast<size_t>(cluster)][static_cast<size_t>(category)];
}

StackedBarChart::Layout StackedBarChart::layout(QSizeF size) const {
  Layout l;
  const QFontMetricsF fm(chartFont());
  l.rowHeight = std::max(16.0, fm.height() + 4);
  double widestCategory = 0;
  for (const QString& c : categories_) widestCategory = std::max(widestCategory, fm.horizontalAdvance(c));
  l.legendWidth = std::min(widestCategory + 12 + 6 + 8, size.width() * 0.35);
  const double top = titleHeight() + fm.height() / 2 + 2;
  const double left = (yLabel_.isEmpty() ? 0 : fm.height() + 6) + fm.horizontalAdvance("100 %") + kTickLength + 8;
  const double right = l.legendWidth + 16;
  const double plotWidth = std::max(10.0, size.width() - left - right);
  const int n = std::max(1, clusterCount());
  l.band = plotWidth / n;
  l.barWidth = std::max(1.0, std::round(l.band * 0.78));
  double widestCluster = 0;
  for (const QString& c : clusters_) widestCluster = std::max(widestCluster, fm.horizontalAdvance(c));
  l.rotateLabels = widestCluster > l.band * 0.9;
  double bottom = fm.height() + kTickLength + 6;
  if (l.rotateLabels) {
    l.labelRoom = std::min(widestCluster, size.height() * 0.25);
    bottom = l.labelRoom * 0.71 + fm.height() * 0.71 + kTickLength + 6;
  } else {
    l.labelRoom = l.band;
  }
  if (!xLabel_.isEmpty()) bottom += fm.height() + 4;
  l.plot = QRectF(std::round(left), std::round(top), std::round(plotWidth),
                  std::round(std::max(10.0, size.height() - top - bottom)));
  l.y = Scale{0, 1, l.plot.bottom(), l.plot.top()};
  l.legendX = l.plot.right() + 16;
  const int maxRows = std::max(1, static_cast<int>(l.plot.height() / l.rowHeight));
  l.legendShown = categoryCount() <= maxRows ? categoryCount() : maxRows - 1;
  return l;
}

QRectF StackedBarChart::segmentRect(int cluster, int category) const {
  return segmentRectIn(layout(QSizeF(size())), cluster, category);
}

QRectF StackedBarChart::segmentRectIn(const Layout& l, int cluster, int category) const {
  if (count(cluster, category) <= 0) return QRectF();
  const size_t ci = static_cast<size_t>(cluster);
  int64_t below = 0;
  for (int k = 0; k < category; ++k) below += counts_[ci][static_cast<size_t>(k)];
  const double total = static_cast<double>(totals_[ci]);
  const double y0 = std::round(l.y.map(below / total));
  const double y1 = std::round(l.y.map((below + counts_[ci][static_cast<size_t>(category)]) / total));
  const double x = std::round(l.plot.left() + l.band * cluster + (l.band - l.barWidth) / 2);
  return QRectF(x, y1, l.barWidth, y0 - y1);
}

StackedBarChart::Hit StackedBarChart::hitTest(QPointF pos) const {
  Hit hit;
  const Layout l = layout(QSizeF(size()));
  for (int c = 0; c < clusterCount(); ++c)
    for (int k = 0; k < categoryCount(); ++k) {
      const QRectF r = segmentRectIn(l, c, k);
      if (!r.isEmpty() && r.contains(pos)) {
        hit.cluster = c;
        hit.category = k;
        hit.count = count(c, k);
        hit.fraction = static_cast<double>(hit.count) / static_cast<double>(totals_[static_cast<size_t>(c)]);
        return hit;
      }
    }
  return hit;
}

QString StackedBarChart::hoverText(QPointF pos) const {
  const Hit h = hitTest(pos);
  if (h.cluster < 0) return QString();
  return tr("%1 %2 · %3: %4 cells (%5 % of %6)")
      .arg(xLabel_.isEmpty() ? tr("cluster") : xLabel_, clusters_[h.cluster], categories_[h.category])
      .arg(h.count)
      .arg(100.0 * h.fraction, 0, 'f', 1)
      .arg(totals_[static_cast<size_t>(h.cluster)]);
}

void StackedBarChart::mouseMoveEvent(QMouseEvent* event) {
  const QPointF pos = event->position();
  const Hit h = hitTest(pos);
  if (h.cluster != lastHover_.cluster || h.category != lastHover_.category) {
    lastHover_ = h;
    if (h.cluster >= 0) Q_EMIT hovered(h.cluster, h.category, h.count);
  }
  if (h.cluster >= 0) QToolTip::showText(event->globalPosition().toPoint(), hoverText(pos), this);
  else QToolTip::hideText();
  ChartWidget::mouseMoveEvent(event);
}

void StackedBarChart::leaveEvent(QEvent* event) {
  lastHover_ = Hit();
  QToolTip::hideText();
  ChartWidget::leaveEvent(event);
}

void StackedBarChart::draw(Canvas& c, QSizeF size) const {
  drawTitle(c, size);
  int64_t all = 0;
  for (int64_t t : totals_) all += t;
  if (clusterCount() == 0 || all == 0) {
    drawEmpty(c, size);
    return;
  }
  const Layout l = layout(size);
  const QFontMetricsF fm(c.font());

  Ticks ticks;
  ticks.lo = 0, ticks.hi = 1, ticks.step = 0.25;
  ticks.values = {0, 0.25, 0.5, 0.75, 1.0};
  drawYAxis(c, l.plot, ticks, l.y, false, true,
            [](double v) { return QString::number(std::lround(v * 100)) + " %"; });

  // Bars: segment y edges are rounded to whole pixels so neighbours abut without seams.
  for (int ci = 0; ci < clusterCount(); ++ci) {
    const double centre = l.plot.left() + l.band * (ci + 0.5);
    for (int k = 0; k < categoryCount(); ++k) {
      const QRectF r = segmentRectIn(l, ci, k);
      if (!r.isEmpty()) c.fillRect(r, colorOf(k));
    }
    c.line(QPointF(crisp(centre), l.plot.bottom() + 0.5), QPointF(crisp(centre), l.plot.bottom() + 0.5 + kTickLength),
           kAxisColor, 1);
    const QString label = fm.elidedText(clusters_[ci], Qt::ElideRight, l.labelRoom);
    if (l.rotateLabels)
      c.text(QPointF(centre, l.plot.bottom() + kTickLength + 4), label, kAxisColor,
             Qt::AlignRight | Qt::AlignVCenter, -45);
    else
      c.text(QPointF(centre, l.plot.bottom() + kTickLength + 2), label, kAxisColor,
             Qt::AlignHCenter | Qt::AlignTop);
  }
  c.line(QPointF(l.plot.left() - 1, l.plot.bottom() + 0.5), QPointF(l.plot.right(), l.plot.bottom() + 0.5), kAxisColor, 1);

  if (!xLabel_.isEmpty())
    c.text(QPointF(l.plot.center().x(), size.height() - 4), xLabel_, kTextColor,
           Qt::AlignHCenter | Qt::AlignBottom);
  if (!yLabel_.isEmpty())
    c.text(QPointF(4, l.plot.center().y()), yLabel_, kTextColor, Qt::AlignHCenter | Qt::AlignTop, -90);

  // Legend: one swatch per category, top to bottom in the order the stack goes up.
  double y = l.plot.top();
  const double textWidth = std::max(10.0, size.width() - l.legendX - 18 - 4);
  for (int k = 0; k < l.legendShown; ++k, y += l.rowHeight) {
    c.fillRect(QRectF(std::round(l.legendX), std::round(y + (l.rowHeight - 12) / 2), 12, 12), colorOf(k));
    c.text(QPointF(l.legendX + 18, y + l.rowHeight / 2), fm.elidedText(categories_[k], Qt::ElideRight, textWidth),
           kTextColor, Qt::AlignLeft | Qt::AlignVCenter);
  }
  if (l.legendShown < categoryCount())
    c.text(QPointF(l.legendX, y + l.rowHeight / 2), tr("+ %1 more").arg(categoryCount() - l.legendShown),
           kMutedText, Qt::AlignLeft | Qt::AlignVCenter);
}

}  // namespace uce::views
