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
    {
      // Built without random initialisation and loaded by adopting the state dict's tensors
      // (as the embedder does): the same parameter names and shapes, the file's tensors are
      // the parameters themselves (no copy), and bit for bit the same embeddings.
      UceNetwork bare(cfg, /*initialize=*/false);
      auto want = net->named_parameters(true), got = bare->named_parameters(true);
      QCOMPARE(got.size(), want.size());
      for (const auto& p : want) {
        QVERIFY2(got.contains(p.key()), p.key().c_str());
        QVERIFY2(got[p.key()].sizes() == p.value().sizes(), p.key().c_str());
      }
      bare->loadStateDict(sd, model, /*requireTokens=*/true, /*adopt=*/true);
      for (const auto& kv : sd)
        if (kv.first != "pos_encoder.pe")
          QVERIFY2(got[kv.first].data_ptr() == kv.second.data_ptr(), kv.first.c_str());
      bare->eval();
      QVERIFY(torch::equal(bare->embed(tokens, keep), ours));
    }
    // Separately given token table replaces pe_embedding.
    net->setTokenTable(loadTensor(tmp.filePath("all_tokens.torch").toStdString()));
    QVERIFY((net->embed(tokens, keep) - ours).abs().max().item<double>() < 1e-6);
    // The embedder's inference set-up (token inputs computed once per token) gives the same.
    net->prepareInference();
    const double err3 = (net->embed(tokens, keep) - get(c, "expected")).abs().max().item<double>();
    QVERIFY2(err3 < 1e-5, qPrintable(QString("with the token cache: max abs error %1").arg(err3)));
    // The last layer computes the CLS position only; the full-position encoder agrees.
    at::Tensor viaEncode = torch::nn::functional::normalize(net->decodeCls(net->encode(tokens, keep)),
                                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
    QVERIFY((viaEncode - ours).abs().max().item<double>() < 1e-5);
    // Training drops the inference set-up (folded biases, token cache): eval mode then runs
    // the plain layers and still agrees.
    net->train(true);
    net->eval();
    QVERIFY((net->embed(tokens, keep) - get(c, "expected")).abs().max().item<double>() < 1e-5);
  }

  // A small training-head network (token_dim 24, d_model 32, output 16) with `layers` layers.
  static UceConfig tinyConfig(int64_t layers) {
    UceConfig cfg;
    cfg.nTokens = 50;
    cfg.tokenDim = 24;
    cfg.dModel = 32;
    cfg.nHead = 4;
    cfg.dHid = 64;
    cfg.outputDim = 16;
    cfg.decoderHidden = 32;
    cfg.nLayers = layers;
    cfg.maxLen = 64;
    cfg.geneHeadDim = 32;
    return cfg;
  }

  // The trainer's --cell-gain: only the binary decoder's weights on the cell embedding change,
  // so the gene logits' dependence on the cell scales up and nothing else moves.
  void cellGainScalesOnlyTheCellColumns() {
    const UceConfig cfg = tinyConfig(1);
    torch::manual_seed(5);
    UceNetwork net(cfg);
    auto before = net->named_parameters(true).find("binary_decoder.0.0.weight")->clone();
    auto other = net->named_parameters(true).find("binary_decoder.1.0.weight")->clone();
    net->scaleCellInputOfBinaryDecoder(4.0);
    auto after = *net->named_parameters(true).find("binary_decoder.0.0.weight");
    QCOMPARE(after.size(1), int64_t{16 + 32});
    QVERIFY(torch::equal(after.narrow(1, 0, 16), before.narrow(1, 0, 16) * 4));
    QVERIFY(torch::equal(after.narrow(1, 16, 32), before.narrow(1, 16, 32)));
    QVERIFY(torch::equal(*net->named_parameters(true).find("binary_decoder.1.0.weight"), other));
  }

  // Activation checkpointing changes memory, not results: with dropout on, the same seed gives
  // the same loss and the same gradients with and without it (the recomputation replays the
  // forward's dropout masks).
  void activationCheckpointingGivesTheSameGradients() {
    const UceConfig cfg = tinyConfig(3);
    torch::manual_seed(5);
    UceNetwork net(cfg);
    net->train(true);
    at::Tensor tokens = torch::randint(4, 50, {3, 20}, torch::kLong);
    at::Tensor keep = torch::ones({3, 20}, torch::kBool);
    keep.index_put_({1, torch::indexing::Slice(15, torch::indexing::None)}, false);
    at::Tensor genes = torch::randint(4, 50, {3, 6}, torch::kLong);
    at::Tensor labels = (torch::rand({3, 6}) > 0.5).to(torch::kFloat);
    auto run = [&](bool checkpointing) {
      net->setActivationCheckpointing(checkpointing);
      net->zero_grad();
      torch::manual_seed(11);
      auto loss = torch::binary_cross_entropy_with_logits(net->geneLogits(net->embed(tokens, keep), genes), labels);
      loss.backward();
      std::vector<at::Tensor> g{loss.detach().clone()};
      for (auto& p : net->parameters())
        if (p.requires_grad()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
      return g;
    };
    auto plain = run(false), ckpt = run(true);
    QCOMPARE(plain.size(), ckpt.size());
    double worst = 0, largest = 0;
    for (size_t i = 0; i < plain.size(); ++i) {
      worst = std::max(worst, (plain[i] - ckpt[i]).abs().max().item<double>());
      largest = std::max(largest, plain[i].abs().max().item<double>());
    }
    QVERIFY2(largest > 1e-4, "no gradient reached the parameters");
    QVERIFY2(worst < 1e-6, qPrintable(QString("max difference %1").arg(worst)));
    // A different dropout draw does change the gradients (the comparison above can fail).
    net->setActivationCheckpointing(false);
    net->zero_grad();
    torch::manual_seed(12);
    torch::binary_cross_entropy_with_logits(net->geneLogits(net->embed(tokens, keep), genes), labels).backward();
    double moved = 0;
    size_t k = 1;
    for (auto& p : net->parameters())
      if (p.requires_grad()) {
        if (p.grad().defined()) moved = std::max(moved, (p.grad() - plain[k]).abs().max().item<double>());
        ++k;
      }
    QVERIFY(moved > 1e-5);
  }

  // Training with bf16 layers (uce train --bf16-layers): in a pass with gradients the layers
  // run in bf16, so the loss and gradients move by bf16 rounding only (and do move: the path is
  // taken); the parameters and their gradients stay fp32; activation checkpointing replays the
  // same bf16 pass; a pass without gradients (validation, embedding) is the fp32 one, bit for bit.
  void bf16LayersRunInBf16OnlyWithGradients() {
    const UceConfig cfg = tinyConfig(3);
    torch::manual_seed(5);
    UceNetwork net(cfg);
    net->train(false);  // dropout off: the fp32 and bf16 passes see the same network
    at::Tensor tokens = torch::randint(4, 50, {4, 24}, torch::kLong);
    at::Tensor keep = torch::ones({4, 24}, torch::kBool);
    keep.index_put_({2, torch::indexing::Slice(17, torch::indexing::None)}, false);
    at::Tensor genes = torch::randint(4, 50, {4, 8}, torch::kLong);
    at::Tensor labels = (torch::rand({4, 8}) > 0.5).to(torch::kFloat);
    struct Pass {
      at::Tensor emb, loss;
      std::vector<at::Tensor> grads;
    };
    auto run = [&](torch::ScalarType dtype, bool checkpointing) {
      net->setTrainingLayerDtype(dtype);
      net->setActivationCheckpointing(checkpointing);
      net->zero_grad();
      Pass p;
      p.emb = net->embed(tokens, keep);
      p.loss = torch::binary_cross_entropy_with_logits(net->geneLogits(p.emb, genes), labels);
      p.loss.backward();
      for (auto& t : net->parameters())
        if (t.requires_grad()) {
          if (!t.grad().defined()) continue;
          if (t.scalar_type() != torch::kFloat || t.grad().scalar_type() != torch::kFloat) return Pass{};
          p.grads.push_back(t.grad().clone());
        }
      p.emb = p.emb.detach();
      p.loss = p.loss.detach();
      return p;
    };
    const Pass fp32 = run(torch::kFloat, false), bf16 = run(torch::kBFloat16, false),
               bf16ck = run(torch::kBFloat16, true);
    QVERIFY2(bf16.grads.size() == fp32.grads.size() && !fp32.grads.empty(), "a parameter or gradient left fp32");
    QCOMPARE(net->trainingLayerDtype(), torch::kBFloat16);
    const double lossDiff = (fp32.loss - bf16.loss).abs().item<double>();
    QVERIFY2(lossDiff > 0 && lossDiff < 2e-3, qPrintable(QString("loss difference %1").arg(lossDiff)));
    const double cos = torch::cosine_similarity(fp32.emb, bf16.emb, 1).min().item<double>();
    QVERIFY2(cos > 0.999 && cos < 1, qPrintable(QString("embedding cosine %1").arg(cos, 0, 'g', 9)));
    double worstGradCos = 1;
    for (size_t i = 0; i < fp32.grads.size(); ++i) {
      if (fp32.grads[i].norm().item<double>() < 1e-8) continue;
      worstGradCos = std::min(worstGradCos, torch::cosine_similarity(fp32.grads[i].flatten(), bf16.grads[i].flatten(), 0)
                                                .item<double>());
    }
    qInfo("bf16 layers: loss difference %.3g, embedding cosine >= %.7f, gradient cosine >= %.5f", lossDiff, cos, worstGradCos);
    QVERIFY2(worstGradCos > 0.995, qPrintable(QString("gradient cosine %1").arg(worstGradCos)));
    QVERIFY(torch::equal(bf16.loss, bf16ck.loss));
    for (size_t i = 0; i < bf16.grads.size(); ++i)
      QVERIFY2((bf16.grads[i] - bf16ck.grads[i]).abs().max().item<double>() < 1e-6, "checkpointing changed a gradient");
    {
      torch::NoGradGuard noGrad;
      net->setTrainingLayerDtype(torch::kBFloat16);
      const at::Tensor a = net->embed(tokens, keep);
      net->setTrainingLayerDtype(torch::kFloat);
      QVERIFY(torch::equal(a, net->embed(tokens, keep)));
      QVERIFY(torch::equal(a, fp32.emb));
    }
    QVERIFY_THROWS_EXCEPTION(uce::Error, net->setTrainingLayerDtype(torch::kHalf));
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
