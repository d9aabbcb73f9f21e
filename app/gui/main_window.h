#pragma once
// The desktop app's main window: menu, the cell map, and a dataset summary panel. Loading runs
// on a worker thread; the GUI thread never waits on file I/O.
#include <QMainWindow>
#include <QString>
#include <memory>

class QLabel;
class QPlainTextEdit;
class QProgressBar;

namespace uce::views { class MapView; }

namespace uce::gui {

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  uce::views::MapView* map() const { return map_; }
  QString summaryText() const;
  QString lastError() const { return lastError_; }
  QString currentFile() const { return currentFile_; }
  bool isLoading() const { return loading_; }
  // Folder of the bundled demo atlas (generated at build time by `uce synth`).
  static QString demoDir();

 public Q_SLOTS:
  void openFile(const QString& path);  // asynchronous; emits loaded() or failed()
  void openDemo();

 Q_SIGNALS:
  void loaded(const QString& path);
  void failed(const QString& message);

 private Q_SLOTS:
  void chooseFile();
  void about();

 public:
  struct LoadResult;  // produced on the worker thread

 private:
  void showResult(const std::shared_ptr<LoadResult>& r);

  uce::views::MapView* map_ = nullptr;
  QPlainTextEdit* summary_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* status_ = nullptr;
  QString lastError_;
  QString currentFile_;
  bool loading_ = false;
};

}  // namespace uce::gui
