#pragma once
// DendrogramChart: a hierarchical-clustering tree (SciPy linkage: merges of clusters a, b at a
// distance; leaves 0..n-1, the cluster made by merge i is n + i), drawn left to right: merge
// distance on the x axis (root at the left), one row per leaf on the right with its label, in
// SciPy's dendrogram leaf order. Clicking a leaf (its row or label) emits leafClicked and
// highlights it. Drawn through Canvas, so the screen, PNG and SVG are the same picture.
#include <QColor>
#include <QPointF>
#include <QRectF>
#include <QString>
#include <QStringList>
#include <cstdint>
#include <vector>

#include "uce/views/charts.h"

namespace uce::views {

struct DendrogramMerge {
  int64_t a = 0, b = 0;   // merged clusters
  double distance = 0;    // merge height
  int64_t size = 0;       // leaves below
};

class DendrogramChart : public ChartWidget {
  Q_OBJECT
 public:
  explicit DendrogramChart(QWidget* parent = nullptr);

  // labels: one per leaf (n); merges: n - 1 rows. A malformed tree (wrong count, cluster ids
  // out of range or used twice) is refused: false with a message, the chart left empty.
  bool setTree(const QStringList& labels, const std::vector<DendrogramMerge>& merges, QString* error = nullptr);
  void clear();
  // Optional colour per leaf label (e.g. by species); default: dark grey.
  void setLeafColors(std::vector<QColor> colors);

  int leafCount() const { return static_cast<int>(labels_.size()); }
  QStringList labels() const { return labels_; }
  // Leaves top to bottom (SciPy's dendrogram order: the tree walked from the root, a before b).
  std::vector<int> leafOrder() const { return order_; }
  // The leaf whose row contains widget position `pos` (within the leaf band), or -1.
  int leafAt(QPointF pos) const;
  // Where a leaf's label is drawn in the widget now (empty when unknown).
  QRectF leafLabelRect(int leaf) const;
  // Position of a leaf's tip (end of its branch) in the widget.
  QPointF leafTip(int leaf) const;

  void setHighlightedLeaf(int leaf);  // -1 = none
  int highlightedLeaf() const { return highlighted_; }
  static inline const QColor kBranch = QColor(60, 60, 60);
  static inline const QColor kHighlight = QColor(214, 39, 40);

  void draw(Canvas& canvas, QSizeF size) const override;
  QSize sizeHint() const override { return QSize(560, 480); }

 Q_SIGNALS:
  void leafClicked(int leaf, const QString& label);

 protected:
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;

 private:
  struct Layout;
  Layout layout(QSizeF size) const;
  QRectF labelRectIn(const Layout& l, int leaf) const;

  QStringList labels_;
  std::vector<DendrogramMerge> merges_;
  std::vector<int> order_;          // leaves, top to bottom
  std::vector<int> rowOf_;          // [leaf] -> row in order_
  std::vector<QColor> colors_;
  int highlighted_ = -1;
};

}  // namespace uce::views
