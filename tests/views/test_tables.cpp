// The cell table (ObsTableModel + ObsFilterProxy) and the DE table, as a user meets them in a
// QTableView: sort order, text filter, "selected only", highlighted selection, new columns.
#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QHeaderView>
#include <QSignalSpy>
#include <QTableView>
#include <QtTest>

#include "test_support.h"
#include <cmath>
#include <random>

#include "uce/views/table_models.h"

using namespace uce::views;

namespace {

using uce::test::shotDir;

// 8 cells with a numeric, a text, a categorical and an int column.
void fillSmall(ObsTableModel& m) {
  std::vector<std::string> names = {"AAAC-1", "AAAG-1", "AACT-1", "AAGT-1", "ACGT-1", "AGGT-1", "CCCT-1", "GGGA-1"};
  std::vector<TableColumn> cols;
  cols.push_back(TableColumn::makeDoubles("n_counts", {10, 9, 100, 2, NAN, 25.5, 1000, 3}));
  cols.push_back(TableColumn::makeStrings("donor", {"d2", "D1", "d10", "alpha", "Beta", "d1", "gamma", "d3"}));
  cols.push_back(TableColumn::makeCategorical("leiden", {0, 3, 2, 1, 3, -1, 0, 2}, {"0", "1", "2", "10"}));
  cols.push_back(TableColumn::makeInts("batch", {3, 1, 2, 1, 3, 2, 1, 2}));
  QCOMPARE(m.setTable(std::move(names), std::move(cols)), QString());
}

// Source rows in the order the proxy shows them.
std::vector<int> shownRows(const QSortFilterProxyModel& p) {
  std::vector<int> rows;
  for (int r = 0; r < p.rowCount(); ++r) rows.push_back(p.mapToSource(p.index(r, 0)).row());
  return rows;
}

QStringList shownColumn(const QSortFilterProxyModel& p, int col) {
  QStringList out;
  for (int r = 0; r < p.rowCount(); ++r) out << p.index(r, col).data().toString();
  return out;
}

}  // namespace

class TestTables : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void showsRowNamesThenColumns() {
    ObsTableModel m;
    fillSmall(m);
    QCOMPARE(m.rowCount(), 8);
    QCOMPARE(m.columnCount(), 5);
    QCOMPARE(m.headerData(0, Qt::Horizontal).toString(), QString("cell"));
    QCOMPARE(m.headerData(3, Qt::Horizontal).toString(), QString("leiden"));
    QCOMPARE(m.index(2, 0).data().toString(), QString("AACT-1"));
    QCOMPARE(m.index(5, 1).data().toString(), QString("25.5"));
    QCOMPARE(m.index(4, 1).data().toString(), QString(""));   // NaN shown as empty
    QCOMPARE(m.index(5, 3).data().toString(), QString(""));   // missing category
    QCOMPARE(m.index(1, 3).data().toString(), QString("10"));
    QCOMPARE(m.index(0, 4).data().toString(), QString("3"));
    // Numbers are right-aligned, text left-aligned.
    QVERIFY(m.index(0, 1).data(Qt::TextAlignmentRole).value<Qt::Alignment>() & Qt::AlignRight);
    QVERIFY(m.index(0, 2).data(Qt::TextAlignmentRole).value<Qt::Alignment>() & Qt::AlignLeft);
  }

  void refusesColumnsOfTheWrongLength() {
    ObsTableModel m;
    std::vector<TableColumn> cols;
    cols.push_back(TableColumn::makeDoubles("ok", {1, 2}));
    cols.push_back(TableColumn::makeDoubles("short", {1}));
    const QString msg = m.setTable({"a", "b"}, std::move(cols));
    QVERIFY2(msg.contains("short") && msg.contains("1 values") && msg.contains("2 cells"), qPrintable(msg));
    QCOMPARE(m.columnNames(), QStringList{"ok"});
    QVERIFY(!m.setColumn(TableColumn::makeInts("n", {1, 2, 3})).isEmpty());
    QCOMPARE(m.columnCount(), 2);
  }

  void sortsNumbersByValueAndTextByText() {
    ObsTableModel m;
    fillSmall(m);
    ObsFilterProxy p;
    p.setSourceModel(&m);
    p.sort(1, Qt::AscendingOrder);  // n_counts: missing first, then 2, 3, 9, 10, 25.5, 100, 1000
    QCOMPARE(shownColumn(p, 1), (QStringList{"", "2", "3", "9", "10", "25.5", "100", "1000"}));
    p.sort(1, Qt::DescendingOrder);
    QCOMPARE(shownColumn(p, 1).first(), QString("1000"));
    QCOMPARE(shownColumn(p, 1).last(), QString(""));
    p.sort(2, Qt::AscendingOrder);  // donor: case-insensitive text ("d10" before "d2")
    QCOMPARE(shownColumn(p, 2), (QStringList{"alpha", "Beta", "D1", "d1", "d10", "d2", "d3", "gamma"}));
    p.sort(3, Qt::AscendingOrder);  // leiden: natural order of the labels, missing first
    QCOMPARE(shownColumn(p, 3), (QStringList{"", "0", "0", "1", "2", "2", "10", "10"}));
    p.sort(0, Qt::DescendingOrder);
    QCOMPARE(shownColumn(p, 0).first(), QString("GGGA-1"));
    p.sort(4, Qt::AscendingOrder);  // ints; ties keep the previous (name-descending) order
    QCOMPARE(shownRows(p), (std::vector<int>{6, 3, 1, 7, 5, 2, 4, 0}));
  }

  void filtersByTextInOneOrAllColumns() {
    ObsTableModel m;
    fillSmall(m);
    ObsFilterProxy p;
    p.setSourceModel(&m);
    p.setFilterText("d1", 2);  // donor contains "d1", any case
    QCOMPARE(shownRows(p), (std::vector<int>{1, 2, 5}));
    p.setFilterText("10", 3);  // leiden == "10" (categorical)
    QCOMPARE(shownRows(p), (std::vector<int>{1, 4}));
    p.setFilterText("10");     // any column: "10" in n_counts 10/100/1000, donor d10, leiden 10
    QCOMPARE(shownRows(p), (std::vector<int>{0, 1, 2, 4, 6}));
    p.setFilterText("aag");    // cell ids, case-insensitive
    QCOMPARE(shownRows(p), (std::vector<int>{1, 3}));
    p.setFilterText("no such thing");
    QCOMPARE(p.rowCount(), 0);
    p.setFilterText("");
    QCOMPARE(p.rowCount(), 8);
  }

  void showsOnlyTheSelectionAndHighlightsIt() {
    ObsTableModel m;
    fillSmall(m);
    ObsFilterProxy p;
    p.setSourceModel(&m);
    QSignalSpy changed(&m, &ObsTableModel::selectionChanged);
    m.setSelectedRows({6, 1, 3, 3, 42, -1});  // unsorted, duplicate and invalid rows are tidied
    QCOMPARE(changed.count(), 1);
    QCOMPARE(m.selectedRows(), (std::vector<int64_t>{1, 3, 6}));
    QCOMPARE(m.index(1, 2).data(Qt::BackgroundRole).value<QBrush>().color(), ObsTableModel::kSelectedBackground);
    QVERIFY(!m.index(0, 2).data(Qt::BackgroundRole).isValid());

    p.setShowSelectedOnly(true);
    QCOMPARE(shownRows(p), (std::vector<int>{1, 3, 6}));
    m.setSelectedRows({0, 7});  // the proxy follows a new selection
    QCOMPARE(shownRows(p), (std::vector<int>{0, 7}));
    p.setFilterText("d3", 2);    // and combines with the text filter
    QCOMPARE(shownRows(p), (std::vector<int>{7}));
    p.setFilterText("");
    p.setShowSelectedOnly(false);
    QCOMPARE(p.rowCount(), 8);

    // In a table view the selected rows are drawn on the highlight colour.
    QTableView view;
    view.setModel(&p);
    view.resize(600, 360);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.clearSelection();
    view.setCurrentIndex(QModelIndex());
    QTest::qWait(50);
    const QImage img = view.viewport()->grab().toImage();
    img.save(shotDir() + "/table_selection.png");
    auto bgAt = [&](int proxyRow) {
      const QRect r = view.visualRect(p.index(proxyRow, 1));
      // A few pixels in from the cell's left edge, away from the right-aligned number.
      return img.pixelColor(r.left() + 3, r.center().y());
    };
    QCOMPARE(bgAt(0), ObsTableModel::kSelectedBackground);
    QCOMPARE(bgAt(7), ObsTableModel::kSelectedBackground);
    QVERIFY(bgAt(1) != ObsTableModel::kSelectedBackground);
  }

  void mapsAViewSelectionBackToSourceRows() {
    ObsTableModel m;
    fillSmall(m);
    ObsFilterProxy p;
    p.setSourceModel(&m);
    p.sort(1, Qt::DescendingOrder);  // 1000 (row 6), 100 (row 2), 25.5 (row 5), 10 (row 0), ...
    QTableView view;
    view.setModel(&p);
    view.setSelectionBehavior(QAbstractItemView::SelectRows);
    view.selectionModel()->select(QItemSelection(p.index(0, 0), p.index(2, p.columnCount() - 1)),
                                  QItemSelectionModel::Select);
    QCOMPARE(p.sourceRows(view.selectionModel()->selection()), (std::vector<int64_t>{2, 5, 6}));
    QCOMPARE(p.sourceRows(view.selectionModel()->selectedIndexes()), (std::vector<int64_t>{2, 5, 6}));
    m.setSelectedRows(p.sourceRows(view.selectionModel()->selection()));
    QCOMPARE(m.selectedRows(), (std::vector<int64_t>{2, 5, 6}));
  }

  void newAndReplacedColumnsReachTheView() {
    ObsTableModel m;
    fillSmall(m);
    ObsFilterProxy p;
    p.setSourceModel(&m);
    QSignalSpy inserted(&p, &QAbstractItemModel::columnsInserted);
    QCOMPARE(m.setColumn(TableColumn::makeCategorical("annotation", {1, 0, 1, 0, 1, 0, 1, 0}, {"B cell", "T cell"})),
             QString());
    QCOMPARE(inserted.count(), 1);
    QCOMPARE(p.columnCount(), 6);
    QCOMPARE(p.headerData(5, Qt::Horizontal).toString(), QString("annotation"));
    p.sort(5, Qt::AscendingOrder);
    p.setFilterText("B cell", 5);
    QCOMPARE(p.rowCount(), 4);

    // Replacing the column (e.g. after naming a selection) refilters and re-sorts.
    QSignalSpy changed(&p, &QAbstractItemModel::layoutChanged);
    QCOMPARE(m.setColumn(TableColumn::makeCategorical("annotation", {1, 1, 1, 0, 0, 0, 0, 0}, {"B cell", "T cell"})),
             QString());
    QVERIFY(changed.count() >= 1);
    QCOMPARE(m.columnCount(), 6);
    QCOMPARE(shownRows(p), (std::vector<int>{3, 4, 5, 6, 7}));
    QVERIFY(m.removeColumn("annotation"));
    QCOMPARE(p.columnCount(), 5);
  }

  void aMillionCells() {
    const int n = 1000000;
    std::mt19937 rng(7);
    std::vector<std::string> names(n);
    std::vector<double> counts(n);
    std::vector<int32_t> codes(n);
    std::vector<std::string> donors(n);
    std::uniform_real_distribution<double> u(0, 1e4);
    for (int i = 0; i < n; ++i) {
      names[static_cast<size_t>(i)] = "cell_" + std::to_string(i);
      counts[static_cast<size_t>(i)] = std::floor(u(rng));
      codes[static_cast<size_t>(i)] = static_cast<int32_t>(rng() % 12);
      donors[static_cast<size_t>(i)] = "donor_" + std::to_string(rng() % 40);
    }
    QStringList cats;
    for (int k = 0; k < 12; ++k) cats << QString::number(k);
    std::vector<TableColumn> cols;
    cols.push_back(TableColumn::makeDoubles("n_counts", std::move(counts)));
    cols.push_back(TableColumn::makeCategorical("leiden", std::move(codes), cats));
    cols.push_back(TableColumn::makeStrings("donor", std::move(donors)));
    ObsTableModel m;
    QElapsedTimer t;
    t.start();
    m.setTable(std::move(names), std::move(cols));
    ObsFilterProxy p;
    p.setSourceModel(&m);
    QTableView view;
    view.setModel(&p);
    view.resize(600, 400);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    const qint64 loadMs = t.restart();
    p.sort(1, Qt::AscendingOrder);
    const qint64 sortMs = t.restart();
    QVERIFY(p.index(0, 1).data().toDouble() <= p.index(1, 1).data().toDouble());
    QVERIFY(p.index(p.rowCount() - 2, 1).data().toDouble() <= p.index(p.rowCount() - 1, 1).data().toDouble());
    p.setFilterText("11", 2);
    const qint64 filterCatMs = t.restart();
    QVERIFY(p.rowCount() > n / 20 && p.rowCount() < n / 8);
    p.setFilterText("donor_3");
    const qint64 filterAllMs = t.restart();
    QVERIFY(p.rowCount() > 0);
    p.setFilterText("");
    std::vector<int64_t> sel;
    for (int64_t i = 0; i < n; i += 10) sel.push_back(i);
    t.restart();
    m.setSelectedRows(sel);
    p.setShowSelectedOnly(true);
    const qint64 selMs = t.restart();
    QCOMPARE(p.rowCount(), n / 10);
    qInfo("1,000,000 cells: load+show %lld ms, numeric sort %lld ms, categorical filter %lld ms, "
          "all-column filter %lld ms, select 100,000 + show selected %lld ms",
          loadMs, sortMs, filterCatMs, filterAllMs, selMs);
  }

  void deTableSortsNumerically() {
    std::vector<DeRow> rows = {
        {"CD3E", 2.5, 3.0, 0.5, 0.9, 0.1, 1e-30, 1e-28},
        {"MS4A1", -3.0, 0.2, 2.0, 0.1, 0.8, 1e-50, 1e-47},
        {"GAPDH", 0.1, 5.0, 4.9, 1.0, 1.0, 0.5, 0.9},
        {"Gene10", NAN, 0, 0, 0, 0, NAN, NAN},
        {"Gene9", 9.5, 0.1, 0.0, 0.05, 0.0, 0.002, 0.04},
    };
    DeTableModel m;
    m.setRows(rows);
    QCOMPARE(m.columnCount(), 8);
    QCOMPARE(m.headerData(DeTableModel::PAdj, Qt::Horizontal).toString(), QString("adj. p (BH)"));
    QCOMPARE(m.index(1, DeTableModel::PValue).data().toString(), QString("1.00e-50"));
    QCOMPARE(m.index(0, DeTableModel::PctIn).data().toString(), QString("90.0 %"));
    QCOMPARE(m.index(1, DeTableModel::Log2FC).data().toString(), QString("-3.000"));

    auto genes = [&m] {
      QStringList g;
      for (int r = 0; r < m.rowCount(); ++r) g << m.index(r, 0).data().toString();
      return g;
    };
    QTableView view;
    view.setModel(&m);
    view.setSortingEnabled(true);
    view.sortByColumn(DeTableModel::PAdj, Qt::AscendingOrder);
    QCOMPARE(genes(), (QStringList{"MS4A1", "CD3E", "Gene9", "GAPDH", "Gene10"}));
    view.sortByColumn(DeTableModel::Log2FC, Qt::DescendingOrder);  // numeric, NaN last
    QCOMPARE(genes(), (QStringList{"Gene9", "CD3E", "GAPDH", "MS4A1", "Gene10"}));
    view.sortByColumn(DeTableModel::Gene, Qt::AscendingOrder);     // natural: Gene9 < Gene10
    QCOMPARE(genes(), (QStringList{"CD3E", "GAPDH", "Gene9", "Gene10", "MS4A1"}));
    // A selected row follows its gene through a sort.
    view.selectionModel()->setCurrentIndex(m.index(m.rowOfGene("MS4A1"), 0), QItemSelectionModel::SelectCurrent);
    view.sortByColumn(DeTableModel::MeanOut, Qt::DescendingOrder);
    QCOMPARE(view.selectionModel()->currentIndex().data().toString(), QString("MS4A1"));
    QCOMPARE(view.selectionModel()->currentIndex().row(), m.rowOfGene("MS4A1"));
  }
};

QTEST_MAIN(TestTables)
#include "test_tables.moc"
