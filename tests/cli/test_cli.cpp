// The `uce` CLI contract: --version, info (text and JSON), and one-line errors.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "test_support.h"

using uce::test::cli;
using uce::test::python;

class TestCli : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void version() {
    QString out, err;
    QCOMPARE(cli({"--version"}, &out, &err), 0);
    QVERIFY(out.startsWith("uce 0."));
  }

  // Idle OpenMP threads sleep (passive wait policy: 1.8x faster CPU training on 2 cores) unless
  // the user chose a policy, which is kept.
  void openMpWaitPolicyIsPassiveUnlessChosen() {
    for (const QString& chosen : {QString(), QString("ACTIVE")}) {
      QProcess p;
      QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
      env.remove("OMP_WAIT_POLICY");
      if (!chosen.isEmpty()) env.insert("OMP_WAIT_POLICY", chosen);
      p.setProcessEnvironment(env);
      p.start(UCE_CLI, {"version", "--verbose"});
      QVERIFY(p.waitForFinished(30000));
      QCOMPARE(p.exitCode(), 0);
      const QString out = QString::fromUtf8(p.readAllStandardOutput());
      QVERIFY(out.startsWith("uce 0."));
      QVERIFY2(out.contains("OpenMP wait policy: " + (chosen.isEmpty() ? QString("PASSIVE") : chosen)), qPrintable(out));
    }
  }

  void infoOnRealPbmc() {
    QString out, err;
    QCOMPARE(cli({"info", uce::test::sharedData("pbmc_small.h5ad")}, &out, &err), 0);
    QVERIFY2(out.contains("cells:    80"), qPrintable(out));
    QVERIFY(out.contains("genes:    230"));
    QVERIFY(out.contains("counts:   X (csr, float32)"));
    QVERIFY(out.contains("groups: categorical (2 categories)"));
    QVERIFY(out.contains("X_tsne"));
    QVERIFY(out.contains("species:  human"));
  }

  void infoJson() {
    QString out, err;
    QCOMPARE(cli({"info", uce::test::sharedData("pbmc_small.h5ad"), "--json"}, &out, &err), 0);
    QJsonParseError pe;
    QJsonObject o = QJsonDocument::fromJson(out.toUtf8(), &pe).object();
    QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(pe.errorString() + "\n" + out));
    QCOMPARE(o["cells"].toInt(), 80);
    QCOMPARE(o["genes"].toInt(), 230);
    QCOMPARE(o["counts"].toObject()["key"].toString(), QString("X"));
    QCOMPARE(o["counts"].toObject()["dtype"].toString(), QString("float32"));
    QCOMPARE(o["species"].toObject()["guess"].toString(), QString("human"));
    QCOMPARE(o["gene_symbols"].toObject()["looks_like"].toString(), QString("symbols"));
    QStringList obs;
    for (auto v : o["obs_columns"].toArray()) obs << v.toObject()["name"].toString();
    QVERIFY(obs.contains("nCount_RNA"));
    QCOMPARE(o["obsm"].toArray().first().toString(), QString("X_tsne"));
  }

  void infoFindsCountsLayerAndEnsemblIds() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("lognorm.h5ad");
    QString err;
    int rc = python(QString(R"(
import anndata as ad, numpy as np, scipy.sparse as sp, pandas as pd
rng = np.random.default_rng(0)
counts = sp.random(50, 40, density=0.3, format='csr', random_state=1, data_rvs=lambda n: rng.integers(1, 20, n)).astype(np.float32)
x = counts.copy(); x.data = np.log1p(x.data)
var = pd.DataFrame({'gene_symbols': ['Gene{}'.format(i) for i in range(40)]}, index=['ENSMUSG{:011d}'.format(i) for i in range(40)])
a = ad.AnnData(X=x, var=var, obs=pd.DataFrame(index=['c{}'.format(i) for i in range(50)]))
a.layers['counts'] = counts
a.write_h5ad('%1')
)").arg(path), nullptr, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    QString out;
    QCOMPARE(cli({"info", path, "--json"}, &out, &err), 0);
    QJsonObject o = QJsonDocument::fromJson(out.toUtf8()).object();
    QCOMPARE(o["counts"].toObject()["key"].toString(), QString("layers/counts"));
    QCOMPARE(o["gene_symbols"].toObject()["column"].toString(), QString("gene_symbols"));
    QCOMPARE(o["species"].toObject()["guess"].toString(), QString("mouse"));
    // Choosing the log-normalised X as counts is refused, naming the file and the right layer.
    QCOMPARE(cli({"info", path, "--counts", "X"}, &out, &err), 1);
    QVERIFY2(err.startsWith("error: ") && err.contains("lognorm.h5ad") && err.contains("non-integer") &&
                 err.contains("layers/counts"),
             qPrintable(err));
    QCOMPARE(err.trimmed().count('\n'), 0);
  }

  // Every command answers --help with its options and exit status 0, the full usage where it
  // has one.
  void helpForEveryCommand() {
    for (const char* c : {"info", "synth", "embed", "init-model", "add-species", "train", "umap", "cluster",
                          "metrics", "de", "centroids", "atlas", "classify"}) {
      QString out, err;
      QCOMPARE(cli({c, "--help"}, &out, &err), 0);
      QVERIFY2(out.contains("--"), qPrintable(QString(c) + ": " + out + err));
    }
    QString out, err;
    QCOMPARE(cli({"embed", "--help"}, &out, &err), 0);
    QVERIFY(out.startsWith("usage: uce embed") && out.contains("--precision fp32|bf16|bf16-autocast"));
    QCOMPARE(cli({"init-model", "--help"}, &out, &err), 0);
    QVERIFY(out.contains("--layers VALUE"));
  }

  void errorsAreOneLine() {
    QString out, err;
    QCOMPARE(cli({"info", "/nonexistent/file.h5ad"}, &out, &err), 1);
    QVERIFY(err.startsWith("error: "));
    QVERIFY(err.contains("/nonexistent/file.h5ad"));
    QCOMPARE(err.trimmed().count('\n'), 0);
    QCOMPARE(cli({"frobnicate"}, &out, &err), 2);
    QVERIFY(err.startsWith("error: unknown command"));
    QCOMPARE(cli({"info"}, &out, &err), 2);
    QVERIFY(err.startsWith("error: usage"));
    QCOMPARE(cli({"synth"}, &out, &err), 2);  // a multi-line usage text still makes one error line
    QVERIFY(err.startsWith("error: usage"));
    QCOMPARE(err.trimmed().count('\n'), 0);
  }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
