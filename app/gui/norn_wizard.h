#pragma once
// The Norn workflow as a three-page wizard over NornWorkflow (paper Fig. 4):
//  1. Reference: dataset, label column, optional target class (one vs rest), folds; Train shows
//     the cross-validated accuracy; Save / Load classifier files.
//  2. Targets: the other open datasets (checked) and the minimum probability; Apply writes
//     predicted_<column> and its confidence as annotation columns (the map colours by them).
//  3. Results: tabs with the confusion matrix against an obs column, the marker panel heatmap
//     (log2 FC in predicted cells per dataset) and group comparisons of genes or ratios
//     ("EPO, DCN:COL1A1") across a condition column with p-values. Each chart exports PNG / SVG.
// Every long step is a job; the wizard only forwards user intent and shows results.
#include <QPointer>
#include <QStringList>
#include <QVector>
#include <QWizard>

#include "norn_workflow.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QCheckBox;

namespace uce::views {
class HeatmapChart;
class BoxPlotChart;
class ChartWidget;
}  // namespace uce::views

namespace uce::gui {

class NornWizard : public QWizard {
  Q_OBJECT
 public:
  enum PageId { ReferencePage = 0, TargetsPage = 1, ResultsPage = 2 };
  explicit NornWizard(NornWorkflow* workflow, QWidget* parent = nullptr);
  NornWorkflow* workflow() const { return wf_; }

  // Re-reads the open datasets and their columns into the choosers (keeps the choices).
  void refreshDatasets();
  // Splits "EPO, DCN:COL1A1" into genes and ratios.
  static void parseFeatures(const QString& text, QStringList* genes, QVector<QPair<QString, QString>>* ratios);
  // Writes the three result charts as <dir>/norn_{confusion,markers,groups}.{png,svg}.
  bool exportCharts(const QString& dir, QStringList* written = nullptr, QString* error = nullptr) const;

  // For tests and the lead's wiring.
  QComboBox* referenceBox() const { return reference_; }
  QComboBox* labelColumnBox() const { return labelColumn_; }
  QComboBox* targetClassBox() const { return targetClass_; }
  QSpinBox* foldsBox() const { return folds_; }
  QPushButton* trainButton() const { return train_; }
  QLabel* accuracyLabel() const { return accuracy_; }
  QListWidget* targetList() const { return targets_; }
  QDoubleSpinBox* minProbBox() const { return minProb_; }
  QPushButton* applyButton() const { return apply_; }
  QPushButton* applyAtlasButton() const { return applyAtlas_; }
  QLabel* applyStatus() const { return applyStatus_; }
  QLabel* atlasSummary() const { return atlasSummary_; }
  QTabWidget* resultTabs() const { return tabs_; }
  QComboBox* confusionDatasetBox() const { return cmDataset_; }
  QComboBox* confusionTruthBox() const { return cmTruth_; }
  views::HeatmapChart* confusionChart() const { return cmChart_; }
  QLineEdit* markerGenesEdit() const { return markerGenes_; }
  QPushButton* markerButton() const { return markerRun_; }
  views::HeatmapChart* markerChart() const { return markerChart_; }
  QComboBox* groupDatasetBox() const { return grDataset_; }
  QComboBox* conditionBox() const { return grCondition_; }
  QComboBox* referenceGroupBox() const { return grReference_; }
  QLineEdit* featuresEdit() const { return grFeatures_; }
  QCheckBox* predictedOnlyBox() const { return grPredictedOnly_; }
  QPushButton* compareButton() const { return grRun_; }
  views::BoxPlotChart* groupChart() const { return grChart_; }
  QLabel* messageLabel() const { return message_; }

 public Q_SLOTS:
  void startTraining();
  void startApply();
  // One action for the whole atlas: every open embedded dataset, the reference included.
  void startApplyToAtlas();
  void updateConfusion();
  void startMarkerPanel();
  void startComparison();
  void saveClassifierAs();
  void loadClassifierFrom();

 private:
  DatasetDoc* docAt(const QComboBox* box) const;
  void fillColumns(QComboBox* box, DatasetDoc* doc, const QString& prefer) const;
  void fillClasses();
  void fillReferenceGroups();
  void showClassifier();
  void showMarkerPanel();
  void showComparison();
  void setMessage(const QString& text, bool error);
  void watch(Job* job, const QString& what);

  NornWorkflow* wf_;
  QWizardPage* refPage_ = nullptr;
  QWizardPage* targetPage_ = nullptr;
  QComboBox *reference_, *labelColumn_, *targetClass_;
  QSpinBox *folds_, *seed_;
  QPushButton *train_, *save_, *load_;
  QLabel* accuracy_;
  QListWidget* targets_;
  QDoubleSpinBox* minProb_;
  QPushButton* apply_;
  QPushButton* applyAtlas_;
  QLabel* applyStatus_;
  QLabel* atlasSummary_;
  void updateAtlasSummary();
  QTabWidget* tabs_;
  QComboBox *cmDataset_, *cmTruth_;
  views::HeatmapChart* cmChart_;
  QLineEdit* markerGenes_;
  QPushButton* markerRun_;
  views::HeatmapChart* markerChart_;
  QComboBox *grDataset_, *grCondition_, *grReference_;
  QLineEdit* grFeatures_;
  QCheckBox* grPredictedOnly_;
  QPushButton* grRun_;
  views::BoxPlotChart* grChart_;
  QLabel* message_;
  int pendingApply_ = 0;
};

}  // namespace uce::gui
