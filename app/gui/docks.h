#pragma once
// The main window's docks. Each shows one part of the workspace and forwards what the user
// asks for as signals; the main window wires them to the Workspace and the map.
//  * DatasetsDock: the open datasets; choosing one makes it the active one.
//  * CellsDock: the active dataset's obs as a sortable, filterable table; the cell selection
//    is shared with the map (highlighted rows, "selected only").
//  * JobsDock: every job with a progress bar, stage, rate, ETA and a cancel button; finished
//    jobs stay listed with their status or error.
//  * ClustersDock: clusters with sizes, names and top marker genes; composition by an obs column
//    as stacked bars; renaming clusters into a new annotation column.
//  * DeDock: a differential-expression result as a sortable table and a volcano plot.
#include <QDockWidget>
#include <QHash>
#include <QMap>
#include <QPointer>
#include <QString>
#include <QStringList>
#include <cstdint>
#include <vector>

#include "jobs.h"
#include "workspace.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QTableView;
class QTableWidget;
class QToolButton;
class QVBoxLayout;

namespace uce::views {
class DeTableModel;
class ObsFilterProxy;
class ObsTableModel;
class StackedBarChart;
class VolcanoPlot;
}  // namespace uce::views

namespace uce::gui {

class DatasetsDock : public QDockWidget {
  Q_OBJECT
 public:
  explicit DatasetsDock(Workspace* workspace, QWidget* parent = nullptr);
  DatasetDoc* active() const { return active_; }
  QListWidget* list() const { return list_; }
  // Text of a dataset's entry: name, cells, and what has been computed.
  static QString describe(const DatasetDoc& doc);

 public Q_SLOTS:
  void setActive(uce::gui::DatasetDoc* doc);
  void refresh();

 Q_SIGNALS:
  void activated(uce::gui::DatasetDoc* doc);  // null when the last one closed
  void openRequested();
  void closeRequested(uce::gui::DatasetDoc* doc);

 private:
  Workspace* ws_;
  QListWidget* list_;
  DatasetDoc* active_ = nullptr;
  bool updating_ = false;
};

class CellsDock : public QDockWidget {
  Q_OBJECT
 public:
  explicit CellsDock(QWidget* parent = nullptr);
  // Rebuilds the table from the document's obs (null = empty); keeps filter and selection.
  void setDocument(const DatasetDoc* doc);
  // The shared selection (from the map): highlighted, and what "selected only" shows.
  void setSelection(const std::vector<uint32_t>& rows);

  uce::views::ObsTableModel* model() const { return model_; }
  uce::views::ObsFilterProxy* proxy() const { return proxy_; }
  QTableView* view() const { return view_; }
  QLineEdit* filterEdit() const { return filter_; }
  QCheckBox* selectedOnlyBox() const { return selectedOnly_; }
  QLabel* countLabel() const { return count_; }

 Q_SIGNALS:
  // The user selected rows in the table (source rows, sorted).
  void rowsSelected(const std::vector<int64_t>& rows);

 private:
  void onViewSelection();
  void updateCount();

  uce::views::ObsTableModel* model_;
  uce::views::ObsFilterProxy* proxy_;
  QTableView* view_;
  QLineEdit* filter_;
  QCheckBox* selectedOnly_;
  QLabel* count_;
  bool syncing_ = false;
};

class JobsDock : public QDockWidget {
  Q_OBJECT
 public:
  explicit JobsDock(JobManager* jobs, QWidget* parent = nullptr);
  int rowCount() const { return rows_.size(); }
  QProgressBar* progressBar(Job* job) const;
  QLabel* detailLabel(Job* job) const;
  QToolButton* cancelButton(Job* job) const;
  // What a job's row says under its name: stage, done / total, rate and ETA while running;
  // the outcome (and the error) when finished.
  static QString describe(const Job& job);

 public Q_SLOTS:
  void addJob(uce::gui::Job* job);
  void clearFinished();

 private:
  struct Row {
    QWidget* frame = nullptr;
    QProgressBar* bar = nullptr;
    QLabel* detail = nullptr;
    QToolButton* cancel = nullptr;
  };
  void update(Job* job);

  QVBoxLayout* rowsLayout_;
  QHash<Job*, Row> rows_;
};

class ClustersDock : public QDockWidget {
  Q_OBJECT
 public:
  explicit ClustersDock(QWidget* parent = nullptr);
  void setDocument(const DatasetDoc* doc);
  void setMarkers(const QMap<int, QStringList>& markers);
  // Names typed in the table (clusters left blank keep their number).
  QMap<int, QString> names() const;

  QTableWidget* table() const { return table_; }
  QComboBox* compositionBox() const { return composition_; }
  uce::views::StackedBarChart* chart() const { return chart_; }
  QLineEdit* renameColumnEdit() const { return renameColumn_; }
  QPushButton* renameButton() const { return rename_; }
  QPushButton* markersButton() const { return markersButton_; }

 Q_SIGNALS:
  void renameRequested(const QString& column, const QMap<int, QString>& names);
  void markersRequested();
  void clusterActivated(int cluster);  // the user clicked a cluster's row

 private:
  void updateChart();

  const DatasetDoc* doc_ = nullptr;
  QLabel* summary_;
  QTableWidget* table_;
  QComboBox* composition_;
  uce::views::StackedBarChart* chart_;
  QLineEdit* renameColumn_;
  QPushButton* rename_;
  QPushButton* markersButton_;
  QMap<int, QStringList> markers_;
  bool filling_ = false;
};

class DeDock : public QDockWidget {
  Q_OBJECT
 public:
  explicit DeDock(QWidget* parent = nullptr);
  void setTable(const DeTable& table);
  const DeTable& table() const { return table_; }
  uce::views::DeTableModel* model() const { return model_; }
  QTableView* view() const { return view_; }
  uce::views::VolcanoPlot* volcano() const { return volcano_; }
  QLabel* titleLabel() const { return title_; }

 Q_SIGNALS:
  void geneChosen(const QString& gene);  // clicked in the volcano or the table

 private:
  DeTable table_;
  QLabel* title_;
  uce::views::DeTableModel* model_;
  QTableView* view_;
  uce::views::VolcanoPlot* volcano_;
};

}  // namespace uce::gui
