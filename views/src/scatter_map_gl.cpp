// Hosting vtkGenericOpenGLRenderWindow inside a Qt 6 QOpenGLWidget, following VTK 9.1's
// QVTKRenderWindowAdapter / QVTKOpenGLNativeWidget: the window does not own the context
// (SetOwnContext(0)); make-current / is-current observers point VTK at the widget's context;
// VTK renders into its own framebuffers (FrameBlitMode NoBlit) and paintGL blits VTK's display
// framebuffer into the widget's default framebuffer, then clears alpha (Mesa blends the widget
// with what is behind it otherwise). VTK's cached GL state is reset around each paint since Qt
// changes GL state behind its back.
#include <QApplication>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QOpenGLContext>
#include <QOpenGLExtraFunctions>
#include <QOpenGLFunctions>
#include <QOpenGLPaintDevice>
#include <QPainter>
#include <QScreen>
#include <QWheelEvent>
#include <chrono>

#include <vtkAutoInit.h>
#include <vtkCallbackCommand.h>
#include <vtkCamera.h>
#include <vtkCommand.h>
#include <vtkObjectFactory.h>
#include <vtkOpenGLFramebufferObject.h>
#include <vtkOpenGLState.h>
#include <vtkProperty.h>
#include <vtkRenderWindowInteractor.h>

#include "scatter_map_vtk.h"

namespace uce::views {

namespace {

double nowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

// ---------------------------------------------------------------- interactor styles

vtkStandardNewMacro(MapStyle2D);
vtkStandardNewMacro(MapStyle3D);

void MapStyle2D::startPan() {
  int* p = Interactor->GetEventPosition();
  FindPokedRenderer(p[0], p[1]);
  if (!CurrentRenderer) return;
  // No StartState / StopState: StopState renders once more, which a LOD drag does not need.
  panning_ = true;
}

void MapStyle2D::endPan() { panning_ = false; }

void MapStyle2D::OnMouseMove() {
  if (!panning_ || !CurrentRenderer) return;
  int* p = Interactor->GetEventPosition();
  int* q = Interactor->GetLastEventPosition();
  vtkCamera* cam = CurrentRenderer->GetActiveCamera();
  int* size = CurrentRenderer->GetSize();
  if (size[1] <= 0) return;
  // Parallel projection: the viewport is 2 * ParallelScale data units tall.
  const double perPixel = 2.0 * cam->GetParallelScale() / size[1];
  const double dx = -(p[0] - q[0]) * perPixel;
  const double dy = -(p[1] - q[1]) * perPixel;
  double f[3], pos[3];
  cam->GetFocalPoint(f);
  cam->GetPosition(pos);
  cam->SetFocalPoint(f[0] + dx, f[1] + dy, f[2]);
  cam->SetPosition(pos[0] + dx, pos[1] + dy, pos[2]);
  Interactor->Render();
}

void MapStyle2D::zoomAtCursor(double factor) {
  int* p = Interactor->GetEventPosition();
  FindPokedRenderer(p[0], p[1]);
  if (!CurrentRenderer) return;
  vtkCamera* cam = CurrentRenderer->GetActiveCamera();
  int* size = CurrentRenderer->GetSize();
  int* origin = CurrentRenderer->GetOrigin();
  if (size[0] <= 0 || size[1] <= 0) return;
  const double scale = cam->GetParallelScale();
  const double perPixel = 2.0 * scale / size[1];
  double f[3], pos[3];
  cam->GetFocalPoint(f);
  cam->GetPosition(pos);
  // The data point under the cursor stays under the cursor.
  const double cx = f[0] + (p[0] - origin[0] - size[0] / 2.0) * perPixel;
  const double cy = f[1] + (p[1] - origin[1] - size[1] / 2.0) * perPixel;
  const double k = 1.0 / factor;
  const double nfx = cx + (f[0] - cx) * k, nfy = cy + (f[1] - cy) * k;
  cam->SetParallelScale(scale * k);
  cam->SetFocalPoint(nfx, nfy, f[2]);
  cam->SetPosition(nfx, nfy, pos[2]);
  Interactor->Render();
}

void MapStyle2D::OnChar() {
  const char c = Interactor->GetKeyCode();
  if ((c == 'r' || c == 'R') && onReset) onReset();
}

void MapStyle3D::wheel(double factor) {
  int* p = Interactor->GetEventPosition();
  FindPokedRenderer(p[0], p[1]);
  if (!CurrentRenderer) return;
  Dolly(factor);  // moves the camera, resets the clipping range, renders once
}

void MapStyle3D::OnChar() {
  const char c = Interactor->GetKeyCode();
  if ((c == 'r' || c == 'R') && onReset) onReset();
}

// ---------------------------------------------------------------- window hosting

QSurfaceFormat ScatterMap::defaultFormat() {
  // As QVTKRenderWindowAdapter::defaultFormat: VTK needs OpenGL >= 3.2 core; multisampling is
  // VTK's business (its own framebuffers), not the context's.
  QSurfaceFormat fmt;
  fmt.setRenderableType(QSurfaceFormat::OpenGL);
  fmt.setVersion(3, 2);
  fmt.setProfile(QSurfaceFormat::CoreProfile);
  fmt.setSwapBehavior(QSurfaceFormat::DoubleBuffer);
  fmt.setRedBufferSize(8);
  fmt.setGreenBufferSize(8);
  fmt.setBlueBufferSize(8);
  fmt.setDepthBufferSize(8);
  fmt.setAlphaBufferSize(8);
  fmt.setStencilBufferSize(0);
  fmt.setStereo(false);
  fmt.setSamples(0);
  return fmt;
}

void ScatterMap::createVtk() {
  vtk_ = std::make_unique<Vtk>();
  Vtk& v = *vtk_;
  v.window->SetReadyForRendering(false);
  v.window->SetFrameBlitModeToNoBlit();
  v.window->SetMultiSamples(0);
  v.window->AddRenderer(v.renderer);
  v.renderer->SetBackground(qRed(kBackground) / 255.0, qGreen(kBackground) / 255.0,
                            qBlue(kBackground) / 255.0);
  v.window->SetInteractor(v.interactor);
  v.interactor->SetRenderWindow(v.window);
  v.interactor->Initialize();  // renders nothing yet: the window is not ready
  v.style2d->SetDefaultRenderer(v.renderer);
  v.style3d->SetDefaultRenderer(v.renderer);
  v.style2d->onReset = [this] { resetView(); };
  v.style3d->onReset = [this] { resetView(); };
  v.interactor->SetInteractorStyle(v.style2d);

  // Observers, as the adapter installs them: make-current, is-current, frame, start / end
  // (frame timing).
  struct Handler {
    static void call(vtkObject*, unsigned long id, void* client, void* data) {
      auto* self = static_cast<ScatterMap*>(client);
      self->handleWindowEvent(id, data);
    }
  };
  for (unsigned long id : {vtkCommand::WindowMakeCurrentEvent, vtkCommand::WindowIsCurrentEvent,
                           vtkCommand::WindowFrameEvent, vtkCommand::StartEvent,
                           vtkCommand::EndEvent}) {
    vtkNew<vtkCallbackCommand> cb;
    cb->SetCallback(&Handler::call);
    cb->SetClientData(this);
    v.windowObservers.push_back(v.window->AddObserver(id, cb));
  }
}

void ScatterMap::handleWindowEvent(unsigned long id, void* data) {
  switch (id) {
    case vtkCommand::WindowMakeCurrentEvent:
      // The widget's context and the surface it was created on (QOpenGLWidget's offscreen
      // surface); VTK binds its own framebuffers after this.
      if (context()) context()->makeCurrent(context()->surface());
      break;
    case vtkCommand::WindowIsCurrentEvent: {
      bool& current = *static_cast<bool*>(data);
      QOpenGLContext* c = QOpenGLContext::currentContext();
      current = c && c == context() && c->surface() == context()->surface();
      break;
    }
    case vtkCommand::WindowFrameEvent:
      onVtkFrame();
      break;
    case vtkCommand::StartEvent:
      vtk_->frameStart = nowMs();
      break;
    case vtkCommand::EndEvent: {
      // llvmpipe and hardware drivers queue work: finish it so the time is the frame's.
      if (QOpenGLContext* c = QOpenGLContext::currentContext()) c->functions()->glFinish();
      lastFrameMs_ = nowMs() - vtk_->frameStart;
      lastFramePoints_ = lodActive_ ? vtk_->lod.count : vtk_->full.count;
      Q_EMIT frameRendered(lastFrameMs_);
      break;
    }
    default:
      break;
  }
}

void ScatterMap::initializeGL() {
  if (!vtk_) return;
  Vtk& v = *vtk_;
  auto* state = v.window->GetState();
  state->Reset();
  // Qt sets the depth function to GL_LESS, VTK expects GL_LEQUAL.
  state->vtkglDepthFunc(GL_LEQUAL);
  // The adapter's constructor: never use VTK's own offscreen buffers (it already renders to
  // framebuffer objects), the context belongs to Qt, and initialise VTK's GL bindings on it.
  if (v.window->GetUseOffScreenBuffers()) v.window->SetUseOffScreenBuffers(false);
  v.window->SetForceMaximumHardwareLineWidth(1);
  v.window->SetReadyForRendering(true);
  v.window->SetOwnContext(0);
  v.window->OpenGLInitContext();
  v.glReady = true;
  v.renderInPaint = true;
  updateVtkSize();
  connect(context(), &QOpenGLContext::aboutToBeDestroyed, this, &ScatterMap::cleanupGL,
          static_cast<Qt::ConnectionType>(Qt::UniqueConnection | Qt::DirectConnection));
}

void ScatterMap::cleanupGL() {
  if (!vtk_ || !vtk_->glReady) return;
  makeCurrent();
  vtk_->window->Finalize();  // releases VTK's GL resources on this context
  vtk_->window->SetReadyForRendering(false);
  vtk_->glReady = false;
  doneCurrent();
}

void ScatterMap::updateVtkSize() {
  if (!vtk_) return;
  const double dpr = devicePixelRatioF();
  const int w = std::max(1, int(std::lround(width() * dpr)));
  const int h = std::max(1, int(std::lround(height() * dpr)));
  vtk_->interactor->UpdateSize(w, h);  // also sizes the render window
  if (QScreen* s = screen())
    vtk_->window->SetScreenSize(int(s->size().width() * dpr), int(s->size().height() * dpr));
  vtk_->window->SetDPI(int(std::lround(72 * dpr)));
  // Points are drawn in device pixels.
  vtk_->full.actor->GetProperty()->SetPointSize(float(pointSize_ * dpr));
  vtk_->lod.actor->GetProperty()->SetPointSize(float(pointSize_ * dpr));
  vtk_->selection.actor->GetProperty()->SetPointSize(float(pointSize_ * dpr));
  vtk_->selectionHalo->GetProperty()->SetPointSize(float((pointSize_ + 4.0f) * dpr));
  requestRender();
}

void ScatterMap::requestRender() {
  if (vtk_) vtk_->renderInPaint = true;
  update();
}

void ScatterMap::renderNow() {
  if (!vtk_ || !vtk_->glReady || !isVisible()) {
    requestRender();
    return;
  }
  vtk_->interactor->Render();  // -> WindowFrameEvent -> update() -> paintGL blits
}

void ScatterMap::onVtkFrame() {
  Vtk& v = *vtk_;
  // Double buffered without swap means "render into the back buffer only": ignore.
  if (v.window->GetDoubleBuffer() && !v.window->GetSwapBuffers()) return;
  v.renderInPaint = false;
  const unsigned long camTime = v.renderer->GetActiveCamera()->GetMTime();
  if (camTime != lastCameraMTime_) {
    lastCameraMTime_ = camTime;
    onCameraChanged();
  }
  if (!v.inPaint) update();
}

void ScatterMap::paintGL() {
  if (!vtk_ || !vtk_->glReady) return;
  Vtk& v = *vtk_;
  if (v.inPaint) return;
  v.inPaint = true;
  auto* state = v.window->GetState();
  state->Reset();
  state->Push();
  state->vtkglDepthFunc(GL_LEQUAL);
  if (v.renderInPaint) v.interactor->Render();
  v.renderInPaint = false;
  // A render may have made another context current (progress bars repainting...).
  makeCurrent();
  blitVtkFrame();
  state->Pop();
  v.inPaint = false;
  // Overlays go straight into the widget's framebuffer through a paint device of our own: a
  // QPainter on the widget itself would be redirected by QWidget::grab()/render() of a parent
  // window and then hidden under the framebuffer image.
  context()->functions()->glBindFramebuffer(GL_FRAMEBUFFER, defaultFramebufferObject());
  const qreal dpr = devicePixelRatioF();
  QOpenGLPaintDevice device(QSize(int(std::lround(width() * dpr)), int(std::lround(height() * dpr))));
  device.setDevicePixelRatio(dpr);
  QPainter painter(&device);
  painter.setFont(font());
  paintOverlay(painter);
}

void ScatterMap::blitVtkFrame() {
  Vtk& v = *vtk_;
  QOpenGLExtraFunctions* f = context()->extraFunctions();
  const double dpr = devicePixelRatioF();
  const QRect target(0, 0, int(std::lround(width() * dpr)), int(std::lround(height() * dpr)));
  f->glBindFramebuffer(GL_DRAW_FRAMEBUFFER, defaultFramebufferObject());
  const GLenum bufs[1] = {GL_COLOR_ATTACHMENT0};
  f->glDrawBuffers(1, bufs);
  const GLboolean scissor = f->glIsEnabled(GL_SCISSOR_TEST);
  if (scissor == GL_TRUE) {
    v.window->GetState()->vtkglDisable(GL_SCISSOR_TEST);
    f->glDisable(GL_SCISSOR_TEST);
  }
  int* src = v.window->GetRenderFramebuffer()->GetLastSize();
  v.window->BlitDisplayFramebuffer(0, 0, 0, src[0], src[1], target.x(), target.y(),
                                   target.width(), target.height(), GL_COLOR_BUFFER_BIT,
                                   GL_LINEAR);
  // Clear alpha so the compositor does not blend the map with what lies behind the window.
  GLboolean mask[4];
  f->glGetBooleanv(GL_COLOR_WRITEMASK, mask);
  f->glColorMask(GL_FALSE, GL_FALSE, GL_FALSE, GL_TRUE);
  GLfloat clear[4];
  f->glGetFloatv(GL_COLOR_CLEAR_VALUE, clear);
  f->glClearColor(0.f, 0.f, 0.f, 1.f);
  GLint vp[4];
  f->glGetIntegerv(GL_VIEWPORT, vp);
  f->glViewport(target.x(), target.y(), target.width(), target.height());
  f->glClear(GL_COLOR_BUFFER_BIT);
  f->glColorMask(mask[0], mask[1], mask[2], mask[3]);
  f->glClearColor(clear[0], clear[1], clear[2], clear[3]);
  f->glViewport(vp[0], vp[1], vp[2], vp[3]);
  if (scissor == GL_TRUE) {
    v.window->GetState()->vtkglEnable(GL_SCISSOR_TEST);
    f->glEnable(GL_SCISSOR_TEST);
  }
}

// ---------------------------------------------------------------- event forwarding

bool ScatterMap::forwardToVtk(QEvent* e) {
  if (!vtk_) return false;
  vtkRenderWindowInteractor* iren = vtk_->interactor;
  if (!iren->GetEnabled()) return false;
  const double dpr = devicePixelRatioF();
  switch (e->type()) {
    case QEvent::MouseButtonPress:
    case QEvent::MouseButtonDblClick:
    case QEvent::MouseButtonRelease:
    case QEvent::MouseMove: {
      auto* me = static_cast<QMouseEvent*>(e);
      const QPointF p = me->position() * dpr;
      const auto mods = me->modifiers();
      iren->SetEventInformationFlipY(int(p.x()), int(p.y()), mods.testFlag(Qt::ControlModifier),
                                     mods.testFlag(Qt::ShiftModifier), 0,
                                     e->type() == QEvent::MouseButtonDblClick ? 1 : 0);
      iren->SetAltKey(mods.testFlag(Qt::AltModifier));
      unsigned long id = vtkCommand::MouseMoveEvent;
      const bool press = e->type() != QEvent::MouseButtonRelease;
      if (e->type() != QEvent::MouseMove) {
        switch (me->button()) {
          case Qt::LeftButton:
            id = press ? vtkCommand::LeftButtonPressEvent : vtkCommand::LeftButtonReleaseEvent;
            break;
          case Qt::MiddleButton:
            id = press ? vtkCommand::MiddleButtonPressEvent : vtkCommand::MiddleButtonReleaseEvent;
            break;
          case Qt::RightButton:
            id = press ? vtkCommand::RightButtonPressEvent : vtkCommand::RightButtonReleaseEvent;
            break;
          default:
            return false;
        }
      }
      iren->InvokeEvent(id, e);
      return true;
    }
    case QEvent::Wheel: {
      auto* we = static_cast<QWheelEvent*>(e);
      const QPointF p = we->position() * dpr;
      const auto mods = we->modifiers();
      iren->SetEventInformationFlipY(int(p.x()), int(p.y()), mods.testFlag(Qt::ControlModifier),
                                     mods.testFlag(Qt::ShiftModifier));
      iren->SetAltKey(mods.testFlag(Qt::AltModifier));
      // One VTK wheel event per notch (120 units); touchpads send small deltas that add up.
      wheelAccum_ += we->angleDelta().y();
      while (wheelAccum_ >= 120) {
        iren->InvokeEvent(vtkCommand::MouseWheelForwardEvent, e);
        wheelAccum_ -= 120;
      }
      while (wheelAccum_ <= -120) {
        iren->InvokeEvent(vtkCommand::MouseWheelBackwardEvent, e);
        wheelAccum_ += 120;
      }
      return true;
    }
    case QEvent::KeyPress:
    case QEvent::KeyRelease: {
      auto* ke = static_cast<QKeyEvent*>(e);
      const QString text = ke->text();
      const char ascii = text.isEmpty() ? 0 : text.at(0).toLatin1();
      const auto mods = ke->modifiers();
      const QByteArray sym = QKeySequence(ke->key()).toString().toLatin1();
      iren->SetKeyEventInformation(mods.testFlag(Qt::ControlModifier),
                                   mods.testFlag(Qt::ShiftModifier), ascii,
                                   ke->isAutoRepeat() ? 1 : 0, sym.constData());
      iren->SetAltKey(mods.testFlag(Qt::AltModifier));
      if (e->type() == QEvent::KeyPress) {
        iren->InvokeEvent(vtkCommand::KeyPressEvent, e);
        if (ascii) iren->InvokeEvent(vtkCommand::CharEvent, e);
      } else {
        iren->InvokeEvent(vtkCommand::KeyReleaseEvent, e);
      }
      return true;
    }
    case QEvent::Enter:
      iren->InvokeEvent(vtkCommand::EnterEvent, e);
      return true;
    case QEvent::Leave:
      iren->InvokeEvent(vtkCommand::LeaveEvent, e);
      return true;
    default:
      return false;
  }
}

}  // namespace uce::views
