#pragma once
// The Atlas tab: build or open an atlas, compute its map, place a dataset on it (its cells
// highlighted), the centroid table (sortable; top-1 / top-3 agreement) with the dendrogram of
// the reference centroids (click a leaf: its cells are selected on the atlas map and
// centroidClicked is emitted for the window's map), and cell search with the label vote.
// The buttons open dialogs and then call the public methods below, which tests call directly.
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>
#include <vector>

#include "atlas_controller.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QStandardItemModel;
class QTableView;
class QTabWidget;

namespace uce::views {
class ScatterMap;
class DendrogramChart;
}  // namespace uce::views

namespace uce::gui {

class AtlasPanel : public QWidget {
  Q_OBJECT
 public:
  explicit AtlasPanel(AtlasController* controller, QWidget* parent = nullptr);
  AtlasController* controller() const { return controller_; }

  // What the buttons do once their dialogs are answered.
  Job* buildAtlas(const AtlasBuildRequest& request);
  Job* openAtlas(const QString& dir);
  Job* computeMap(const AtlasMapRequest& request = {});
  Job* placeDataset(const QString& path, std::shared_ptr<const uce::DenseMatrix> embedding = nullptr);
  Job* computeCentroids(const CentroidRequest& request);
  // The centroid request described by the form (query/reference sources, columns, linkage).
  CentroidRequest centroidRequestFromForm() const;
  Job* searchCells(const QString& queryPath, const std::vector<int64_t>& rows, int k = 15,
                   std::shared_ptr<const uce::DenseMatrix> embedding = nullptr);
  // Selects the reference centroid `name` as a click on its leaf would. False when unknown.
  bool selectCentroid(const QString& name);
  // The dendrogram as .png or .svg (by suffix), written atomically.
  bool exportDendrogram(const QString& path, QString* error = nullptr) const;

  uce::views::ScatterMap* map() const { return map_; }
  uce::views::DendrogramChart* dendrogram() const { return tree_; }
  QTableView* centroidTable() const { return centroidView_; }
  QStandardItemModel* centroidModel() const { return centroidModel_; }
  QTableView* searchTable() const { return searchView_; }
  QStandardItemModel* searchModel() const { return searchModel_; }
  QLabel* infoLabel() const { return info_; }
  QLabel* scoreLabel() const { return score_; }
  QLabel* voteLabel() const { return vote_; }
  QTabWidget* tabs() const { return tabs_; }
  QComboBox* colourBy() const { return colourBy_; }
  QString statusText() const;  // the last error or state line

 Q_SIGNALS:
  // A reference centroid was clicked (leaf or table row): its name ("label" or "label|group"),
  // label and group, and its cells' rows in the reference (atlas rows when the reference is the
  // atlas: the rows of AtlasData / the atlas map).
  void centroidClicked(const QString& name, const QString& label, const QString& group,
                       const QVector<qint64>& referenceRows, bool referenceIsAtlas);

 private:
  void buildUi();
  void onAtlasChanged();
  void showMap();
  void onCentroids();
  void onSearch();
  void onJobFinished(Job* job, const QString& what);
  void setStatus(const QString& text, bool error = false);
  void chooseBuild();
  void chooseOpen();
  void choosePlace();
  void chooseExport();
  void searchSelection();

  AtlasController* controller_;
  uce::views::ScatterMap* map_ = nullptr;
  uce::views::DendrogramChart* tree_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  QLabel* info_ = nullptr;
  QLabel* status_ = nullptr;
  QLabel* score_ = nullptr;
  QLabel* vote_ = nullptr;
  QComboBox* colourBy_ = nullptr;
  QPushButton* mapButton_ = nullptr;
  QPushButton* placeButton_ = nullptr;
  QStandardItemModel* centroidModel_ = nullptr;
  QTableView* centroidView_ = nullptr;
  QStandardItemModel* searchModel_ = nullptr;
  QTableView* searchView_ = nullptr;
  // Centroid form
  QLineEdit* qFiles_ = nullptr;  // "" = the atlas
  QLineEdit* qLabel_ = nullptr;
  QLineEdit* qGroup_ = nullptr;
  QLineEdit* qGroupValue_ = nullptr;
  QLineEdit* rFiles_ = nullptr;
  QLineEdit* rLabel_ = nullptr;
  QLineEdit* rGroup_ = nullptr;
  QLineEdit* rGroupValue_ = nullptr;
  QComboBox* linkage_ = nullptr;
  QSpinBox* searchK_ = nullptr;
  QString statusText_;
};

}  // namespace uce::gui
