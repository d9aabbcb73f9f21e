// Our LibTorch UCE network against a torch.nn reference of the spec (tests/model/uce_reference.py)
// with random weights: same embeddings (fp32, max abs error 1e-5) for several layer counts,
// with padding in the batch, and a cell's embedding independent of its batch.
#include <QTemporaryDir>
#include <QtTest>
#include <torch/torch.h>

#include "test_support.h"
#include "uce/core/error.h"
#include "uce/model/network.h"
#include "uce/model/torch_file.h"

using namespace uce::model;

class TestNetworkParity : public QObject {
  Q_OBJECT

  static at::Tensor get(const NamedTensors& d, const std::string& k) {
    for (auto& kv : d)
      if (kv.first == k) return kv.second;
    return {};
  }

 private Q_SLOTS:
  void parity_data() {
    QTest::addColumn<int>("layers");
    QTest::newRow("1 layer") << 1;
    QTest::newRow("2 layers") << 2;
    QTest::newRow("4 layers") << 4;
  }

  void parity() {
    QFETCH(int, layers);
    QTemporaryDir tmp;
    QString err;
    int rc = uce::test::run(UCE_PYTHON, {QString(UCE_SOURCE_DIR) + "/tests/model/uce_reference.py", tmp.path(),
                                         QString::number(layers), QString::number(100 + layers)},
                            nullptr, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    const std::string model = tmp.filePath("model.torch").toStdString();
    NamedTensors sd = loadTensorDict(model);
    UceConfig cfg = inferConfig(sd, model, 4);
    QCOMPARE(cfg.nLayers, int64_t(layers));
    QCOMPARE(cfg.dModel, int64_t(64));
    QCOMPARE(cfg.tokenDim, int64_t(48));
    QCOMPARE(cfg.outputDim, int64_t(40));
    QCOMPARE(cfg.nTokens, int64_t(300));
    UceNetwork net(cfg);
    net->loadStateDict(sd, model);
    net->eval();
    NamedTensors c = loadTensorDict(tmp.filePath("case.pt").toStdString());
    at::Tensor tokens = get(c, "tokens"), keep = get(c, "keep").to(torch::kBool);
    torch::NoGradGuard g;
    at::Tensor ours = net->embed(tokens, keep);
    const double err1 = (ours - get(c, "expected")).abs().max().item<double>();
    QVERIFY2(err1 < 1e-5, qPrintable(QString("max abs error %1").arg(err1)));
    // Alone (no padding) vs in a padded batch: the same cell embedding.
    const double err2 = (ours - get(c, "alone")).abs().max().item<double>();
    QVERIFY2(err2 < 1e-5, qPrintable(QString("batch dependence %1").arg(err2)));
    // Unit norm rows.
    QVERIFY((ours.norm(2, 1) - 1).abs().max().item<double>() < 1e-5);
    // Separately given token table replaces pe_embedding.
    net->setTokenTable(loadTensor(tmp.filePath("all_tokens.torch").toStdString()));
    QVERIFY((net->embed(tokens, keep) - ours).abs().max().item<double>() < 1e-6);
  }

  void mismatchedStateDictNamesKeyAndShape() {
    QTemporaryDir tmp;
    QString err;
    QCOMPARE(uce::test::run(UCE_PYTHON, {QString(UCE_SOURCE_DIR) + "/tests/model/uce_reference.py", tmp.path(), "2", "1"},
                            nullptr, &err), 0);
    const std::string model = tmp.filePath("model.torch").toStdString();
    NamedTensors sd = loadTensorDict(model);
    UceConfig cfg = inferConfig(sd, model, 4);
    cfg.dHid = 80;  // a model that does not fit these weights
    UceNetwork net(cfg);
    try {
      net->loadStateDict(sd, model);
      QFAIL("mismatch accepted");
    } catch (const uce::Error& e) {
      QString m = e.what();
      QVERIFY2(m.contains("transformer_encoder.layers.0.linear1.weight"), qPrintable(m));
      QVERIFY(m.contains("[96, 64]") && m.contains("[80, 64]"));
      QVERIFY(m.contains("model.torch"));
    }
    NamedTensors partial;
    for (auto& kv : sd)
      if (kv.first != "decoder.3.weight") partial.push_back(kv);
    try {
      inferConfig(partial, model, 4);
      QFAIL("missing key accepted");
    } catch (const uce::Error& e) {
      QVERIFY(QString(e.what()).contains("'decoder.3.weight' is missing"));
    }
    try {
      inferConfig(sd, model, 7);
      QFAIL("bad nhead accepted");
    } catch (const uce::Error& e) {
      QVERIFY(QString(e.what()).contains("not divisible by nhead 7"));
    }
  }
};

QTEST_GUILESS_MAIN(TestNetworkParity)
#include "test_network_parity.moc"
