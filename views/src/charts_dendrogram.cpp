#include <QMouseEvent>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "chart_axes.h"
#include "uce/views/dendrogram.h"

namespace uce::views {

using namespace detail;

struct DendrogramChart::Layout {
  QRectF plot;        // the tree: x = merge distance (right edge = 0), rows = leaves
  double rowHeight = 0;
  double labelX = 0;  // left end of the leaf labels
  double labelWidth = 0;
  double fontPx = 12;
  Ticks ticks;
  Scale x;
  std::vector<double> nodeX, nodeY;  // [2n - 1] positions of leaves and merges
};

DendrogramChart::DendrogramChart(QWidget* parent) : ChartWidget(parent) {
  setEmptyText(QStringLiteral("No tree: compute centroids first"));
  setAxisLabels(QStringLiteral("distance between centroids"), QString());
  setMouseTracking(true);
}

void DendrogramChart::clear() {
  labels_.clear();
  merges_.clear();
  order_.clear();
  rowOf_.clear();
  highlighted_ = -1;
  update();
}

bool DendrogramChart::setTree(const QStringList& labels, const std::vector<DendrogramMerge>& merges, QString* error) {
  auto refuse = [&](const QString& why) {
    clear();
    if (error) *error = why;
    return false;
  };
  const int64_t n = labels.size();
  if (n == 1 && merges.empty()) {
    labels_ = labels;
    merges_.clear();
    order_ = {0};
    rowOf_ = {0};
    highlighted_ = -1;
    update();
    return true;
  }
  if (n < 2 || static_cast<int64_t>(merges.size()) != n - 1)
    return refuse(QStringLiteral("a tree of %1 leaves needs %2 merges, got %3").arg(n).arg(std::max<int64_t>(0, n - 1)).arg(merges.size()));
  std::vector<uint8_t> used(static_cast<size_t>(2 * n - 1), 0);
  for (int64_t i = 0; i < n - 1; ++i) {
    const auto& m = merges[static_cast<size_t>(i)];
    for (int64_t c : {m.a, m.b}) {
      if (c < 0 || c >= n + i || used[static_cast<size_t>(c)])
        return refuse(QStringLiteral("merge %1 joins cluster %2, which does not exist yet or was merged before").arg(i).arg(c));
      used[static_cast<size_t>(c)] = 1;
    }
    if (!std::isfinite(m.distance)) return refuse(QStringLiteral("merge %1 has no finite distance").arg(i));
  }
  labels_ = labels;
  merges_ = merges;
  // Leaf order: walk from the root, a before b (SciPy's dendrogram order).
  order_.clear();
  std::vector<int64_t> stack{2 * n - 2};
  while (!stack.empty()) {
    const int64_t c = stack.back();
    stack.pop_back();
    if (c < n) {
      order_.push_back(static_cast<int>(c));
    } else {
      const auto& m = merges_[static_cast<size_t>(c - n)];
      stack.push_back(m.b);
      stack.push_back(m.a);
    }
  }
  rowOf_.assign(static_cast<size_t>(n), 0);
  for (size_t r = 0; r < order_.size(); ++r) rowOf_[static_cast<size_t>(order_[r])] = static_cast<int>(r);
  highlighted_ = -1;
  update();
  return true;
}

void DendrogramChart::setLeafColors(std::vector<QColor> colors) {
  colors_ = std::move(colors);
  update();
}

void DendrogramChart::setHighlightedLeaf(int leaf) {
  highlighted_ = leaf >= 0 && leaf < leafCount() ? leaf : -1;
  update();
}

DendrogramChart::Layout DendrogramChart::layout(QSizeF size) const {
  Layout l;
  const int64_t n = labels_.size();
  const double top = titleHeight() + 10, bottom = 44;
  const double rows = std::max<double>(1, static_cast<double>(n));
  l.rowHeight = std::max(1.0, (size.height() - top - bottom) / rows);
  l.fontPx = std::clamp(l.rowHeight * 0.85, 7.0, 12.0);
  QFont f = chartFont();
  f.setPixelSize(static_cast<int>(l.fontPx));
  QFontMetricsF fm(f);
  for (const auto& s : labels_) l.labelWidth = std::max(l.labelWidth, fm.horizontalAdvance(s));
  l.labelWidth = std::min(l.labelWidth, size.width() * 0.55);
  const double left = 18, right = size.width() - l.labelWidth - 14;
  l.plot = QRectF(left, top, std::max(20.0, right - left), l.rowHeight * rows);
  l.labelX = l.plot.right() + 6;
  double maxD = 0;
  for (const auto& m : merges_) maxD = std::max(maxD, m.distance);
  l.ticks = niceTicks(0, maxD > 0 ? maxD : 1, 5);
  l.x = Scale{0, l.ticks.hi, l.plot.right(), l.plot.left()};
  l.nodeX.assign(static_cast<size_t>(std::max<int64_t>(1, 2 * n - 1)), l.plot.right());
  l.nodeY.assign(l.nodeX.size(), 0);
  for (int64_t i = 0; i < n; ++i)
    l.nodeY[static_cast<size_t>(i)] = l.plot.top() + (rowOf_[static_cast<size_t>(i)] + 0.5) * l.rowHeight;
  for (size_t i = 0; i < merges_.size(); ++i) {
    const auto& m = merges_[i];
    const size_t c = static_cast<size_t>(n) + i;
    l.nodeX[c] = l.x.map(m.distance);
    l.nodeY[c] = 0.5 * (l.nodeY[static_cast<size_t>(m.a)] + l.nodeY[static_cast<size_t>(m.b)]);
  }
  return l;
}

QRectF DendrogramChart::labelRectIn(const Layout& l, int leaf) const {
  if (leaf < 0 || leaf >= leafCount()) return {};
  const double y = l.nodeY[static_cast<size_t>(leaf)];
  return QRectF(l.labelX, y - l.rowHeight / 2, l.labelWidth + 4, l.rowHeight);
}

QRectF DendrogramChart::leafLabelRect(int leaf) const { return labelRectIn(layout(QSizeF(size())), leaf); }

QPointF DendrogramChart::leafTip(int leaf) const {
  if (leaf < 0 || leaf >= leafCount()) return {};
  const Layout l = layout(QSizeF(size()));
  return {l.nodeX[static_cast<size_t>(leaf)], l.nodeY[static_cast<size_t>(leaf)]};
}

int DendrogramChart::leafAt(QPointF pos) const {
  if (labels_.isEmpty()) return -1;
  const Layout l = layout(QSizeF(size()));
  if (pos.x() < l.plot.left() || pos.x() > l.labelX + l.labelWidth + 4) return -1;
  // The leaf's row, right of its branch tip region: the last quarter of the tree and the label.
  if (pos.x() < l.plot.right() - l.plot.width() * 0.25 && pos.x() < l.labelX) return -1;
  const int row = static_cast<int>(std::floor((pos.y() - l.plot.top()) / l.rowHeight));
  if (row < 0 || row >= static_cast<int>(order_.size())) return -1;
  return order_[static_cast<size_t>(row)];
}

void DendrogramChart::draw(Canvas& c, QSizeF size) const {
  drawTitle(c, size);
  if (labels_.isEmpty()) {
    drawEmpty(c, size);
    return;
  }
  const Layout l = layout(size);
  const int64_t n = labels_.size();
  // Highlighted row band.
  if (highlighted_ >= 0) {
    const double y = l.nodeY[static_cast<size_t>(highlighted_)];
    c.fillRect(QRectF(l.plot.left(), y - l.rowHeight / 2, l.labelX + l.labelWidth + 4 - l.plot.left(), l.rowHeight),
               QColor(255, 232, 200));
  }
  // Branches: for each merge, a vertical joining its children and horizontals to each child.
  for (size_t i = 0; i < merges_.size(); ++i) {
    const auto& m = merges_[i];
    const size_t node = static_cast<size_t>(n) + i;
    const double x = l.nodeX[node];
    const double ya = l.nodeY[static_cast<size_t>(m.a)], yb = l.nodeY[static_cast<size_t>(m.b)];
    c.line(QPointF(x, ya), QPointF(x, yb), kBranch, 1.3);
    c.line(QPointF(x, ya), QPointF(l.nodeX[static_cast<size_t>(m.a)], ya), kBranch, 1.3);
    c.line(QPointF(x, yb), QPointF(l.nodeX[static_cast<size_t>(m.b)], yb), kBranch, 1.3);
  }
  // Leaves and labels.
  QFont f = chartFont();
  f.setPixelSize(static_cast<int>(l.fontPx));
  const QFont before = c.font();
  c.setFont(f);
  for (int64_t i = 0; i < n; ++i) {
    const bool hi = i == highlighted_;
    const QColor col = hi ? kHighlight
                          : (static_cast<size_t>(i) < colors_.size() && colors_[static_cast<size_t>(i)].isValid()
                                 ? colors_[static_cast<size_t>(i)]
                                 : kTextColor);
    const QPointF tip(l.nodeX[static_cast<size_t>(i)], l.nodeY[static_cast<size_t>(i)]);
    c.circle(tip, hi ? 4 : 2.5, hi ? kHighlight : col);
    c.text(QPointF(l.labelX, tip.y()), labels_[static_cast<int>(i)], col, Qt::AlignLeft | Qt::AlignVCenter);
  }
  c.setFont(before);
  // Distance axis under the tree.
  const double ay = l.plot.bottom() + 6;
  c.line(QPointF(l.plot.left(), crisp(ay)), QPointF(l.plot.right(), crisp(ay)), kAxisColor, 1);
  for (double v : l.ticks.values) {
    const double x = l.x.map(v);
    c.line(QPointF(x, ay), QPointF(x, ay + kTickLength), kAxisColor, 1);
    c.text(QPointF(x, ay + kTickLength + 2), tickLabel(v, l.ticks.step), kTextColor, Qt::AlignHCenter | Qt::AlignTop);
  }
  if (!xLabel_.isEmpty())
    c.text(QPointF(l.plot.center().x(), size.height() - 4), xLabel_, kMutedText, Qt::AlignHCenter | Qt::AlignBottom);
}

void DendrogramChart::mousePressEvent(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton) return ChartWidget::mousePressEvent(event);
  const int leaf = leafAt(event->position());
  if (leaf < 0) return;
  setHighlightedLeaf(leaf);
  Q_EMIT leafClicked(leaf, labels_[leaf]);
}

void DendrogramChart::mouseMoveEvent(QMouseEvent* event) {
  const int leaf = leafAt(event->position());
  setCursor(leaf >= 0 ? Qt::PointingHandCursor : Qt::ArrowCursor);
  if (leaf >= 0) setToolTip(labels_[leaf]);
  else setToolTip(QString());
}

}  // namespace uce::views
