// VolcanoPlot: log2 fold change against -log10 adjusted p, one point per gene.
#include <QMouseEvent>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "chart_axes.h"
#include "uce/views/charts.h"

namespace uce::views {

using namespace detail;

namespace {
constexpr double kPickRadius = 6;  // px around a point that still counts as clicking it
}

struct VolcanoPlot::Layout {
  QRectF plot;
  Scale x, y;
  Ticks xTicks, yTicks;
  double radius = 3;
};

VolcanoPlot::VolcanoPlot(QWidget* parent) : ChartWidget(parent) {
  xLabel_ = tr("log2 fold change");
  yLabel_ = tr("-log10 adjusted p");
  emptyText_ = tr("No differential expression yet: select cells and compare them with the rest");
}

void VolcanoPlot::setResults(const std::vector<DeRow>& rows) {
  points_.clear();
  points_.reserve(rows.size());
  double yMax = 0;
  for (const DeRow& r : rows) {
    if (!std::isfinite(r.log2FoldChange) || std::isnan(r.pAdjusted)) continue;
    Point p;
    p.gene = r.gene;
    p.x = r.log2FoldChange;
    p.padj = std::clamp(r.pAdjusted, 0.0, 1.0);
    p.y = p.padj > 0 ? -std::log10(p.padj) : NAN;
    if (std::isfinite(p.y)) yMax = std::max(yMax, p.y);
    points_.push_back(std::move(p));
  }
  // p = 0 (below the smallest double): drawn at the top, just above the largest finite value.
  const double cap = yMax > 0 ? yMax * 1.05 : 10.0;
  for (Point& p : points_)
    if (!std::isfinite(p.y)) p.y = cap;
  classify();
}

void VolcanoPlot::setThresholds(double log2fc, double padj) {
  fcThreshold_ = std::abs(log2fc);
  padjThreshold_ = std::clamp(padj, 0.0, 1.0);
  classify();
}

void VolcanoPlot::setLabelCount(int n) {
  labelCount_ = std::max(0, n);
  update();
}

void VolcanoPlot::setHighlightedGene(const QString& gene) {
  highlighted_ = gene;
  update();
}

void VolcanoPlot::classify() {
  for (Point& p : points_) {
    const bool sig = p.padj <= padjThreshold_ && std::abs(p.x) >= fcThreshold_;
    p.cls = !sig ? 0 : (p.x > 0 ? 1 : 2);
  }
  // Grey underneath, then significant genes, most significant on top.
  std::stable_sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    if ((a.cls != 0) != (b.cls != 0)) return a.cls == 0;
    return a.y < b.y;
  });
  update();
}

VolcanoPlot::Layout VolcanoPlot::layout(QSizeF size) const {
  Layout l;
  const QFontMetricsF fm(chartFont());
  double xMax = fcThreshold_ * 1.5, yMax = -std::log10(std::max(padjThreshold_, 1e-300)) * 1.2;
  for (const Point& p : points_) {
    xMax = std::max(xMax, std::abs(p.x));
    yMax = std::max(yMax, p.y);
  }
  l.xTicks = niceTicks(-xMax * 1.05, xMax * 1.05, 6);
  l.yTicks = niceTicks(0, yMax * 1.05, 5);
  const auto fmtY = [&](double v) { return tickLabel(v, l.yTicks.step); };
  const double top = titleHeight() + fm.height() / 2 + 2;
  const double left = (yLabel_.isEmpty() ? 0 : fm.height() + 6) + widestLabel(fm, l.yTicks, fmtY) + kTickLength + 8;
  const double bottom = fm.height() + kTickLength + 6 + (xLabel_.isEmpty() ? 0 : fm.height() + 4);
  l.plot = QRectF(std::round(left), std::round(top), std::max(10.0, std::round(size.width() - left - 16)),
                  std::max(10.0, std::round(size.height() - top - bottom)));
  l.x = Scale{l.xTicks.lo, l.xTicks.hi, l.plot.left(), l.plot.right()};
  l.y = Scale{l.yTicks.lo, l.yTicks.hi, l.plot.bottom(), l.plot.top()};
  l.radius = points_.size() > 5000 ? 2.0 : 3.0;
  return l;
}

QStringList VolcanoPlot::placeLabels(Canvas* canvas, const Layout& l) const {
  std::vector<const Point*> sig;
  for (const Point& p : points_)
    if (p.cls != 0) sig.push_back(&p);
  std::sort(sig.begin(), sig.end(), [](const Point* a, const Point* b) {
    if (a->padj != b->padj) return a->padj < b->padj;
    return std::abs(a->x) > std::abs(b->x);
  });
  const QFontMetricsF fm(canvas ? canvas->font() : chartFont());
  // Keep clear of the "down: N" / "up: N" counts in the top corners.
  const double cornerW = fm.horizontalAdvance(tr("down: %1").arg(points_.size())) + 8;
  std::vector<QRectF> placed = {QRectF(l.plot.left(), l.plot.top(), cornerW, fm.height() + 6),
                                QRectF(l.plot.right() - cornerW, l.plot.top(), cornerW, fm.height() + 6)};
  QStringList genes;
  for (const Point* p : sig) {
    if (genes.size() >= labelCount_) break;
    const QPointF at(l.x.map(p->x), l.y.map(p->y));
    const double w = fm.horizontalAdvance(p->gene), h = fm.height();
    // Right of the point first, then left of it; skip the gene when both collide.
    const QRectF options[] = {QRectF(at.x() + l.radius + 2, at.y() - h / 2, w, h),
                              QRectF(at.x() - l.radius - 2 - w, at.y() - h / 2, w, h)};
    for (int side = 0; side < 2; ++side) {
      const QRectF& r = options[side];
      if (!l.plot.contains(r)) continue;
      if (std::any_of(placed.begin(), placed.end(), [&r](const QRectF& o) { return o.intersects(r); }))
        continue;
      placed.push_back(r);
      genes << p->gene;
      if (canvas)
        canvas->text(side == 0 ? QPointF(r.left(), at.y()) : QPointF(r.right(), at.y()), p->gene, kTextColor,
                     (side == 0 ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignVCenter);
      break;
    }
  }
  return genes;
}

QStringList VolcanoPlot::labelledGenes() const { return placeLabels(nullptr, layout(QSizeF(size()))); }

QString VolcanoPlot::geneAt(QPointF pos) const {
  const Layout l = layout(QSizeF(size()));
  double best = kPickRadius * kPickRadius;
  const Point* hit = nullptr;
  // Later points are drawn on top, so on a tie the later one wins.
  for (const Point& p : points_) {
    const double dx = l.x.map(p.x) - pos.x(), dy = l.y.map(p.y) - pos.y();
    const double d = dx * dx + dy * dy;
    if (d <= best) {
      best = d;
      hit = &p;
    }
  }
  return hit ? hit->gene : QString();
}

bool VolcanoPlot::pointPosition(const QString& gene, QPointF* pos) const {
  const Layout l = layout(QSizeF(size()));
  for (const Point& p : points_)
    if (p.gene == gene) {
      if (pos) *pos = QPointF(l.x.map(p.x), l.y.map(p.y));
      return true;
    }
  return false;
}

void VolcanoPlot::mousePressEvent(QMouseEvent* event) {
  if (event->button() == Qt::LeftButton) {
    const QString gene = geneAt(event->position());
    if (!gene.isEmpty()) {
      setHighlightedGene(gene);
      Q_EMIT geneClicked(gene);
    }
  }
  ChartWidget::mousePressEvent(event);
}

void VolcanoPlot::mouseMoveEvent(QMouseEvent* event) {
  const QString gene = geneAt(event->position());
  if (gene.isEmpty()) {
    QToolTip::hideText();
  } else {
    for (const Point& p : points_)
      if (p.gene == gene) {
        QToolTip::showText(event->globalPosition().toPoint(),
                           tr("%1\nlog2 FC %2, adjusted p %3").arg(gene).arg(p.x, 0, 'f', 2).arg(p.padj, 0, 'e', 2),
                           this);
        break;
      }
  }
  ChartWidget::mouseMoveEvent(event);
}

void VolcanoPlot::draw(Canvas& c, QSizeF size) const {
  drawTitle(c, size);
  if (points_.empty()) {
    drawEmpty(c, size);
    return;
  }
  const Layout l = layout(size);
  drawYAxis(c, l.plot, l.yTicks, l.y, false, true, [&](double v) { return tickLabel(v, l.yTicks.step); });
  drawXAxis(c, l.plot, l.xTicks, l.x, true, [&](double v) { return tickLabel(v, l.xTicks.step); });

  const QColor threshold(120, 120, 120);
  for (double fc : {-fcThreshold_, fcThreshold_}) {
    if (fc <= l.x.d0 || fc >= l.x.d1) continue;
    c.line(QPointF(l.x.map(fc), l.plot.top()), QPointF(l.x.map(fc), l.plot.bottom()), threshold, 1, true);
  }
  if (padjThreshold_ > 0) {
    const double y = l.y.map(-std::log10(padjThreshold_));
    if (y > l.plot.top() && y < l.plot.bottom())
      c.line(QPointF(l.plot.left(), y), QPointF(l.plot.right(), y), threshold, 1, true);
  }

  const QColor colours[] = {kOther, kUp, kDown};
  int up = 0, down = 0;
  for (const Point& p : points_) {
    c.circle(QPointF(l.x.map(p.x), l.y.map(p.y)), l.radius, colours[p.cls]);
    up += p.cls == 1;
    down += p.cls == 2;
  }
  if (!highlighted_.isEmpty())
    for (const Point& p : points_)
      if (p.gene == highlighted_) {
        c.circle(QPointF(l.x.map(p.x), l.y.map(p.y)), l.radius + 3, QColor(Qt::transparent), QColor(Qt::black), 1.5);
        break;
      }
  placeLabels(&c, l);

  c.text(QPointF(l.plot.right() - 4, l.plot.top() + 4), tr("up: %1").arg(up), kUp, Qt::AlignRight | Qt::AlignTop);
  c.text(QPointF(l.plot.left() + 4, l.plot.top() + 4), tr("down: %1").arg(down), kDown, Qt::AlignLeft | Qt::AlignTop);
  if (!xLabel_.isEmpty())
    c.text(QPointF(l.plot.center().x(), size.height() - 4), xLabel_, kTextColor, Qt::AlignHCenter | Qt::AlignBottom);
  if (!yLabel_.isEmpty())
    c.text(QPointF(4, l.plot.center().y()), yLabel_, kTextColor, Qt::AlignHCenter | Qt::AlignTop, -90);
}

}  // namespace uce::views
