#pragma once
// The Norn workflow of the desktop app (UCE paper Fig. 4), without widgets: train a logistic
// classifier on a labelled reference's embeddings (optionally one class vs rest) with k-fold
// cross-validated accuracy, apply it to other open datasets (predicted label and confidence
// become annotation columns the map colours by), a confusion matrix against an existing obs
// column, a marker panel (log2 fold change of chosen genes in predicted cells vs the others, per
// dataset: the Fig. 4c heatmap) and group comparisons of chosen genes or gene ratios across a
// condition column with Wilcoxon p-values (Fig. 4e). Every long step is a Job of the workspace's
// JobManager; results are kept here and announced by signals on the GUI thread.
//
// The classifier, its file format and the embedding-identity check are core's
// (core/analysis/classifier.h); expression values follow core/analysis/de.h: x = log1p(count /
// library size * 1e4), ratios log2((normA + 1) / (normB + 1)), Wilcoxon rank-sum with tie
// correction and no continuity correction (= scipy's mannwhitneyu(method="asymptotic",
// use_continuity=False)), Benjamini-Hochberg over every test of one comparison run.
#include <QMap>
#include <QObject>
#include <QPair>
#include <QPointer>
#include <QString>
#include <QStringList>
#include <QVector>
#include <cstdint>
#include <vector>

#include "jobs.h"
#include "uce/core/analysis/classifier.h"
#include "workspace.h"

namespace uce::gui {

struct NornTrainSettings {
  QString labelColumn = "cell_type";  // obs column of the reference with the labels
  QString positive;                   // one class vs "rest"; "" = every label (multinomial)
  QString featureKey = "X_uce";       // obsm key of the embeddings
  int folds = 5;                      // cross-validation folds; 0 = none
  quint64 seed = 0;                   // fold shuffling
  double C = 1.0;                     // inverse L2 strength (scikit-learn's C)
  bool balanced = false;              // class_weight='balanced'
};

// Predictions for one dataset, per cell ([cells] each).
struct NornPrediction {
  QString column;                     // annotation column written: "predicted_<label column>"
  QString confidenceColumn;           // "predicted_<label column>_confidence" (probability bins)
  QStringList labels;                 // classifier labels; code labels.size() = "unassigned"
  std::vector<int32_t> code;          // index into labels, labels.size() for unassigned
  std::vector<double> probability;    // top-class probability; NaN for cells not embedded
  double minProb = 0.5;
  qint64 unassigned = 0;
  qint64 count(const QString& label) const;  // cells predicted as `label`
};

// Cells of each (truth, predicted) pair: rows = truth categories, columns = predicted labels.
struct ConfusionMatrix {
  QString truthColumn, predictedColumn;
  QStringList truth, predicted;
  std::vector<std::vector<qint64>> counts;  // [truth][predicted]
  qint64 total = 0;                         // cells with both labels
  qint64 at(const QString& truthLabel, const QString& predictedLabel) const;
};

// log2 fold change of mean normalised counts (per 1e4) of each gene in the cells predicted as
// `positive` against every other cell, per dataset (paper Fig. 4c).
struct MarkerPanel {
  QString positive;
  QStringList genes;                       // rows (as asked)
  QStringList datasets;                    // columns: "<dataset name> (<tissue>)"
  std::vector<std::vector<double>> log2fc; // [gene][dataset]; NaN = gene absent or no cells
  std::vector<qint64> cellsIn, cellsOut;   // [dataset]
  QStringList notes;                       // genes not found, datasets without predicted cells
};

// One feature (gene or ratio "A:B") in one group against the reference group.
struct GroupTest {
  QString feature, group, reference;
  qint64 nGroup = 0, nReference = 0;
  double medianGroup = 0, medianReference = 0;
  double meanGroup = 0, meanReference = 0;  // of the plotted values
  double statistic = 0, pval = 1, pvalAdj = 1;
};

// Values of chosen genes / ratios per cell, grouped by a condition column (paper Fig. 4e).
// Values: genes log1p(normalised), ratios log2((normA + 1) / (normB + 1)).
struct GroupComparison {
  QString dataset, conditionColumn, reference, cellFilter;  // cellFilter: "" = all cells
  QStringList features, groups;                             // groups[0] = the reference
  std::vector<std::vector<std::vector<double>>> values;     // [feature][group][cell]
  QVector<GroupTest> tests;                                 // feature order, then group order
  const GroupTest* test(const QString& feature, const QString& group) const;
};

class NornWorkflow : public QObject {
  Q_OBJECT
 public:
  explicit NornWorkflow(Workspace* workspace, QObject* parent = nullptr);
  Workspace* workspace() const { return ws_; }

  // Fits on the reference's labelled, embedded cells; cross-validates first. trained() after.
  Job* train(DatasetDoc* reference, const NornTrainSettings& settings);
  bool hasClassifier() const { return has_; }
  const uce::analysis::ClassifierFile& classifier() const { return classifier_; }
  // The class the marker panel / group comparison call "predicted": the one-vs-rest class,
  // else the one set here (default: the first label).
  QString positiveClass() const;
  void setPositiveClass(const QString& label);
  QString predictedColumn() const;   // "predicted_<label column>" ("" without a classifier)

  // Predicts every cell of `target` (top class below minProb = "unassigned") and writes the
  // annotation columns. Refuses embeddings made by another model than the reference's.
  Job* apply(DatasetDoc* target, double minProb = 0.5);
  bool hasPrediction(DatasetDoc* doc) const { return predictions_.contains(doc); }
  const NornPrediction* prediction(DatasetDoc* doc) const;  // null when not applied

  // Counts of the doc's predicted labels against its obs column `truthColumn`. False with
  // *error for a doc without predictions or an unknown column.
  bool confusion(DatasetDoc* doc, const QString& truthColumn, ConfusionMatrix* out, QString* error = nullptr) const;

  // Marker panel over `docs` (each with predictions); markerPanelReady() after.
  Job* markerPanel(const QVector<DatasetDoc*>& docs, const QStringList& genes);
  const MarkerPanel& lastMarkerPanel() const { return panel_; }

  // Genes and ratios (numerator, denominator) across the groups of `conditionColumn` of `doc`,
  // each group against `reference` ("" = the first group in sorted order); predictedOnly limits
  // the cells to those predicted as positiveClass(). groupComparisonReady() after.
  Job* compareGroups(DatasetDoc* doc, const QString& conditionColumn, const QString& reference,
                     const QStringList& genes, const QVector<QPair<QString, QString>>& ratios, bool predictedOnly = true);
  const GroupComparison& lastGroupComparison() const { return comparison_; }

  // Classifier files (core's JSON; written atomically).
  bool saveClassifier(const QString& path, QString* error = nullptr) const;
  bool loadClassifier(const QString& path, QString* error = nullptr);

 Q_SIGNALS:
  void classifierChanged();   // trained or loaded
  void applied(uce::gui::DatasetDoc* doc);
  void markerPanelReady();
  void groupComparisonReady();

 private:
  Job* failed(const QString& name, const QString& message);
  void setClassifier(uce::analysis::ClassifierFile c);

  Workspace* ws_;
  bool has_ = false;
  uce::analysis::ClassifierFile classifier_;
  QString positive_;
  QMap<DatasetDoc*, NornPrediction> predictions_;
  MarkerPanel panel_;
  GroupComparison comparison_;
};

// Confidence bin of a probability, as written to the confidence column.
QString confidenceBin(double probability);

}  // namespace uce::gui
