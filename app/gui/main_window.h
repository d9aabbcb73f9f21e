#pragma once
// The desktop app's main window: the cell map (ScatterMap) in the middle, docks for datasets,
// cells, jobs, clusters and differential expression, and the toolbar / menus that drive the
// Workspace. Every long step is a Job (JobManager); the GUI thread only starts jobs and applies
// their results. Errors are shown as non-blocking message boxes whose text says what to do
// (and are kept in lastError() / errorShown() for tests and the status bar).
#include <QHash>
#include <QMainWindow>
#include <QPointer>
#include <QSet>
#include <QString>
#include <memory>
#include <vector>

#include "jobs.h"
#include "workspace.h"

class QAction;
class QActionGroup;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QMenu;
class QSlider;
class QSpinBox;
class QCompleter;
class QStringListModel;

namespace uce::views {
class ChartWidget;
class ScatterMap;
}  // namespace uce::views

namespace uce::gui {

class CellsDock;
class ClustersDock;
class DatasetsDock;
class DeDock;
class EmbedDialog;
class JobsDock;
class LabelDialog;
class TrainingPanel;
class AtlasPanel;
class NornWizard;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  struct Options {
    // Settings file (INI); "" = the platform's QSettings for "UCE"/"UCE Atlas" (or the file
    // named by the environment variable UCE_SETTINGS_FILE).
    QString settingsFile;
    // Demo atlas folder; "" = demoDir().
    QString demoDir;
    // Demo model weights; "" = demoModelFile() (resources/demo_model/model.torch, or the
    // environment variable UCE_DEMO_MODEL).
    QString demoModel;
    // Where the demo's embeddings are written; "" = the user's cache folder.
    QString cacheDir;
    // Message boxes for errors and confirmations; off when UCE_NO_DIALOGS is set (errors then
    // only reach lastError(), errorShown() and the status bar).
    bool dialogs = true;
  };

  explicit MainWindow(QWidget* parent = nullptr);
  explicit MainWindow(const Options& options, QWidget* parent = nullptr);
  ~MainWindow() override;

  // Parts, for tests and the app's own wiring.
  uce::views::ScatterMap* map() const { return map_; }
  Workspace* workspace() const { return ws_; }
  JobManager* jobs() const { return jobs_; }
  AppSettings* settings() const { return settings_.get(); }
  DatasetsDock* datasetsDock() const { return datasetsDock_; }
  CellsDock* cellsDock() const { return cellsDock_; }
  JobsDock* jobsDock() const { return jobsDock_; }
  ClustersDock* clustersDock() const { return clustersDock_; }
  DeDock* deDock() const { return deDock_; }
  TrainingPanel* trainingPanel() const { return training_; }
  AtlasPanel* atlasPanel() const { return atlas_; }
  NornWizard* nornWizard() const { return nornWizard_; }  // created on first use (Analysis menu)
  EmbedDialog* embedDialog() const { return embedDialog_; }
  LabelDialog* labelDialog() const { return labelDialog_; }
  QComboBox* colorByBox() const { return colorBy_; }
  QLineEdit* geneEdit() const { return geneEdit_; }
  QCompleter* geneCompleter() const { return geneCompleter_; }
  QSlider* resolutionSlider() const { return resolution_; }
  // An action by its object name ("open", "embed", "computeMap", "cluster", "labelSelection",
  // "deSelection", "exportAnnotated", "exportSelection", "exportCsv", "saveMap", "modeNavigate",
  // "modeBox", "modeLasso", "map3d", "resetView", "openDemo", ...); null when unknown.
  QAction* action(const QString& name) const;

  DatasetDoc* activeDocument() const { return active_; }
  // What the map area says instead of (or over) the map; "" when the map speaks for itself.
  QString mapMessage() const;
  QLabel* mapMessageLabel() const { return message_; }
  QString lastError() const { return lastError_; }
  // The window as the user sees it, map included (QWidget::grab does not capture OpenGL).
  QImage screenshot();

  // Folder of the demo atlas (UCE_DEMO_DIR env, an installed share/uce-atlas/demo, or the
  // build's demo folder) and the demo model file (UCE_DEMO_MODEL env, or the compiled-in path).
  static QString demoDir();
  static QString demoModelFile();
  // The six demo datasets (file stems, e.g. "human_kidney") found in a demo folder.
  static QStringList demoDatasets(const QString& dir);

 public Q_SLOTS:
  void openFile(const QString& path);
  // which: a dataset stem ("human_kidney"), or "" / "all" for all six. Embeds with the demo
  // model, then computes map and clusters; without the demo model, says so on the map.
  void openDemo(const QString& which = QString());
  void setActiveDocument(uce::gui::DatasetDoc* doc);
  void closeActiveDocument();

  // Embed: shows the dialog (non-blocking); accepting it calls embedActive().
  void showEmbedDialog();
  Job* embedActive(const EmbedRequest& request, bool thenMapAndCluster);
  Job* computeMap();        // UMAP 2-D (and 3-D when the 3-D map is chosen)
  Job* clusterActive();     // Leiden at the slider's resolution
  Job* findMarkers();
  // Colour the map by an obs column (clusters and annotations included); "" = one colour.
  bool colorByColumn(const QString& column);
  // Colour the map by a gene's log-normalised expression (a job reads the counts).
  Job* colorByGene(const QString& gene);
  void setMap3d(bool on);

  void showLabelDialog();
  bool labelSelection(const QString& column, const QString& label);
  Job* deSelection();
  // Exports (the menu actions ask for the file, then call these).
  Job* exportAnnotatedTo(const QString& path);
  Job* exportSelectionTo(const QString& path);
  Job* exportCsvTo(const QString& path);
  bool saveMapTo(const QString& path);
  // chart: "composition" (clusters dock) or "volcano" (DE dock); PNG or SVG by extension.
  bool saveChartTo(const QString& chart, const QString& path);

 Q_SIGNALS:
  void errorShown(const QString& text);
  void activeDocumentChanged(uce::gui::DatasetDoc* doc);
  // The map shows new points or colours.
  void mapUpdated();

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  void closeEvent(QCloseEvent* e) override;

 private:
  void buildActions();
  void buildToolbar();
  void buildMenus();
  void wireDocks();
  void showError(const QString& title, const QString& text);
  void watchJob(Job* job, const QString& errorTitle);
  void onDocumentOpened(DatasetDoc* doc);
  void onDocumentChanged(DatasetDoc* doc);
  void refreshMap(bool refit);
  void refreshColorChoices();
  void applyColoring();
  void updateMessage();
  void updateActions();
  void rebuildRecentMenu();
  void startDemoPipeline(DatasetDoc* doc);
  Job* computeMapFor(DatasetDoc* doc);
  Job* clusterFor(DatasetDoc* doc);
  QString askSavePath(const QString& title, const QString& suggestion, const QString& filter);
  std::vector<int64_t> selectedRows() const;

  Options options_;
  std::unique_ptr<AppSettings> settings_;
  JobManager* jobs_;
  Workspace* ws_;
  uce::views::ScatterMap* map_;
  QWidget* mapPane_;
  QLabel* message_;
  DatasetsDock* datasetsDock_;
  CellsDock* cellsDock_;
  JobsDock* jobsDock_;
  ClustersDock* clustersDock_;
  DeDock* deDock_;
  TrainingPanel* training_ = nullptr;  // in the "Training" dock, tabbed with the clusters
  AtlasPanel* atlas_ = nullptr;        // in the "Atlas" dock, tabbed with the clusters
  NornWizard* nornWizard_ = nullptr;
  EmbedDialog* embedDialog_;
  LabelDialog* labelDialog_;
  QComboBox* colorBy_;
  QLineEdit* geneEdit_;
  QCompleter* geneCompleter_;
  QStringListModel* geneNames_;
  QSpinBox* pointSize_;
  QSlider* opacity_;
  QSlider* resolution_;
  QLabel* resolutionLabel_;
  QMenu* recentMenu_;
  QHash<QString, QAction*> actions_;
  QActionGroup* modeGroup_;

  DatasetDoc* active_ = nullptr;
  const void* shownMatrix_ = nullptr;   // the obsm array on the map now
  QHash<DatasetDoc*, QString> colorChoice_;  // per dataset: "obs:<col>", "gene:<name>" or ""
  QHash<DatasetDoc*, QPointer<Job>> busy_;    // embed / map job whose result the map awaits
  QSet<DatasetDoc*> demoDocs_;               // opened as part of the demo
  QSet<QString> demoPending_;                // demo files being opened
  QHash<QString, QString> demoOutput_;       // demo file -> where its embedding is written
  QString demoFirst_;                        // the demo dataset shown first
  QString demoModel_;                        // the demo model used for this window's demo
  bool demoModelMissing_ = false;
  QString lastError_;
  QPointer<Job> geneJob_;
  DatasetDoc* geneDoc_ = nullptr;            // whose expression geneValues_ holds
  std::shared_ptr<std::vector<float>> geneValues_;
  QString geneShown_;
  bool fromTable_ = false;                   // a table selection is being copied to the map
};

}  // namespace uce::gui
