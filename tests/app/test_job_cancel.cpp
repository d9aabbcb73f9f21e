// The map and cluster jobs as the job panel shows them: the bar moves inside the kNN graph and
// inside the UMAP layout (not only between them) and reads as a percentage, and Cancel ends a
// running job as Cancelled within a moment, wherever it is, leaving the document as it was.
// Data: 40,000 cells with a random 128-d clustered embedding (obsm["X_uce"]; its exact kNN graph
// alone takes seconds) and a 2-d one (obsm["X_umap"], whose UMAP is quick to reach the layout).
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include "docks.h"
#include "jobs.h"
#include "test_support.h"
#include "workspace.h"

using namespace uce::gui;

namespace {

const char* kMake = R"PY(
import sys, anndata as ad, numpy as np, scipy.sparse as sp
rng = np.random.default_rng(0)
n = 40000
lab = rng.integers(0, 25, n)
emb = (rng.normal(0, 3, (25, 128))[lab] + rng.normal(0, 1, (n, 128))).astype(np.float32)
flat = (rng.normal(0, 2, (25, 2))[lab] + rng.normal(0, 1, (n, 2))).astype(np.float32)
a = ad.AnnData(X=sp.random(n, 20, density=0.1, format='csr', dtype=np.float32, random_state=1))
a.obsm['X_uce'] = emb
a.obsm['X_umap'] = flat
a.write_h5ad(sys.argv[1])
)PY";

bool waitJob(Job* job, int timeoutMs = 300000) {
  if (job->isFinished()) return true;
  QSignalSpy spy(job, &Job::finished);
  return spy.wait(timeoutMs) || job->isFinished();
}

// Cancels `job` at the first progress event that satisfies `when`; returns the milliseconds from
// cancel() to the job's end (finished() on the GUI thread), or -1 when it never got there.
struct CancelProbe {
  Job* job;
  QElapsedTimer sinceCancel;
  qint64 latencyMs = -1;
  qint64 doneAtCancel = -1;
  QString stageAtCancel;
  QString describedAtCancel;  // the job panel's line under the job's name
  std::set<qint64> doneSeen;  // distinct bar positions before the cancel
  template <class When>
  CancelProbe(Job* j, When when) : job(j) {
    QObject::connect(job, &Job::progressChanged, job, [this, when] {
      if (sinceCancel.isValid()) return;
      doneSeen.insert(job->done());
      if (!when(*job)) return;
      stageAtCancel = job->stage();
      doneAtCancel = job->done();
      describedAtCancel = JobsDock::describe(*job);
      sinceCancel.start();
      job->cancel();
    });
    QObject::connect(job, &Job::finished, job, [this] {
      if (sinceCancel.isValid()) latencyMs = sinceCancel.elapsed();
    });
  }
};

}  // namespace

class TestJobCancel : public QObject {
  Q_OBJECT

  QTemporaryDir tmp_;
  JobManager* jobs_ = nullptr;
  Workspace* ws_ = nullptr;
  DatasetDoc* doc_ = nullptr;

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    const QString file = tmp_.filePath("cells.h5ad");
    QString out, err;
    QFile script(tmp_.filePath("make.py"));
    QVERIFY(script.open(QIODevice::WriteOnly));
    script.write(kMake);
    script.close();
    const int rc = uce::test::run("/usr/bin/python3", {script.fileName(), file}, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    jobs_ = new JobManager(this);
    ws_ = new Workspace(jobs_, nullptr, this);
    Job* open = ws_->open(file);
    QVERIFY(waitJob(open));
    QVERIFY2(open->status() == JobStatus::Done, qPrintable(open->errorText()));
    doc_ = ws_->documents().value(0);
    QVERIFY(doc_ && doc_->obsm("X_uce") && doc_->obsm("X_umap"));
    QCOMPARE(doc_->obsm("X_uce")->cols, int64_t(128));
  }

  void mapCancelledInsideTheKnnGraph() {
    UmapRequest r;
    r.seed = 1;
    Job* job = ws_->computeUmap(doc_, r);
    // Cancel once the job has run a second and the bar has moved inside the kNN graph.
    CancelProbe probe(job, [](const Job& j) {
      return j.stage().contains("kNN graph") && j.done() > 0 && j.elapsedSeconds() >= 1.0;
    });
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Cancelled,
             qPrintable(QString(jobStatusName(job->status())) + " " + job->errorText()));
    QVERIFY2(probe.latencyMs >= 0, "the job ended before the cancel");
    // Less than a third of the bar after a second or more: the job would have run > 2 s.
    QVERIFY2(probe.doneAtCancel > 0 && probe.doneAtCancel < 333, qPrintable(QString::number(probe.doneAtCancel)));
    QVERIFY2(probe.doneSeen.size() >= 2, "the bar did not move inside the kNN graph");
    QVERIFY2(job->errorText().contains("kNN graph"), qPrintable(job->errorText()));
    // The panel shows how far the map is as a percentage, not as thousandths ("15 / 1000").
    QVERIFY2(probe.describedAtCancel.contains(QString("%1 %").arg(probe.doneAtCancel / 10)) &&
                 !probe.describedAtCancel.contains("/ 1000"),
             qPrintable(probe.describedAtCancel));
    qInfo("map job cancelled in '%s' at %lld/1000 after %.1f s: ended %lld ms after cancel()",
          qPrintable(probe.stageAtCancel), probe.doneAtCancel, job->elapsedSeconds(), probe.latencyMs);
    QVERIFY2(probe.latencyMs < 5000, qPrintable(QString::number(probe.latencyMs)));
    // The document is untouched: the 2-d input still is its X_umap.
    QCOMPARE(doc_->obsm("X_umap")->cols, int64_t(2));
    QVERIFY(!doc_->isModified());
  }

  void mapCancelledInsideTheLayout() {
    UmapRequest r;
    r.seed = 2;
    r.useRep = "X_umap";  // 2-d: the kNN graph is quick, the 200 epochs are not
    Job* job = ws_->computeUmap(doc_, r);
    CancelProbe probe(job, [](const Job& j) { return j.stage().contains("UMAP layout") && j.done() < 900; });
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Cancelled,
             qPrintable(QString(jobStatusName(job->status())) + " " + job->errorText()));
    QVERIFY2(probe.latencyMs >= 0, "the job ended before the cancel");
    QVERIFY2(probe.doneSeen.size() >= 3, qPrintable(QString::number(probe.doneSeen.size())));
    qInfo("map job cancelled in '%s' at %lld/1000 after %.1f s: ended %lld ms after cancel()",
          qPrintable(probe.stageAtCancel), probe.doneAtCancel, job->elapsedSeconds(), probe.latencyMs);
    QVERIFY2(probe.latencyMs < 5000, qPrintable(QString::number(probe.latencyMs)));
    QVERIFY(!doc_->isModified());
  }

  void clusterCancelledInsideTheKnnGraph() {
    ClusterRequest r;
    Job* job = ws_->cluster(doc_, r);
    CancelProbe probe(job, [](const Job& j) {
      return j.stage().contains("kNN graph") && j.done() > 0 && j.elapsedSeconds() >= 0.5;
    });
    QVERIFY(waitJob(job));
    QVERIFY2(job->status() == JobStatus::Cancelled,
             qPrintable(QString(jobStatusName(job->status())) + " " + job->errorText()));
    QVERIFY2(probe.latencyMs >= 0, "the job ended before the cancel");
    qInfo("cluster job cancelled in '%s' at %lld/1000 after %.1f s: ended %lld ms after cancel()",
          qPrintable(probe.stageAtCancel), probe.doneAtCancel, job->elapsedSeconds(), probe.latencyMs);
    QVERIFY2(probe.latencyMs < 5000, qPrintable(QString::number(probe.latencyMs)));
    QVERIFY(doc_->clusters().empty() || doc_->clusterCount() == 0);
  }

  // Embeddings take the compute lane: one at a time (two at once on a few cores ran no faster and
  // held twice the memory). The second shows that it waits, can be cancelled while it waits,
  // and starts when the first ends.
  void embeddingsTakeTheComputeLaneOneAtATime() {
    const QString waiting = "waiting for another embedding to finish";
    std::atomic<bool> release{false};
    std::atomic<int> inside{0}, most{0}, holder{-1};
    auto work = [&](int id) {
      return [&, id](JobContext& ctx) {
        ComputeLane lane(ctx, waiting);
        const int now = ++inside;
        most = std::max(most.load(), now);
        holder = id;
        while (!release) {
          ctx.checkCancel();
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        --inside;
      };
    };
    Job* a = jobs_->start("lane 0", work(0));
    Job* b = jobs_->start("lane 1", work(1));
    QTRY_VERIFY_WITH_TIMEOUT(holder >= 0, 10000);
    Job* first = holder == 0 ? a : b;
    Job* second = holder == 0 ? b : a;
    QTRY_COMPARE_WITH_TIMEOUT(second->stage(), waiting, 10000);
    QCOMPARE(ComputeLane::holders(), 1);
    QCOMPARE(second->status(), JobStatus::Running);
    QCOMPARE(second->total(), qint64(0));  // a busy bar: nothing to count while waiting

    // Cancel while waiting: it ends at once, the first keeps the lane.
    second->cancel();
    QVERIFY(waitJob(second, 5000));
    QCOMPARE(second->status(), JobStatus::Cancelled);
    QVERIFY(!first->isFinished());
    QCOMPARE(inside.load(), 1);

    // A third waits for the first and runs when it ends.
    Job* third = jobs_->start("lane 2", work(2));
    QTRY_COMPARE_WITH_TIMEOUT(third->stage(), waiting, 10000);
    release = true;
    QVERIFY(waitJob(first, 10000) && waitJob(third, 10000));
    QCOMPARE(first->status(), JobStatus::Done);
    QCOMPARE(third->status(), JobStatus::Done);
    QCOMPARE(most.load(), 1);
    QCOMPARE(holder.load(), 2);
    QCOMPARE(ComputeLane::holders(), 0);
  }

  void cleanupTestCase() {
    jobs_->cancelAll();
    QVERIFY(jobs_->waitForAll(60000));
  }
};

QTEST_MAIN(TestJobCancel)
#include "test_job_cancel.moc"
