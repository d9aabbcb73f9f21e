// DatasetDoc, AppSettings and the Workspace's document handling (opening, closing). The jobs that
// compute on documents are in workspace_jobs.cpp.
#include "workspace.h"

#include <QDir>
#include <QFileInfo>
#include <algorithm>
#include <set>

#include "uce/core/error.h"
#include "uce/core/inspect.h"
#include "workspace_state.h"

namespace uce::gui {

// ---------------------------------------------------------------------------------------------
// DeTable.

QStringList DeTable::topUp(int n) const {
  QStringList out;
  for (const DeGeneRow& g : genes) {
    if (out.size() >= n) break;
    if (g.score > 0) out << g.gene;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// DatasetDoc.

DatasetDoc::DatasetDoc(std::unique_ptr<State> state, QObject* parent) : QObject(parent), s_(std::move(state)) {
  rebuildObs();
}
DatasetDoc::~DatasetDoc() = default;

QString DatasetDoc::path() const { return s_->path; }
QString DatasetDoc::basePath() const { return s_->basePath; }
QString DatasetDoc::name() const { return QFileInfo(s_->path).fileName(); }
QString DatasetDoc::format() const { return s_->format; }
qint64 DatasetDoc::cells() const { return s_->cells; }
qint64 DatasetDoc::genes() const { return s_->genes; }
const DataFrame& DatasetDoc::obs() const { return s_->obs; }
const DataFrame& DatasetDoc::var() const { return s_->var; }
QStringList DatasetDoc::countMatrices() const { return s_->matrices; }
EmbedGuess DatasetDoc::guess() const { return s_->guess; }
QString DatasetDoc::embeddingModelSha256() const { return s_->modelSha; }
const std::vector<int32_t>& DatasetDoc::clusters() const { return s_->clusters; }
int DatasetDoc::clusterCount() const { return s_->clusterCount; }
QString DatasetDoc::clusterKey() const { return s_->clusterKey; }
QStringList DatasetDoc::annotationColumns() const { return s_->annotations; }
bool DatasetDoc::isModified() const { return s_->modified; }

const Column* DatasetDoc::column(const QString& name) const { return s_->obs.find(name.toStdString()); }

QStringList DatasetDoc::obsmKeys() const {
  QStringList keys = s_->fileObsmKeys;
  for (auto it = s_->obsm.begin(); it != s_->obsm.end(); ++it)
    if (!keys.contains(it.key())) keys << it.key();
  return keys;
}

std::shared_ptr<const DenseMatrix> DatasetDoc::obsm(const QString& key) const { return s_->obsm.value(key); }

bool DatasetDoc::hasEmbeddingFrom(const QString& modelSha256) const {
  return hasEmbedding() && !s_->modelSha.isEmpty() && s_->modelSha.compare(modelSha256, Qt::CaseInsensitive) == 0;
}

void DatasetDoc::setObsm(const QString& key, std::shared_ptr<const DenseMatrix> m, bool computed) {
  s_->obsm[key] = std::move(m);
  if (computed) {
    s_->computedObsm.insert(key);
    s_->modified = true;
  }
  Q_EMIT changed();
}

void DatasetDoc::setExtraColumn(Column c) {
  auto it = std::find_if(s_->extras.begin(), s_->extras.end(), [&](const Column& e) { return e.name == c.name; });
  if (it != s_->extras.end()) *it = std::move(c);
  else s_->extras.push_back(std::move(c));
  s_->modified = true;
  rebuildObs();
  Q_EMIT changed();
}

bool DatasetDoc::setNumericColumn(const QString& column, std::vector<double> values, QString* error) {
  auto bad = [error](const QString& why) {
    if (error) *error = why;
    return false;
  };
  const std::string name = column.trimmed().toStdString();
  if (name.empty()) return bad(QObject::tr("the column needs a name"));
  if (static_cast<qint64>(values.size()) != cells())
    return bad(QObject::tr("column '%1' has %2 values for %3 cells").arg(column).arg(values.size()).arg(cells()));
  if (s_->fileObs.find(name))
    return bad(QObject::tr("'%1' is a column of the file; choose another name").arg(column));
  setExtraColumn(Column::makeFloats(name, std::move(values)));
  return true;
}

void DatasetDoc::rebuildObs() {
  s_->obs = s_->fileObs;
  for (const Column& c : s_->extras) s_->obs.set(c);
  // Clusters: the cluster column, from this session or from the file.
  s_->clusters.clear();
  s_->clusterCount = 0;
  const Column* c = s_->obs.find(s_->clusterKey.toStdString());
  if (c && c->kind == ColumnKind::Categorical) {
    // Labels are cluster numbers "0", "1", ...; others (named clusters) keep category order.
    std::vector<int32_t> idOfCategory(c->categories.size());
    bool numeric = true;
    for (size_t k = 0; k < c->categories.size() && numeric; ++k) {
      bool ok = false;
      idOfCategory[k] = QString::fromStdString(c->categories[k]).toInt(&ok);
      numeric = ok && idOfCategory[k] >= 0;
    }
    if (!numeric)
      for (size_t k = 0; k < idOfCategory.size(); ++k) idOfCategory[k] = static_cast<int32_t>(k);
    s_->clusters.resize(c->codes.size(), -1);
    for (size_t i = 0; i < c->codes.size(); ++i) {
      const int32_t code = c->codes[i];
      if (code >= 0 && static_cast<size_t>(code) < idOfCategory.size() && (c->missing.empty() || !c->missing[i]))
        s_->clusters[i] = idOfCategory[static_cast<size_t>(code)];
    }
    for (int32_t id : s_->clusters) s_->clusterCount = std::max(s_->clusterCount, id + 1);
  }
}

namespace {

// Labels of a column as strings per cell ("" = none), or all empty when absent.
std::vector<std::string> labelsOf(const Column* c, size_t n) {
  std::vector<std::string> labels(n);
  if (!c) return labels;
  for (size_t i = 0; i < n && i < c->size(); ++i) labels[i] = c->valueAsString(i);
  return labels;
}

// Categorical column from labels ("" = missing), categories in first-seen order... sorted.
Column categorical(const std::string& name, const std::vector<std::string>& labels) {
  Column c;
  c.name = name;
  c.kind = ColumnKind::Categorical;
  std::set<std::string> uniq;
  for (const auto& l : labels)
    if (!l.empty()) uniq.insert(l);
  c.categories.assign(uniq.begin(), uniq.end());
  c.codes.resize(labels.size(), -1);
  for (size_t i = 0; i < labels.size(); ++i)
    if (!labels[i].empty())
      c.codes[i] = static_cast<int32_t>(std::lower_bound(c.categories.begin(), c.categories.end(), labels[i]) -
                                        c.categories.begin());
  return c;
}

bool badName(const QString& s) { return s.trimmed().isEmpty() || s.contains('/'); }

}  // namespace

bool DatasetDoc::labelCells(const QString& column, const QString& label, const std::vector<int64_t>& rows,
                            QString* error) {
  auto err = [&](const QString& m) {
    if (error) *error = m;
    return false;
  };
  if (badName(column)) return err("an annotation column needs a name without '/'");
  if (label.trimmed().isEmpty()) return err("the label must not be empty");
  if (rows.empty()) return err("no cells selected: select cells on the map or in the table first");
  const size_t n = static_cast<size_t>(s_->cells);
  for (int64_t r : rows)
    if (r < 0 || static_cast<size_t>(r) >= n)
      return err(QString("cell %1 does not exist (the dataset has %2 cells)").arg(r).arg(n));
  if (column.toStdString() == s_->clusterKey.toStdString())
    return err("'" + column + "' holds the clusters; choose another column name for annotations");
  const Column* existing = s_->obs.find(column.toStdString());
  if (existing && existing->kind == ColumnKind::Float)
    return err("obs column '" + column + "' holds numbers; choose a new column name for the labels");
  std::vector<std::string> labels = labelsOf(existing, n);
  const std::string l = label.trimmed().toStdString();
  for (int64_t r : rows) labels[static_cast<size_t>(r)] = l;
  setExtraColumn(categorical(column.toStdString(), labels));
  if (!s_->annotations.contains(column)) s_->annotations << column;
  return true;
}

bool DatasetDoc::renameClusters(const QString& column, const QMap<int, QString>& names, QString* error) {
  auto err = [&](const QString& m) {
    if (error) *error = m;
    return false;
  };
  if (badName(column)) return err("an annotation column needs a name without '/'");
  if (s_->clusterCount == 0) return err("there are no clusters yet: compute clusters first");
  if (column == s_->clusterKey) return err("choose a new column name: '" + column + "' holds the clusters themselves");
  std::vector<std::string> labels(s_->clusters.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const int32_t k = s_->clusters[i];
    if (k < 0) continue;
    const QString nm = names.value(k).trimmed();
    labels[i] = (nm.isEmpty() ? QString::number(k) : nm).toStdString();
  }
  setExtraColumn(categorical(column.toStdString(), labels));
  if (!s_->annotations.contains(column)) s_->annotations << column;
  return true;
}

// ---------------------------------------------------------------------------------------------
// AppSettings.

AppSettings::AppSettings(const QString& organisation, const QString& application)
    : settings_(std::make_unique<QSettings>(organisation, application)) {}
AppSettings::AppSettings(const QString& iniFile) : settings_(std::make_unique<QSettings>(iniFile, QSettings::IniFormat)) {}

QString AppSettings::modelFile() const { return settings_->value("embed/modelFile").toString(); }
void AppSettings::setModelFile(const QString& p) { settings_->setValue("embed/modelFile", p); }
QString AppSettings::assetsDir() const { return settings_->value("embed/assetsDir").toString(); }
void AppSettings::setAssetsDir(const QString& p) { settings_->setValue("embed/assetsDir", p); }
QString AppSettings::device() const { return settings_->value("embed/device", "cpu").toString(); }
void AppSettings::setDevice(const QString& d) { settings_->setValue("embed/device", d); }
int AppSettings::batchSize() const { return settings_->value("embed/batchSize", 32).toInt(); }
void AppSettings::setBatchSize(int n) { settings_->setValue("embed/batchSize", n); }
QStringList AppSettings::recentFiles() const { return settings_->value("recentFiles").toStringList(); }
void AppSettings::addRecentFile(const QString& path) {
  const QString abs = QFileInfo(path).absoluteFilePath();
  QStringList list = recentFiles();
  list.removeAll(abs);
  list.prepend(abs);
  while (list.size() > maxRecent()) list.removeLast();
  settings_->setValue("recentFiles", list);
}
void AppSettings::removeRecentFile(const QString& path) {
  QStringList list = recentFiles();
  list.removeAll(QFileInfo(path).absoluteFilePath());
  settings_->setValue("recentFiles", list);
}
void AppSettings::sync() { settings_->sync(); }

// ---------------------------------------------------------------------------------------------
// Workspace: documents.

Workspace::Workspace(JobManager* jobs, AppSettings* settings, QObject* parent)
    : QObject(parent), jobs_(jobs), settings_(settings) {}

Workspace::~Workspace() = default;

DatasetDoc* Workspace::document(const QString& path) const {
  const QString abs = QFileInfo(path).absoluteFilePath();
  for (DatasetDoc* d : docs_)
    if (d->path() == abs) return d;
  return nullptr;
}

void Workspace::close(DatasetDoc* doc) {
  if (!docs_.removeOne(doc)) return;
  markers_.remove(doc);
  Q_EMIT documentClosed(doc);
  doc->deleteLater();
}

const QMap<int, QStringList>& Workspace::markers(DatasetDoc* doc) const {
  static const QMap<int, QStringList> none;
  auto it = markers_.find(doc);
  return it == markers_.end() ? none : *it;
}

Job* Workspace::open(const QString& path) {
  const QString abs = QFileInfo(path).absoluteFilePath();
  const QString name = "Open " + QFileInfo(path).fileName();
  if (document(abs)) return jobs_->start(name, [](JobContext&) {});
  auto state = std::make_shared<std::unique_ptr<DatasetDoc::State>>();
  return jobs_->start(
      name,
      [abs, state](JobContext& ctx) {
        ctx.report(0, 0, "reading");
        try {
          *state = loadDocState(abs, ctx);
        } catch (const Error& e) {
          if (e.kind() == ErrorKind::Cancelled) throw;
          throw Error(e.kind(), e.file(), openAdvice(e));
        }
      },
      [this, abs, state] {
        if (document(abs)) return;  // opened twice at once: keep the first
        auto* doc = new DatasetDoc(std::move(*state), this);
        docs_.push_back(doc);
        if (settings_) settings_->addRecentFile(abs);
        Q_EMIT documentOpened(doc);
      });
}

}  // namespace uce::gui
