#pragma once
// The cell map: a VTK scatter of 2-D or 3-D cell coordinates (e.g. obsm["X_umap"]) hosted in a
// Qt 6 QOpenGLWidget. VTK renders into its own framebuffer, which is blitted into the widget's
// framebuffer (as VTK's own QVTKOpenGLNativeWidget does; Debian's VTK Qt module is built for
// Qt 5, so this widget hosts vtkGenericOpenGLRenderWindow itself). Qt mouse, wheel and key
// events are forwarded to a VTK interactor: 2-D maps pan by drag and zoom about the cursor,
// 3-D maps rotate by drag. While the user drags or zooms, a seeded fixed subsample is drawn
// (level of detail) and the full set when interaction stops.
//
// Legend, colour bar and the selection outline are painted with QPainter over the VTK frame,
// so grabFramebuffer(), savePng() and saveSvg() all show them.
#include <QOpenGLWidget>
#include <QPointF>
#include <QPolygonF>
#include <QRect>
#include <QRectF>
#include <QRgb>
#include <QString>
#include <QStringList>
#include <QSurfaceFormat>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

class QPainter;
class QTimer;

namespace uce::views {

class ScatterMap : public QOpenGLWidget {
  Q_OBJECT
 public:
  // What a left-button drag does: move the camera, or select with a box or a lasso.
  enum class Mode { Navigate, BoxSelect, LassoSelect };

  struct Options {
    // Points drawn while the user drags or zooms (a seeded subsample of the visible points);
    // maps with fewer visible points are always drawn in full.
    size_t lodPoints = 200000;
    // Seed of the level-of-detail subsample and of the SVG subsample.
    uint64_t lodSeed = 1;
    // The full set is drawn this long after the last drag / wheel event.
    int lodDelayMs = 250;
    // saveSvg() writes at most this many circles (a seeded subsample of the points on screen);
    // above it the file would grow past ~15 MB and vector editors stall.
    size_t svgMaxPoints = 200000;
    // Hover finds the nearest visible point within this many logical pixels of the cursor.
    double hoverRadiusPx = 8.0;
  };

  explicit ScatterMap(QWidget* parent = nullptr);
  explicit ScatterMap(const Options& options, QWidget* parent = nullptr);
  ~ScatterMap() override;

  // The surface format VTK needs (OpenGL 3.2 core, no multisampling in the context). Set on
  // the widget by the constructor; an app may also install it with
  // QSurfaceFormat::setDefaultFormat before creating QApplication.
  static QSurfaceFormat defaultFormat();

  // Points as row-major float32 [n, dims], dims 2 (orthographic map) or 3 (rotatable). Clears
  // colouring, hidden categories and the selection, and fits the view. Returns false (and
  // leaves the map unchanged) when dims is not 2 or 3, or a coordinate is not finite; the
  // message says which row.
  bool setPoints(const float* xyz, size_t n, int dims, QString* error = nullptr);
  bool setPoints(const std::vector<float>& xyz, int dims, QString* error = nullptr);
  size_t pointCount() const { return n_; }
  // Rows with a NaN / inf coordinate (e.g. cells dropped before embedding) are kept in the
  // row numbering but never drawn, hovered, selected or exported.
  size_t unplacedCount() const { return unplaced_; }
  int dims() const { return dims_; }
  // Names shown in the hover tooltip, one per point (e.g. obs_names); default "row <i>".
  void setCellIds(QStringList ids);

  // Colour by categorical codes [n] int32 in [0, names.size()), -1 = missing (grey). Category
  // c gets palette colour c; the legend lists the categories and toggles them on click.
  bool setCategories(const std::vector<int32_t>& codes, const QStringList& names,
                     const QString& title, QString* error = nullptr);
  // Colour by a continuous value [n] float32 with viridis over [min, max] of the finite
  // values; NaN is grey. A colour bar shows the range.
  bool setContinuous(const std::vector<float>& values, const QString& title,
                     QString* error = nullptr);
  // One colour for all points (the state after setPoints).
  void clearColoring();
  bool isCategorical() const { return colorKind_ == ColorKind::Categorical; }
  bool isContinuous() const { return colorKind_ == ColorKind::Continuous; }
  QString colorTitle() const { return colorTitle_; }
  QStringList categoryNames() const { return catNames_; }
  // [min, max] of the continuous colouring.
  double colorMin() const { return vmin_; }
  double colorMax() const { return vmax_; }

  // Hidden categories are neither drawn, hovered, selected nor exported.
  void setCategoryVisible(int category, bool visible);
  bool categoryVisible(int category) const;
  size_t visiblePointCount() const { return visible_.size(); }

  // Point diameter in logical pixels (scaled by devicePixelRatio) and opacity in [0, 1].
  void setPointSize(float px);
  float pointSize() const { return pointSize_; }
  void setOpacity(float alpha);
  float opacity() const { return opacity_; }

  void setMode(Mode mode);
  Mode mode() const { return mode_; }
  // Selected rows, sorted ascending, no duplicates.
  const std::vector<uint32_t>& selection() const { return selection_; }
  // Rows out of range are dropped; emits selectionChanged when the set changes.
  void setSelection(std::vector<uint32_t> rows);
  void clearSelection() { setSelection({}); }
  // Rows whose on-screen position lies in `rect` / `lasso` (logical widget pixels), visible
  // categories only, sorted. What a box / lasso drag selects.
  std::vector<uint32_t> pointsInRect(const QRectF& rect) const;
  std::vector<uint32_t> pointsInPolygon(const QPolygonF& lasso) const;

  // Fits the camera to the points (2-D: looking down z; 3-D: a default oblique view).
  void resetView();
  // 2-D: visible map rectangle in data units (y up). 3-D: empty.
  QRectF viewRect() const;
  // Where row `row` is drawn, in logical widget pixels (y down).
  QPointF project(size_t row) const;
  // Nearest visible point within Options::hoverRadiusPx of `pos`, or -1.
  long pointAt(QPointF pos) const;
  // Tooltip text for a point: cell id, and the colour title with the point's value.
  QString tooltipFor(size_t row) const;
  // The text of the tooltip shown by the last hover (empty when none).
  QString hoverText() const { return hoverText_; }

  // Legend / colour-bar geometry in logical widget pixels (empty when not shown).
  QRect legendRect() const;
  QRect legendEntryRect(int category) const;
  QRect colorBarRect() const;

  // Current map with legend / colour bar, written atomically. False + message on failure.
  bool savePng(const QString& path, QString* error = nullptr);
  // SVG text: one <circle> per visible on-screen point (a seeded subsample of
  // Options::svgMaxPoints when there are more), legend swatches as <rect>, colour bar as a
  // gradient. Written atomically.
  bool saveSvg(const QString& path, QString* error = nullptr);

  // Wall time of the last VTK frame (render + glFinish), in milliseconds; 0 before the first.
  double lastFrameMs() const { return lastFrameMs_; }
  // Points drawn by the last frame (the LOD subsample while interacting).
  size_t lastFramePoints() const { return lastFramePoints_; }
  bool lodActive() const { return lodActive_; }
  const Options& options() const { return options_; }

  // Palette colour of category c (fixed 20-colour palette, repeating), the viridis colour at
  // t in [0, 1], and the grey used for missing codes / NaN.
  static QRgb categoryColor(int c);
  static QRgb viridis(double t);
  static constexpr QRgb kMissingColor = 0xFFC8C8C8u;
  static constexpr QRgb kBackground = 0xFFFFFFFFu;
  static constexpr QRgb kUniformColor = 0xFF4E79A7u;

 Q_SIGNALS:
  void selectionChanged();
  void categoryVisibilityChanged(int category, bool visible);
  // The camera moved (pan, zoom, rotate, reset).
  void viewChanged();
  // A frame (full or LOD) was rendered.
  void frameRendered(double ms);

 protected:
  void initializeGL() override;
  void paintGL() override;
  bool event(QEvent* e) override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void mouseDoubleClickEvent(QMouseEvent* e) override;
  void wheelEvent(QWheelEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;
  void keyReleaseEvent(QKeyEvent* e) override;
  void leaveEvent(QEvent* e) override;

 private:
  enum class ColorKind { Uniform, Categorical, Continuous };
  struct Vtk;     // VTK objects (scatter_map_vtk.h); keeps VTK out of this header
  struct Hover;   // screen-space grid for hover lookups

  // --- GL hosting (scatter_map_gl.cpp)
  void createVtk();
  void updateVtkSize();
  void requestRender();             // next paintGL re-renders the VTK scene
  void renderNow();                 // render the VTK scene now (event-driven interaction)
  void blitVtkFrame();
  bool forwardToVtk(QEvent* e);     // Qt event -> VTK interactor event
  void onVtkFrame();
  void handleWindowEvent(unsigned long vtkEventId, void* callData);
  void onCameraChanged();
  void cleanupGL();

  // --- scene (scatter_map.cpp)
  void rebuildColors();
  void rebuildVisible();
  void rebuildLod();
  void rebuildSelectionLayer();
  void setLod(bool on);
  void beginInteraction();
  void endInteractionSoon();
  void fitCamera();
  struct Projector;                 // world -> logical widget pixels for the current camera
  Projector projector() const;
  void setupScene();
  void updateHover(QPointF pos, QPoint globalPos);
  void finishSelection(bool add);

  // --- overlays and export (scatter_map_overlay.cpp)
  void paintOverlay(QPainter& p) const;
  int legendHitTest(QPointF pos) const;
  QString svgText() const;

  Options options_;
  std::unique_ptr<Vtk> vtk_;
  std::unique_ptr<Hover> hover_;
  QTimer* lodTimer_ = nullptr;

  size_t n_ = 0;
  int dims_ = 2;
  std::vector<float> xyz_;          // [n, 3] float32; z = 0 for 2-D maps
  std::vector<char> placed_;        // [n] coordinate finite
  size_t unplaced_ = 0;
  uint64_t sceneVersion_ = 0;       // bumps when the drawn rows change
  QStringList cellIds_;
  ColorKind colorKind_ = ColorKind::Uniform;
  QString colorTitle_;
  std::vector<int32_t> codes_;      // [n] categorical codes
  QStringList catNames_;
  std::vector<char> catVisible_;    // [categories]
  std::vector<float> values_;       // [n] continuous values
  double vmin_ = 0.0, vmax_ = 1.0;
  std::vector<uint32_t> visible_;   // rows drawn (not in a hidden category), ascending
  std::vector<uint32_t> lodOrder_;  // seeded permutation prefix used for the LOD subsample
  std::vector<uint32_t> selection_;
  float pointSize_ = 3.0f;
  float opacity_ = 1.0f;
  Mode mode_ = Mode::Navigate;

  bool lodActive_ = false;
  bool vtkDragging_ = false;
  bool selecting_ = false;
  QPolygonF selectPath_;            // box: [press, current]; lasso: the path
  QString hoverText_;
  double lastFrameMs_ = 0.0;
  size_t lastFramePoints_ = 0;
  double wheelAccum_ = 0.0;
  unsigned long lastCameraMTime_ = 0;
};

}  // namespace uce::views
