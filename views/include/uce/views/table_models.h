#pragma once
// Table models for the cell table (obs) and for differential-expression results.
//
// ObsTableModel keeps each column in its native type (codes, doubles, UTF-8 strings, ...) and
// makes a QString only when a view asks for a cell, so a million-row obs costs about what its
// columns cost, not a QVariant per cell. ObsFilterProxy sorts and filters on those native
// values directly (no QVariant per comparison).
#include <QAbstractTableModel>
#include <QColor>
#include <QItemSelection>
#include <QSortFilterProxyModel>
#include <QString>
#include <QStringList>
#include <cstdint>
#include <string>
#include <vector>

#include "uce/views/de_result.h"

namespace uce::views {

// One obs column. Exactly one payload is used, chosen by kind (mirrors AnnData's obs columns).
struct TableColumn {
  enum class Kind { Categorical, Double, String, Int, Bool };
  QString name;
  Kind kind = Kind::String;
  std::vector<int32_t> codes;        // Categorical: index into categories, -1 = missing
  QStringList categories;            // Categorical: labels
  std::vector<double> doubles;       // Double: NaN = missing
  std::vector<std::string> strings;  // String: UTF-8, converted when shown
  std::vector<int64_t> ints;         // Int
  std::vector<uint8_t> bools;        // Bool: 0 / 1
  std::vector<uint8_t> missing;      // Int / Bool, optional: 1 = missing; empty = none missing

  size_t size() const;
  bool isNumeric() const { return kind == Kind::Double || kind == Kind::Int || kind == Kind::Bool; }
  bool isMissing(size_t row) const;
  // Text shown for a row ("" when missing). Doubles with 6 significant digits.
  QString text(size_t row) const;
  // Numeric value of a row (Bool as 0/1); NaN when missing or the column is not numeric.
  double number(size_t row) const;

  static TableColumn makeCategorical(QString name, std::vector<int32_t> codes, QStringList categories);
  static TableColumn makeDoubles(QString name, std::vector<double> values);
  static TableColumn makeStrings(QString name, std::vector<std::string> values);
  static TableColumn makeInts(QString name, std::vector<int64_t> values);
  static TableColumn makeBools(QString name, std::vector<uint8_t> values);
};

// The cell table: column 0 holds the row names (cell ids), columns 1.. the obs columns.
// Also holds the shared cell selection, shown as a highlighted background.
class ObsTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  // Background of selected rows (Qt::BackgroundRole); unselected rows return no background.
  static inline const QColor kSelectedBackground = QColor(255, 224, 130);

  explicit ObsTableModel(QObject* parent = nullptr);

  // Replaces everything. Columns whose size differs from rowNames.size() are left out and
  // named in the returned message ("" when all fit). Clears the selection.
  QString setTable(std::vector<std::string> rowNames, std::vector<TableColumn> columns,
                   QString indexName = QStringLiteral("cell"));
  void clear();
  // Adds a column, or replaces the column of the same name in place; views update. Returns
  // "" or why the column was refused (wrong length).
  QString setColumn(TableColumn column);
  bool removeColumn(const QString& name);

  size_t rows() const { return rowNames_.size(); }
  // Column index in the model (>= 1) of an obs column; -1 when absent.
  int columnIndex(const QString& name) const;
  // The obs column behind model column `col` (>= 1); nullptr for column 0 or out of range.
  const TableColumn* column(int col) const;
  const std::string& rowName(size_t row) const { return rowNames_[row]; }
  QStringList columnNames() const;  // obs columns, without the row-name column

  // The cell selection: source row indices (any order, duplicates and out-of-range ignored).
  void setSelectedRows(std::vector<int64_t> rows);
  const std::vector<int64_t>& selectedRows() const { return selected_; }  // sorted, unique
  bool isSelected(size_t row) const { return row < selectedMask_.size() && selectedMask_[row]; }

  // Bumped on every change of content, so cached views of the columns know they are stale.
  uint64_t revision() const { return revision_; }

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 Q_SIGNALS:
  void selectionChanged();

 private:
  QString indexName_ = QStringLiteral("cell");
  std::vector<std::string> rowNames_;
  std::vector<TableColumn> columns_;
  std::vector<int64_t> selected_;
  std::vector<uint8_t> selectedMask_;  // [rows] 1 = selected
  uint64_t revision_ = 0;
};

// Sorting, text filtering and "selected only" over an ObsTableModel.
// Numeric columns sort by value (missing first in ascending order), categorical columns by
// label in natural order ("2" before "10"), text columns by case-insensitive text.
class ObsFilterProxy : public QSortFilterProxyModel {
  Q_OBJECT
 public:
  explicit ObsFilterProxy(QObject* parent = nullptr);
  // The source must be an ObsTableModel (others are refused: the proxy stays empty).
  void setSourceModel(QAbstractItemModel* model) override;
  ObsTableModel* obsModel() const { return obs_; }

  // Keeps rows whose shown text contains `text` (case-insensitive) in model column `column`,
  // or in any column when column < 0. Empty text keeps every row.
  void setFilterText(const QString& text, int column = -1);
  QString filterText() const { return filterText_; }
  int filterColumnIndex() const { return filterCol_; }
  // Shows only the rows of the model's selection.
  void setShowSelectedOnly(bool on);
  bool showSelectedOnly() const { return selectedOnly_; }

  // Source rows (sorted, unique) of a view's selection in proxy coordinates.
  std::vector<int64_t> sourceRows(const QItemSelection& proxySelection) const;
  std::vector<int64_t> sourceRows(const QModelIndexList& proxyIndexes) const;

 protected:
  bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;
  bool lessThan(const QModelIndex& left, const QModelIndex& right) const override;

 private:
  bool cellMatches(size_t row, int col) const;
  void refilter();
  void refreshCaches() const;

  ObsTableModel* obs_ = nullptr;
  QString filterText_;
  std::string needleLower_;  // UTF-8, ASCII-lowercased
  int filterCol_ = -1;
  bool selectedOnly_ = false;
  // Per model column, rebuilt when the model's revision changes: which categories match
  // the filter text, and each category's rank in natural order.
  mutable uint64_t cacheRevision_ = ~uint64_t(0);
  mutable std::string cacheNeedle_;
  mutable std::vector<std::vector<uint8_t>> categoryMatches_;
  mutable std::vector<std::vector<int32_t>> categoryRank_;
  // Sort key per source row of the column being sorted (value, or rank for text), built once
  // per sort so each comparison is two array reads.
  mutable std::vector<double> sortKey_;
  mutable int sortKeyColumn_ = -1;
  mutable uint64_t sortKeyRevision_ = ~uint64_t(0);
  bool needleCouldBeNumber_ = true;
  const std::vector<double>& sortKeys(int col) const;
};

// Differential-expression results: one row per gene; sorting (QTableView::setSortingEnabled)
// orders numerically (NaN last either way) and by gene name for the gene column.
class DeTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { Gene, Log2FC, MeanIn, MeanOut, PctIn, PctOut, PValue, PAdj, ColumnCount };
  explicit DeTableModel(QObject* parent = nullptr);

  void setRows(std::vector<DeRow> rows);
  const std::vector<DeRow>& rows() const { return rows_; }  // in the current sorted order
  const DeRow& rowAt(int row) const { return rows_[static_cast<size_t>(row)]; }
  int rowOfGene(const QString& gene) const;  // -1 when absent
  // The value of a numeric column (NaN for the gene column).
  static double value(const DeRow& r, int column);

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
  void sort(int column, Qt::SortOrder order = Qt::AscendingOrder) override;

 private:
  std::vector<DeRow> rows_;
};

}  // namespace uce::views
