#pragma once
// The app's input dialogs. Both are shown with open() (window-modal, non-blocking): the caller
// connects to accepted() and reads the values, so nothing waits in a nested event loop and
// tests fill them in like a user would.
#include <QDialog>
#include <QString>
#include <QStringList>

#include "workspace.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QSpinBox;
class QDialogButtonBox;

namespace uce::gui {

// Embed...: model weights and asset folder (remembered in the settings), species and gene
// column (guessed from the data, editable), device, batch size; advanced: sentence sample size
// and pad length (the release's 1024 / 1536 by default).
class EmbedDialog : public QDialog {
  Q_OBJECT
 public:
  explicit EmbedDialog(QWidget* parent = nullptr);

  // Fills the fields: model / assets from the settings (or the demo's), species / gene column
  // from the dataset's guesses, the gene-column choices from var's text columns.
  void setDefaults(const QString& modelFile, const QString& assetsDir, const QString& device, int batchSize,
                   const DatasetDoc& doc);
  EmbedRequest request() const;
  // Whether to compute the map and the clusters once the embedding is done (default on).
  bool thenMapAndCluster() const;
  // "" when the fields are usable, else what to fix (also shown in the dialog).
  QString problem() const;
  // Devices offered: "cpu", and "cuda" when LibTorch sees a GPU.
  static QStringList availableDevices();

  QLineEdit* modelEdit() const { return model_; }
  QLineEdit* assetsEdit() const { return assets_; }
  QComboBox* speciesBox() const { return species_; }
  QComboBox* geneColumnBox() const { return geneColumn_; }
  QComboBox* deviceBox() const { return device_; }
  QSpinBox* batchSizeBox() const { return batch_; }
  QSpinBox* sampleSizeBox() const { return sample_; }
  QSpinBox* padLengthBox() const { return pad_; }
  QCheckBox* thenMapBox() const { return thenMap_; }
  QDialogButtonBox* buttons() const { return buttons_; }

 public Q_SLOTS:
  void accept() override;  // refuses (and says why) while problem() is not empty

 private:
  QLineEdit* model_;
  QLineEdit* assets_;
  QComboBox* species_;
  QComboBox* geneColumn_;
  QComboBox* device_;
  QSpinBox* batch_;
  QSpinBox* sample_;
  QSpinBox* pad_;
  QCheckBox* thenMap_;
  QLabel* guessNote_;
  QLabel* problemNote_;
  QDialogButtonBox* buttons_;
};

// Label selection...: an annotation column (new or existing) and the label for the selected cells.
class LabelDialog : public QDialog {
  Q_OBJECT
 public:
  explicit LabelDialog(QWidget* parent = nullptr);
  void setup(const QStringList& annotationColumns, qint64 selectedCells);
  QString column() const;
  QString label() const;
  QComboBox* columnBox() const { return column_; }
  QLineEdit* labelEdit() const { return label_; }
  QDialogButtonBox* buttons() const { return buttons_; }

 private:
  QComboBox* column_;
  QLineEdit* label_;
  QLabel* note_;
  QDialogButtonBox* buttons_;
};

}  // namespace uce::gui
