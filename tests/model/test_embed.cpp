// End to end: `uce synth` -> `uce init-model` -> embedding, read back by anndata. Unit-norm rows,
// the same result at 1 and 2 threads and at two batch sizes, resume after cancel, the real
// PBMC file, and the errors a user meets first.
#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include "test_support.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/model/embedder.h"
#include "uce/model/host_memory.h"

#include <thread>

using namespace uce::model;
using uce::test::cli;
using uce::test::python;

class TestEmbed : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  QString data_, assets_, model_;

  EmbedOptions base(const QString& out) const {
    EmbedOptions o;
    o.input = data_.toStdString();
    o.output = out.toStdString();
    o.assetsDir = assets_.toStdString();
    o.modelFile = model_.toStdString();
    o.species = "human";
    o.sampleSize = 256;
    o.padLength = 320;
    o.chunkCells = 128;
    o.seed = 3;
    return o;
  }

  static uce::DenseMatrix xuce(const QString& path) {
    return uce::openDataset(path.toStdString())->readObsm("X_uce");
  }

  static double maxDiff(const uce::DenseMatrix& a, const uce::DenseMatrix& b) {
    double m = 0;
    for (size_t i = 0; i < a.data.size(); ++i) {
      if (std::isnan(a.data[i]) != std::isnan(b.data[i])) return 1e9;
      if (!std::isnan(a.data[i])) m = std::max(m, double(std::abs(a.data[i] - b.data[i])));
    }
    return m;
  }

 private Q_SLOTS:
  void initTestCase() {
    QString out, err;
    int rc = cli({"synth", "--out", tmp_.filePath("atlas"), "--cells", "500", "--genes", "1500", "--token-dim",
                  "32", "--single-dataset", "--seed", "11", "--quiet"}, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    QStringList h5 = QDir(tmp_.filePath("atlas")).entryList({"*.h5ad"});
    QCOMPARE(h5.size(), 1);
    data_ = tmp_.filePath("atlas/" + h5.first());
    assets_ = tmp_.filePath("atlas/assets");
    model_ = tmp_.filePath("model.torch");
    rc = cli({"init-model", "--assets", assets_, "--out", model_, "--layers", "2", "--d-model", "32", "--nhead", "4",
              "--d-hid", "64", "--output-dim", "24", "--seed", "5"}, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
  }

  void cliEmbedReadByAnndata() {
    QString out, err, outFile = tmp_.filePath("cli.h5ad");
    int rc = cli({"embed", "--adata", data_, "--out", outFile, "--assets", assets_, "--model", model_, "--species",
                  "human", "--batch-size", "16", "--seed", "3", "--sample-size", "256", "--pad-length", "320", "--quiet"},
                 &out, &err);
    QVERIFY2(rc == 0, qPrintable(err + out));
    QVERIFY(out.contains("cells: 500"));
    QVERIFY(!QFile::exists(outFile + ".uce-resume"));
    QString py;
    rc = python(QString(R"(
import anndata, numpy as np
a = anndata.read_h5ad('%1')
e = a.obsm['X_uce']
kept = a.obs['uce_kept'].values.astype(bool)
assert e.dtype == np.float32 and e.shape == (500, 24), (e.dtype, e.shape)
n = np.linalg.norm(e[kept], axis=1)
assert kept.sum() > 450, kept.sum()
assert np.abs(n - 1).max() < 1e-5, n
assert np.isnan(e[~kept]).all()
assert a.uns['uce']['species'] == 'human' and int(a.uns['uce']['sample_size']) == 256
assert len(a.uns['uce']['model_sha256']) == 64
assert 'cell_type' in a.obs and a.X.nnz > 0
# cells of one type lie closer together than cells of different types (random weights still
# keep the expression signal)
ct = np.asarray(a.obs['cell_type'].astype(str))[kept]
ek = e[kept]
sim = ek @ ek.T
same = (ct[:, None] == ct[None, :])
np.fill_diagonal(same, False)
diff = ~same
np.fill_diagonal(diff, False)
print(sim[same].mean(), sim[diff].mean())
assert sim[same].mean() > sim[diff].mean()
)").arg(outFile), &py, &err);
    QVERIFY2(rc == 0, qPrintable(err + py));
  }

  void sameResultAtAnyThreadsAndBatch() {
    EmbedOptions a = base(tmp_.filePath("t1.h5ad"));
    a.threads = 1;
    a.batchSize = 7;
    embedDataset(a);
    EmbedOptions b = base(tmp_.filePath("t2.h5ad"));
    b.threads = 2;
    b.batchSize = 32;
    b.chunkCells = 300;
    embedDataset(b);
    const double d = maxDiff(xuce(tmp_.filePath("t1.h5ad")), xuce(tmp_.filePath("t2.h5ad")));
    QVERIFY2(d < 1e-5, qPrintable(QString::number(d)));
    EmbedOptions c = base(tmp_.filePath("t3.h5ad"));
    c.seed = 4;  // another seed gives other sentences
    embedDataset(c);
    QVERIFY(maxDiff(xuce(tmp_.filePath("t1.h5ad")), xuce(tmp_.filePath("t3.h5ad"))) > 1e-3);
  }

  // The desktop app embeds on a job thread. There glibc maps every large buffer afresh (a
  // thread's malloc arena has 64 MiB heaps), which made the demo 13 times slower than on the
  // main thread; the embedder's caching allocator reuses them instead (host_memory.h). The
  // result is bit-identical to LibTorch's own allocator on the main thread.
  void embeddingOnAWorkerThreadReusesHostBuffers() {
    EmbedOptions plain = base(tmp_.filePath("plain.h5ad"));
    plain.reuseHostBuffers = false;
    const HostCacheStats s0 = hostCacheStats();
    embedDataset(plain);
    QCOMPARE(hostCacheStats().hits + hostCacheStats().misses, s0.hits + s0.misses);
    std::string error;
    std::thread worker([&] {
      try {
        embedDataset(base(tmp_.filePath("thread.h5ad")));
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
    worker.join();
    QVERIFY2(error.empty(), error.c_str());
    const HostCacheStats s1 = hostCacheStats();
    const uint64_t reused = s1.hits - s0.hits, fresh = s1.misses - s0.misses;
    QVERIFY2(reused > 2 * fresh, qPrintable(QString("%1 reused, %2 new").arg(reused).arg(fresh)));
    QVERIFY(!s1.installed);                     // the scope ended with the embedding
    QCOMPARE(s1.cachedBytes, uint64_t(0));      // and gave its buffers back
    QCOMPARE(maxDiff(xuce(tmp_.filePath("plain.h5ad")), xuce(tmp_.filePath("thread.h5ad"))), 0.0);
  }

  // On the CPU a forward pass holds at most ~160 MiB of attention scores (larger batches ran
  // 2.3x slower per cell); a GPU takes the whole batch. Embeddings do not depend on how cells
  // are batched (sameResultAtAnyThreadsAndBatch).
  void cpuForwardPassesKeepAttentionScoresBounded() {
    QCOMPARE(cellsPerForward(true, 32, 4, 1075), size_t(9));    // 18.5 MB a cell
    QCOMPARE(cellsPerForward(true, 32, 20, 1075), size_t(1));   // the released models: 92 MB a cell
    QCOMPARE(cellsPerForward(true, 32, 4, 300), size_t(32));    // short sentences: the batch
    QCOMPARE(cellsPerForward(true, 7, 1, 100), size_t(7));
    QCOMPARE(cellsPerForward(false, 32, 20, 1075), size_t(32)); // GPU
  }

  void shardedAcrossWorkerProcesses() {
    // --shards 2: two worker processes (GPUs 0 and 1 on a GPU server; the CPU here), merged.
    QString out, err, sharded = tmp_.filePath("sharded.h5ad");
    int rc = cli({"embed", "--adata", data_, "--out", sharded, "--assets", assets_, "--model", model_, "--species",
                  "human", "--seed", "3", "--sample-size", "256", "--pad-length", "320", "--chunk-cells", "128",
                  "--shards", "2", "--device", "cpu", "--quiet"}, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err + out));
    QVERIFY(QDir(tmp_.path()).entryList({"sharded.h5ad.uce-resume*"}).isEmpty());
    embedDataset(base(tmp_.filePath("single.h5ad")));
    const double d = maxDiff(xuce(sharded), xuce(tmp_.filePath("single.h5ad")));
    QVERIFY2(d < 1e-5, qPrintable(QString::number(d)));
  }

  void resumesAfterCancel() {
    const QString out = tmp_.filePath("resume.h5ad");
    EmbedOptions o = base(out);
    int calls = 0;
    try {
      embedDataset(o, [&](const EmbedProgress& p) { return !(p.stage == "embedding" && ++calls == 2); });
      QFAIL("not cancelled");
    } catch (const uce::Error& e) {
      QCOMPARE(e.kind(), uce::ErrorKind::Cancelled);
    }
    QVERIFY(!QFile::exists(out));
    QVERIFY(QFile::exists(out + ".uce-resume"));
    EmbedReport r = embedDataset(o);
    QCOMPARE(r.resumedFrom, int64_t(256));
    QVERIFY(!QFile::exists(out + ".uce-resume"));
    EmbedOptions ref = base(tmp_.filePath("noresume.h5ad"));
    embedDataset(ref);
    QVERIFY(maxDiff(xuce(out), xuce(tmp_.filePath("noresume.h5ad"))) < 1e-6);
  }

  // Pass 1 counts genes over the file before the model loads. A cancel in that pass ends the
  // run at once with nothing written; a damaged model fails with its own file named; a normal
  // run reports the time of each step.
  void modelLoadsAfterTheGeneCount() {
    const QString out = tmp_.filePath("beside.h5ad");
    EmbedOptions o = base(out);  // minCellsPerGene 10: pass 1 runs
    try {
      embedDataset(o, [](const EmbedProgress& p) { return p.stage != "counting genes"; });
      QFAIL("not cancelled");
    } catch (const uce::Error& e) {
      QCOMPARE(e.kind(), uce::ErrorKind::Cancelled);
    }
    QVERIFY(!QFile::exists(out));
    QVERIFY(!QFile::exists(out + ".uce-resume"));
    // A model cut short: the error names the model, not the dataset.
    const QString cut = tmp_.filePath("cut.torch");
    {
      QFile in(model_), dst(cut);
      QVERIFY(in.open(QIODevice::ReadOnly) && dst.open(QIODevice::WriteOnly));
      dst.write(in.read(in.size() / 2));
    }
    o.modelFile = cut.toStdString();
    try {
      embedDataset(o);
      QFAIL("a truncated model accepted");
    } catch (const uce::Error& e) {
      QVERIFY2(QString(e.what()).contains("cut.torch"), e.what());
    }
    QVERIFY(!QFile::exists(out));
    o.modelFile = model_.toStdString();
    const EmbedReport r = embedDataset(o);
    QVERIFY(r.cellsEmbedded > 450);
    QVERIFY(r.countSeconds > 0 && r.loadSeconds > 0 && r.writeSeconds > 0);
    QVERIFY(r.seconds >= r.countSeconds + r.embedSeconds + r.writeSeconds);
    // The CLI prints the steps' times; UCE_EMBED_TRACE=1 adds a line per batch, same result.
    QString cliOut, err;
    qputenv("UCE_EMBED_TRACE", "1");
    const int rc = cli({"embed", "--adata", data_, "--out", tmp_.filePath("beside-cli.h5ad"), "--assets", assets_,
                        "--model", model_, "--species", "human", "--seed", "3", "--sample-size", "256", "--pad-length",
                        "320", "--batch-size", "32"},
                       &cliOut, &err);
    qunsetenv("UCE_EMBED_TRACE");
    QCOMPARE(rc, 0);
    QVERIFY2(cliOut.contains("counting genes") && cliOut.contains("loading the model"), qPrintable(cliOut));
    QVERIFY2(err.contains("trace: batch 1: ") && err.contains("cpu attention") && err.contains("trace: waited"),
             qPrintable(err.left(2000)));
    QVERIFY(maxDiff(xuce(out), xuce(tmp_.filePath("beside-cli.h5ad"))) < 1e-5);
  }

  void realPbmcCells() {
    // Real PBMC counts with the synthetic human token table (real human symbols).
    EmbedOptions o = base(tmp_.filePath("pbmc_uce.h5ad"));
    o.input = uce::test::sharedData("pbmc_small.h5ad").toStdString();
    o.minCellsPerGene = 1;
    o.minGenesPerCell = 5;
    EmbedReport r = embedDataset(o);
    QCOMPARE(r.cells, int64_t(80));
    QVERIFY(r.genesMatched > 10);
    QVERIFY(r.cellsEmbedded > 0);
    QVERIFY(!r.warnings.empty());  // few of the 230 genes are in a 1,500-gene token table
    uce::DenseMatrix m = xuce(tmp_.filePath("pbmc_uce.h5ad"));
    QCOMPARE(m.rows, int64_t(80));
  }

  void clearErrors() {
    EmbedOptions o = base(tmp_.filePath("err.h5ad"));
    o.species = "axolotl";
    try {
      embedDataset(o);
      QFAIL("unknown species accepted");
    } catch (const uce::Error& e) {
      QVERIFY2(QString(e.what()).contains("unknown species 'axolotl'") && QString(e.what()).contains("human"),
               e.what());
    }
    o = base(tmp_.filePath("err.h5ad"));
    o.modelFile = tmp_.filePath("missing.torch").toStdString();
    try {
      embedDataset(o);
      QFAIL("missing model accepted");
    } catch (const uce::Error& e) {
      QVERIFY(QString(e.what()).contains("missing.torch"));
    }
    // Ensembl ids in var_names, symbols in a column: the message names the column.
    QString ens = tmp_.filePath("ensembl.h5ad"), err;
    int rc = python(QString(R"(
import anndata
a = anndata.read_h5ad('%1')
a.var['symbol'] = a.var_names.values
a.var_names = ['ENSG%011d' % i for i in range(a.n_vars)]
a.write_h5ad('%2')
)").arg(data_, ens), nullptr, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    o.modelFile = model_.toStdString();
    o.input = ens.toStdString();
    try {
      embedDataset(o);
      QFAIL("Ensembl ids accepted");
    } catch (const uce::Error& e) {
      QVERIFY2(QString(e.what()).contains("--gene-column symbol"), e.what());
    }
    o.geneColumn = "symbol";
    EmbedReport r = embedDataset(o);
    QVERIFY(r.cellsEmbedded > 450);
    QVERIFY(!QFile::exists(tmp_.filePath("err.h5ad") + ".uce-resume"));
  }
};

QTEST_GUILESS_MAIN(TestEmbed)
#include "test_embed.moc"
