// ScatterMap overlays (legend, colour bar, selection outline) painted over the VTK frame, the
// palettes, and PNG / SVG export.
#include <QFontMetrics>
#include <QImage>
#include <QLinearGradient>
#include <QPainter>
#include <QPainterPath>
#include <QSaveFile>
#include <QTimer>
#include <algorithm>
#include <cmath>

#include "scatter_map_vtk.h"
#include "uce/views/charts.h"

namespace uce::views {

namespace {

constexpr int kMargin = 10;  // from the widget edge
constexpr int kPad = 8;      // inside the legend box
constexpr int kSwatch = 12;
constexpr int kBarWidth = 16;

// matplotlib's viridis (CC0), every 4th of its 256 entries, plus the last one.
constexpr unsigned char kViridis[65][3] = {
    {68, 1, 84},    {69, 6, 90},    {70, 12, 95},   {71, 18, 101},  {71, 24, 106},
    {72, 29, 111},  {72, 34, 115},  {71, 39, 119},  {71, 44, 123},  {70, 49, 126},
    {69, 54, 129},  {67, 59, 131},  {66, 64, 133},  {64, 68, 135},  {62, 73, 137},
    {60, 77, 138},  {58, 82, 139},  {56, 86, 139},  {54, 90, 140},  {52, 94, 141},
    {50, 98, 141},  {49, 102, 141}, {47, 106, 141}, {45, 110, 142}, {44, 114, 142},
    {42, 118, 142}, {40, 122, 142}, {39, 125, 142}, {38, 129, 142}, {36, 133, 141},
    {35, 137, 141}, {33, 140, 141}, {32, 144, 140}, {31, 148, 139}, {30, 152, 138},
    {30, 155, 137}, {30, 159, 136}, {31, 163, 134}, {33, 167, 132}, {36, 170, 130},
    {40, 174, 127}, {44, 177, 125}, {50, 181, 122}, {56, 185, 118}, {62, 188, 115},
    {69, 191, 111}, {77, 194, 107}, {85, 198, 102}, {94, 201, 97},  {103, 204, 92},
    {112, 206, 86}, {121, 209, 81}, {131, 211, 75}, {141, 214, 68}, {151, 216, 62},
    {162, 218, 55}, {173, 220, 48}, {183, 221, 41}, {194, 223, 34}, {205, 224, 29},
    {215, 226, 25}, {225, 227, 24}, {236, 228, 26}, {246, 230, 31}, {253, 231, 37}};

struct LegendLayout {
  QRect box;
  int titleH = 0;
  int rowH = 0;
  int shown = 0;      // entries drawn
  bool more = false;  // a "+ N more" row follows
};

LegendLayout legendLayout(const QFontMetrics& fm, QSize widget, const QString& title,
                          const QStringList& names) {
  LegendLayout l;
  if (names.isEmpty()) return l;
  l.rowH = std::max(fm.height(), kSwatch) + 4;
  l.titleH = title.isEmpty() ? 0 : l.rowH;
  // The title is bold: allow ~10 % more than its regular width.
  int textW = title.isEmpty() ? 0 : fm.horizontalAdvance(title) * 11 / 10 + 2;
  for (const QString& n : names) textW = std::max(textW, kSwatch + 6 + fm.horizontalAdvance(n) + 2);
  textW = std::min(textW, 260);
  const int avail = widget.height() - 2 * kMargin - 2 * kPad - l.titleH;
  int rows = std::max(0, avail / l.rowH);
  l.shown = int(names.size());
  if (rows < l.shown) {
    l.more = true;
    l.shown = std::max(0, rows - 1);
  }
  const int h = 2 * kPad + l.titleH + (l.shown + (l.more ? 1 : 0)) * l.rowH;
  const int w = textW + 2 * kPad;
  l.box = QRect(widget.width() - kMargin - w, kMargin, w, h);
  return l;
}

QString hex(QRgb c) {
  return QString("#%1%2%3")
      .arg(qRed(c), 2, 16, QChar('0'))
      .arg(qGreen(c), 2, 16, QChar('0'))
      .arg(qBlue(c), 2, 16, QChar('0'));
}

QString xmlEscape(QString s) { return s.toHtmlEscaped(); }

QString num(double x) { return QString::number(x, 'g', 4); }

}  // namespace

QRgb ScatterMap::categoryColor(int c) {
  if (c < 0) return kMissingColor;
  // The same palette as the charts (scanpy's default_20), so a category has one colour in the
  // map's legend and in the composition bars.
  return uce::views::categoryColor(c).rgb();
}

QRgb ScatterMap::viridis(double t) {
  if (!std::isfinite(t)) return kMissingColor;
  t = std::clamp(t, 0.0, 1.0);
  // Stop i < 64 sits at 4i / 255, the last at 1.
  const double u = t * 255.0 / 4.0;
  int i = std::min(63, int(u));
  double hi = i == 63 ? 255.0 / 4.0 : i + 1.0;
  const double f = std::clamp((u - i) / (hi - i), 0.0, 1.0);
  auto mix = [&](int k) {
    return int(std::lround(kViridis[i][k] + (kViridis[i + 1][k] - kViridis[i][k]) * f));
  };
  return qRgb(mix(0), mix(1), mix(2));
}

QRect ScatterMap::legendRect() const {
  if (colorKind_ != ColorKind::Categorical) return {};
  return legendLayout(fontMetrics(), size(), colorTitle_, catNames_).box;
}

QRect ScatterMap::legendEntryRect(int category) const {
  if (colorKind_ != ColorKind::Categorical) return {};
  const LegendLayout l = legendLayout(fontMetrics(), size(), colorTitle_, catNames_);
  if (category < 0 || category >= l.shown) return {};
  return QRect(l.box.left() + kPad / 2, l.box.top() + kPad + l.titleH + category * l.rowH,
               l.box.width() - kPad, l.rowH);
}

int ScatterMap::legendHitTest(QPointF pos) const {
  if (colorKind_ != ColorKind::Categorical) return -1;
  for (int c = 0; c < int(catNames_.size()); ++c) {
    const QRect r = legendEntryRect(c);
    if (r.isEmpty()) break;
    if (r.contains(pos.toPoint())) return c;
  }
  return -1;
}

QRect ScatterMap::colorBarRect() const {
  if (colorKind_ != ColorKind::Continuous) return {};
  const QFontMetrics fm = fontMetrics();
  const int titleH = colorTitle_.isEmpty() ? 0 : fm.height() + 4;
  const int labelW = std::max(fm.horizontalAdvance(num(vmax_)), fm.horizontalAdvance(num(vmin_)));
  const int w = std::max(fm.horizontalAdvance(colorTitle_), kBarWidth + 6 + labelW);
  const int barH = std::clamp(height() - 2 * kMargin - 2 * kPad - titleH - fm.height(), 40, 200);
  const int left = width() - kMargin - kPad - w;
  return QRect(left, kMargin + kPad + titleH + fm.height() / 2, kBarWidth, barH);
}

void ScatterMap::paintOverlay(QPainter& p) const {
  p.setRenderHint(QPainter::Antialiasing, true);
  p.setRenderHint(QPainter::TextAntialiasing, true);
  const QFontMetrics fm = fontMetrics();
  if (n_ == 0) {
    p.setPen(QColor(110, 110, 110));
    p.drawText(rect(), Qt::AlignCenter, "No cells on the map yet");
  }
  if (colorKind_ == ColorKind::Categorical) {
    const LegendLayout l = legendLayout(fm, size(), colorTitle_, catNames_);
    p.setPen(QColor(200, 200, 200));
    p.setBrush(QColor(255, 255, 255, 235));
    p.drawRoundedRect(l.box, 4, 4);
    int y = l.box.top() + kPad;
    if (l.titleH) {
      QFont bold = font();
      bold.setBold(true);
      p.setFont(bold);
      p.setPen(QColor(30, 30, 30));
      p.drawText(QRect(l.box.left() + kPad, y, l.box.width() - 2 * kPad, l.rowH),
                 Qt::AlignLeft | Qt::AlignVCenter, fm.elidedText(colorTitle_, Qt::ElideRight,
                                                                l.box.width() - 2 * kPad));
      p.setFont(font());
      y += l.titleH;
    }
    for (int c = 0; c < l.shown; ++c, y += l.rowH) {
      const bool on = catVisible_[size_t(c)];
      const QRect sw(l.box.left() + kPad, y + (l.rowH - kSwatch) / 2, kSwatch, kSwatch);
      p.setPen(on ? Qt::NoPen : QPen(QColor(categoryColor(c)), 1.5));
      p.setBrush(on ? QBrush(QColor(categoryColor(c))) : Qt::NoBrush);
      p.drawRect(sw);
      p.setPen(on ? QColor(30, 30, 30) : QColor(160, 160, 160));
      const int tx = sw.right() + 6;
      const int textRight = l.box.left() + l.box.width() - kPad;
      p.drawText(QRect(tx, y, textRight - tx, l.rowH), Qt::AlignLeft | Qt::AlignVCenter,
                 fm.elidedText(catNames_[c], Qt::ElideRight, textRight - tx));
    }
    if (l.more) {
      p.setPen(QColor(110, 110, 110));
      p.drawText(QRect(l.box.left() + kPad, y, l.box.width() - 2 * kPad, l.rowH),
                 Qt::AlignLeft | Qt::AlignVCenter,
                 QString("+ %1 more").arg(catNames_.size() - l.shown));
    }
  } else if (colorKind_ == ColorKind::Continuous) {
    const QRect bar = colorBarRect();
    const int labelW = std::max(fm.horizontalAdvance(num(vmax_)), fm.horizontalAdvance(num(vmin_)));
    const int titleH = colorTitle_.isEmpty() ? 0 : fm.height() + 4;
    const int w = std::max(fm.horizontalAdvance(colorTitle_), kBarWidth + 6 + labelW);
    const QRect box(bar.left() - kPad, kMargin, w + 2 * kPad,
                    bar.bottom() + fm.height() / 2 + kPad - kMargin);
    p.setPen(QColor(200, 200, 200));
    p.setBrush(QColor(255, 255, 255, 235));
    p.drawRoundedRect(box, 4, 4);
    p.setPen(QColor(30, 30, 30));
    if (titleH)
      p.drawText(QRect(bar.left(), kMargin + kPad, w, fm.height()), Qt::AlignLeft, colorTitle_);
    QLinearGradient g(bar.left(), bar.bottom(), bar.left(), bar.top());
    for (int k = 0; k <= 32; ++k) g.setColorAt(k / 32.0, QColor(viridis(k / 32.0)));
    p.setPen(Qt::NoPen);
    p.setBrush(g);
    p.drawRect(bar);
    p.setPen(QColor(30, 30, 30));
    p.drawText(QPoint(bar.right() + 6, bar.top() + fm.ascent() / 2), num(vmax_));
    p.drawText(QPoint(bar.right() + 6, bar.bottom() + fm.ascent() / 2), num(vmin_));
  }
  if (selecting_ && !selectPath_.isEmpty()) {
    p.setPen(QPen(QColor(20, 20, 20), 1.0, Qt::DashLine));
    p.setBrush(QColor(78, 121, 167, 40));
    if (mode_ == Mode::BoxSelect && selectPath_.size() >= 2)
      p.drawRect(QRectF(selectPath_[0], selectPath_[1]).normalized());
    else
      p.drawPolygon(selectPath_);
  }
}

bool ScatterMap::savePng(const QString& path, QString* error) {
  if (lodActive_) {
    lodTimer_->stop();
    setLod(false);
  }
  requestRender();
  const QImage img = grabFramebuffer();
  if (img.isNull()) {
    if (error) *error = QString("cannot save %1: the map has not been shown yet").arg(path);
    return false;
  }
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly) || !img.save(&f, "PNG") || !f.commit()) {
    if (error) *error = QString("cannot write %1: %2").arg(path, f.errorString());
    return false;
  }
  return true;
}

bool ScatterMap::saveSvg(const QString& path, QString* error) {
  const QByteArray text = svgText().toUtf8();
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly) || f.write(text) != text.size() || !f.commit()) {
    if (error) *error = QString("cannot write %1: %2").arg(path, f.errorString());
    return false;
  }
  return true;
}

QString ScatterMap::svgText() const {
  const int W = width(), H = height();
  const double r = pointSize_ / 2.0;
  const Projector pr = projector();
  struct Dot {
    uint32_t row;
    float x, y, depth;
  };
  std::vector<Dot> dots;
  auto onScreen = [&](uint32_t row, Dot* d) {
    double x, y, z;
    if (!pr.ok || !pr(&xyz_[size_t(row) * 3], &x, &y, &z)) return false;
    if (x < -r || y < -r || x > W + r || y > H + r) return false;
    *d = Dot{row, float(x), float(y), float(z)};
    return true;
  };
  Dot d{};
  size_t total = 0;
  for (uint32_t row : visible_)
    if (onScreen(row, &d)) ++total;
  if (total <= options_.svgMaxPoints) {
    dots.reserve(total);
    for (uint32_t row : visible_)
      if (onScreen(row, &d)) dots.push_back(d);
  } else {
    // Seeded subsample: the first svgMaxPoints on-screen visible rows of the fixed permutation.
    std::vector<char> isVisible(n_, 0);
    for (uint32_t row : visible_) isVisible[row] = 1;
    dots.reserve(options_.svgMaxPoints);
    for (uint32_t row : lodOrder_) {
      if (!isVisible[row] || !onScreen(row, &d)) continue;
      dots.push_back(d);
      if (dots.size() == options_.svgMaxPoints) break;
    }
    std::sort(dots.begin(), dots.end(), [](const Dot& a, const Dot& b) { return a.row < b.row; });
  }
  if (dims_ == 3)  // far to near, as the depth buffer would show them
    std::stable_sort(dots.begin(), dots.end(),
                     [](const Dot& a, const Dot& b) { return a.depth > b.depth; });

  std::vector<char> selected(n_, 0);
  for (uint32_t row : selection_) selected[row] = 1;
  const unsigned char* rgba = vtk_->colors->GetPointer(0);

  QString s;
  s.reserve(int(dots.size() * 64 + 4096));
  s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += QString("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%1\" height=\"%2\" "
               "viewBox=\"0 0 %1 %2\">\n")
           .arg(W)
           .arg(H);
  if (total > dots.size())
    s += QString("<!-- %1 of %2 points on screen, seeded subsample (seed %3) -->\n")
             .arg(dots.size())
             .arg(total)
             .arg(options_.lodSeed);
  s += QString("<rect id=\"background\" x=\"0\" y=\"0\" width=\"%1\" height=\"%2\" fill=\"%3\"/>\n")
           .arg(W)
           .arg(H)
           .arg(hex(kBackground));
  s += QString("<g id=\"points\" stroke=\"none\"%1>\n")
           .arg(opacity_ < 1.0f ? QString(" fill-opacity=\"%1\"").arg(num(opacity_)) : QString());
  const QString rs = QString::number(r, 'f', 2);
  for (const Dot& dot : dots) {
    const unsigned char* c = rgba + size_t(dot.row) * 4;
    s += QString("<circle cx=\"%1\" cy=\"%2\" r=\"%3\" fill=\"%4\"%5/>\n")
             .arg(QString::number(dot.x, 'f', 2), QString::number(dot.y, 'f', 2), rs,
                  hex(qRgb(c[0], c[1], c[2])),
                  selected[dot.row] ? QString(" stroke=\"#1a1a1a\" stroke-width=\"1.5\"")
                                    : QString());
  }
  s += "</g>\n";

  const QFontMetrics fm = fontMetrics();
  if (colorKind_ == ColorKind::Categorical) {
    const LegendLayout l = legendLayout(fm, size(), colorTitle_, catNames_);
    s += "<g id=\"legend\" font-family=\"sans-serif\" font-size=\"12\">\n";
    s += QString("<rect x=\"%1\" y=\"%2\" width=\"%3\" height=\"%4\" rx=\"4\" fill=\"#ffffff\" "
                 "fill-opacity=\"0.92\" stroke=\"#c8c8c8\"/>\n")
             .arg(l.box.left())
             .arg(l.box.top())
             .arg(l.box.width())
             .arg(l.box.height());
    int y = l.box.top() + kPad;
    if (l.titleH) {
      s += QString("<text x=\"%1\" y=\"%2\" font-weight=\"bold\" fill=\"#1e1e1e\">%3</text>\n")
               .arg(l.box.left() + kPad)
               .arg(y + l.rowH - 5)
               .arg(xmlEscape(colorTitle_));
      y += l.titleH;
    }
    for (int c = 0; c < l.shown; ++c, y += l.rowH) {
      const bool on = catVisible_[size_t(c)];
      const QString col = hex(categoryColor(c));
      s += QString("<rect x=\"%1\" y=\"%2\" width=\"%3\" height=\"%3\" %4/>\n")
               .arg(l.box.left() + kPad)
               .arg(y + (l.rowH - kSwatch) / 2)
               .arg(kSwatch)
               .arg(on ? QString("fill=\"%1\"").arg(col)
                       : QString("fill=\"none\" stroke=\"%1\"").arg(col));
      s += QString("<text x=\"%1\" y=\"%2\" fill=\"%3\">%4</text>\n")
               .arg(l.box.left() + kPad + kSwatch + 6)
               .arg(y + l.rowH - 5)
               .arg(on ? "#1e1e1e" : "#a0a0a0")
               .arg(xmlEscape(catNames_[c]));
    }
    if (l.more)
      s += QString("<text x=\"%1\" y=\"%2\" fill=\"#6e6e6e\">+ %3 more</text>\n")
               .arg(l.box.left() + kPad)
               .arg(y + l.rowH - 5)
               .arg(catNames_.size() - l.shown);
    s += "</g>\n";
  } else if (colorKind_ == ColorKind::Continuous) {
    const QRect bar = colorBarRect();
    s += "<defs><linearGradient id=\"viridis\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n";
    for (int k = 0; k <= 16; ++k)
      s += QString("<stop offset=\"%1\" stop-color=\"%2\"/>\n")
               .arg(num(k / 16.0), hex(viridis(k / 16.0)));
    s += "</linearGradient></defs>\n";
    s += "<g id=\"colorbar\" font-family=\"sans-serif\" font-size=\"12\" fill=\"#1e1e1e\">\n";
    s += QString("<text x=\"%1\" y=\"%2\">%3</text>\n")
             .arg(bar.left())
             .arg(kMargin + kPad + fm.ascent())
             .arg(xmlEscape(colorTitle_));
    s += QString("<rect x=\"%1\" y=\"%2\" width=\"%3\" height=\"%4\" fill=\"url(#viridis)\"/>\n")
             .arg(bar.left())
             .arg(bar.top())
             .arg(bar.width())
             .arg(bar.height());
    s += QString("<text x=\"%1\" y=\"%2\">%3</text>\n")
             .arg(bar.right() + 6)
             .arg(bar.top() + fm.ascent() / 2)
             .arg(num(vmax_));
    s += QString("<text x=\"%1\" y=\"%2\">%3</text>\n")
             .arg(bar.right() + 6)
             .arg(bar.bottom() + fm.ascent() / 2)
             .arg(num(vmin_));
    s += "</g>\n";
  }
  s += "</svg>\n";
  return s;
}

}  // namespace uce::views
