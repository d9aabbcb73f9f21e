#include "jobs.h"

#include <cmath>

#include <QCoreApplication>
#include <QEventLoop>
#include <QThreadPool>
#include <chrono>
#include <condition_variable>
#include <new>

#include "uce/core/error.h"

namespace uce::gui {

const char* jobStatusName(JobStatus s) {
  switch (s) {
    case JobStatus::Queued: return "queued";
    case JobStatus::Running: return "running";
    case JobStatus::Done: return "done";
    case JobStatus::Failed: return "failed";
    case JobStatus::Cancelled: return "cancelled";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// JobContext (worker thread).

bool JobContext::report(qint64 done, qint64 total, const QString& stage) {
  return report(done, total, stage, -1, -1);
}

bool JobContext::report(qint64 done, qint64 total, const QString& stage, double rate, double etaSeconds) {
  return post(done, total, stage, rate, etaSeconds, false);
}

bool JobContext::reportFraction(double fraction, const QString& stage, double etaSeconds) {
  constexpr qint64 kScale = 1000;
  const double f = fraction < 0 ? 0 : (fraction > 1 ? 1 : fraction);
  // No rate: thousandths per second would mean nothing to the user.
  return post(std::llround(f * kScale), kScale, stage, 0, etaSeconds, true);
}

bool JobContext::post(qint64 done, qint64 total, const QString& stage, double rate, double etaSeconds, bool fraction) {
  {
    std::lock_guard<std::mutex> lock(job_->shared_.mutex);
    auto& s = job_->shared_;
    s.done = done;
    s.total = total;
    if (!stage.isNull()) s.stage = stage;
    s.rate = rate;
    s.eta = etaSeconds;
    s.fraction = fraction;
    ++s.version;
  }
  return !cancelRequested();
}

bool JobContext::cancelRequested() const { return job_->cancel_.load(std::memory_order_relaxed); }

void JobContext::checkCancel() const {
  if (cancelRequested()) throw Error(ErrorKind::Cancelled, "", "cancelled");
}

// ---------------------------------------------------------------------------------------------
// Job.

Job::Job(int id, QString name, QObject* parent) : QObject(parent), id_(id), name_(std::move(name)) {}

double Job::elapsedSeconds() const { return clock_.isValid() ? clock_.elapsed() / 1000.0 : 0.0; }

bool Job::isFinished() const {
  return status_ == JobStatus::Done || status_ == JobStatus::Failed || status_ == JobStatus::Cancelled;
}

void Job::cancel() {
  cancel_ = true;
  int queued = 0;
  if (claim_.compare_exchange_strong(queued, 2))  // never started: it ends now
    QMetaObject::invokeMethod(this, [this] { finish(JobStatus::Cancelled, "cancelled before it started"); },
                              Qt::QueuedConnection);
}

void Job::runWork() {
  int queued = 0;
  if (!claim_.compare_exchange_strong(queued, 1)) return;  // cancelled while queued
  QMetaObject::invokeMethod(this, [this] { setRunning(); }, Qt::QueuedConnection);
  JobContext ctx(this);
  JobStatus status = JobStatus::Done;
  QString error;
  try {
    work_(ctx);
  } catch (const Error& e) {
    status = e.kind() == ErrorKind::Cancelled ? JobStatus::Cancelled : JobStatus::Failed;
    error = QString::fromStdString(e.what());
  } catch (const std::bad_alloc&) {
    status = JobStatus::Failed;
    error = QStringLiteral("out of memory: close other datasets or programs, or use a smaller file");
  } catch (const std::exception& e) {
    status = JobStatus::Failed;
    error = QString::fromStdString(e.what());
  } catch (...) {
    status = JobStatus::Failed;
    error = QStringLiteral("unexpected error");
  }
  work_ = nullptr;  // frees what the work captured, on this thread, before the GUI sees the end
  QMetaObject::invokeMethod(
      this,
      [this, status, error] {
        if (status != JobStatus::Done) return finish(status, error);
        try {
          if (onDone_) onDone_();
        } catch (const std::exception& e) {
          return finish(JobStatus::Failed, QString::fromStdString(e.what()));
        }
        finish(JobStatus::Done, QString());
      },
      Qt::QueuedConnection);
}

void Job::setRunning() {
  if (isFinished()) return;
  clock_.start();
  status_ = JobStatus::Running;
  Q_EMIT statusChanged(status_);
}

bool Job::pollProgress() {
  std::lock_guard<std::mutex> lock(shared_.mutex);
  if (shared_.version == seenVersion_) return false;
  seenVersion_ = shared_.version;
  done_ = shared_.done;
  total_ = shared_.total;
  stage_ = shared_.stage;
  fraction_ = shared_.fraction;
  const double secs = elapsedSeconds();
  rate_ = shared_.rate >= 0 ? shared_.rate : (secs > 0 ? done_ / secs : 0);
  eta_ = shared_.eta >= 0 ? shared_.eta : (rate_ > 0 && total_ > 0 ? (total_ - done_) / rate_ : -1);
  return true;
}

void Job::finish(JobStatus status, const QString& error) {
  if (isFinished()) return;
  if (pollProgress()) {
    ++progressEvents_;
    Q_EMIT progressChanged();
  }
  if (status == JobStatus::Done && total_ > 0) done_ = total_;
  if (status != JobStatus::Running) eta_ = status == JobStatus::Done ? 0 : -1;
  status_ = status;
  error_ = error;
  onDone_ = nullptr;
  Q_EMIT statusChanged(status_);
  Q_EMIT finished();
}

// ---------------------------------------------------------------------------------------------
// JobManager.

JobManager::JobManager(QObject* parent, int maxConcurrent) : QObject(parent), pool_(new QThreadPool(this)) {
  pool_->setMaxThreadCount(std::max(1, maxConcurrent));
  pool_->setExpiryTimeout(-1);
  pollTimer_.setInterval(100);
  connect(&pollTimer_, &QTimer::timeout, this, &JobManager::poll);
}

JobManager::~JobManager() {
  pollTimer_.stop();
  for (Job* j : jobs_) j->cancel_ = true;
  pool_->waitForDone();
}

Job* JobManager::start(const QString& name, Job::Work work, std::function<void()> onDone) {
  Job* job = new Job(nextId_++, name, this);
  job->work_ = std::move(work);
  job->onDone_ = std::move(onDone);
  jobs_.push_back(job);
  connect(job, &Job::finished, this, [this, job] {
    Q_EMIT jobFinished(job);
    if (activeJobs().isEmpty()) pollTimer_.stop();
  });
  Q_EMIT jobAdded(job);
  if (!pollTimer_.isActive()) pollTimer_.start();
  pool_->start([job] { job->runWork(); });
  return job;
}

QVector<Job*> JobManager::activeJobs() const {
  QVector<Job*> out;
  for (Job* j : jobs_)
    if (!j->isFinished()) out.push_back(j);
  return out;
}

void JobManager::cancelAll() {
  for (Job* j : activeJobs()) j->cancel();
}

void JobManager::poll() {
  for (Job* j : jobs_)
    if (j->status_ == JobStatus::Running && j->pollProgress()) {
      ++j->progressEvents_;
      Q_EMIT j->progressChanged();
    }
}

bool JobManager::waitForAll(int timeoutMs) {
  if (activeJobs().isEmpty()) return true;
  QEventLoop loop;
  QTimer timeout;
  timeout.setSingleShot(true);
  connect(&timeout, &QTimer::timeout, &loop, &QEventLoop::quit);
  // A finished job's handlers may start the next one through queued signals (embed, then
  // map and clusters): "all done" means nothing active for a short settle time.
  QTimer settle;
  settle.setSingleShot(true);
  connect(&settle, &QTimer::timeout, &loop, [this, &loop] {
    if (activeJobs().isEmpty()) loop.quit();
  });
  auto conn = connect(this, &JobManager::jobFinished, &loop, [this, &settle] {
    if (activeJobs().isEmpty()) settle.start(50);
  });
  auto added = connect(this, &JobManager::jobAdded, &loop, [&settle] { settle.stop(); });
  timeout.start(timeoutMs);
  loop.exec();
  disconnect(conn);
  disconnect(added);
  return activeJobs().isEmpty();
}

// ---------------------------------------------------------------------------------------------
// GuiStallMonitor.

GuiStallMonitor::GuiStallMonitor(QObject* parent, int intervalMs) : QObject(parent), interval_(intervalMs) {
  timer_.setTimerType(Qt::PreciseTimer);
  timer_.setInterval(intervalMs);
  connect(&timer_, &QTimer::timeout, this, &GuiStallMonitor::tick);
}

void GuiStallMonitor::start() {
  reset();
  clock_.start();
  lastNs_ = clock_.nsecsElapsed();
  timer_.start();
}

void GuiStallMonitor::stop() { timer_.stop(); }

void GuiStallMonitor::reset() {
  worst_ = sum_ = 0;
  ticks_ = 0;
  if (clock_.isValid()) lastNs_ = clock_.nsecsElapsed();
}

void GuiStallMonitor::tick() {
  const qint64 now = clock_.nsecsElapsed();
  const double late = std::max(0.0, (now - lastNs_) / 1e6 - interval_);
  lastNs_ = now;
  ++ticks_;
  sum_ += late;
  if (late > worst_) worst_ = late;
  if (late > threshold_) Q_EMIT stalled(late);
}

// ---------------------------------------------------------------------------------------------
// ComputeLane.

namespace {
std::mutex laneMutex;
std::condition_variable laneFree;
int laneHolders = 0;
}  // namespace

ComputeLane::ComputeLane(JobContext& ctx, const QString& waitingStage) {
  std::unique_lock<std::mutex> lock(laneMutex);
  if (laneHolders > 0) {
    lock.unlock();
    ctx.report(0, 0, waitingStage);  // a busy indicator: nothing to count yet
    lock.lock();
  }
  while (laneHolders > 0) {
    laneFree.wait_for(lock, std::chrono::milliseconds(100));
    if (ctx.cancelRequested()) {
      lock.unlock();
      ctx.checkCancel();  // throws Cancelled
    }
  }
  ++laneHolders;
}

ComputeLane::~ComputeLane() {
  {
    std::lock_guard<std::mutex> lock(laneMutex);
    --laneHolders;
  }
  laneFree.notify_one();
}

int ComputeLane::holders() {
  std::lock_guard<std::mutex> lock(laneMutex);
  return laneHolders;
}

}  // namespace uce::gui
