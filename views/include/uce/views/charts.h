#pragma once
// Charts drawn with QPainter on screen and exported as PNG or SVG from the same drawing code
// (each chart's draw(Canvas&, size) is the only place that draws it).
//  * StackedBarChart: composition of clusters by an obs column, as stacked fractions.
//  * VolcanoPlot: DE results, log2 fold change vs -log10 adjusted p; click a gene.
//  * LiveLineChart: series of (step, value) appended while a job runs; axes follow the data.
#include <QColor>
#include <QImage>
#include <QRectF>
#include <QString>
#include <QStringList>
#include <QWidget>
#include <cstdint>
#include <vector>

#include "uce/views/canvas.h"
#include "uce/views/de_result.h"

namespace uce::views {

// Colour of category `i` in the default qualitative palette (scanpy's 20 colours, then hues
// spaced by the golden angle).
QColor categoryColor(int i);

class ChartWidget : public QWidget {
  Q_OBJECT
 public:
  explicit ChartWidget(QWidget* parent = nullptr);

  // Draws the whole chart into `canvas` for a picture of `size` pixels.
  virtual void draw(Canvas& canvas, QSizeF size) const = 0;

  // The chart as a picture of `size` pixels (an empty size = the widget's size), white background.
  QImage renderImage(QSize size = QSize()) const;
  QByteArray renderSvg(QSize size = QSize()) const;
  // Write the chart to `path` atomically (temp file, then rename). False with a message in
  // `error` when the file cannot be written.
  bool savePng(const QString& path, QSize size = QSize(), QString* error = nullptr) const;
  bool saveSvg(const QString& path, QSize size = QSize(), QString* error = nullptr) const;

  void setTitle(const QString& title);
  QString title() const { return title_; }
  void setAxisLabels(const QString& x, const QString& y);
  // Shown in the middle when there is nothing to draw.
  void setEmptyText(const QString& text);

  QSize sizeHint() const override { return QSize(560, 380); }
  QSize minimumSizeHint() const override { return QSize(240, 180); }

 protected:
  void paintEvent(QPaintEvent* event) override;
  // The font every chart draws with: 12 px, so screen and SVG measure text the same way.
  QFont chartFont() const;
  QSizeF pictureSize(QSize size) const;
  // Draws the title (if any); returns the height it took.
  double drawTitle(Canvas& canvas, QSizeF size) const;
  double titleHeight() const;
  void drawEmpty(Canvas& canvas, QSizeF size) const;

  QString title_;
  QString xLabel_;
  QString yLabel_;
  QString emptyText_;
};

// Clusters along x; each bar splits 100 % of the cluster's cells into its categories,
// bottom to top in category order. Legend on the right; hovering a segment shows
// "cluster · category: count cells (percent)" and emits hovered().
class StackedBarChart : public ChartWidget {
  Q_OBJECT
 public:
  explicit StackedBarChart(QWidget* parent = nullptr);

  // counts[cluster][category] = cells of that category in that cluster.
  void setData(QStringList clusters, QStringList categories, std::vector<std::vector<int64_t>> counts);
  // The same from per-cell codes (-1 or out of range = missing: the cell is left out).
  void setFromCodes(const std::vector<int32_t>& clusterCodes, QStringList clusters,
                    const std::vector<int32_t>& categoryCodes, QStringList categories);
  // Colours per category; categories past the end take the default palette.
  void setColors(std::vector<QColor> colors);
  QColor colorOf(int category) const;

  int clusterCount() const { return static_cast<int>(clusters_.size()); }
  int categoryCount() const { return static_cast<int>(categories_.size()); }
  int64_t count(int cluster, int category) const;

  struct Hit {
    int cluster = -1;
    int category = -1;
    int64_t count = 0;
    double fraction = 0;  // of the cluster's cells
  };
  // The segment under a widget position (cluster -1 when none).
  Hit hitTest(QPointF pos) const;
  QString hoverText(QPointF pos) const;
  // Where a segment is drawn in the widget now (empty when it has no cells).
  QRectF segmentRect(int cluster, int category) const;

  void draw(Canvas& canvas, QSizeF size) const override;

 Q_SIGNALS:
  void hovered(int cluster, int category, qint64 count);

 protected:
  void mouseMoveEvent(QMouseEvent* event) override;
  void leaveEvent(QEvent* event) override;

 private:
  struct Layout;
  Layout layout(QSizeF size) const;
  QRectF segmentRectIn(const Layout& l, int cluster, int category) const;

  QStringList clusters_;
  QStringList categories_;
  std::vector<std::vector<int64_t>> counts_;  // [cluster][category]
  std::vector<int64_t> totals_;               // [cluster]
  std::vector<QColor> colors_;
  Hit lastHover_;
};

// One point per gene: x = log2 fold change, y = -log10(adjusted p). Genes past both thresholds
// are red (up) or blue (down), others grey; thresholds are dashed lines; the most significant
// genes are labelled. Clicking a point emits geneClicked(gene).
class VolcanoPlot : public ChartWidget {
  Q_OBJECT
 public:
  static inline const QColor kUp = QColor(214, 39, 40);
  static inline const QColor kDown = QColor(31, 119, 180);
  static inline const QColor kOther = QColor(175, 175, 175);

  explicit VolcanoPlot(QWidget* parent = nullptr);

  // Genes whose fold change or adjusted p is NaN are not drawn.
  void setResults(const std::vector<DeRow>& rows);
  // |log2 FC| >= log2fc and adjusted p <= padj count as significant. Defaults 1 and 0.05.
  void setThresholds(double log2fc, double padj);
  // How many of the most significant genes get a text label (default 10).
  void setLabelCount(int n);
  // Draws a ring around this gene ("" = none).
  void setHighlightedGene(const QString& gene);

  int pointCount() const { return static_cast<int>(points_.size()); }
  // The gene drawn nearest to a widget position, within 6 px; "" when none.
  QString geneAt(QPointF pos) const;
  // Where a gene's point is drawn in the widget now; false when it is not drawn.
  bool pointPosition(const QString& gene, QPointF* pos) const;
  // Genes that got a label in the picture at the widget's size.
  QStringList labelledGenes() const;

  void draw(Canvas& canvas, QSizeF size) const override;

 Q_SIGNALS:
  void geneClicked(const QString& gene);

 protected:
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;

 private:
  struct Point {
    QString gene;
    double x = 0;       // log2 fold change
    double y = 0;       // -log10 adjusted p (capped for p = 0)
    double padj = 1;
    int cls = 0;        // 0 other, 1 up, 2 down
  };
  struct Layout;
  Layout layout(QSizeF size) const;
  void classify();
  QStringList placeLabels(Canvas* canvas, const Layout& l) const;

  std::vector<Point> points_;  // drawing order: grey first
  double fcThreshold_ = 1.0;
  double padjThreshold_ = 0.05;
  int labelCount_ = 10;
  QString highlighted_;
  QString pressedGene_;
};

// Named series of (step, value) points appended over time, e.g. training loss and validation
// AUROC. Axes rescale to the data as it arrives; a series may use a right-hand axis when its
// scale differs from the others'.
class LiveLineChart : public ChartWidget {
  Q_OBJECT
 public:
  enum class Axis { Left, Right };

  explicit LiveLineChart(QWidget* parent = nullptr);

  // Returns the series' index; an existing name returns its index unchanged.
  int addSeries(const QString& name, QColor color = QColor(), Axis axis = Axis::Left);
  // Non-finite values are skipped. Unknown names add a series on the left axis.
  void append(const QString& series, double step, double value);
  void append(int series, double step, double value);
  // Removes every point (the series stay).
  void clearPoints();

  int seriesCount() const { return static_cast<int>(series_.size()); }
  size_t pointCount(int series) const;
  // The axes' current ranges: x = steps, y = values on `axis` (rounded out to nice ticks).
  QRectF dataRange(Axis axis = Axis::Left) const;
  // The plotting area in widget coordinates, and a data point's position in it.
  QRectF plotRect() const;
  QPointF toWidget(Axis axis, double step, double value) const;

  void draw(Canvas& canvas, QSizeF size) const override;

 private:
  struct Series {
    QString name;
    QColor color;
    Axis axis = Axis::Left;
    std::vector<double> steps;
    std::vector<double> values;
  };
  struct Layout;
  Layout layout(QSizeF size) const;
  bool hasRightAxis() const;

  std::vector<Series> series_;
};

}  // namespace uce::views
