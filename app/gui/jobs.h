#pragma once
// Long tasks of the desktop app (open, embed, UMAP, clustering, DE, export) run as Jobs on
// worker threads. A job's work function reports progress through its JobContext; the Job (a
// QObject living on the GUI thread) learns of it through queued calls throttled to ~10 Hz, so
// no task floods the event loop. Cancel is cooperative: JobContext::report()/checkCancel() tell
// the work to stop, and a work function that stops by throwing uce::Error(Cancelled) ends the
// job as Cancelled. GuiStallMonitor measures how late the GUI thread's event loop runs.
#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <QTimer>
#include <QVector>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

class QThreadPool;

namespace uce::gui {

enum class JobStatus { Queued, Running, Done, Failed, Cancelled };
const char* jobStatusName(JobStatus s);  // "queued", "running", "done", "failed", "cancelled"

class Job;

// Handed to a job's work function on its worker thread. Thread-safe.
class JobContext {
 public:
  // Progress in units (cells, genes, clusters, ...): done of total, at stage (e.g. "embedding").
  // Returns false when the user asked to cancel. Cheap: call it as often as convenient.
  bool report(qint64 done, qint64 total, const QString& stage = QString());
  // As report(), with rate (units/s) and ETA (s) supplied by the task itself.
  bool report(qint64 done, qint64 total, const QString& stage, double rate, double etaSeconds);
  // Progress with no unit to count (a map, a clustering): fraction in [0, 1] of the job, shown
  // as a percentage; kept as thousandths in done() / total() for the bar.
  bool reportFraction(double fraction, const QString& stage, double etaSeconds = -1);
  bool cancelRequested() const;
  // Throws uce::Error(Cancelled) when the user asked to cancel.
  void checkCancel() const;

 private:
  friend class Job;
  friend class JobManager;
  explicit JobContext(Job* job) : job_(job) {}
  bool post(qint64 done, qint64 total, const QString& stage, double rate, double etaSeconds, bool fraction);
  Job* job_;
};

class Job : public QObject {
  Q_OBJECT
 public:
  using Work = std::function<void(JobContext&)>;

  int id() const { return id_; }
  QString name() const { return name_; }
  // Snapshot of the progress as last delivered to the GUI thread.
  JobStatus status() const { return status_; }
  qint64 done() const { return done_; }
  qint64 total() const { return total_; }   // 0 = unknown (busy indicator)
  QString stage() const { return stage_; }
  double rate() const { return rate_; }      // units per second; 0 = unknown
  bool isFraction() const { return fraction_; }  // done() / total() are thousandths, not units
  double etaSeconds() const { return eta_; } // -1 = unknown
  double elapsedSeconds() const;
  QString errorText() const { return error_; }  // set when Failed (or Cancelled: what stopped)
  bool isFinished() const;
  int progressEvents() const { return progressEvents_; }  // progressChanged() emissions so far

 public Q_SLOTS:
  // Asks the work to stop; a queued job is cancelled at once. Safe from any thread.
  void cancel();

 Q_SIGNALS:
  void progressChanged();               // at most ~10 times a second
  void statusChanged(uce::gui::JobStatus status);
  void finished();                      // Done, Failed or Cancelled; emitted once

 private:
  friend class JobManager;
  friend class JobContext;
  Job(int id, QString name, QObject* parent);
  void runWork();                      // worker thread
  bool pollProgress();                 // GUI thread: copies new progress; true if it changed
  void setRunning();                   // GUI thread
  void finish(JobStatus status, const QString& error);  // GUI thread

  int id_;
  QString name_;
  Work work_;
  std::function<void()> onDone_;  // GUI thread, after a successful work
  std::atomic<bool> cancel_{false};
  std::atomic<int> claim_{0};     // 0 = queued, 1 = taken by a worker, 2 = cancelled while queued
  JobStatus status_ = JobStatus::Queued;
  qint64 done_ = 0, total_ = 0;
  QString stage_;
  double rate_ = 0, eta_ = -1;
  bool fraction_ = false;
  QString error_;
  int progressEvents_ = 0;
  QElapsedTimer clock_;           // started when the job starts running
  // Written by the worker (JobContext::report), read by the GUI thread's 10 Hz poll.
  struct Shared {
    std::mutex mutex;
    qint64 done = 0, total = 0;
    QString stage;
    double rate = -1, eta = -1;  // -1 = derive from the clock
    bool fraction = false;       // set by reportFraction()
    quint64 version = 0;         // bumped by every report
  };
  Shared shared_;
  quint64 seenVersion_ = 0;
};

// Runs jobs on its own thread pool (a few at once; the rest wait as Queued). Owns the jobs.
class JobManager : public QObject {
  Q_OBJECT
 public:
  explicit JobManager(QObject* parent = nullptr, int maxConcurrent = 2);
  ~JobManager() override;  // cancels every job and waits for the workers

  // Starts `work` on a worker thread. onDone runs on the GUI thread when work returned normally
  // (to apply its results); an exception thrown there fails the job too. Returns the job.
  Job* start(const QString& name, Job::Work work, std::function<void()> onDone = {});
  QVector<Job*> jobs() const { return jobs_; }
  QVector<Job*> activeJobs() const;  // queued or running
  void cancelAll();
  // Processes events until every job has finished (and none was started by their handlers
  // within 50 ms) or timeoutMs passed; true when all finished.
  // For tests and shutdown; the GUI itself never waits.
  bool waitForAll(int timeoutMs);

 Q_SIGNALS:
  void jobAdded(uce::gui::Job* job);
  void jobFinished(uce::gui::Job* job);

 private:
  void poll();  // 10 Hz while jobs run: delivers their progress

  QThreadPool* pool_;
  QTimer pollTimer_;
  QVector<Job*> jobs_;
  int nextId_ = 1;
};

// One job at a time may hold the machine's compute (an embedding: its GEMMs already use every
// core, so two at once ran no faster than one after the other (the demo: 61 s against 55 s) and
// held twice the memory). A job takes the lane with
// `ComputeLane lane(ctx, "waiting for ...")`: it reports that stage while another job holds the
// lane, stays cancellable, and frees the lane when it goes out of scope (also on an exception).
class ComputeLane {
 public:
  ComputeLane(JobContext& ctx, const QString& waitingStage);
  ~ComputeLane();
  ComputeLane(const ComputeLane&) = delete;
  ComputeLane& operator=(const ComputeLane&) = delete;
  static int holders();  // 0 or 1: for tests
};

// Worst lateness of the GUI thread's event loop: a timer every intervalMs whose firing is
// measured against when it should have fired. A blocked GUI thread shows as a late tick.
class GuiStallMonitor : public QObject {
  Q_OBJECT
 public:
  explicit GuiStallMonitor(QObject* parent = nullptr, int intervalMs = 10);
  void start();  // also resets the statistics
  void stop();
  void reset();
  bool isRunning() const { return timer_.isActive(); }
  double worstStallMs() const { return worst_; }  // largest delay beyond the interval
  double meanStallMs() const { return ticks_ ? sum_ / ticks_ : 0; }
  qint64 ticks() const { return ticks_; }

 Q_SIGNALS:
  // A tick later than the threshold (default 100 ms), with its delay.
  void stalled(double ms);

 public:
  void setThresholdMs(double ms) { threshold_ = ms; }

 private:
  void tick();
  QTimer timer_;
  QElapsedTimer clock_;
  int interval_;
  qint64 lastNs_ = 0;
  double worst_ = 0, sum_ = 0, threshold_ = 100;
  qint64 ticks_ = 0;
};

}  // namespace uce::gui
