// ScatterMap: data, colouring, visibility, level of detail, camera, selection and hover.
// GL hosting and event forwarding live in scatter_map_gl.cpp, overlays and export in
// scatter_map_overlay.cpp.
#include <QKeyEvent>
#include <QMouseEvent>
#include <QTimer>
#include <QToolTip>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <vtkCamera.h>
#include <vtkIdTypeArray.h>
#include <vtkMatrix4x4.h>
#include <vtkPointData.h>
#include <vtkProperty.h>

#include "scatter_map_vtk.h"

namespace uce::views {

void PointLayer::setRows(const std::vector<uint32_t>& rows) {
  const vtkIdType m = vtkIdType(rows.size());
  vtkNew<vtkIdTypeArray> offsets;
  vtkNew<vtkIdTypeArray> conn;
  offsets->SetNumberOfValues(m + 1);
  conn->SetNumberOfValues(m);
  vtkIdType* o = offsets->GetPointer(0);
  vtkIdType* c = conn->GetPointer(0);
  for (vtkIdType i = 0; i < m; ++i) {
    o[i] = i;
    c[i] = rows[size_t(i)];
  }
  o[m] = m;
  vtkNew<vtkCellArray> verts;
  verts->SetData(offsets, conn);
  poly->SetVerts(verts);
  poly->Modified();
  count = rows.size();
}

ScatterMap::ScatterMap(QWidget* parent) : ScatterMap(Options{}, parent) {}

ScatterMap::ScatterMap(const Options& options, QWidget* parent)
    : QOpenGLWidget(parent), options_(options), hover_(std::make_unique<Hover>()) {
  setFormat(defaultFormat());
  setFocusPolicy(Qt::StrongFocus);
  setUpdateBehavior(QOpenGLWidget::NoPartialUpdate);
  setMouseTracking(true);
  setMinimumSize(160, 120);
  createVtk();
  setupScene();
  // `resized` also fires when the window moves to a screen with another devicePixelRatio.
  connect(this, &QOpenGLWidget::resized, this, &ScatterMap::updateVtkSize);
  lodTimer_ = new QTimer(this);
  lodTimer_->setSingleShot(true);
  connect(lodTimer_, &QTimer::timeout, this, [this] {
    setLod(false);
    requestRender();
  });
}

ScatterMap::~ScatterMap() {
  if (vtk_) {
    for (unsigned long id : vtk_->windowObservers) vtk_->window->RemoveObserver(id);
    vtk_->windowObservers.clear();
  }
  cleanupGL();
}

void ScatterMap::setupScene() {
  Vtk& v = *vtk_;
  v.coords->SetNumberOfComponents(3);
  v.points->SetData(v.coords);
  v.colors->SetNumberOfComponents(4);
  v.colors->SetName("rgba");
  for (PointLayer* layer : {&v.full, &v.lod, &v.selection}) {
    layer->poly->SetPoints(v.points);
    layer->poly->GetPointData()->SetScalars(v.colors);
    layer->mapper->SetInputData(layer->poly);
    layer->mapper->SetScalarModeToUsePointData();
    layer->mapper->SetColorModeToDirectScalars();
    layer->mapper->ScalarVisibilityOn();
    layer->mapper->StaticOn();  // no pipeline: inputs change only through setRows / Modified
    layer->actor->SetMapper(layer->mapper);
    layer->actor->GetProperty()->LightingOff();
    layer->actor->GetProperty()->SetPointSize(pointSize_);
  }
  v.haloMapper->SetInputData(v.selection.poly);
  v.haloMapper->ScalarVisibilityOff();
  v.haloMapper->StaticOn();
  v.selectionHalo->SetMapper(v.haloMapper);
  v.selectionHalo->GetProperty()->LightingOff();
  v.selectionHalo->GetProperty()->SetColor(0.1, 0.1, 0.1);
  v.selectionHalo->GetProperty()->SetPointSize(pointSize_ + 4.0f);
  v.lod.actor->VisibilityOff();
  // Drawn in this order; at equal depth the later one wins (depth test GL_LEQUAL).
  v.renderer->AddActor(v.full.actor);
  v.renderer->AddActor(v.lod.actor);
  v.renderer->AddActor(v.selectionHalo);
  v.renderer->AddActor(v.selection.actor);
  fitCamera();
}

// ---------------------------------------------------------------- data and colours

bool ScatterMap::setPoints(const std::vector<float>& xyz, int dims, QString* error) {
  if (dims != 2 && dims != 3) {
    if (error) *error = QString("map coordinates need 2 or 3 columns, got %1").arg(dims);
    return false;
  }
  if (xyz.size() % size_t(dims) != 0) {
    if (error)
      *error = QString("%1 coordinate values do not split into rows of %2")
                   .arg(xyz.size())
                   .arg(dims);
    return false;
  }
  return setPoints(xyz.data(), xyz.size() / size_t(dims), dims, error);
}

bool ScatterMap::setPoints(const float* xyz, size_t n, int dims, QString* error) {
  if (dims != 2 && dims != 3) {
    if (error) *error = QString("map coordinates need 2 or 3 columns, got %1").arg(dims);
    return false;
  }
  if (n > 0 && !xyz) {
    if (error) *error = "no coordinates given";
    return false;
  }
  if (n >= std::numeric_limits<uint32_t>::max()) {
    if (error) *error = QString("%1 cells are more than the map can hold").arg(n);
    return false;
  }
  std::vector<float> p(n * 3, 0.0f);
  std::vector<char> placed(n, 1);
  size_t unplaced = 0;
  for (size_t i = 0; i < n; ++i) {
    bool finite = true;
    for (int d = 0; d < dims; ++d) finite = finite && std::isfinite(xyz[i * size_t(dims) + d]);
    if (!finite) {
      placed[i] = 0;
      ++unplaced;
      continue;
    }
    for (int d = 0; d < dims; ++d) p[i * 3 + size_t(d)] = xyz[i * size_t(dims) + d];
  }
  Vtk& v = *vtk_;
  n_ = n;
  dims_ = dims;
  xyz_ = std::move(p);
  placed_ = std::move(placed);
  unplaced_ = unplaced;
  // VTK reads the coordinates in place (save = 1: the array does not free them).
  v.coords->SetArray(xyz_.data(), vtkIdType(xyz_.size()), 1);
  v.coords->Modified();
  v.points->Modified();
  v.colors->SetNumberOfTuples(vtkIdType(n));
  if (cellIds_.size() != qsizetype(n)) cellIds_.clear();
  colorKind_ = ColorKind::Uniform;
  colorTitle_.clear();
  codes_.clear();
  catNames_.clear();
  catVisible_.clear();
  values_.clear();
  vmin_ = 0.0;
  vmax_ = 1.0;

  // Seeded permutation: its prefix (restricted to visible rows) is the LOD subsample and the
  // SVG subsample.
  lodOrder_.clear();
  if (n > std::min(options_.lodPoints, options_.svgMaxPoints)) {
    lodOrder_.resize(n);
    std::iota(lodOrder_.begin(), lodOrder_.end(), 0u);
    std::mt19937_64 rng(options_.lodSeed);
    for (size_t i = n - 1; i > 0; --i) {
      std::uniform_int_distribution<size_t> pick(0, i);
      std::swap(lodOrder_[i], lodOrder_[pick(rng)]);
    }
  }
  const bool hadSelection = !selection_.empty();
  selection_.clear();
  v.interactor->SetInteractorStyle(dims == 3 ? static_cast<vtkInteractorStyle*>(v.style3d)
                                             : static_cast<vtkInteractorStyle*>(v.style2d));
  setLod(false);
  rebuildColors();
  rebuildVisible();
  fitCamera();
  requestRender();
  if (hadSelection) Q_EMIT selectionChanged();
  return true;
}

void ScatterMap::setCellIds(QStringList ids) {
  cellIds_ = ids.size() == qsizetype(n_) ? std::move(ids) : QStringList();
}

bool ScatterMap::setCategories(const std::vector<int32_t>& codes, const QStringList& names,
                               const QString& title, QString* error) {
  if (codes.size() != n_) {
    if (error)
      *error = QString("'%1' has %2 values but the map has %3 cells")
                   .arg(title)
                   .arg(codes.size())
                   .arg(n_);
    return false;
  }
  for (size_t i = 0; i < codes.size(); ++i)
    if (codes[i] < -1 || codes[i] >= names.size()) {
      if (error)
        *error = QString("'%1': category code %2 of row %3 is outside 0..%4")
                     .arg(title)
                     .arg(codes[i])
                     .arg(i)
                     .arg(names.size() - 1);
      return false;
    }
  colorKind_ = ColorKind::Categorical;
  colorTitle_ = title;
  codes_ = codes;
  catNames_ = names;
  catVisible_.assign(size_t(names.size()), 1);
  values_.clear();
  rebuildColors();
  rebuildVisible();
  return true;
}

bool ScatterMap::setContinuous(const std::vector<float>& values, const QString& title,
                               QString* error) {
  if (values.size() != n_) {
    if (error)
      *error = QString("'%1' has %2 values but the map has %3 cells")
                   .arg(title)
                   .arg(values.size())
                   .arg(n_);
    return false;
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (float x : values)
    if (std::isfinite(x)) {
      lo = std::min(lo, double(x));
      hi = std::max(hi, double(x));
    }
  if (!(lo <= hi)) lo = 0.0, hi = 1.0;  // every value missing
  colorKind_ = ColorKind::Continuous;
  colorTitle_ = title;
  values_ = values;
  vmin_ = lo;
  vmax_ = hi;
  codes_.clear();
  catNames_.clear();
  catVisible_.clear();
  rebuildColors();
  rebuildVisible();
  return true;
}

void ScatterMap::clearColoring() {
  colorKind_ = ColorKind::Uniform;
  colorTitle_.clear();
  codes_.clear();
  catNames_.clear();
  catVisible_.clear();
  values_.clear();
  rebuildColors();
  rebuildVisible();
}

void ScatterMap::rebuildColors() {
  unsigned char* out = vtk_->colors->WritePointer(0, vtkIdType(n_ * 4));
  auto put = [out](size_t i, QRgb c) {
    out[i * 4 + 0] = uchar(qRed(c));
    out[i * 4 + 1] = uchar(qGreen(c));
    out[i * 4 + 2] = uchar(qBlue(c));
    out[i * 4 + 3] = 255;
  };
  if (colorKind_ == ColorKind::Categorical) {
    std::vector<QRgb> lut(size_t(catNames_.size()));
    for (size_t c = 0; c < lut.size(); ++c) lut[c] = categoryColor(int(c));
    for (size_t i = 0; i < n_; ++i) put(i, codes_[i] < 0 ? kMissingColor : lut[size_t(codes_[i])]);
  } else if (colorKind_ == ColorKind::Continuous) {
    std::vector<QRgb> lut(1024);
    for (size_t k = 0; k < lut.size(); ++k) lut[k] = viridis(double(k) / double(lut.size() - 1));
    const double span = vmax_ > vmin_ ? vmax_ - vmin_ : 1.0;
    for (size_t i = 0; i < n_; ++i) {
      const float x = values_[i];
      if (!std::isfinite(x)) {
        put(i, kMissingColor);
        continue;
      }
      const double t = std::clamp((double(x) - vmin_) / span, 0.0, 1.0);
      put(i, lut[size_t(std::lround(t * double(lut.size() - 1)))]);
    }
  } else {
    for (size_t i = 0; i < n_; ++i) put(i, kUniformColor);
  }
  vtk_->colors->Modified();
  requestRender();
}

void ScatterMap::setCategoryVisible(int category, bool visible) {
  if (category < 0 || size_t(category) >= catVisible_.size()) return;
  if (bool(catVisible_[size_t(category)]) == visible) return;
  catVisible_[size_t(category)] = visible ? 1 : 0;
  rebuildVisible();
  Q_EMIT categoryVisibilityChanged(category, visible);
}

bool ScatterMap::categoryVisible(int category) const {
  return category >= 0 && size_t(category) < catVisible_.size() && catVisible_[size_t(category)];
}

void ScatterMap::rebuildVisible() {
  visible_.clear();
  visible_.reserve(n_);
  const bool cat = colorKind_ == ColorKind::Categorical;
  for (size_t i = 0; i < n_; ++i) {
    if (!placed_[i]) continue;
    if (cat && codes_[i] >= 0 && !catVisible_[size_t(codes_[i])]) continue;
    visible_.push_back(uint32_t(i));
  }
  ++sceneVersion_;
  vtk_->full.setRows(visible_);
  rebuildLod();
  rebuildSelectionLayer();
  requestRender();
}

void ScatterMap::rebuildLod() {
  std::vector<uint32_t> rows;
  if (visible_.size() > options_.lodPoints && !lodOrder_.empty()) {
    const bool cat = colorKind_ == ColorKind::Categorical;
    rows.reserve(options_.lodPoints);
    for (uint32_t r : lodOrder_) {
      if (!placed_[r]) continue;
      if (cat && codes_[r] >= 0 && !catVisible_[size_t(codes_[r])]) continue;
      rows.push_back(r);
      if (rows.size() == options_.lodPoints) break;
    }
    std::sort(rows.begin(), rows.end());
  }
  vtk_->lod.setRows(rows);
  if (rows.empty()) setLod(false);
}

void ScatterMap::rebuildSelectionLayer() {
  std::vector<uint32_t> rows;
  rows.reserve(selection_.size());
  std::set_intersection(selection_.begin(), selection_.end(), visible_.begin(), visible_.end(),
                        std::back_inserter(rows));
  vtk_->selection.setRows(rows);
  requestRender();
}

void ScatterMap::setPointSize(float px) {
  if (!std::isfinite(px)) return;
  pointSize_ = std::clamp(px, 1.0f, 64.0f);
  updateVtkSize();
}

void ScatterMap::setOpacity(float alpha) {
  if (!std::isfinite(alpha)) return;
  opacity_ = std::clamp(alpha, 0.02f, 1.0f);
  vtk_->full.actor->GetProperty()->SetOpacity(opacity_);
  vtk_->lod.actor->GetProperty()->SetOpacity(opacity_);
  requestRender();
}

// ---------------------------------------------------------------- level of detail

void ScatterMap::setLod(bool on) {
  on = on && vtk_->lod.count > 0;
  if (on == lodActive_) return;
  lodActive_ = on;
  vtk_->full.actor->SetVisibility(!on);
  vtk_->lod.actor->SetVisibility(on);
}

void ScatterMap::beginInteraction() {
  lodTimer_->stop();
  if (visible_.size() > options_.lodPoints) setLod(true);
}

void ScatterMap::endInteractionSoon() {
  if (lodActive_) lodTimer_->start(options_.lodDelayMs);
}

// ---------------------------------------------------------------- camera

void ScatterMap::fitCamera() {
  Vtk& v = *vtk_;
  vtkCamera* cam = v.renderer->GetActiveCamera();
  double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
  bool any = false;
  for (size_t i = 0; i < n_; ++i) {
    if (!placed_[i]) continue;
    const float* p = &xyz_[i * 3];
    for (int d = 0; d < 3; ++d) {
      lo[d] = any ? std::min(lo[d], double(p[d])) : p[d];
      hi[d] = any ? std::max(hi[d], double(p[d])) : p[d];
    }
    any = true;
  }
  if (!any) lo[0] = lo[1] = -1, hi[0] = hi[1] = 1;
  const double cx = (lo[0] + hi[0]) / 2, cy = (lo[1] + hi[1]) / 2, cz = (lo[2] + hi[2]) / 2;
  const double ext = std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2], 1e-6});
  if (dims_ == 2) {
    const double aspect = height() > 0 ? double(width()) / height() : 1.0;
    double half = std::max((hi[1] - lo[1]) / 2, (hi[0] - lo[0]) / 2 / aspect);
    if (half <= 0) half = 1.0;
    cam->ParallelProjectionOn();
    cam->SetViewUp(0, 1, 0);
    cam->SetFocalPoint(cx, cy, 0);
    cam->SetPosition(cx, cy, 10 * ext);
    cam->SetParallelScale(half * 1.06);
    v.renderer->ResetCameraClippingRange(lo[0], hi[0], lo[1], hi[1], -ext, ext);
  } else {
    cam->ParallelProjectionOff();
    cam->SetFocalPoint(cx, cy, cz);
    cam->SetPosition(cx + 0.6 * ext, cy - 1.0 * ext, cz + 0.8 * ext);
    cam->SetViewUp(0, 0, 1);
    double b[6] = {lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]};
    v.renderer->ResetCamera(b);
  }
  hover_->version = ~uint64_t(0);
}

void ScatterMap::resetView() {
  fitCamera();
  requestRender();
}

void ScatterMap::onCameraChanged() {
  Q_EMIT viewChanged();
}

QRectF ScatterMap::viewRect() const {
  if (dims_ != 2) return {};
  vtkCamera* cam = vtk_->renderer->GetActiveCamera();
  const double aspect = height() > 0 ? double(width()) / height() : 1.0;
  const double s = cam->GetParallelScale();
  double f[3];
  cam->GetFocalPoint(f);
  return QRectF(f[0] - s * aspect, f[1] - s, 2 * s * aspect, 2 * s);
}

ScatterMap::Projector ScatterMap::projector() const {
  Projector pr;
  pr.width = width();
  pr.height = height();
  if (pr.width <= 0 || pr.height <= 0) return pr;
  vtkCamera* cam = vtk_->renderer->GetActiveCamera();
  vtkMatrix4x4* m = cam->GetCompositeProjectionTransformMatrix(pr.width / pr.height, -1, 1);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) pr.m[r * 4 + c] = m->GetElement(r, c);
  pr.ok = true;
  return pr;
}

QPointF ScatterMap::project(size_t row) const {
  if (row >= n_) return {};
  const Projector pr = projector();
  double x = 0, y = 0;
  if (!pr.ok || !pr(&xyz_[row * 3], &x, &y)) return {-1e9, -1e9};
  return {x, y};
}

// ---------------------------------------------------------------- selection

std::vector<uint32_t> ScatterMap::pointsInRect(const QRectF& rectIn) const {
  std::vector<uint32_t> out;
  const QRectF rect = rectIn.normalized();
  const Projector pr = projector();
  if (!pr.ok) return out;
  double x, y;
  for (uint32_t r : visible_)
    if (pr(&xyz_[size_t(r) * 3], &x, &y) && x >= rect.left() && x <= rect.right() &&
        y >= rect.top() && y <= rect.bottom())
      out.push_back(r);
  return out;
}

std::vector<uint32_t> ScatterMap::pointsInPolygon(const QPolygonF& lasso) const {
  std::vector<uint32_t> out;
  if (lasso.size() < 3) return out;
  const QRectF box = lasso.boundingRect();
  const Projector pr = projector();
  if (!pr.ok) return out;
  const int m = int(lasso.size());
  double x, y;
  for (uint32_t r : visible_) {
    if (!pr(&xyz_[size_t(r) * 3], &x, &y)) continue;
    if (x < box.left() || x > box.right() || y < box.top() || y > box.bottom()) continue;
    // Even-odd rule: count edge crossings of a ray to +x (the polygon closes itself).
    bool inside = false;
    for (int i = 0, j = m - 1; i < m; j = i++) {
      const QPointF& a = lasso[i];
      const QPointF& b = lasso[j];
      if ((a.y() > y) != (b.y() > y) &&
          x < (b.x() - a.x()) * (y - a.y()) / (b.y() - a.y()) + a.x())
        inside = !inside;
    }
    if (inside) out.push_back(r);
  }
  return out;
}

void ScatterMap::setSelection(std::vector<uint32_t> rows) {
  rows.erase(std::remove_if(rows.begin(), rows.end(), [this](uint32_t r) { return r >= n_; }),
             rows.end());
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  if (rows == selection_) return;
  selection_ = std::move(rows);
  rebuildSelectionLayer();
  Q_EMIT selectionChanged();
}

void ScatterMap::finishSelection(bool add) {
  std::vector<uint32_t> rows;
  if (mode_ == Mode::BoxSelect && selectPath_.size() >= 2) {
    const QRectF rect = QRectF(selectPath_[0], selectPath_[1]).normalized();
    if (rect.width() >= 3 || rect.height() >= 3) rows = pointsInRect(rect);
  } else if (mode_ == Mode::LassoSelect) {
    rows = pointsInPolygon(selectPath_);
  }
  selectPath_.clear();
  if (add) {
    std::vector<uint32_t> merged;
    std::set_union(selection_.begin(), selection_.end(), rows.begin(), rows.end(),
                   std::back_inserter(merged));
    rows = std::move(merged);
  }
  setSelection(std::move(rows));
  update();
}

void ScatterMap::setMode(Mode mode) {
  mode_ = mode;
  selecting_ = false;
  selectPath_.clear();
  setCursor(mode == Mode::Navigate ? Qt::ArrowCursor : Qt::CrossCursor);
  update();
}

// ---------------------------------------------------------------- hover

long ScatterMap::pointAt(QPointF pos) const {
  Hover& h = *hover_;
  const unsigned long camTime = vtk_->renderer->GetActiveCamera()->GetMTime();
  if (h.version != sceneVersion_ || h.cameraTime != camTime || h.width != width() ||
      h.height != height()) {
    const Projector pr = projector();
    h.version = sceneVersion_;
    h.cameraTime = vtk_->renderer->GetActiveCamera()->GetMTime();
    h.width = width();
    h.height = height();
    h.gw = std::max(1, int(std::ceil(h.width / h.cell)));
    h.gh = std::max(1, int(std::ceil(h.height / h.cell)));
    const size_t cells = size_t(h.gw) * size_t(h.gh);
    std::vector<uint32_t> cellOf;
    std::vector<float> xs, ys;
    std::vector<uint32_t> rows;
    cellOf.reserve(visible_.size());
    xs.reserve(visible_.size());
    ys.reserve(visible_.size());
    rows.reserve(visible_.size());
    h.start.assign(cells + 1, 0);
    double x, y;
    if (pr.ok)
      for (uint32_t r : visible_) {
        if (!pr(&xyz_[size_t(r) * 3], &x, &y)) continue;
        if (x < 0 || y < 0 || x >= h.width || y >= h.height) continue;
        const uint32_t c = uint32_t(int(y / h.cell) * h.gw + int(x / h.cell));
        cellOf.push_back(c);
        xs.push_back(float(x));
        ys.push_back(float(y));
        rows.push_back(r);
        ++h.start[c + 1];
      }
    for (size_t c = 0; c < cells; ++c) h.start[c + 1] += h.start[c];
    h.rows.resize(rows.size());
    h.sx.resize(rows.size());
    h.sy.resize(rows.size());
    std::vector<uint32_t> fill(h.start.begin(), h.start.end() - 1);
    for (size_t k = 0; k < rows.size(); ++k) {
      const uint32_t at = fill[cellOf[k]]++;
      h.rows[at] = rows[k];
      h.sx[at] = xs[k];
      h.sy[at] = ys[k];
    }
  }
  const double radius = std::max(options_.hoverRadiusPx, double(pointSize_) / 2 + 1);
  const int c0 = std::max(0, int((pos.x() - radius) / h.cell));
  const int c1 = std::min(h.gw - 1, int((pos.x() + radius) / h.cell));
  const int r0 = std::max(0, int((pos.y() - radius) / h.cell));
  const int r1 = std::min(h.gh - 1, int((pos.y() + radius) / h.cell));
  long best = -1;
  double bestD = radius * radius;
  for (int gy = r0; gy <= r1; ++gy)
    for (int gx = c0; gx <= c1; ++gx) {
      const size_t c = size_t(gy) * size_t(h.gw) + size_t(gx);
      for (uint32_t k = h.start[c]; k < h.start[c + 1]; ++k) {
        const double dx = h.sx[k] - pos.x(), dy = h.sy[k] - pos.y();
        const double d = dx * dx + dy * dy;
        // Ties go to the later row: it is drawn on top.
        if (d < bestD || (d == bestD && best >= 0 && long(h.rows[k]) > best)) {
          bestD = d;
          best = long(h.rows[k]);
        }
      }
    }
  return best;
}

QString ScatterMap::tooltipFor(size_t row) const {
  if (row >= n_) return {};
  QString text = cellIds_.isEmpty() ? QString("row %1").arg(row) : cellIds_[qsizetype(row)];
  if (colorKind_ == ColorKind::Categorical) {
    const int c = codes_[row];
    text += QString("\n%1: %2").arg(colorTitle_, c < 0 ? QString("(missing)") : catNames_[c]);
  } else if (colorKind_ == ColorKind::Continuous) {
    const float x = values_[row];
    text += QString("\n%1: %2").arg(colorTitle_,
                                    std::isfinite(x) ? QString::number(x, 'g', 4)
                                                     : QString("NaN (missing)"));
  }
  return text;
}

void ScatterMap::updateHover(QPointF pos, QPoint globalPos) {
  const long row = pointAt(pos);
  const QString text = row >= 0 ? tooltipFor(size_t(row)) : QString();
  if (text == hoverText_) return;
  hoverText_ = text;
  if (text.isEmpty())
    QToolTip::hideText();
  else
    QToolTip::showText(globalPos, text, this);
}

// ---------------------------------------------------------------- events

bool ScatterMap::event(QEvent* e) {
  if (e->type() == QEvent::Enter) forwardToVtk(e);
  return QOpenGLWidget::event(e);
}

void ScatterMap::leaveEvent(QEvent* e) {
  forwardToVtk(e);
  hoverText_.clear();
  QOpenGLWidget::leaveEvent(e);
}

void ScatterMap::mousePressEvent(QMouseEvent* e) {
  const QPointF pos = e->position();
  if (e->button() == Qt::LeftButton) {
    const int c = legendHitTest(pos);
    if (c >= 0) {
      setCategoryVisible(c, !categoryVisible(c));
      e->accept();
      return;
    }
    if (mode_ != Mode::Navigate) {
      selecting_ = true;
      selectPath_ = QPolygonF{pos};
      if (mode_ == Mode::BoxSelect) selectPath_ << pos;
      e->accept();
      update();
      return;
    }
  }
  vtkDragging_ = true;
  QToolTip::hideText();
  hoverText_.clear();
  beginInteraction();
  forwardToVtk(e);
  e->accept();
}

void ScatterMap::mouseMoveEvent(QMouseEvent* e) {
  const QPointF pos = e->position();
  if (selecting_) {
    if (mode_ == Mode::BoxSelect)
      selectPath_[1] = pos;
    else if (QLineF(selectPath_.back(), pos).length() >= 2.0)
      selectPath_ << pos;
    update();
    return;
  }
  forwardToVtk(e);
  if (!vtkDragging_) updateHover(pos, e->globalPosition().toPoint());
}

void ScatterMap::mouseReleaseEvent(QMouseEvent* e) {
  if (selecting_ && e->button() == Qt::LeftButton) {
    selecting_ = false;
    if (mode_ == Mode::BoxSelect) selectPath_[1] = e->position();
    finishSelection(e->modifiers().testFlag(Qt::ShiftModifier));
    return;
  }
  forwardToVtk(e);
  if (vtkDragging_ && e->buttons() == Qt::NoButton) {
    vtkDragging_ = false;
    endInteractionSoon();
  }
}

void ScatterMap::mouseDoubleClickEvent(QMouseEvent* e) {
  if (mode_ != Mode::Navigate && e->button() == Qt::LeftButton) return;
  forwardToVtk(e);
}

void ScatterMap::wheelEvent(QWheelEvent* e) {
  QToolTip::hideText();
  hoverText_.clear();
  beginInteraction();
  forwardToVtk(e);
  endInteractionSoon();
  e->accept();
}

void ScatterMap::keyPressEvent(QKeyEvent* e) {
  if (e->key() == Qt::Key_Escape) {
    if (selecting_) {
      selecting_ = false;
      selectPath_.clear();
      update();
    } else if (!selection_.empty()) {
      clearSelection();
    } else {
      setMode(Mode::Navigate);
    }
    return;
  }
  forwardToVtk(e);  // 'r' resets the view (the interactor styles' OnChar)
}

void ScatterMap::keyReleaseEvent(QKeyEvent* e) { forwardToVtk(e); }

}  // namespace uce::views
