// JobsDock and DatasetsDock.
#include <QFrame>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "docks.h"

namespace uce::gui {

// ---------------------------------------------------------------------------------------------
// JobsDock.

namespace {

QString seconds(double s) {
  if (s < 0) return QString();
  if (s < 90) return QString("%1 s").arg(s < 10 ? QString::number(s, 'f', 1) : QString::number(std::lround(s)));
  if (s < 5400) return QString("%1 min").arg(std::lround(s / 60));
  return QString("%1 h").arg(s / 3600, 0, 'f', 1);
}

}  // namespace

QString JobsDock::describe(const Job& job) {
  switch (job.status()) {
    case JobStatus::Queued: return QObject::tr("waiting for a free worker");
    case JobStatus::Running: {
      QStringList parts;
      if (!job.stage().isEmpty()) parts << job.stage();
      if (job.total() > 0 && job.isFraction())
        parts << QString("%1 %").arg(job.done() * 100 / job.total());
      else if (job.total() > 0)
        parts << QString("%1 / %2").arg(job.done()).arg(job.total());
      if (job.rate() > 0) parts << QObject::tr("%1/s").arg(job.rate() >= 100 ? QString::number(std::lround(job.rate()))
                                                                             : QString::number(job.rate(), 'f', 1));
      if (job.etaSeconds() >= 0 && job.total() > 0) parts << QObject::tr("ETA %1").arg(seconds(job.etaSeconds()));
      parts << QObject::tr("%1 elapsed").arg(seconds(job.elapsedSeconds()));
      return parts.join(QString::fromUtf8(" \u00b7 "));
    }
    case JobStatus::Done: return QObject::tr("done in %1").arg(seconds(job.elapsedSeconds()));
    case JobStatus::Cancelled:
      return QObject::tr("cancelled") + (job.errorText().isEmpty() ? QString() : ": " + job.errorText());
    case JobStatus::Failed: return QObject::tr("failed: %1").arg(job.errorText());
  }
  return {};
}

JobsDock::JobsDock(JobManager* jobs, QWidget* parent) : QDockWidget(tr("Jobs"), parent) {
  setObjectName("jobsDock");
  auto* body = new QWidget(this);
  auto* v = new QVBoxLayout(body);
  auto* top = new QHBoxLayout;
  auto* clear = new QPushButton(tr("Clear finished"), body);
  clear->setObjectName("clearFinished");
  connect(clear, &QPushButton::clicked, this, &JobsDock::clearFinished);
  top->addStretch(1);
  top->addWidget(clear);
  v->addLayout(top);
  auto* scroll = new QScrollArea(body);
  scroll->setWidgetResizable(true);
  auto* list = new QWidget(scroll);
  rowsLayout_ = new QVBoxLayout(list);
  rowsLayout_->setContentsMargins(2, 2, 2, 2);
  rowsLayout_->addStretch(1);
  scroll->setWidget(list);
  v->addWidget(scroll, 1);
  setWidget(body);
  for (Job* j : jobs->jobs()) addJob(j);
  connect(jobs, &JobManager::jobAdded, this, &JobsDock::addJob);
}

void JobsDock::addJob(Job* job) {
  if (rows_.contains(job)) return;
  Row r;
  auto* frame = new QFrame;
  frame->setFrameShape(QFrame::StyledPanel);
  r.frame = frame;
  auto* g = new QGridLayout(r.frame);
  g->setContentsMargins(6, 4, 6, 4);
  auto* name = new QLabel(QString("<b>%1</b>").arg(job->name().toHtmlEscaped()), r.frame);
  name->setTextFormat(Qt::RichText);
  name->setWordWrap(true);
  r.bar = new QProgressBar(r.frame);
  r.bar->setRange(0, 1000);
  r.bar->setValue(0);
  r.detail = new QLabel(r.frame);
  r.detail->setWordWrap(true);
  r.detail->setTextInteractionFlags(Qt::TextSelectableByMouse);
  r.cancel = new QToolButton(r.frame);
  r.cancel->setText(tr("Cancel"));
  r.cancel->setToolTip(tr("Stop this job"));
  connect(r.cancel, &QToolButton::clicked, job, &Job::cancel);
  g->addWidget(name, 0, 0);
  g->addWidget(r.cancel, 0, 1, 2, 1);
  g->addWidget(r.bar, 1, 0);
  g->addWidget(r.detail, 2, 0, 1, 2);
  rowsLayout_->insertWidget(0, r.frame);  // newest first
  rows_.insert(job, r);
  connect(job, &Job::progressChanged, this, [this, job] { update(job); });
  connect(job, &Job::statusChanged, this, [this, job] { update(job); });
  connect(job, &QObject::destroyed, this, [this, job] {
    auto it = rows_.find(job);
    if (it == rows_.end()) return;
    it->frame->deleteLater();
    rows_.erase(it);
  });
  update(job);
}

void JobsDock::update(Job* job) {
  auto it = rows_.find(job);
  if (it == rows_.end()) return;
  const Row& r = *it;
  const JobStatus s = job->status();
  if (s == JobStatus::Running && job->total() <= 0) {
    r.bar->setRange(0, 0);  // busy indicator: the task cannot say how far it is
  } else {
    r.bar->setRange(0, 1000);
    double f = job->total() > 0 ? double(job->done()) / double(job->total()) : 0.0;
    if (s == JobStatus::Done) f = 1.0;
    r.bar->setValue(static_cast<int>(std::lround(std::clamp(f, 0.0, 1.0) * 1000)));
  }
  r.detail->setText(describe(*job));
  r.detail->setStyleSheet(s == JobStatus::Failed ? "color: #b00020" : "");
  r.cancel->setEnabled(!job->isFinished());
  r.cancel->setVisible(!job->isFinished());
}

void JobsDock::clearFinished() {
  for (auto it = rows_.begin(); it != rows_.end();) {
    if (it.key()->isFinished()) {
      it->frame->deleteLater();
      it = rows_.erase(it);
    } else {
      ++it;
    }
  }
}

QProgressBar* JobsDock::progressBar(Job* job) const { return rows_.value(job).bar; }
QLabel* JobsDock::detailLabel(Job* job) const { return rows_.value(job).detail; }
QToolButton* JobsDock::cancelButton(Job* job) const { return rows_.value(job).cancel; }

// ---------------------------------------------------------------------------------------------
// DatasetsDock.

QString DatasetsDock::describe(const DatasetDoc& doc) {
  QStringList parts;
  parts << QObject::tr("%1 cells").arg(doc.cells());
  if (doc.hasEmbedding()) parts << QObject::tr("embedded");
  if (doc.obsm("X_umap")) parts << QObject::tr("map");
  if (doc.clusterCount() > 0) parts << QObject::tr("%1 clusters").arg(doc.clusterCount());
  if (doc.isModified()) parts << QObject::tr("unsaved results");
  return doc.name() + "\n" + parts.join(QString::fromUtf8(" \u00b7 "));
}

DatasetsDock::DatasetsDock(Workspace* workspace, QWidget* parent) : QDockWidget(tr("Datasets"), parent), ws_(workspace) {
  setObjectName("datasetsDock");
  auto* body = new QWidget(this);
  auto* v = new QVBoxLayout(body);
  list_ = new QListWidget(body);
  list_->setToolTip(tr("Open datasets; the chosen one is shown on the map. Drop files here to open them."));
  v->addWidget(list_, 1);
  auto* h = new QHBoxLayout;
  auto* open = new QPushButton(tr("Open..."), body);
  auto* close = new QPushButton(tr("Close"), body);
  h->addWidget(open);
  h->addWidget(close);
  h->addStretch(1);
  v->addLayout(h);
  setWidget(body);
  connect(open, &QPushButton::clicked, this, &DatasetsDock::openRequested);
  connect(close, &QPushButton::clicked, this, [this] {
    if (active_) Q_EMIT closeRequested(active_);
  });
  connect(list_, &QListWidget::currentRowChanged, this, [this](int row) {
    if (updating_) return;
    DatasetDoc* d = ws_->documents().value(row);
    if (d && d != active_) {
      active_ = d;
      Q_EMIT activated(d);
    }
  });
  connect(ws_, &Workspace::documentOpened, this, [this](DatasetDoc* d) {
    connect(d, &DatasetDoc::changed, this, &DatasetsDock::refresh);
    refresh();
  });
  connect(ws_, &Workspace::documentClosed, this, [this](DatasetDoc* d) {
    if (d == active_) {
      active_ = nullptr;
      refresh();
      DatasetDoc* next = ws_->documents().value(0);
      setActive(next);
      if (!next) Q_EMIT activated(nullptr);
    } else {
      refresh();
    }
  });
}

void DatasetsDock::refresh() {
  updating_ = true;
  const QVector<DatasetDoc*> docs = ws_->documents();
  while (list_->count() > docs.size()) delete list_->takeItem(list_->count() - 1);
  for (int i = 0; i < docs.size(); ++i) {
    if (i >= list_->count()) list_->addItem(QString());
    list_->item(i)->setText(describe(*docs[i]));
    list_->item(i)->setToolTip(docs[i]->path());
  }
  list_->setCurrentRow(static_cast<int>(docs.indexOf(active_)));
  updating_ = false;
}

void DatasetsDock::setActive(DatasetDoc* doc) {
  if (doc == active_) return;
  active_ = doc;
  refresh();
  if (doc) Q_EMIT activated(doc);
}

}  // namespace uce::gui
