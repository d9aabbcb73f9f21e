#include "uce/views/table_models.h"

#include <QBrush>
#include <QEventLoop>
#include <QThread>
#include <QTimer>
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

ObsTableModel::ObsTableModel(QObject* parent)
    : QAbstractTableModel(parent), rowNames_(std::make_shared<const std::vector<std::string>>()) {}

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
  rowNames_ = std::make_shared<const std::vector<std::string>>(std::move(rowNames));
  indexName_ = std::move(indexName);
  columns_.clear();
  QStringList problems;
  for (TableColumn& c : columns) {
    QString p = lengthProblem(c, rowNames_->size());
    if (p.isEmpty()) columns_.push_back(std::make_shared<const TableColumn>(std::move(c)));
    else problems << p;
  }
  selected_.clear();
  selectedMask_.assign(rowNames_->size(), 0);
  endResetModel();
  Q_EMIT selectionChanged();
  return problems.isEmpty() ? QString() : problems.join("; ") + " (left out of the table)";
}

void ObsTableModel::clear() { setTable({}, {}, indexName_); }

int ObsTableModel::columnIndex(const QString& name) const {
  for (size_t i = 0; i < columns_.size(); ++i)
    if (columns_[i]->name == name) return static_cast<int>(i) + 1;
  return -1;
}

const TableColumn* ObsTableModel::column(int col) const {
  if (col < 1 || col > static_cast<int>(columns_.size())) return nullptr;
  return columns_[static_cast<size_t>(col - 1)].get();
}

std::shared_ptr<const TableColumn> ObsTableModel::sharedColumn(int col) const {
  if (col < 1 || col > static_cast<int>(columns_.size())) return nullptr;
  return columns_[static_cast<size_t>(col - 1)];
}

QStringList ObsTableModel::columnNames() const {
  QStringList names;
  for (const auto& c : columns_) names << c->name;
  return names;
}

QString ObsTableModel::setColumn(TableColumn column) {
  QString p = lengthProblem(column, rowNames_->size());
  if (!p.isEmpty()) return p;
  const int existing = columnIndex(column.name);
  if (existing > 0) {
    // Reported as a layout change, not dataChanged: sort/filter proxies then rebuild in one
    // pass instead of inserting and removing rows one run at a time (slow for a million rows).
    // Rows keep their identity, so persistent indexes stay valid.
    Q_EMIT layoutAboutToBeChanged();
    ++revision_;
    columns_[static_cast<size_t>(existing - 1)] = std::make_shared<const TableColumn>(std::move(column));
    Q_EMIT layoutChanged();
    Q_EMIT headerDataChanged(Qt::Horizontal, existing, existing);
    return QString();
  }
  const int at = columnCount();
  beginInsertColumns(QModelIndex(), at, at);
  ++revision_;
  columns_.push_back(std::make_shared<const TableColumn>(std::move(column)));
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
  const int64_t n = static_cast<int64_t>(rowNames_->size());
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
  return parent.isValid() ? 0 : static_cast<int>(rowNames_->size());
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
      if (index.column() == 0) return QString::fromStdString((*rowNames_)[row]);
      return column(index.column())->text(row);
    case Qt::EditRole: {  // the typed value, for copy / export
      if (index.column() == 0) return QString::fromStdString((*rowNames_)[row]);
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

namespace detail {

// What a row order is computed from: a snapshot of the model's data and of the proxy's
// settings. Column data is shared, not copied: it never changes once set.
struct OrderJob {
  size_t rows = 0;
  std::shared_ptr<const std::vector<std::string>> rowNames;
  std::vector<std::shared_ptr<const TableColumn>> columns;  // model column c >= 1 at [c - 1]
  // Filter, when refilter: the selection's rows (sorted) when selectedOnly, text in a column.
  bool refilter = true;
  bool selectedOnly = false;
  std::vector<int64_t> selected;
  QString text;
  int filterCol = -1;
  // The rows to sort, in the order shown, when not refiltering.
  std::vector<int32_t> shown;
  int sortColumn = -1;
  Qt::SortOrder order = Qt::AscendingOrder;
  std::shared_ptr<const void> keySource;                  // the data of the sort column
  std::shared_ptr<const std::vector<double>> cachedKeys;  // its sort keys, when known

  int columnCount() const { return static_cast<int>(columns.size()) + 1; }
  const TableColumn* column(int col) const {
    return col >= 1 && col < columnCount() ? columns[static_cast<size_t>(col - 1)].get() : nullptr;
  }
};

// A finished row order, handed from the worker to the GUI thread.
struct OrderResult {
  size_t rows = 0;  // of the model it was computed for
  bool refiltered = false;
  std::vector<int32_t> order;  // [shown rows] source row
  std::shared_ptr<const void> keySource;
  std::shared_ptr<const std::vector<double>> keys;
};

}  // namespace detail

namespace {

using detail::OrderJob;
using detail::OrderResult;

struct Cancelled {};

void checkCancel(const std::atomic<bool>* cancel) {
  if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled{};
}

// The text filter of a job: whether a row's shown text contains the needle, in one column or any.
class RowFilter {
 public:
  explicit RowFilter(const OrderJob& job) : job_(job) {
    needleLower_ = job.text.toLower().toStdString();
    ascii_ = isAscii(needleLower_);
    // Numbers are shown with digits, sign, point and exponent only; other text cannot match them.
    couldBeNumber_ = std::all_of(needleLower_.begin(), needleLower_.end(), [](char ch) {
      return (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+' || ch == 'e';
    });
    only_ = job.filterCol >= 0 && job.filterCol < job.columnCount() ? job.filterCol : -1;
    categoryMatches_.resize(static_cast<size_t>(job.columnCount()));
    for (int c = 1; c < job.columnCount(); ++c) {
      const TableColumn* col = job.column(c);
      if (col->kind != TableColumn::Kind::Categorical || (only_ >= 0 && only_ != c)) continue;
      auto& match = categoryMatches_[static_cast<size_t>(c)];
      match.resize(static_cast<size_t>(col->categories.size()));
      for (qsizetype i = 0; i < col->categories.size(); ++i)
        match[static_cast<size_t>(i)] = col->categories[i].contains(job.text, Qt::CaseInsensitive);
    }
  }

  bool accepts(size_t row) const {
    if (job_.text.isEmpty()) return true;
    if (only_ >= 0) return cellMatches(row, only_);
    for (int c = 0; c < job_.columnCount(); ++c)
      if (cellMatches(row, c)) return true;
    return false;
  }

 private:
  bool textMatches(const std::string& s) const {
    if (ascii_) return containsAsciiNoCase(s, needleLower_);
    return QString::fromStdString(s).contains(job_.text, Qt::CaseInsensitive);
  }

  bool cellMatches(size_t row, int col) const {
    if (col == 0) return textMatches((*job_.rowNames)[row]);
    const TableColumn* c = job_.column(col);
    switch (c->kind) {
      case TableColumn::Kind::Categorical: {
        const int32_t code = c->codes[row];
        const auto& match = categoryMatches_[static_cast<size_t>(col)];
        return code >= 0 && static_cast<size_t>(code) < match.size() && match[static_cast<size_t>(code)];
      }
      case TableColumn::Kind::String: return textMatches(c->strings[row]);
      case TableColumn::Kind::Double:
      case TableColumn::Kind::Int:
        if (!couldBeNumber_) return false;
        return c->text(row).contains(job_.text, Qt::CaseInsensitive);
      default: return c->text(row).contains(job_.text, Qt::CaseInsensitive);
    }
  }

  const OrderJob& job_;
  std::string needleLower_;
  bool ascii_ = true, couldBeNumber_ = true;
  int only_ = -1;
  std::vector<std::vector<uint8_t>> categoryMatches_;  // [model column][category]
};

std::vector<int32_t> filterRows(const OrderJob& job, const std::atomic<bool>* cancel) {
  const RowFilter filter(job);
  std::vector<int32_t> rows;
  if (job.selectedOnly) {
    for (size_t i = 0; i < job.selected.size(); ++i) {
      if ((i & 0xffff) == 0) checkCancel(cancel);
      const int64_t r = job.selected[i];
      if (r >= 0 && static_cast<size_t>(r) < job.rows && filter.accepts(static_cast<size_t>(r)))
        rows.push_back(static_cast<int32_t>(r));
    }
    return rows;
  }
  if (job.text.isEmpty()) {
    rows.resize(job.rows);
    std::iota(rows.begin(), rows.end(), 0);
    return rows;
  }
  for (size_t r = 0; r < job.rows; ++r) {
    if ((r & 0xffff) == 0) checkCancel(cancel);
    if (filter.accepts(r)) rows.push_back(static_cast<int32_t>(r));
  }
  return rows;
}

// One sort key per source row of model column `col`: the value for numbers, the rank in natural
// order of the label for categories, the rank in case-insensitive order for text; NaN = missing.
std::shared_ptr<const std::vector<double>> sortKeys(const OrderJob& job, int col, const std::atomic<bool>* cancel) {
  if (job.cachedKeys && job.cachedKeys->size() == job.rows) return job.cachedKeys;
  const size_t n = job.rows;
  auto keys = std::make_shared<std::vector<double>>(n, 0.0);
  std::vector<double>& key = *keys;
  // Text: rank of each row in case-insensitive order (equal text, equal rank).
  auto rankBy = [&](auto less) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    size_t compared = 0;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if ((++compared & 0xfffff) == 0) checkCancel(cancel);
      return less(a, b);
    });
    double rank = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i > 0 && less(order[i - 1], order[i])) ++rank;
      key[order[i]] = rank;
    }
  };
  const TableColumn* c = job.column(col);
  if (col == 0) {
    const std::vector<std::string>& names = *job.rowNames;
    rankBy([&names](size_t a, size_t b) { return lessNoCase(names[a], names[b]); });
  } else if (c && c->kind == TableColumn::Kind::String) {
    rankBy([c](size_t a, size_t b) { return lessNoCase(c->strings[a], c->strings[b]); });
  } else if (c && c->kind == TableColumn::Kind::Categorical) {
    const int k = static_cast<int>(c->categories.size());
    std::vector<int32_t> order(static_cast<size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [c](int32_t a, int32_t b) { return naturalLess(c->categories[a], c->categories[b]); });
    std::vector<double> rank(static_cast<size_t>(k));
    for (int i = 0; i < k; ++i) rank[static_cast<size_t>(order[static_cast<size_t>(i)])] = i;
    for (size_t i = 0; i < n; ++i) {
      const int32_t code = c->codes[i];
      key[i] = (code >= 0 && code < k) ? rank[static_cast<size_t>(code)] : NAN;
    }
  } else if (c) {
    for (size_t i = 0; i < n; ++i) key[i] = c->number(i);
  }
  return keys;
}

// The row order of a job: filtered (or the rows shown), then stably sorted.
std::shared_ptr<OrderResult> computeOrder(const OrderJob& job, const std::atomic<bool>* cancel);

}  // namespace

ObsFilterProxy::ObsFilterProxy(QObject* parent) : QAbstractProxyModel(parent) {
  pool_.setMaxThreadCount(1);  // one order at a time; a superseded one stops early
  pool_.setThreadPriority(QThread::LowPriority);
}

ObsFilterProxy::~ObsFilterProxy() {
  if (cancel_) cancel_->store(true);
  pool_.waitForDone();
}

void ObsFilterProxy::setSourceModel(QAbstractItemModel* model) {
  beginResetModel();
  cancelPending();
  if (sourceModel()) disconnect(sourceModel(), nullptr, this, nullptr);
  obs_ = qobject_cast<ObsTableModel*>(model);
  QAbstractProxyModel::setSourceModel(obs_);
  proxyToSource_.clear();
  sourceToProxy_.clear();
  keySource_.reset();
  keys_.reset();
  filterDirty_ = false;
  if (obs_) {
    setIdentity();
    // As QAbstractProxyModel does: no signals (the source usually goes with its views and their
    // owner, which are half destroyed by now), just no rows from here on.
    connect(obs_, &QObject::destroyed, this, [this] {
      cancelPending();
      obs_ = nullptr;
      proxyToSource_.clear();
      sourceToProxy_.clear();
      keySource_.reset();
      keys_.reset();
      busy_ = false;
    });
    connect(obs_, &QAbstractItemModel::modelAboutToBeReset, this, &ObsFilterProxy::sourceAboutToBeReset);
    connect(obs_, &QAbstractItemModel::modelReset, this, &ObsFilterProxy::sourceReset);
    // ObsTableModel replaces everything on a row change; other row changes are taken as a reset.
    connect(obs_, &QAbstractItemModel::rowsAboutToBeInserted, this, &ObsFilterProxy::sourceAboutToBeReset);
    connect(obs_, &QAbstractItemModel::rowsInserted, this, &ObsFilterProxy::sourceReset);
    connect(obs_, &QAbstractItemModel::rowsAboutToBeRemoved, this, &ObsFilterProxy::sourceAboutToBeReset);
    connect(obs_, &QAbstractItemModel::rowsRemoved, this, &ObsFilterProxy::sourceReset);
    connect(obs_, &QAbstractItemModel::rowsAboutToBeMoved, this, &ObsFilterProxy::sourceAboutToBeReset);
    connect(obs_, &QAbstractItemModel::rowsMoved, this, &ObsFilterProxy::sourceReset);
    connect(obs_, &QAbstractItemModel::dataChanged, this, &ObsFilterProxy::sourceDataChanged);
    // A layout change of ObsTableModel is a column replaced in place: rows keep their identity,
    // so the shown order stays valid; what the rows show changed, and the order may have to.
    connect(obs_, &QAbstractItemModel::layoutChanged, this, [this] {
      keySource_.reset();
      keys_.reset();
      if (rowCount() > 0 && columnCount() > 0)
        Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
      if (textFilterActive() || sortColumn_ >= 0) schedule(textFilterActive());
    });
    connect(obs_, &QAbstractItemModel::headerDataChanged, this,
            [this](Qt::Orientation orientation, int first, int last) {
              if (orientation == Qt::Horizontal) Q_EMIT headerDataChanged(orientation, first, last);
              else if (rowCount() > 0) Q_EMIT headerDataChanged(orientation, 0, rowCount() - 1);
            });
    connect(obs_, &QAbstractItemModel::columnsAboutToBeInserted, this,
            [this](const QModelIndex& parent, int first, int last) {
              if (!parent.isValid()) beginInsertColumns(QModelIndex(), first, last);
            });
    connect(obs_, &QAbstractItemModel::columnsInserted, this, [this](const QModelIndex& parent, int first, int last) {
      if (parent.isValid()) return;
      const int k = last - first + 1;
      if (sortColumn_ >= first) sortColumn_ += k;
      if (filterCol_ >= first) filterCol_ += k;
      endInsertColumns();
      // A new column can hold the filter text.
      if (textFilterActive() && filterCol_ < 0) schedule(true);
    });
    connect(obs_, &QAbstractItemModel::columnsAboutToBeRemoved, this,
            [this](const QModelIndex& parent, int first, int last) {
              if (!parent.isValid()) beginRemoveColumns(QModelIndex(), first, last);
            });
    connect(obs_, &QAbstractItemModel::columnsRemoved, this, [this](const QModelIndex& parent, int first, int last) {
      if (parent.isValid()) return;
      const int k = last - first + 1;
      // Rows stay in the order shown when their sort column goes; a filtered column, to all columns.
      if (sortColumn_ >= first && sortColumn_ <= last) sortColumn_ = -1;
      else if (sortColumn_ > last) sortColumn_ -= k;
      if (filterCol_ >= first && filterCol_ <= last) filterCol_ = -1;
      else if (filterCol_ > last) filterCol_ -= k;
      keySource_.reset();  // may be the removed column's data: let it go
      keys_.reset();
      endRemoveColumns();
      if (textFilterActive()) schedule(true);
    });
    connect(obs_, &ObsTableModel::selectionChanged, this, [this] {
      if (selectedOnly_) schedule(true);
    });
  }
  endResetModel();
  setBusy(false);
  if (obs_ && (filterActive() || sortColumn_ >= 0 || sortOrder_ == Qt::DescendingOrder)) schedule(true);
}

void ObsFilterProxy::sourceAboutToBeReset() {
  beginResetModel();
  cancelPending();
}

void ObsFilterProxy::sourceReset() {
  keySource_.reset();
  keys_.reset();
  if (sortColumn_ >= columnCount()) sortColumn_ = -1;
  filterDirty_ = filterActive();
  const bool needOrder = filterActive() || sortColumn_ >= 0 || sortOrder_ == Qt::DescendingOrder;
  bool later = false;
  if (!needOrder) {
    setIdentity();
  } else if (obs_->rows() <= syncLimit_) {
    const std::shared_ptr<OrderResult> r = computeOrder(makeJob(true), nullptr);
    if (r->keys) {
      keySource_ = r->keySource;
      keys_ = r->keys;
    }
    setMapping(std::move(r->order));
    filterDirty_ = false;
  } else if (filterActive()) {
    setMapping({});  // no rows until the filter has run: none shown that it would hide
    later = true;
  } else {
    setIdentity();  // every row, in source order, until sorted
    later = true;
  }
  endResetModel();
  if (later) schedule(filterDirty_);
  else setBusy(false);
}

void ObsFilterProxy::sourceDataChanged(const QModelIndex& topLeft, const QModelIndex& bottomRight,
                                       const QList<int>& roles) {
  if (!topLeft.isValid() || !bottomRight.isValid()) return;
  const int left = topLeft.column(), right = bottomRight.column();
  // The rows are spread over the shown order: report the whole span of columns (views repaint
  // what they show).
  if (rowCount() > 0) Q_EMIT dataChanged(index(0, left), index(rowCount() - 1, right), roles);
  const bool shownTextChanged = roles.isEmpty() || roles.contains(Qt::DisplayRole) || roles.contains(Qt::EditRole);
  if (!shownTextChanged) return;
  keySource_.reset();  // changed in place: cached keys may be stale
  keys_.reset();
  const bool refilter = textFilterActive();
  if (refilter || (sortColumn_ >= left && sortColumn_ <= right)) schedule(refilter);
}

void ObsFilterProxy::setFilterText(const QString& text, int column) {
  if (text == filterText_ && column == filterCol_) return;
  filterText_ = text;
  filterCol_ = column;
  schedule(true);
}

void ObsFilterProxy::setShowSelectedOnly(bool on) {
  if (on == selectedOnly_) return;
  selectedOnly_ = on;
  schedule(true);
}

void ObsFilterProxy::sort(int column, Qt::SortOrder order) {
  if (column >= columnCount()) column = -1;
  sortColumn_ = column < 0 ? -1 : column;
  sortOrder_ = order;
  schedule(false);
}

detail::OrderJob ObsFilterProxy::makeJob(bool refilter) const {
  detail::OrderJob job;
  job.rows = obs_->rows();
  job.rowNames = obs_->sharedRowNames();
  for (int c = 1; c < obs_->columnCount(); ++c) job.columns.push_back(obs_->sharedColumn(c));
  job.refilter = refilter;
  if (refilter) {
    job.selectedOnly = selectedOnly_;
    if (selectedOnly_) job.selected = obs_->selectedRows();
    job.text = filterText_;
    job.filterCol = filterCol_;
  } else {
    job.shown = proxyToSource_;
  }
  job.sortColumn = sortColumn_ < job.columnCount() ? sortColumn_ : -1;
  job.order = sortOrder_;
  if (job.sortColumn == 0) job.keySource = job.rowNames;
  else if (job.sortColumn > 0) job.keySource = job.columns[static_cast<size_t>(job.sortColumn - 1)];
  if (job.keySource && job.keySource == keySource_) job.cachedKeys = keys_;
  return job;
}

void ObsFilterProxy::cancelPending() {
  ++generation_;
  if (cancel_) cancel_->store(true);
  cancel_.reset();
}

void ObsFilterProxy::schedule(bool refilter) {
  cancelPending();
  if (!obs_) {
    setBusy(false);
    return;
  }
  if (refilter) filterDirty_ = true;
  OrderJob job = makeJob(filterDirty_);
  const uint64_t generation = generation_;
  if (obs_->rows() <= syncLimit_) {
    finish(generation, computeOrder(job, nullptr));
    return;
  }
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  cancel_ = cancel;
  setBusy(true);
  pool_.start([this, generation, cancel, job = std::move(job)] {
    std::shared_ptr<OrderResult> result;
    try {
      result = computeOrder(job, cancel.get());
    } catch (const Cancelled&) {
      return;  // superseded: the newer job reports
    } catch (const std::exception& e) {
      qWarning("cell table: could not sort or filter %zu rows: %s", job.rows, e.what());
    }
    // Runs on the GUI thread; dropped there if superseded meanwhile (and with this object).
    QMetaObject::invokeMethod(this, [this, generation, result] { finish(generation, result); }, Qt::QueuedConnection);
  });
}

void ObsFilterProxy::finish(uint64_t generation, const std::shared_ptr<OrderResult>& result) {
  if (generation != generation_) return;  // superseded
  cancel_.reset();
  if (result && obs_ && result->rows == obs_->rows()) {
    if (result->keys) {
      keySource_ = result->keySource;
      keys_ = result->keys;
    }
    if (result->refiltered) filterDirty_ = false;
    applyOrder(std::move(result->order), !result->refiltered);
  }
  setBusy(false);
}

void ObsFilterProxy::setBusy(bool busy) {
  if (busy == busy_) return;
  busy_ = busy;
  Q_EMIT busyChanged(busy);
}

bool ObsFilterProxy::waitForIdle(int timeoutMs) {
  if (!busy_) return true;
  QEventLoop loop;
  connect(this, &ObsFilterProxy::busyChanged, &loop, [&loop](bool busy) {
    if (!busy) loop.quit();
  });
  QTimer timer;
  timer.setSingleShot(true);
  connect(&timer, &QTimer::timeout, &loop, &QEventLoop::quit);
  timer.start(timeoutMs);
  loop.exec();
  return !busy_;
}

void ObsFilterProxy::setMapping(std::vector<int32_t> order) {
  proxyToSource_ = std::move(order);
  sourceToProxy_.assign(obs_ ? obs_->rows() : 0, -1);
  for (size_t i = 0; i < proxyToSource_.size(); ++i)
    sourceToProxy_[static_cast<size_t>(proxyToSource_[i])] = static_cast<int32_t>(i);
}

void ObsFilterProxy::setIdentity() {
  std::vector<int32_t> order(obs_ ? obs_->rows() : 0);
  std::iota(order.begin(), order.end(), 0);
  setMapping(std::move(order));
}

void ObsFilterProxy::applyOrder(std::vector<int32_t> order, bool sortOnly) {
  // A sort moves rows only; a filter also hides and shows rows (as QSortFilterProxyModel's
  // invalidate(): one layout change, not a removal per run of rows).
  const auto hint = sortOnly ? QAbstractItemModel::VerticalSortHint : QAbstractItemModel::NoLayoutChangeHint;
  Q_EMIT layoutAboutToBeChanged({}, hint);
  const QModelIndexList from = persistentIndexList();
  std::vector<int32_t> sourceOf(static_cast<size_t>(from.size()), -1);
  for (qsizetype i = 0; i < from.size(); ++i) {
    const int row = from[i].row();
    if (row >= 0 && static_cast<size_t>(row) < proxyToSource_.size())
      sourceOf[static_cast<size_t>(i)] = proxyToSource_[static_cast<size_t>(row)];
  }
  setMapping(std::move(order));
  QModelIndexList to;
  to.reserve(from.size());
  for (qsizetype i = 0; i < from.size(); ++i) {
    const int32_t src = sourceOf[static_cast<size_t>(i)];
    const int32_t row = src >= 0 && static_cast<size_t>(src) < sourceToProxy_.size()
                            ? sourceToProxy_[static_cast<size_t>(src)]
                            : -1;
    to << (row >= 0 ? index(row, from[i].column()) : QModelIndex());
  }
  changePersistentIndexList(from, to);
  Q_EMIT layoutChanged({}, hint);
}

namespace {

std::shared_ptr<OrderResult> computeOrder(const OrderJob& job, const std::atomic<bool>* cancel) {
  auto result = std::make_shared<OrderResult>();
  result->rows = job.rows;
  result->refiltered = job.refilter;
  std::vector<int32_t> rows = job.refilter ? filterRows(job, cancel) : job.shown;
  checkCancel(cancel);
  const bool asc = job.order == Qt::AscendingOrder;
  if (job.sortColumn >= 0) {
    result->keys = sortKeys(job, job.sortColumn, cancel);
    result->keySource = job.keySource;
    checkCancel(cancel);
    const std::vector<double>& key = *result->keys;
    // Key and row side by side: the sort reads memory in order.
    std::vector<std::pair<double, int32_t>> keyed;
    keyed.reserve(rows.size());
    for (int32_t r : rows) keyed.emplace_back(key[static_cast<size_t>(r)], r);
    // Missing (NaN) first in ascending order, last in descending; ties keep their order.
    if (asc)
      std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return lessWithNan(a.first, b.first); });
    else
      std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return lessWithNan(b.first, a.first); });
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = keyed[i].second;
  } else if (asc) {
    std::sort(rows.begin(), rows.end());
  } else {
    std::sort(rows.begin(), rows.end(), std::greater<int32_t>());
  }
  result->order = std::move(rows);
  return result;
}

}  // namespace

QModelIndex ObsFilterProxy::mapToSource(const QModelIndex& proxyIndex) const {
  if (!obs_ || !proxyIndex.isValid() || proxyIndex.model() != this) return {};
  const int row = proxyIndex.row();
  if (row < 0 || static_cast<size_t>(row) >= proxyToSource_.size()) return {};
  return obs_->index(proxyToSource_[static_cast<size_t>(row)], proxyIndex.column());
}

QModelIndex ObsFilterProxy::mapFromSource(const QModelIndex& sourceIndex) const {
  if (!obs_ || !sourceIndex.isValid() || sourceIndex.model() != obs_) return {};
  const int row = sourceIndex.row();
  if (row < 0 || static_cast<size_t>(row) >= sourceToProxy_.size()) return {};
  const int32_t shown = sourceToProxy_[static_cast<size_t>(row)];
  return shown < 0 ? QModelIndex() : index(shown, sourceIndex.column());
}

namespace {

// Consecutive rows (sorted, unique) as ranges over columns left..right of `model`.
QItemSelection rowRuns(const QAbstractItemModel* model, std::vector<int32_t> rows, int left, int right) {
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  QItemSelection out;
  for (size_t i = 0; i < rows.size();) {
    size_t j = i;
    while (j + 1 < rows.size() && rows[j + 1] == rows[j] + 1) ++j;
    out.append(QItemSelectionRange(model->index(rows[i], left), model->index(rows[j], right)));
    i = j + 1;
  }
  return out;
}

}  // namespace

QItemSelection ObsFilterProxy::mapSelectionToSource(const QItemSelection& proxySelection) const {
  QItemSelection out;
  if (!obs_) return out;
  for (const QItemSelectionRange& range : proxySelection) {
    if (range.model() != this) continue;
    std::vector<int32_t> rows;
    for (int r = std::max(0, range.top()); r <= range.bottom() && static_cast<size_t>(r) < proxyToSource_.size(); ++r)
      rows.push_back(proxyToSource_[static_cast<size_t>(r)]);
    out.merge(rowRuns(obs_, std::move(rows), range.left(), range.right()), QItemSelectionModel::Select);
  }
  return out;
}

QItemSelection ObsFilterProxy::mapSelectionFromSource(const QItemSelection& sourceSelection) const {
  QItemSelection out;
  if (!obs_) return out;
  for (const QItemSelectionRange& range : sourceSelection) {
    if (range.model() != obs_) continue;
    std::vector<int32_t> rows;
    for (int r = std::max(0, range.top()); r <= range.bottom() && static_cast<size_t>(r) < sourceToProxy_.size(); ++r)
      if (sourceToProxy_[static_cast<size_t>(r)] >= 0) rows.push_back(sourceToProxy_[static_cast<size_t>(r)]);
    out.merge(rowRuns(this, std::move(rows), range.left(), range.right()), QItemSelectionModel::Select);
  }
  return out;
}

QModelIndex ObsFilterProxy::index(int row, int column, const QModelIndex& parent) const {
  if (parent.isValid() || row < 0 || column < 0 || row >= rowCount() || column >= columnCount()) return {};
  return createIndex(row, column);
}

QModelIndex ObsFilterProxy::parent(const QModelIndex&) const { return {}; }

QModelIndex ObsFilterProxy::sibling(int row, int column, const QModelIndex& idx) const {
  return idx.isValid() ? index(row, column) : QModelIndex();
}

bool ObsFilterProxy::hasChildren(const QModelIndex& parent) const {
  return !parent.isValid() && rowCount() > 0 && columnCount() > 0;
}

int ObsFilterProxy::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(proxyToSource_.size());
}

int ObsFilterProxy::columnCount(const QModelIndex& parent) const {
  return parent.isValid() || !obs_ ? 0 : obs_->columnCount();
}

QVariant ObsFilterProxy::headerData(int section, Qt::Orientation orientation, int role) const {
  if (!obs_) return {};
  if (orientation == Qt::Horizontal) return obs_->headerData(section, orientation, role);
  // Rows are labelled as in the source (the cell's position in the file), as QSortFilterProxyModel does.
  if (section < 0 || static_cast<size_t>(section) >= proxyToSource_.size()) return {};
  return obs_->headerData(proxyToSource_[static_cast<size_t>(section)], orientation, role);
}

std::vector<int64_t> ObsFilterProxy::sourceRows(const QItemSelection& proxySelection) const {
  std::vector<int64_t> rows;
  for (const QItemSelectionRange& range : proxySelection)
    for (int r = std::max(0, range.top()); r <= range.bottom() && static_cast<size_t>(r) < proxyToSource_.size(); ++r)
      rows.push_back(proxyToSource_[static_cast<size_t>(r)]);
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
