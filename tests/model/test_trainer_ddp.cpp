// Data-parallel pre-training (uce train --nproc P): two Gloo ranks on 127.0.0.1, each with
// batch B, reach the same weights as one rank with batch 2B after K steps (to float tolerance),
// and only rank 0 writes the metrics, the checkpoint and the model; ranks started by torchrun- or
// SLURM-style launchers join one group.
#include <QDir>
#include <QFile>
#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "test_support.h"
#include "uce/model/distributed.h"
#include "uce/model/torch_file.h"

#include <torch/torch.h>

using namespace uce::model;
using uce::test::cli;

class TestTrainerDdp : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  QString corpus_, assets_;


  QStringList trainArgs(const QString& out, int batch, int nproc) const {
    return {"train", "--corpus", corpus_, "--assets", assets_, "--out", out, "--nlayers", "2", "--d-model", "32",
            "--nhead", "4", "--d-hid", "64", "--output-dim", "32", "--sample-size", "96", "--batch-size",
            QString::number(batch), "--max-steps", "3", "--lr", "2e-3", "--warmup", "1", "--seed", "7",
            "--val-fraction", "0.1", "--val-cells", "16", "--checkpoint-every", "0", "--threads", "1",
            "--no-dropout", "--nproc", QString::number(nproc), "--quiet"};
  }

 private Q_SLOTS:
  void initTestCase() {
    QString out, err;
    const QString atlas = tmp_.filePath("atlas");
    int rc = cli({"synth", "--out", atlas, "--cells", "300", "--genes", "600", "--token-dim", "32", "--species",
                  "human,mouse", "--tissues", "kidney", "--seed", "3", "--quiet"}, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    assets_ = atlas + "/assets";
    const QStringList h5 = QDir(atlas).entryList({"*.h5ad"});
    QVERIFY(!h5.isEmpty());
    corpus_ = atlas + "/corpus.csv";
    QByteArray csv = "path,species\n";
    for (const QString& f : h5) csv += (f + "," + (f.startsWith("human") ? "human" : "mouse") + "\n").toUtf8();
    uce::test::writeAll(corpus_, csv);
  }

  void twoRanksEqualOneRankWithTheGlobalBatch() {
    if (!glooAvailable()) QSKIP("built without Gloo headers (libgloo-dev): no CPU ranks");
    const QString one = tmp_.filePath("one"), two = tmp_.filePath("two");
    QString o1, e1, o2, e2;
    int rc = cli(trainArgs(one, 8, 1), &o1, &e1);
    QVERIFY2(rc == 0, qPrintable(e1 + o1));
    rc = cli(trainArgs(two, 4, 2), &o2, &e2);
    QVERIFY2(rc == 0, qPrintable(e2 + o2));
    // Rank 0 alone reports: one summary, three metrics lines, one checkpoint.
    QCOMPARE(o2.count("steps: 3"), 1);
    const auto m1 = uce::test::lines(one + "/metrics.jsonl"), m2 = uce::test::lines(two + "/metrics.jsonl");
    QCOMPARE(m1.size(), size_t(3));
    QCOMPARE(m2.size(), size_t(3));
    for (size_t i = 0; i < 3; ++i) {
      QCOMPARE(uce::test::jsonNumber(m2[i], "step"), double(i + 1));
      QVERIFY2(std::abs(uce::test::jsonNumber(m1[i], "loss") - uce::test::jsonNumber(m2[i], "loss")) < 1e-5, (m1[i] + " vs " + m2[i]).c_str());
      QCOMPARE(uce::test::jsonNumber(m1[i], "cells_per_s") > 0, true);
    }
    QCOMPARE(QDir(two + "/checkpoints").entryList(QDir::Dirs | QDir::NoDotAndDotDot), QStringList{"step-0000003"});
    // Each rank reads only the rows of its own cells: together the two ranks read fewer rows
    // than the one rank, which reads whole blocks (validation and filtered cells included).
    // Reading every block on every rank, as before, would give twice the one rank's count.
    double rows1 = 0, rows2 = 0;
    for (size_t i = 0; i < 3; ++i) {
      rows1 += uce::test::jsonNumber(m1[i], "rows_read");
      rows2 += uce::test::jsonNumber(m2[i], "rows_read");
    }
    QVERIFY2(rows1 >= 24 && rows2 >= 24 && rows2 < rows1,
             qPrintable(QString("rows read: 1 rank %1, 2 ranks %2").arg(rows1).arg(rows2)));
    qInfo("corpus rows read for 3 steps: 1 rank %g, 2 ranks together %g", rows1, rows2);

    const NamedTensors a = loadTensorDict((one + "/model.torch").toStdString());
    const NamedTensors b = loadTensorDict((two + "/model.torch").toStdString());
    QCOMPARE(a.size(), b.size());
    // Float tolerance: the two runs sum the same gradients in another order (one batch of 8
    // against two of 4 and an all-reduce), so they differ by rounding. AdamW's first steps move
    // a weight by about lr whatever its gradient's size, so where a gradient is near zero that
    // rounding can shift a weight by a few percent of lr (4.8e-5 at lr 2e-3 on an AVX-512
    // machine). Wrong gradient averaging would move weights everywhere by ~lr: the mean
    // difference stays at rounding level, and no weight may differ by 5 % of lr.
    double worst = 0, sum = 0;
    int64_t count = 0;
    std::string worstName;
    for (size_t i = 0; i < a.size(); ++i) {
      QVERIFY(a[i].first == b[i].first);
      const at::Tensor diff = (a[i].second.to(torch::kDouble) - b[i].second.to(torch::kDouble)).abs();
      const double d = diff.max().item<double>();
      sum += diff.sum().item<double>();
      count += diff.numel();
      if (d > worst) {
        worst = d;
        worstName = a[i].first;
      }
    }
    const double mean = sum / static_cast<double>(count);
    const QString report = QString("|2 ranks - 1 rank|: max %1 at %2, mean %3").arg(worst).arg(worstName.c_str()).arg(mean);
    QVERIFY2(worst <= 1e-4 && mean <= 1e-7, qPrintable(report));
    qInfo("%s", qPrintable(report));
  }

  // The gradients are averaged while the backward pass runs (DDP's overlap): small buckets
  // start their all-reduce from the parameters' gradient hooks, with gradient accumulation (the
  // earlier micro-batch's gradient is part of what is sent). The weights must be exactly those
  // of averaging after the backward pass: each element is the same sum of two values.
  void overlappedAveragingEqualsAveragingAfterBackward() {
    if (!glooAvailable()) QSKIP("built without Gloo headers (libgloo-dev): no CPU ranks");
    const QString after = tmp_.filePath("after"), overlap = tmp_.filePath("overlap");
    QString o, e;
    QStringList a = trainArgs(after, 4, 2) << "--grad-accum" << "2" << "--grad-sync" << "after";
    int rc = cli(a, &o, &e);
    QVERIFY2(rc == 0, qPrintable(e + o));
    QStringList b = trainArgs(overlap, 4, 2) << "--grad-accum" << "2" << "--grad-bucket-mb" << "0.01";
    rc = cli(b, &o, &e);
    QVERIFY2(rc == 0, qPrintable(e + o));
    const auto ma = uce::test::lines(after + "/metrics.jsonl"), mb = uce::test::lines(overlap + "/metrics.jsonl");
    QCOMPARE(ma.size(), size_t(3));
    QCOMPARE(mb.size(), size_t(3));
    for (size_t i = 0; i < 3; ++i) {
      QCOMPARE(uce::test::jsonNumber(mb[i], "loss"), uce::test::jsonNumber(ma[i], "loss"));
      QVERIFY2(ma[i].find("sync_buckets") == std::string::npos, ma[i].c_str());
      // ~40 KB of gradients in 10 KB buckets: several, every one started inside the backward pass.
      const double buckets = uce::test::jsonNumber(mb[i], "sync_buckets");
      QVERIFY2(buckets >= 4, mb[i].c_str());
      QCOMPARE(uce::test::jsonNumber(mb[i], "sync_buckets_in_backward"), buckets);
    }
    const NamedTensors wa = loadTensorDict((after + "/model.torch").toStdString());
    const NamedTensors wb = loadTensorDict((overlap + "/model.torch").toStdString());
    QCOMPARE(wa.size(), wb.size());
    for (size_t i = 0; i < wa.size(); ++i) {
      QVERIFY(wa[i].first == wb[i].first);
      QVERIFY2(torch::equal(wa[i].second, wb[i].second), wa[i].first.c_str());
    }
    // A bad setting is refused before any rank starts.
    rc = cli(trainArgs(tmp_.filePath("bad-sync"), 4, 2) << "--grad-sync" << "later", &o, &e);
    QVERIFY(rc != 0);
    QVERIFY2(e.contains("--grad-sync"), qPrintable(e));
    rc = cli(trainArgs(tmp_.filePath("bad-bucket"), 4, 2) << "--grad-bucket-mb" << "0", &o, &e);
    QVERIFY(rc != 0);
    QVERIFY2(e.contains("--grad-bucket-mb"), qPrintable(e));
  }

  // A 2-rank run stopped after 2 steps and resumed reproduces the straight 4-step run bitwise,
  // with dropout: the checkpoint holds each rank's own stream position and RNG state. The views (a second, thinned copy of
  // each cell, down to 1 % of its UMIs) make samples fail to build, so ranks refill micro-batches
  // from their own cells and their positions drift apart.
  void twoRanksResumeFromTheirOwnStreamPositions() {
    if (!glooAvailable()) QSKIP("built without Gloo headers (libgloo-dev): no CPU ranks");
    auto args = [&](const QString& out, int steps) {
      QStringList a = trainArgs(out, 4, 2);
      a[a.indexOf("--max-steps") + 1] = QString::number(steps);
      a[a.indexOf("--warmup") + 1] = "10";  // the schedule does not depend on --max-steps
      a.removeAll("--no-dropout");          // each rank's dropout stream must continue too
      return a << "--view-consistency" << "0.1" << "--view-depth-min" << "0.3" << "--downsample-to" << "4";
    };
    const QString straight = tmp_.filePath("straight2"), split = tmp_.filePath("split2");
    QString o, e;
    int rc = cli(args(straight, 4), &o, &e);
    QVERIFY2(rc == 0, qPrintable(e + o));
    rc = cli(args(split, 2), &o, &e);
    QVERIFY2(rc == 0, qPrintable(e + o));
    QFile state(split + "/checkpoints/step-0000002/state.txt");
    QVERIFY(state.open(QIODevice::ReadOnly));
    const QString st = state.readAll();
    for (const char* k : {"rank0_index", "rank1_index", "rank0_taken", "rank1_taken"})
      QVERIFY2(st.contains(k), qPrintable(st));
    auto stateValue = [&](const QString& key) {
      for (const QString& line : st.split('\n'))
        if (line.startsWith(key + " ")) return line.mid(key.size() + 1).toLongLong();
      return -1LL;
    };
    // Without refills rank 0 would stand after cell 12 (runs 0 and 2 of 4 cells), rank 1 after 16.
    QVERIFY2(stateValue("rank0_taken") + stateValue("rank1_taken") > 28,
             qPrintable("no micro-batch was refilled, so the positions did not drift apart:\n" + st));
    rc = cli(args(split, 4) << "--resume", &o, &e);
    QVERIFY2(rc == 0, qPrintable(e + o));
    const auto ma = uce::test::lines(straight + "/metrics.jsonl"), mb = uce::test::lines(split + "/metrics.jsonl");
    QCOMPARE(ma.size(), size_t(4));
    QCOMPARE(mb.size(), size_t(4));
    for (size_t i = 0; i < 4; ++i)
      for (const char* k : {"loss", "view_nce", "grad_norm"})
        QVERIFY2(uce::test::jsonNumber(ma[i], k) == uce::test::jsonNumber(mb[i], k), (ma[i] + " vs " + mb[i]).c_str());
    const NamedTensors wa = loadTensorDict((straight + "/model.torch").toStdString());
    const NamedTensors wb = loadTensorDict((split + "/model.torch").toStdString());
    QCOMPARE(wa.size(), wb.size());
    for (size_t i = 0; i < wa.size(); ++i) QVERIFY2(torch::equal(wa[i].second, wb[i].second), wa[i].first.c_str());
    qInfo("%s", qPrintable(st.split('\n').filter("rank").join(", ")));
  }

  // Ranks started by a launcher join its group: with torchrun's variables (RANK, WORLD_SIZE,
  // LOCAL_RANK) or SLURM's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), and MASTER_ADDR /
  // MASTER_PORT, two processes started by hand train the weights that --nproc 2 trains, bit
  // for bit (the same ranks, the same sums), and --nproc is ignored.
  void launcherVariablesJoinOneGroup() {
    if (!glooAvailable()) QSKIP("built without Gloo headers (libgloo-dev): no CPU ranks");
    const QString ref = tmp_.filePath("launch-nproc");
    QString o, e;
    QVERIFY2(cli(trainArgs(ref, 4, 2), &o, &e) == 0, qPrintable(e + o));
    const NamedTensors want = loadTensorDict((ref + "/model.torch").toStdString());
    for (const bool slurm : {false, true}) {
      const QString out = tmp_.filePath(slurm ? "launch-slurm" : "launch-torchrun");
      const QString port = QString::number(freeLocalPort());
      std::vector<std::unique_ptr<QProcess>> ranks;
      for (int r = 0; r < 2; ++r) {
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"})
          env.remove(k);
        const QString rank = QString::number(r);
        if (slurm) {
          env.insert("SLURM_PROCID", rank);
          env.insert("SLURM_NTASKS", "2");
          env.insert("SLURM_LOCALID", rank);
        } else {
          env.insert("RANK", rank);
          env.insert("WORLD_SIZE", "2");
          env.insert("LOCAL_RANK", rank);
        }
        env.insert("MASTER_ADDR", "127.0.0.1");
        env.insert("MASTER_PORT", port);
        auto p = std::make_unique<QProcess>();
        p->setProcessEnvironment(env);
        p->start(UCE_CLI, trainArgs(out, 4, 3));  // --nproc 3: ignored under a launcher
        ranks.push_back(std::move(p));
      }
      for (int r = 0; r < 2; ++r) {
        QProcess& p = *ranks[static_cast<size_t>(r)];
        QVERIFY(p.waitForFinished(180000));
        QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0,
                 qPrintable(QString("%1 rank %2: %3").arg(slurm ? "SLURM" : "torchrun").arg(r).arg(QString(p.readAllStandardError()))));
      }
      QCOMPARE(uce::test::lines(out + "/metrics.jsonl").size(), size_t(3));
      const NamedTensors got = loadTensorDict((out + "/model.torch").toStdString());
      QCOMPARE(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) QVERIFY2(torch::equal(got[i].second, want[i].second), got[i].first.c_str());
    }
  }

  void badLauncherVariablesAreReported() {
    QString o, e;
    qputenv("WORLD_SIZE", "2");
    qputenv("RANK", "5");
    const int rc = cli(trainArgs(tmp_.filePath("bad"), 4, 1), &o, &e);
    qunsetenv("WORLD_SIZE");
    qunsetenv("RANK");
    QVERIFY(rc != 0);
    QVERIFY2(e.contains("RANK"), qPrintable(e));
  }
};

QTEST_GUILESS_MAIN(TestTrainerDdp)
#include "test_trainer_ddp.moc"
