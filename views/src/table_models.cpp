#include "uce/views/table_models.h"

#include <QBrush>
#include <algorithm>
#include <cmath>
#include <numeric>

namespace uce::views {

namespace {

bool isAscii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 128; });
}

char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Whether `hay` (UTF-8) contains `needleLower` (ASCII, lower case) ignoring ASCII case.
bool containsAsciiNoCase(const std::string& hay, const std::string& needleLower) {
  if (needleLower.empty()) return true;
  auto it = std::search(hay.begin(), hay.end(), needleLower.begin(), needleLower.end(),
                        [](char h, char n) { return asciiLower(h) == n; });
  return it != hay.end();
}

// Case-insensitive (ASCII) order of UTF-8 strings, byte order as tie-break.
bool lessNoCase(const std::string& a, const std::string& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const char x = asciiLower(a[i]), y = asciiLower(b[i]);
    if (x != y) return static_cast<unsigned char>(x) < static_cast<unsigned char>(y);
  }
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

// Natural order: digit runs compare as numbers, other runs case-insensitively ("2" < "10").
bool naturalLess(const QString& a, const QString& b) {
  int i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i].isDigit() && b[j].isDigit()) {
      int i0 = i, j0 = j;
      while (i < a.size() && a[i].isDigit()) ++i;
      while (j < b.size() && b[j].isDigit()) ++j;
      QStringView da = QStringView(a).mid(i0, i - i0), db = QStringView(b).mid(j0, j - j0);
      while (da.size() > 1 && da[0] == u'0') da = da.mid(1);
      while (db.size() > 1 && db[0] == u'0') db = db.mid(1);
      if (da.size() != db.size()) return da.size() < db.size();
      const int c = da.compare(db);
      if (c != 0) return c < 0;
    } else {
      const QChar x = a[i].toCaseFolded(), y = b[j].toCaseFolded();
      if (x != y) return x < y;
      ++i;
      ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return (a.size() - i) < (b.size() - j);
  return a < b;
}

bool lessWithNan(double a, double b) {
  if (std::isnan(a)) return !std::isnan(b);
  if (std::isnan(b)) return false;
  return a < b;
}

}  // namespace

// ---- TableColumn

size_t TableColumn::size() const {
  switch (kind) {
    case Kind::Categorical: return codes.size();
    case Kind::Double: return doubles.size();
    case Kind::String: return strings.size();
    case Kind::Int: return ints.size();
    case Kind::Bool: return bools.size();
  }
  return 0;
}

bool TableColumn::isMissing(size_t row) const {
  switch (kind) {
    case Kind::Categorical:
      return codes[row] < 0 || codes[row] >= categories.size();
    case Kind::Double: return std::isnan(doubles[row]);
    case Kind::String: return false;
    case Kind::Int:
    case Kind::Bool: return !missing.empty() && missing[row] != 0;
  }
  return false;
}

QString TableColumn::text(size_t row) const {
  if (isMissing(row)) return QString();
  switch (kind) {
    case Kind::Categorical: return categories[codes[row]];
    case Kind::Double: return QString::number(doubles[row], 'g', 6);
    case Kind::String: return QString::fromStdString(strings[row]);
    case Kind::Int: return QString::number(ints[row]);
    case Kind::Bool: return bools[row] ? QStringLiteral("True") : QStringLiteral("False");
  }
  return QString();
}

double TableColumn::number(size_t row) const {
  if (isMissing(row)) return NAN;
  switch (kind) {
    case Kind::Double: return doubles[row];
    case Kind::Int: return static_cast<double>(ints[row]);
    case Kind::Bool: return bools[row] ? 1.0 : 0.0;
    default: return NAN;
  }
}

TableColumn TableColumn::makeCategorical(QString name, std::vector<int32_t> codes, QStringList categories) {
  TableColumn c;
  c.name = std::move(name);
  c.kind = Kind::Categorical;
  c.codes = std::move(codes);
  c.categories = std::move(categories);
  return c;
}

TableColumn TableColumn::makeDoubles(QString name, std::vector<double> values) {
  TableColumn c;
  c.name = std::move(name);
  c.kind = Kind::Double;
  c.doubles = std::move(values);
  return c;
}

TableColumn TableColumn::makeStrings(QString name, std::vector<std::string> values) {
  TableColumn c;
  c.name = std::move(name);
  c.kind = Kind::String;
  c.strings = std::move(values);
  return c;
}

TableColumn TableColumn::makeInts(QString name, std::vector<int64_t> values) {
  TableColumn c;
  c.name = std::move(name);
  c.kind = Kind::Int;
  c.ints = std::move(values);
  return c;
}

TableColumn TableColumn::makeBools(QString name, std::vector<uint8_t> values) {
  TableColumn c;
  c.name = std::move(name);
  c.kind = Kind::Bool;
  c.bools = std::move(values);
  return c;
}

// ---- ObsTableModel

ObsTableModel::ObsTableModel(QObject* parent) : QAbstractTableModel(parent) {}

namespace {
QString lengthProblem(const TableColumn& c, size_t rows) {
  if (!c.missing.empty() && c.missing.size() != c.size())
    return QStringLiteral("column '%1' has %2 missing-value flags for %3 values")
        .arg(c.name).arg(c.missing.size()).arg(c.size());
  if (c.size() == rows) return QString();
  return QStringLiteral("column '%1' has %2 values but the table has %3 cells")
      .arg(c.name).arg(c.size()).arg(rows);
}
}  // namespace

QString ObsTableModel::setTable(std::vector<std::string> rowNames, std::vector<TableColumn> columns,
                                QString indexName) {
  beginResetModel();
  ++revision_;
  rowNames_ = std::move(rowNames);
  indexName_ = std::move(indexName);
  columns_.clear();
  QStringList problems;
  for (TableColumn& c : columns) {
    QString p = lengthProblem(c, rowNames_.size());
    if (p.isEmpty()) columns_.push_back(std::move(c));
    else problems << p;
  }
  selected_.clear();
  selectedMask_.assign(rowNames_.size(), 0);
  endResetModel();
  Q_EMIT selectionChanged();
  return problems.isEmpty() ? QString() : problems.join("; ") + " (left out of the table)";
}

void ObsTableModel::clear() { setTable({}, {}, indexName_); }

int ObsTableModel::columnIndex(const QString& name) const {
  for (size_t i = 0; i < columns_.size(); ++i)
    if (columns_[i].name == name) return static_cast<int>(i) + 1;
  return -1;
}

const TableColumn* ObsTableModel::column(int col) const {
  if (col < 1 || col > static_cast<int>(columns_.size())) return nullptr;
  return &columns_[static_cast<size_t>(col - 1)];
}

QStringList ObsTableModel::columnNames() const {
  QStringList names;
  for (const TableColumn& c : columns_) names << c.name;
  return names;
}

QString ObsTableModel::setColumn(TableColumn column) {
  QString p = lengthProblem(column, rowNames_.size());
  if (!p.isEmpty()) return p;
  const int existing = columnIndex(column.name);
  if (existing > 0) {
    // Reported as a layout change, not dataChanged: sort/filter proxies then rebuild in one
    // pass instead of inserting and removing rows one run at a time (slow for a million rows).
    // Rows keep their identity, so persistent indexes stay valid.
    Q_EMIT layoutAboutToBeChanged();
    ++revision_;
    columns_[static_cast<size_t>(existing - 1)] = std::move(column);
    Q_EMIT layoutChanged();
    Q_EMIT headerDataChanged(Qt::Horizontal, existing, existing);
    return QString();
  }
  const int at = columnCount();
  beginInsertColumns(QModelIndex(), at, at);
  ++revision_;
  columns_.push_back(std::move(column));
  endInsertColumns();
  return QString();
}

bool ObsTableModel::removeColumn(const QString& name) {
  const int col = columnIndex(name);
  if (col < 1) return false;
  beginRemoveColumns(QModelIndex(), col, col);
  ++revision_;
  columns_.erase(columns_.begin() + (col - 1));
  endRemoveColumns();
  return true;
}

void ObsTableModel::setSelectedRows(std::vector<int64_t> rows) {
  const int64_t n = static_cast<int64_t>(rowNames_.size());
  rows.erase(std::remove_if(rows.begin(), rows.end(), [n](int64_t r) { return r < 0 || r >= n; }),
             rows.end());
  if (!std::is_sorted(rows.begin(), rows.end())) std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  // Only the rows whose state flips need repainting; report them as one span.
  int64_t lo = n, hi = -1;
  for (int64_t r : selected_) { lo = std::min(lo, r); hi = std::max(hi, r); selectedMask_[r] = 0; }
  for (int64_t r : rows) { lo = std::min(lo, r); hi = std::max(hi, r); selectedMask_[r] = 1; }
  selected_ = std::move(rows);
  ++revision_;
  if (hi >= lo && columnCount() > 0)
    Q_EMIT dataChanged(index(static_cast<int>(lo), 0), index(static_cast<int>(hi), columnCount() - 1),
                       {Qt::BackgroundRole});
  Q_EMIT selectionChanged();
}

int ObsTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rowNames_.size());
}

int ObsTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(columns_.size()) + 1;
}

QVariant ObsTableModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= columnCount()) return {};
  const size_t row = static_cast<size_t>(index.row());
  switch (role) {
    case Qt::DisplayRole:
    case Qt::ToolTipRole:
      if (index.column() == 0) return QString::fromStdString(rowNames_[row]);
      return column(index.column())->text(row);
    case Qt::EditRole: {  // the typed value, for copy / export
      if (index.column() == 0) return QString::fromStdString(rowNames_[row]);
      const TableColumn* c = column(index.column());
      if (c->isMissing(row)) return {};
      if (c->kind == TableColumn::Kind::Int) return QVariant::fromValue<qlonglong>(c->ints[row]);
      if (c->kind == TableColumn::Kind::Bool) return bool(c->bools[row]);
      if (c->isNumeric()) return c->number(row);
      return c->text(row);
    }
    case Qt::TextAlignmentRole:
      if (index.column() > 0 && column(index.column())->isNumeric())
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
      return QVariant(Qt::AlignLeft | Qt::AlignVCenter);
    case Qt::BackgroundRole:
      if (isSelected(row)) return QBrush(kSelectedBackground);
      return {};
    default:
      return {};
  }
}

QVariant ObsTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return QAbstractTableModel::headerData(section, orientation, role);
  if (orientation == Qt::Vertical) return section + 1;
  if (section == 0) return indexName_;
  if (const TableColumn* c = column(section)) return c->name;
  return {};
}

// ---- ObsFilterProxy

ObsFilterProxy::ObsFilterProxy(QObject* parent) : QSortFilterProxyModel(parent) {}

void ObsFilterProxy::setSourceModel(QAbstractItemModel* model) {
  if (obs_) disconnect(obs_, nullptr, this, nullptr);
  obs_ = qobject_cast<ObsTableModel*>(model);
  cacheRevision_ = ~uint64_t(0);
  QSortFilterProxyModel::setSourceModel(model);
  if (!obs_) return;
  connect(obs_, &ObsTableModel::selectionChanged, this, [this] {
    if (selectedOnly_) refilter();
  });
  // A new column can hold the filter text; Qt's proxy does not refilter on column changes.
  connect(obs_, &QAbstractItemModel::columnsInserted, this, [this] {
    if (!filterText_.isEmpty() && filterCol_ < 0) refilter();
  });
  connect(obs_, &QAbstractItemModel::columnsRemoved, this, [this] {
    if (!filterText_.isEmpty()) refilter();
  });
}

void ObsFilterProxy::refilter() {
  // invalidate() reports one layout change; invalidateRowsFilter() would report every run of
  // removed rows separately, and views spend O(rows) on each (minutes for a million cells).
  invalidate();
}

void ObsFilterProxy::setFilterText(const QString& text, int column) {
  filterText_ = text;
  filterCol_ = column;
  needleLower_ = text.toLower().toStdString();
  // Numbers are shown with digits, sign, point and exponent only; other text cannot match them.
  needleCouldBeNumber_ = std::all_of(needleLower_.begin(), needleLower_.end(), [](char ch) {
    return (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+' || ch == 'e';
  });
  refilter();
}

void ObsFilterProxy::setShowSelectedOnly(bool on) {
  if (on == selectedOnly_) return;
  selectedOnly_ = on;
  refilter();
}

void ObsFilterProxy::refreshCaches() const {
  if (!obs_ || (cacheRevision_ == obs_->revision() && cacheNeedle_ == needleLower_)) return;
  const int cols = obs_->columnCount();
  categoryMatches_.assign(static_cast<size_t>(cols), {});
  categoryRank_.assign(static_cast<size_t>(cols), {});
  const QString needle = filterText_;
  for (int c = 1; c < cols; ++c) {
    const TableColumn* col = obs_->column(c);
    if (col->kind != TableColumn::Kind::Categorical) continue;
    const int k = static_cast<int>(col->categories.size());
    auto& match = categoryMatches_[static_cast<size_t>(c)];
    match.resize(static_cast<size_t>(k));
    for (int i = 0; i < k; ++i)
      match[static_cast<size_t>(i)] = col->categories[i].contains(needle, Qt::CaseInsensitive);
    std::vector<int32_t> order(static_cast<size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [col](int32_t a, int32_t b) {
      return naturalLess(col->categories[a], col->categories[b]);
    });
    auto& rank = categoryRank_[static_cast<size_t>(c)];
    rank.resize(static_cast<size_t>(k));
    for (int i = 0; i < k; ++i) rank[static_cast<size_t>(order[static_cast<size_t>(i)])] = i;
  }
  cacheRevision_ = obs_->revision();
  cacheNeedle_ = needleLower_;
}

bool ObsFilterProxy::cellMatches(size_t row, int col) const {
  if (col == 0) {
    const std::string& name = obs_->rowName(row);
    if (isAscii(needleLower_)) return containsAsciiNoCase(name, needleLower_);
    return QString::fromStdString(name).contains(filterText_, Qt::CaseInsensitive);
  }
  const TableColumn* c = obs_->column(col);
  if (!c) return false;
  switch (c->kind) {
    case TableColumn::Kind::Categorical: {
      const int32_t code = c->codes[row];
      const auto& match = categoryMatches_[static_cast<size_t>(col)];
      return code >= 0 && static_cast<size_t>(code) < match.size() && match[static_cast<size_t>(code)];
    }
    case TableColumn::Kind::String:
      if (isAscii(needleLower_)) return containsAsciiNoCase(c->strings[row], needleLower_);
      return QString::fromStdString(c->strings[row]).contains(filterText_, Qt::CaseInsensitive);
    case TableColumn::Kind::Double:
    case TableColumn::Kind::Int:
      if (!needleCouldBeNumber_) return false;
      return c->text(row).contains(filterText_, Qt::CaseInsensitive);
    default:
      return c->text(row).contains(filterText_, Qt::CaseInsensitive);
  }
}

bool ObsFilterProxy::filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const {
  if (!obs_) return QSortFilterProxyModel::filterAcceptsRow(sourceRow, sourceParent);
  const size_t row = static_cast<size_t>(sourceRow);
  if (selectedOnly_ && !obs_->isSelected(row)) return false;
  if (filterText_.isEmpty()) return true;
  refreshCaches();
  if (filterCol_ >= 0 && filterCol_ < obs_->columnCount()) return cellMatches(row, filterCol_);
  for (int c = 0; c < obs_->columnCount(); ++c)
    if (cellMatches(row, c)) return true;
  return false;
}

const std::vector<double>& ObsFilterProxy::sortKeys(int col) const {
  if (sortKeyColumn_ == col && sortKeyRevision_ == obs_->revision()) return sortKey_;
  const size_t n = obs_->rows();
  sortKey_.assign(n, 0.0);
  // Text: rank of each row in case-insensitive order (equal text, equal rank).
  auto rankBy = [this, n](auto less) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), less);
    double rank = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i > 0 && less(order[i - 1], order[i])) ++rank;
      sortKey_[order[i]] = rank;
    }
  };
  const TableColumn* c = obs_->column(col);
  if (col == 0) {
    rankBy([this](size_t a, size_t b) { return lessNoCase(obs_->rowName(a), obs_->rowName(b)); });
  } else if (c && c->kind == TableColumn::Kind::String) {
    rankBy([c](size_t a, size_t b) { return lessNoCase(c->strings[a], c->strings[b]); });
  } else if (c && c->kind == TableColumn::Kind::Categorical) {
    refreshCaches();
    const auto& rank = categoryRank_[static_cast<size_t>(col)];
    for (size_t i = 0; i < n; ++i) {
      const int32_t code = c->codes[i];
      sortKey_[i] = (code >= 0 && static_cast<size_t>(code) < rank.size()) ? rank[static_cast<size_t>(code)] : NAN;
    }
  } else if (c) {
    for (size_t i = 0; i < n; ++i) sortKey_[i] = c->number(i);
  }
  sortKeyColumn_ = col;
  sortKeyRevision_ = obs_->revision();
  return sortKey_;
}

bool ObsFilterProxy::lessThan(const QModelIndex& left, const QModelIndex& right) const {
  if (!obs_) return QSortFilterProxyModel::lessThan(left, right);
  const int col = left.column();
  if (col < 0 || col >= obs_->columnCount()) return false;
  const std::vector<double>& key = sortKeys(col);
  // NaN = missing, first in ascending order.
  return lessWithNan(key[static_cast<size_t>(left.row())], key[static_cast<size_t>(right.row())]);
}

std::vector<int64_t> ObsFilterProxy::sourceRows(const QItemSelection& proxySelection) const {
  std::vector<int64_t> rows;
  for (const QItemSelectionRange& range : proxySelection)
    for (int r = range.top(); r <= range.bottom(); ++r) {
      const QModelIndex src = mapToSource(index(r, 0));
      if (src.isValid()) rows.push_back(src.row());
    }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

std::vector<int64_t> ObsFilterProxy::sourceRows(const QModelIndexList& proxyIndexes) const {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(proxyIndexes.size()));
  for (const QModelIndex& i : proxyIndexes) {
    const QModelIndex src = mapToSource(i);
    if (src.isValid()) rows.push_back(src.row());
  }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

// ---- DeTableModel

DeTableModel::DeTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void DeTableModel::setRows(std::vector<DeRow> rows) {
  beginResetModel();
  rows_ = std::move(rows);
  endResetModel();
}

int DeTableModel::rowOfGene(const QString& gene) const {
  for (size_t i = 0; i < rows_.size(); ++i)
    if (rows_[i].gene == gene) return static_cast<int>(i);
  return -1;
}

double DeTableModel::value(const DeRow& r, int column) {
  switch (column) {
    case Log2FC: return r.log2FoldChange;
    case MeanIn: return r.meanIn;
    case MeanOut: return r.meanOut;
    case PctIn: return r.pctIn;
    case PctOut: return r.pctOut;
    case PValue: return r.pValue;
    case PAdj: return r.pAdjusted;
    default: return NAN;
  }
}

int DeTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int DeTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant DeTableModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const DeRow& r = rows_[static_cast<size_t>(index.row())];
  const int col = index.column();
  if (role == Qt::TextAlignmentRole)
    return col == Gene ? QVariant(Qt::AlignLeft | Qt::AlignVCenter) : QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::EditRole) return col == Gene ? QVariant(r.gene) : QVariant(value(r, col));
  if (role != Qt::DisplayRole && role != Qt::ToolTipRole) return {};
  if (col == Gene) return r.gene;
  const double v = value(r, col);
  if (std::isnan(v)) return QString();
  switch (col) {
    case PctIn:
    case PctOut: return QString::number(100.0 * v, 'f', 1) + " %";
    case PValue:
    case PAdj: return v == 0 ? QStringLiteral("0") : QString::number(v, 'e', 2);
    case Log2FC: return QString::number(v, 'f', 3);
    default: return QString::number(v, 'g', 4);
  }
}

QVariant DeTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return QAbstractTableModel::headerData(section, orientation, role);
  if (orientation == Qt::Vertical) return section + 1;
  static const char* names[] = {"gene",      "log2 FC",   "mean in group", "mean in rest",
                                "% in group", "% in rest", "p-value",       "adj. p (BH)"};
  if (section < 0 || section >= ColumnCount) return {};
  return QString::fromLatin1(names[section]);
}

void DeTableModel::sort(int column, Qt::SortOrder order) {
  if (column < 0 || column >= ColumnCount) return;
  Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
  std::vector<size_t> perm(rows_.size());  // new position -> old row
  std::iota(perm.begin(), perm.end(), size_t(0));
  const bool asc = order == Qt::AscendingOrder;
  if (column == Gene) {
    std::stable_sort(perm.begin(), perm.end(), [&](size_t a, size_t b) {
      return asc ? naturalLess(rows_[a].gene, rows_[b].gene) : naturalLess(rows_[b].gene, rows_[a].gene);
    });
  } else {
    // NaN (untested) last in either order.
    std::stable_sort(perm.begin(), perm.end(), [&](size_t a, size_t b) {
      const double x = value(rows_[a], column), y = value(rows_[b], column);
      if (std::isnan(x) || std::isnan(y)) return !std::isnan(x) && std::isnan(y);
      return asc ? x < y : y < x;
    });
  }
  std::vector<DeRow> sorted;
  sorted.reserve(rows_.size());
  std::vector<int> newRowOf(rows_.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    sorted.push_back(std::move(rows_[perm[i]]));
    newRowOf[perm[i]] = static_cast<int>(i);
  }
  rows_ = std::move(sorted);
  const QModelIndexList before = persistentIndexList();
  QModelIndexList after;
  for (const QModelIndex& i : before)
    after << index(newRowOf[static_cast<size_t>(i.row())], i.column());
  changePersistentIndexList(before, after);
  Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
}

}  // namespace uce::views
