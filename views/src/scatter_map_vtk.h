#pragma once
// VTK side of ScatterMap: the render window hosted in the QOpenGLWidget, the scene (one shared
// point set, several vertex layers) and the interactor styles. Private to uce_views.
#include <vtkActor.h>
#include <vtkCellArray.h>
#include <vtkFloatArray.h>
#include <vtkGenericOpenGLRenderWindow.h>
#include <vtkGenericRenderWindowInteractor.h>
#include <vtkInteractorStyleTrackballCamera.h>
#include <vtkNew.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkRenderer.h>
#include <vtkSmartPointer.h>
#include <vtkUnsignedCharArray.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "uce/views/scatter_map.h"

namespace uce::views {

// 2-D map navigation: left/middle drag pans, the wheel zooms about the cursor, 'r' resets.
// Works on a parallel-projection camera looking down -z.
class MapStyle2D : public vtkInteractorStyle {
 public:
  static MapStyle2D* New();
  vtkTypeMacro(MapStyle2D, vtkInteractorStyle)
  void OnLeftButtonDown() override { startPan(); }
  void OnLeftButtonUp() override { endPan(); }
  void OnMiddleButtonDown() override { startPan(); }
  void OnMiddleButtonUp() override { endPan(); }
  void OnRightButtonDown() override {}
  void OnRightButtonUp() override {}
  void OnMouseMove() override;
  void OnMouseWheelForward() override { zoomAtCursor(kWheelFactor); }
  void OnMouseWheelBackward() override { zoomAtCursor(1.0 / kWheelFactor); }
  void OnChar() override;
  void OnKeyPress() override {}
  void OnKeyRelease() override {}

  std::function<void()> onReset;
  static constexpr double kWheelFactor = 1.2;  // zoom per wheel notch

 protected:
  MapStyle2D() = default;

 private:
  void startPan();
  void endPan();
  void zoomAtCursor(double factor);
  bool panning_ = false;
};

// 3-D map: trackball camera (left drag rotates, middle pans, wheel / right drag zooms); only
// 'r' of VTK's key bindings is kept (others toggle stereo, wireframe, ...).
class MapStyle3D : public vtkInteractorStyleTrackballCamera {
 public:
  static MapStyle3D* New();
  vtkTypeMacro(MapStyle3D, vtkInteractorStyleTrackballCamera)
  void OnChar() override;
  void OnKeyPress() override {}
  void OnKeyRelease() override {}
  // One render per wheel notch (VTK's own handler renders twice: Dolly, then EndDolly).
  void OnMouseWheelForward() override { wheel(std::pow(1.1, 0.2 * MotionFactor * MouseWheelMotionFactor)); }
  void OnMouseWheelBackward() override { wheel(std::pow(1.1, -0.2 * MotionFactor * MouseWheelMotionFactor)); }
  std::function<void()> onReset;

 protected:
  MapStyle3D() = default;

 private:
  void wheel(double factor);
};

// One drawn subset of the shared points: a polydata whose vertex cells list the rows.
struct PointLayer {
  vtkNew<vtkPolyData> poly;
  vtkNew<vtkPolyDataMapper> mapper;
  vtkNew<vtkActor> actor;
  size_t count = 0;
  // rows: ascending indices into the shared points.
  void setRows(const std::vector<uint32_t>& rows);
};

struct ScatterMap::Vtk {
  vtkNew<vtkGenericOpenGLRenderWindow> window;
  vtkNew<vtkRenderer> renderer;
  vtkNew<vtkGenericRenderWindowInteractor> interactor;
  vtkNew<MapStyle2D> style2d;
  vtkNew<MapStyle3D> style3d;
  vtkNew<vtkPoints> points;
  vtkNew<vtkFloatArray> coords;        // [n, 3] float32, wraps ScatterMap::xyz_
  vtkNew<vtkUnsignedCharArray> colors;  // [n, 4] RGBA
  PointLayer full;                      // every visible point
  PointLayer lod;                       // seeded subsample while interacting
  PointLayer selection;                 // selected points, own colours, drawn on top
  vtkNew<vtkActor> selectionHalo;       // the same points, larger and dark, under them
  vtkNew<vtkPolyDataMapper> haloMapper;
  std::vector<unsigned long> windowObservers;
  bool glReady = false;            // initializeGL ran; the window may render
  bool renderInPaint = true;       // paintGL must re-render (not only blit)
  bool inPaint = false;
  double frameStart = 0.0;         // steady-clock ms at the window's StartEvent
};

// World -> logical widget pixels (y down) for the camera of the last render / current state.
struct ScatterMap::Projector {
  double m[16] = {};  // row-major composite projection (world -> clip)
  double width = 0, height = 0;
  bool ok = false;
  // False when the point is behind a perspective camera.
  bool operator()(const float* p, double* sx, double* sy, double* depth = nullptr) const {
    const double x = p[0], y = p[1], z = p[2];
    const double cw = m[12] * x + m[13] * y + m[14] * z + m[15];
    if (cw <= 1e-12) return false;
    const double nx = (m[0] * x + m[1] * y + m[2] * z + m[3]) / cw;
    const double ny = (m[4] * x + m[5] * y + m[6] * z + m[7]) / cw;
    *sx = (nx + 1.0) * 0.5 * width;
    *sy = (1.0 - ny) * 0.5 * height;
    if (depth) *depth = (m[8] * x + m[9] * y + m[10] * z + m[11]) / cw;
    return true;
  }
};

// Hover lookups: visible points bucketed by on-screen position into square cells, rebuilt
// lazily when the camera, the widget size or the drawn rows change. O(n) to build (about
// 30 ms for 2M points on one core), O(points near the cursor) to query.
struct ScatterMap::Hover {
  double cell = 8.0;                 // logical pixels per grid cell
  int gw = 0, gh = 0;
  std::vector<uint32_t> start;       // [gw * gh + 1] offsets into rows / sx / sy
  std::vector<uint32_t> rows;
  std::vector<float> sx, sy;
  unsigned long cameraTime = 0;
  double width = -1, height = -1;
  uint64_t version = ~uint64_t(0);
};

}  // namespace uce::views
