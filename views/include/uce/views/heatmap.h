#pragma once
// Charts of the Norn workflow, drawn through Canvas like the others (screen, PNG, SVG):
//  * HeatmapChart: a labelled matrix of values, each cell coloured on a diverging (blue-white-red
//    around 0: log fold changes) or sequential (white-blue: counts, as a confusion matrix) scale,
//    with the value written in it. NaN cells are light grey.
//  * BoxPlotChart: per feature, one box per group (median, quartiles, whiskers at 1.5 IQR,
//    outliers as dots) with each non-reference group's p-value above its box.
#include <QColor>
#include <QRectF>
#include <QString>
#include <QStringList>
#include <vector>

#include "uce/views/charts.h"

namespace uce::views {

class HeatmapChart : public ChartWidget {
  Q_OBJECT
 public:
  enum class Scale { Diverging, Sequential };
  explicit HeatmapChart(QWidget* parent = nullptr);

  // values[row][column]; rows and columns name them.
  void setData(QStringList rows, QStringList columns, std::vector<std::vector<double>> values);
  // Diverging: symmetric around 0 up to the largest |value| (or `limit` when > 0).
  // Sequential: 0 to the largest value (or `limit`). Default Diverging.
  void setScale(Scale scale, double limit = 0);
  // Decimals of the numbers written in the cells (default 2; 0 for counts).
  void setDecimals(int decimals);
  // Title of the colour legend ("log2 FC", "cells").
  void setLegendTitle(const QString& title);

  int rowCount() const { return static_cast<int>(rows_.size()); }
  int columnCount() const { return static_cast<int>(columns_.size()); }
  double value(int row, int column) const;
  // Colour the cell is painted with.
  QColor cellColor(int row, int column) const;
  QColor colorFor(double v) const;
  // Where a cell is drawn in the widget now (empty when out of range).
  QRectF cellRect(int row, int column) const;

  void draw(Canvas& canvas, QSizeF size) const override;
  QSize sizeHint() const override { return QSize(620, 420); }

 private:
  struct Layout;
  Layout layout(QSizeF size) const;
  double limit() const;

  QStringList rows_, columns_;
  std::vector<std::vector<double>> values_;
  Scale scale_ = Scale::Diverging;
  double limit_ = 0;
  int decimals_ = 2;
  QString legendTitle_;
};

class BoxPlotChart : public ChartWidget {
  Q_OBJECT
 public:
  explicit BoxPlotChart(QWidget* parent = nullptr);

  // values[feature][group] = per-cell values; pvalues[feature][group] (group 0 = reference:
  // not written; NaN = none).
  void setData(QStringList features, QStringList groups, std::vector<std::vector<std::vector<double>>> values,
               std::vector<std::vector<double>> pvalues = {});

  struct Box {
    double q1 = 0, median = 0, q3 = 0, whiskerLow = 0, whiskerHigh = 0;
    int n = 0;
  };
  // Box statistics of one (feature, group) (n = 0 when it has no values).
  Box box(int feature, int group) const;
  // Where a box (q1..q3) is drawn in the widget now.
  QRectF boxRect(int feature, int group) const;
  int featureCount() const { return static_cast<int>(features_.size()); }
  int groupCount() const { return static_cast<int>(groups_.size()); }
  static QString formatP(double p);  // "p = 0.012", "p = 3.1e-05"

  void draw(Canvas& canvas, QSizeF size) const override;
  QSize sizeHint() const override { return QSize(620, 420); }

 private:
  struct Layout;
  Layout layout(QSizeF size) const;

  QStringList features_, groups_;
  std::vector<std::vector<Box>> boxes_;                    // [feature][group]
  std::vector<std::vector<std::vector<double>>> outliers_; // [feature][group]
  std::vector<std::vector<double>> pvalues_;
  double lo_ = 0, hi_ = 1;
};

}  // namespace uce::views
