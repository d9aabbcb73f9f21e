#pragma once
// Table models for the cell table (obs) and for differential-expression results.
//
// ObsTableModel keeps each column in its native type (codes, doubles, UTF-8 strings, ...) and
// makes a QString only when a view asks for a cell, so a million-row obs costs about what its
// columns cost, not a QVariant per cell. ObsFilterProxy sorts and filters on those native
// values directly (no QVariant per comparison), and for large tables does so on a worker
// thread, so the GUI thread never waits for a sort or a filter of a million rows.
#include <QAbstractProxyModel>
#include <QAbstractTableModel>
#include <QColor>
#include <QItemSelection>
#include <QString>
#include <QStringList>
#include <QThreadPool>
#include <atomic>
#include <cstdint>
#include <memory>
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

  size_t rows() const { return rowNames_->size(); }
  // Column index in the model (>= 1) of an obs column; -1 when absent.
  int columnIndex(const QString& name) const;
  // The obs column behind model column `col` (>= 1); nullptr for column 0 or out of range.
  const TableColumn* column(int col) const;
  const std::string& rowName(size_t row) const { return (*rowNames_)[row]; }
  // The same data, shared. A column's data never changes once set (setColumn swaps in a new
  // one, setTable new ones), so another thread may read these while the model moves on.
  std::shared_ptr<const TableColumn> sharedColumn(int col) const;
  std::shared_ptr<const std::vector<std::string>> sharedRowNames() const { return rowNames_; }
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
  std::shared_ptr<const std::vector<std::string>> rowNames_;
  std::vector<std::shared_ptr<const TableColumn>> columns_;
  std::vector<int64_t> selected_;
  std::vector<uint8_t> selectedMask_;  // [rows] 1 = selected
  uint64_t revision_ = 0;
};

namespace detail {
struct OrderJob;     // what a row order is computed from (table_models.cpp)
struct OrderResult;  // a computed row order
}  // namespace detail

// Sorting, text filtering and "selected only" over an ObsTableModel.
// Numeric columns sort by value (missing first in ascending order, last in descending),
// categorical columns by label in natural order ("2" before "10"), text columns by
// case-insensitive text. Sorts are stable: rows that tie keep the order shown before (after a
// filter change, the source order), so sorting by A then by B orders by B, then A.
//
// Tables with more rows than synchronousRowLimit() are filtered and sorted on a worker thread
// from a snapshot of the (immutable) column data; the GUI thread only starts the work and then
// applies the finished row order in one layout change. Until then the view keeps the old order
// (or, after the model is reset with a filter on, shows no rows). A newer sort, filter or model
// change supersedes a pending one: a superseded result is never applied. busyChanged() tells
// when work starts and ends.
class ObsFilterProxy : public QAbstractProxyModel {
  Q_OBJECT
 public:
  // Up to this many rows, sorting and filtering run on the GUI thread, at once (a few ms).
  static constexpr size_t kDefaultSynchronousRowLimit = 20000;

  explicit ObsFilterProxy(QObject* parent = nullptr);
  ~ObsFilterProxy() override;
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

  // Orders rows by model column `column` (-1 or out of range: source order, reversed when
  // descending). What QTableView calls when a header is clicked.
  void sort(int column, Qt::SortOrder order = Qt::AscendingOrder) override;
  int sortColumn() const { return sortColumn_; }
  Qt::SortOrder sortOrder() const { return sortOrder_; }

  // Whether a row order is being computed and not applied yet.
  bool isBusy() const { return busy_; }
  // Runs the event loop until no order is pending (true) or timeoutMs passes (false).
  bool waitForIdle(int timeoutMs = 60000);
  void setSynchronousRowLimit(size_t rows) { syncLimit_ = rows; }
  size_t synchronousRowLimit() const { return syncLimit_; }

  // Source rows (sorted, unique) of a view's selection in proxy coordinates.
  std::vector<int64_t> sourceRows(const QItemSelection& proxySelection) const;
  std::vector<int64_t> sourceRows(const QModelIndexList& proxyIndexes) const;

  QModelIndex mapToSource(const QModelIndex& proxyIndex) const override;
  QModelIndex mapFromSource(const QModelIndex& sourceIndex) const override;
  QItemSelection mapSelectionToSource(const QItemSelection& proxySelection) const override;
  QItemSelection mapSelectionFromSource(const QItemSelection& sourceSelection) const override;
  QModelIndex index(int row, int column, const QModelIndex& parent = QModelIndex()) const override;
  QModelIndex parent(const QModelIndex& child) const override;
  QModelIndex sibling(int row, int column, const QModelIndex& idx) const override;
  bool hasChildren(const QModelIndex& parent = QModelIndex()) const override;
  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 Q_SIGNALS:
  void busyChanged(bool busy);

 private:
  bool textFilterActive() const { return !filterText_.isEmpty(); }
  bool filterActive() const { return selectedOnly_ || textFilterActive(); }
  // Computes the row order for the current settings (refiltering from the source order when
  // the filter changed, else re-sorting the rows shown) at once or on the worker thread.
  void schedule(bool refilter);
  detail::OrderJob makeJob(bool refilter) const;
  void cancelPending();
  void finish(uint64_t generation, const std::shared_ptr<detail::OrderResult>& result);
  void setBusy(bool busy);
  // Replaces the row order in one layout change, keeping persistent indexes on their rows.
  void applyOrder(std::vector<int32_t> order, bool sortOnly);
  void setMapping(std::vector<int32_t> order);  // without telling views
  void setIdentity();

  void sourceAboutToBeReset();
  void sourceReset();
  void sourceDataChanged(const QModelIndex& topLeft, const QModelIndex& bottomRight, const QList<int>& roles);

  ObsTableModel* obs_ = nullptr;
  QString filterText_;
  int filterCol_ = -1;
  bool selectedOnly_ = false;
  int sortColumn_ = -1;
  Qt::SortOrder sortOrder_ = Qt::AscendingOrder;

  std::vector<int32_t> proxyToSource_;  // [shown rows] source row
  std::vector<int32_t> sourceToProxy_;  // [source rows] shown row, -1 when filtered out
  bool filterDirty_ = false;            // the rows shown do not reflect the filter settings yet

  size_t syncLimit_ = kDefaultSynchronousRowLimit;
  bool busy_ = false;
  uint64_t generation_ = 0;  // of the latest order asked for; older results are dropped
  std::shared_ptr<std::atomic<bool>> cancel_;
  // Sort keys of the last column sorted, with the data they came from (shared pointer
  // identity: column data never changes in place), so sorting the same column again skips them.
  std::shared_ptr<const void> keySource_;
  std::shared_ptr<const std::vector<double>> keys_;
  QThreadPool pool_;
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
