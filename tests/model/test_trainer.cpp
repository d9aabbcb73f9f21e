// UCE pre-training (uce train): training samples obey UCE_SPEC section 5, a tiny model learns on
// the synthetic atlas (loss falls, masked-gene AUROC rises from chance), resume after an
// interruption reproduces the uninterrupted run bitwise, checkpoints rotate, the weights load in
// the embedder and in PyTorch, and Ctrl-C on the CLI leaves a checkpoint.
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <QElapsedTimer>

#include <cmath>
#include <csignal>
#include <signal.h>
#include <sys/resource.h>
#include <fstream>
#include <map>
#include <set>

#include "test_support.h"
#include "uce/core/error.h"
#include "uce/model/embedder.h"
#include "uce/model/network.h"
#include "uce/model/torch_file.h"
#include "uce/model/trainer.h"

using namespace uce::model;
using uce::test::cli;
using uce::test::python;

class TestTrainer : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  QString atlas_, corpus_, assets_;

  // The atlas's human kidney embedded with `model` (the base() sentence settings) into `output`.
  EmbedReport embedKidney(const QString& model, const QString& output) const {
    EmbedOptions e;
    e.input = (atlas_ + "/" + QDir(atlas_).entryList({"human_kidney*.h5ad"}).first()).toStdString();
    e.output = output.toStdString();
    e.assetsDir = assets_.toStdString();
    e.modelFile = model.toStdString();
    e.species = "human";
    e.nHead = 4;
    e.sampleSize = 128;
    e.padLength = 256;
    e.device = "cpu";
    return embedDataset(e);
  }

  TrainOptions base(const QString& out) const {
    TrainOptions o;
    o.corpus = corpus_.toStdString();
    o.assetsDir = assets_.toStdString();
    o.outDir = out.toStdString();
    o.nLayers = 2;
    o.dModel = 32;
    o.nHead = 4;
    o.dHid = 64;
    o.outputDim = 32;
    o.sampleSize = 128;
    o.padLength = 256;
    o.batchSize = 16;
    o.lr = 2e-3;
    o.warmupSteps = 3;
    o.maxSteps = 40;
    o.validateEvery = 20;
    o.checkpointEvery = 10;
    o.keepCheckpoints = 2;
    o.valFraction = 0.1;
    o.valCells = 96;
    o.blockRows = 64;
    o.seed = 7;
    o.threads = 1;
    return o;
  }

  // base() for `steps` steps with no checkpoint or validation on the way (a checkpoint is still
  // written at the end).
  TrainOptions plain(const QString& out, int64_t steps) const {
    TrainOptions o = base(out);
    o.maxSteps = steps;
    o.checkpointEvery = 1000;
    o.validateEvery = 1000;
    return o;
  }

  // A gene table in which gene c has token 100 + c, chromosome c % chromosomes, start 1000 c.
  static GeneTable everyGeneMatched(int genes, int chromosomes) {
    GeneTable t;
    for (int c = 0; c < genes; ++c) {
      t.token.push_back(100 + c);
      t.chrom.push_back(c % chromosomes);
      t.start.push_back(1000 * c);
    }
    t.finalize();
    return t;
  }

  static SentenceOptions shortSentences() {
    SentenceOptions so;
    so.sampleSize = 64;
    so.padLength = 128;
    return so;
  }

  static void compareWeights(const QString& a, const QString& b) {
    NamedTensors x = loadTensorDict(a.toStdString()), y = loadTensorDict(b.toStdString());
    QCOMPARE(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      QVERIFY(x[i].first == y[i].first);
      QVERIFY2(x[i].second.equal(y[i].second), x[i].first.c_str());
    }
  }

  // Two optimizer.pt files hold the same AdamW state, parameter by parameter. LibTorch names
  // each parameter's state by its tensor's address and restores it by the parameter's position
  // in its group, so the files are compared through the positions, not byte for byte.
  static void compareOptimizerFiles(const QString& a, const QString& b) {
    torch::serialize::InputArchive x, y;
    x.load_from(a.toStdString());
    y.load_from(b.toStdString());
    auto names = [](torch::serialize::InputArchive& file) {  // each parameter's state name, in order
      std::vector<std::string> out;
      torch::serialize::InputArchive groups;
      file.read("param_groups", groups);
      torch::Tensor n;
      groups.read("param_groups/size", n);
      for (int64_t g = 0; g < n.item<int64_t>(); ++g) {
        torch::serialize::InputArchive group;
        groups.read("param_groups/" + std::to_string(g), group);
        torch::Tensor size;
        group.read("params/size", size);
        for (int64_t i = 0; i < size.item<int64_t>(); ++i) {
          c10::IValue name;
          group.read("params/" + std::to_string(i), name);
          out.push_back(name.toStringRef());
        }
      }
      return out;
    };
    const auto nx = names(x), ny = names(y);
    QCOMPARE(nx.size(), ny.size());
    QVERIFY(!nx.empty());
    torch::serialize::InputArchive sx, sy;
    x.read("state", sx);
    y.read("state", sy);
    QCOMPARE(sx.keys().size(), sy.keys().size());
    size_t withState = 0;
    for (size_t i = 0; i < nx.size(); ++i) {
      torch::serialize::InputArchive px, py;
      const bool hx = sx.try_read(nx[i], px), hy = sy.try_read(ny[i], py);
      QCOMPARE(hx, hy);
      if (!hx) continue;
      ++withState;
      c10::IValue stepX, stepY;
      px.read("step", stepX);
      py.read("step", stepY);
      QCOMPARE(stepX.toInt(), stepY.toInt());
      QVERIFY(stepX.toInt() > 0);
      for (const char* t : {"exp_avg", "exp_avg_sq"}) {
        torch::Tensor tx, ty;
        px.read(t, tx);
        py.read(t, ty);
        QVERIFY2(tx.defined() && tx.equal(ty), qPrintable(QString("parameter %1: %2").arg(i).arg(t)));
      }
    }
    QCOMPARE(withState, sx.keys().size());
  }

  // A run of `steps` steps of `batch` cells in `accum` micro-batches with views, no dropout,
  // no checkpoint or validation on the way (the view tests): its metrics lines, or none if it
  // did not run all the steps.
  std::vector<std::string> viewRun(const QString& name, double consistency, double isotropy, int steps = 30,
                                   int batch = 8, int accum = 1) {
    TrainOptions o = plain(tmp_.filePath(name), steps);
    o.viewConsistency = consistency;
    o.viewIsotropy = isotropy;
    o.batchSize = batch;
    o.gradAccum = accum;
    o.dropout = false;
    if (train(o).steps != steps) return {};
    return uce::test::lines(tmp_.filePath(name + "/metrics.jsonl"));
  }

 private Q_SLOTS:
  void initTestCase() {
    QString out, err;
    atlas_ = tmp_.filePath("atlas");
    int rc = cli({"synth", "--out", atlas_, "--cells", "600", "--genes", "800", "--token-dim", "32", "--species",
                  "human,mouse", "--tissues", "kidney,lung", "--seed", "3", "--quiet"}, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    assets_ = atlas_ + "/assets";
    QStringList h5 = QDir(atlas_).entryList({"*.h5ad"});
    QCOMPARE(h5.size(), 4);
    corpus_ = atlas_ + "/corpus.csv";
    QByteArray csv = "path,species\n";
    for (const QString& f : h5) csv += (f + "," + (f.startsWith("human") ? "human" : "mouse") + "\n").toUtf8();
    uce::test::writeAll(corpus_, csv);
  }

  // --negatives frequency: negatives follow the genes' detection rates (a gene detected in most
  // cells is drawn far more often than a rare one), are never expressed in the cell, and the
  // default stays uniform.
  void frequencyNegativesFollowDetection() {
    const int genes = 400;
    const GeneTable t = everyGeneMatched(genes, 5);
    SentenceOptions so = shortSentences();
    so.seed = 4;
    std::vector<float> detection(genes, 0.01f);
    for (int c = 300; c < 320; ++c) detection[static_cast<size_t>(c)] = 0.9f;  // 20 common genes
    SampleOptions sp;
    sp.nLoss = 16;
    sp.negatives = "frequency";
    TrainingSampleBuilder freq(t, so, sp, &detection);
    SampleOptions uni;
    uni.nLoss = 16;
    TrainingSampleBuilder uniform(t, so, uni);
    std::vector<int32_t> cols;
    std::vector<float> vals;
    for (int c = 0; c < 60; ++c) {  // expressed: columns 0..59 (none of the common ones)
      cols.push_back(c);
      vals.push_back(2.f);
    }
    int commonFreq = 0, commonUniform = 0, total = 0;
    for (uint64_t cell = 0; cell < 200; ++cell) {
      TrainingSample a, b;
      QVERIFY(freq.build(cols.data(), vals.data(), 60, cell, a));
      QVERIFY(uniform.build(cols.data(), vals.data(), 60, cell, b));
      for (int i = sp.nLoss / 2; i < sp.nLoss; ++i) {
        const int32_t ca = a.lossColumns[static_cast<size_t>(i)], cb = b.lossColumns[static_cast<size_t>(i)];
        QVERIFY2(ca >= 60 && cb >= 60, "a negative is expressed");
        QCOMPARE(a.labels[static_cast<size_t>(i)], 0.f);
        commonFreq += ca >= 300 && ca < 320;
        commonUniform += cb >= 300 && cb < 320;
        ++total;
      }
    }
    // 20 of 340 unexpressed genes hold 20 x 0.9 / (20 x 0.9 + 320 x 0.01) = 85 % of the weight.
    QVERIFY2(commonFreq > total * 7 / 10, qPrintable(QString("%1 of %2").arg(commonFreq).arg(total)));
    QVERIFY2(commonUniform < total / 8, qPrintable(QString("%1 of %2").arg(commonUniform).arg(total)));
  }

  void trainingSampleFollowsTheSpec() {
    GeneTable t;
    const int genes = 300;
    for (int c = 0; c < genes; ++c) {
      t.token.push_back(c % 17 == 0 ? -1 : 100 + c);  // some genes without an embedding
      t.chrom.push_back(c % 5);
      t.start.push_back(1000 * c);
    }
    t.finalize();
    SentenceOptions so;
    so.sampleSize = 200;
    so.padLength = 256;
    so.seed = 4;
    SampleOptions sp;
    TrainingSampleBuilder b(t, so, sp);
    for (int expressedGenes : {40, 200}) {
      std::vector<int32_t> cols;
      std::vector<float> vals;
      for (int c = 0; c < expressedGenes; ++c) {
        cols.push_back(c * 3 % genes);
        vals.push_back(static_cast<float>(1 + c % 7));
      }
      std::set<int32_t> expressed;
      for (int32_t c : cols)
        if (t.token[static_cast<size_t>(c)] >= 0) expressed.insert(c);
      TrainingSample s, again, other;
      QVERIFY(b.build(cols.data(), vals.data(), static_cast<int64_t>(cols.size()), 11, s));
      QCOMPARE(static_cast<int64_t>(s.maskedColumns.size()), std::llround(0.2 * static_cast<double>(expressed.size())));
      std::set<int32_t> sentence(s.tokens.begin(), s.tokens.begin() + s.length);
      std::set<int32_t> masked(s.maskedColumns.begin(), s.maskedColumns.end());
      QCOMPARE(masked.size(), s.maskedColumns.size());
      for (int32_t c : masked) {
        QVERIFY(expressed.count(c));
        QVERIFY2(!sentence.count(t.token[static_cast<size_t>(c)]), "a masked gene is in the sentence");
      }
      QCOMPARE(static_cast<int>(s.lossTokens.size()), sp.nLoss);
      std::set<int32_t> negatives;
      for (int i = 0; i < sp.nLoss; ++i) {
        const int32_t c = s.lossColumns[static_cast<size_t>(i)];
        QCOMPARE(s.lossTokens[static_cast<size_t>(i)], t.token[static_cast<size_t>(c)]);
        if (i < sp.nLoss / 2) {
          QCOMPARE(s.labels[static_cast<size_t>(i)], 1.f);
          // With enough masked genes the positives are masked genes; else all masked + top-up.
          QVERIFY(masked.size() >= size_t(sp.nLoss / 2) ? masked.count(c) > 0 : expressed.count(c) > 0);
        } else {
          QCOMPARE(s.labels[static_cast<size_t>(i)], 0.f);
          QVERIFY2(!expressed.count(c) && t.token[static_cast<size_t>(c)] >= 0, "a negative is expressed or unmatched");
          negatives.insert(c);
        }
      }
      QCOMPARE(static_cast<int>(negatives.size()), sp.nLoss / 2);  // without replacement
      if (masked.size() < size_t(sp.nLoss / 2))
        for (int32_t c : masked)
          QVERIFY(std::find(s.lossColumns.begin(), s.lossColumns.end(), c) != s.lossColumns.end());
      QVERIFY(b.build(cols.data(), vals.data(), static_cast<int64_t>(cols.size()), 11, again));
      QVERIFY(again.tokens == s.tokens && again.lossColumns == s.lossColumns && again.maskedColumns == s.maskedColumns);
      QVERIFY(b.build(cols.data(), vals.data(), static_cast<int64_t>(cols.size()), 12, other));
      QVERIFY(other.maskedColumns != s.maskedColumns);
    }
  }

  // --downsample-to: a cell deeper than the target is thinned (each UMI kept with probability
  // target / total) before masking, reproducibly from its stream; a shallower cell is untouched.
  void downsamplingThinsDeepCellsOnly() {
    const GeneTable t = everyGeneMatched(2000, 7);
    const SentenceOptions so = shortSentences();
    SampleOptions plain, thin;
    thin.downsampleTo = 1000;
    TrainingSampleBuilder a(t, so, plain), b(t, so, thin);
    std::vector<int32_t> deepCols, shallowCols;
    std::vector<float> deepVals, shallowVals;
    for (int c = 0; c < 1500; ++c) {  // 6,000 UMIs
      deepCols.push_back(c);
      deepVals.push_back(4.f);
    }
    for (int c = 0; c < 300; ++c) {  // 600 UMIs: below the target
      shallowCols.push_back(c);
      shallowVals.push_back(2.f);
    }
    TrainingSample full, thinned, again, shallowA, shallowB;
    QVERIFY(a.build(deepCols.data(), deepVals.data(), 1500, 5, full));
    QVERIFY(b.build(deepCols.data(), deepVals.data(), 1500, 5, thinned));
    QVERIFY(b.build(deepCols.data(), deepVals.data(), 1500, 5, again));
    QCOMPARE(full.maskedColumns.size(), size_t(300));  // 20 % of 1,500 expressed genes
    // A gene keeps at least one of its 4 UMIs with probability 1 - (5/6)^4 = 0.52: ~780 of 1,500
    // stay expressed, so ~155 are masked.
    QVERIFY2(thinned.maskedColumns.size() > 130 && thinned.maskedColumns.size() < 180,
             qPrintable(QString::number(thinned.maskedColumns.size())));
    for (int32_t c : thinned.maskedColumns) QVERIFY(c >= 0 && c < 1500);
    QVERIFY(again.tokens == thinned.tokens && again.maskedColumns == thinned.maskedColumns &&
            again.lossColumns == thinned.lossColumns);
    QVERIFY(a.build(shallowCols.data(), shallowVals.data(), 300, 9, shallowA));
    QVERIFY(b.build(shallowCols.data(), shallowVals.data(), 300, 9, shallowB));
    QVERIFY(shallowA.tokens == shallowB.tokens && shallowA.maskedColumns == shallowB.maskedColumns &&
            shallowA.lossColumns == shallowB.lossColumns);
    // The depth the decoder may see (TrainOptions::depthAwareDecoder) is the thinned one.
    QVERIFY2(std::abs(full.logDepth - std::log(6.0)) < 1e-5, qPrintable(QString::number(full.logDepth)));
    QVERIFY2(std::abs(thinned.logDepth) < 0.1, qPrintable(QString::number(thinned.logDepth)));  // ~1,000 UMIs
    QVERIFY2(std::abs(shallowB.logDepth - std::log(0.6)) < 1e-5, qPrintable(QString::number(shallowB.logDepth)));
    SampleOptions bad;
    bad.downsampleTo = -5;
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, TrainingSampleBuilder(t, so, bad));
    QString out, err;
    QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("bad-ds"),
                  "--downsample-to", "-1"}, &out, &err), 2);
    QVERIFY2(err.contains("--downsample-to"), qPrintable(err));
  }

  // --gene-scale-sd: each expressed gene's count gets a random log-normal factor per cell, so
  // genes of equal counts are drawn into the sentence unequally often, differently per cell;
  // the mask (which genes are hidden) does not change, and the same stream gives the same sample.
  void geneScaleAugmentationReweightsGenesPerCell() {
    const GeneTable t = everyGeneMatched(2000, 7);
    const SentenceOptions so = shortSentences();  // 64 genes a sentence
    SampleOptions plain, zero, aug;
    aug.geneScaleSd = 1.5;
    TrainingSampleBuilder a(t, so, plain), z(t, so, zero), b(t, so, aug);
    std::vector<int32_t> cols;
    std::vector<float> vals;
    for (int c = 0; c < 10; ++c) {  // ten genes of 10 counts each: 2 masked, 8 in the sentence
      cols.push_back(c);
      vals.push_back(10.f);
    }
    // Coefficient of variation of the 8 sentence genes' draw counts, averaged over 60 cells.
    auto meanCv = [&](TrainingSampleBuilder& builder, std::vector<TrainingSample>* keep) {
      double sum = 0;
      for (uint64_t stream = 0; stream < 60; ++stream) {
        TrainingSample s;
        if (!builder.build(cols.data(), vals.data(), 10, stream, s)) return -1.0;
        std::map<int32_t, int> counts;
        for (int i = 0; i < s.length; ++i)
          if (s.tokens[static_cast<size_t>(i)] >= 100 && s.tokens[static_cast<size_t>(i)] < 110) ++counts[s.tokens[static_cast<size_t>(i)]];
        double m = 0, v = 0;
        for (const auto& [tok, n] : counts) m += n;
        m /= 8;
        for (const auto& [tok, n] : counts) v += (n - m) * (n - m);
        v += (8 - static_cast<double>(counts.size())) * m * m;  // a kept gene never drawn
        sum += std::sqrt(v / 8) / m;
        if (keep) keep->push_back(s);
      }
      return sum / 60;
    };
    std::vector<TrainingSample> plainSamples, zeroSamples, augSamples, augAgain;
    const double cvPlain = meanCv(a, &plainSamples), cvZero = meanCv(z, &zeroSamples), cvAug = meanCv(b, &augSamples);
    meanCv(b, &augAgain);
    // Multinomial draws of 64 over 8 equal genes: CV ~0.33. With factors exp(1.5 z) the weights
    // themselves spread (log1p of 10 e^(1.5 z)), so the draws spread further.
    QVERIFY2(cvPlain > 0.2 && cvPlain < 0.45, qPrintable(QString::number(cvPlain)));
    QVERIFY2(cvAug > 1.4 * cvPlain, qPrintable(QString("plain %1, augmented %2").arg(cvPlain).arg(cvAug)));
    QCOMPARE(cvZero, cvPlain);  // sd 0 is off
    int tokensDiffer = 0;
    for (size_t i = 0; i < plainSamples.size(); ++i) {
      QVERIFY(zeroSamples[i].tokens == plainSamples[i].tokens);
      QVERIFY(augSamples[i].maskedColumns == plainSamples[i].maskedColumns);  // same genes hidden
      QVERIFY(augAgain[i].tokens == augSamples[i].tokens && augAgain[i].lossColumns == augSamples[i].lossColumns);
      tokensDiffer += augSamples[i].tokens != plainSamples[i].tokens;
    }
    QVERIFY2(tokensDiffer > 50, qPrintable(QString::number(tokensDiffer)));
    SampleOptions bad;
    bad.geneScaleSd = -1;
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, TrainingSampleBuilder(t, so, bad));
    QString out, err;
    QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("bad-gs"),
                  "--gene-scale-sd", "nan"}, &out, &err), 2);
    QVERIFY2(err.contains("--gene-scale-sd"), qPrintable(err));
    QVERIFY(!QFileInfo::exists(tmp_.filePath("bad-gs")));
  }

  // The second view of a cell (view consistency): drawn from a stream of its own, reproducibly,
  // and thinned further: f log-uniform in [viewDepthMin, 1] times a per-gene log-normal factor.
  void secondViewIsAShallowerIndependentDraw() {
    const GeneTable t = everyGeneMatched(2000, 7);
    const SentenceOptions so = shortSentences();
    SampleOptions plain, noThin;
    noThin.viewDepthMin = 1;  // f = 1 and no gene factors: the view keeps every UMI
    noThin.viewGeneSd = 0;
    TrainingSampleBuilder a(t, so, plain), b(t, so, noThin);
    std::vector<int32_t> cols;
    std::vector<float> vals;
    for (int c = 0; c < 1000; ++c) {  // 1,000 genes of 3 UMIs each
      cols.push_back(c);
      vals.push_back(3.f);
    }
    double firstMasked = 0, viewMasked = 0;
    int differ = 0;
    for (uint64_t stream = 0; stream < 40; ++stream) {
      TrainingSample first, view, viewAgain, whole;
      QVERIFY(a.build(cols.data(), vals.data(), 1000, stream, first));
      QVERIFY(a.build(cols.data(), vals.data(), 1000, stream, view, true));
      QVERIFY(a.build(cols.data(), vals.data(), 1000, stream, viewAgain, true));
      QVERIFY(b.build(cols.data(), vals.data(), 1000, stream, whole, true));
      QVERIFY(viewAgain.tokens == view.tokens && viewAgain.maskedColumns == view.maskedColumns &&
              viewAgain.lossColumns == view.lossColumns);
      // Without thinning the view hides as many genes as the first view, but other ones.
      QCOMPARE(whole.maskedColumns.size(), first.maskedColumns.size());
      differ += whole.maskedColumns != first.maskedColumns && whole.tokens != first.tokens;
      firstMasked += static_cast<double>(first.maskedColumns.size()) / 40;
      viewMasked += static_cast<double>(view.maskedColumns.size()) / 40;
    }
    QCOMPARE(differ, 40);
    // 20 % of the expressed genes are masked: 200 of 1,000 in the first view. In the second, a
    // gene of 3 UMIs stays expressed with probability 1 - (1 - p)^3, p = f e^(0.25 z), f
    // log-uniform in [0.33, 1]: about 0.80 on average, so ~160 masked.
    QCOMPARE(firstMasked, 200.0);
    QVERIFY2(viewMasked > 140 && viewMasked < 180, qPrintable(QString::number(viewMasked)));
    SampleOptions bad;
    bad.viewDepthMin = 0;
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, TrainingSampleBuilder(t, so, bad));
    QString out, err;
    QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("bad-view"),
                  "--view-consistency", "-1"}, &out, &err), 2);
    QVERIFY2(err.contains("--view-consistency"), qPrintable(err));
    QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("bad-view"),
                  "--view-consistency", "1", "--view-depth-min", "1.5"}, &out, &err), 2);
    QVERIFY2(err.contains("--view-depth-min"), qPrintable(err));
    QVERIFY(!QFileInfo::exists(tmp_.filePath("bad-view")));
  }

  // --view-consistency W: the two views of every cell go through the model and W x the InfoNCE
  // loss of matching each cell's two views within the micro-batch joins the loss. Trained with
  // the term, that InfoNCE ends lower than in the same run with a negligible weight (the same
  // data and views), and the masked-gene loss (the metrics' "loss") still falls.
  void viewConsistencyPullsTheTwoViewsTogether() {
    auto run = [&](const QString& name, double weight) {
      const auto ls = viewRun(name, weight, 0);
      if (ls.empty()) return -1.0;
      double nce = 0, first = 0, last = 0;  // over the first and last 10 steps
      for (size_t i = 0; i < 10; ++i) {
        first += uce::test::jsonNumber(ls[i], "loss") / 10;
        last += uce::test::jsonNumber(ls[ls.size() - 1 - i], "loss") / 10;
        nce += uce::test::jsonNumber(ls[ls.size() - 1 - i], "view_nce") / 10;
        const double c = uce::test::jsonNumber(ls[i], "view_cosine");
        if (!(c > -1 && c <= 1.0001)) return -2.0;
      }
      return last < first - 0.02 ? nce : -3.0;
    };
    const double loose = run("views-loose", 1e-6), tight = run("views-tight", 5);
    qInfo("view InfoNCE over the last 10 of 30 steps: weight 1e-6 %.3g, weight 5 %.3g", loose, tight);
    QVERIFY2(loose > 0 && tight > 0, qPrintable(QString("%1 %2").arg(loose).arg(tight)));
    // log 8 = 2.08 is chance (8 cells a micro-batch): the loose run's views find each other no
    // better than that, the tight run's do (measured 2.08 and 1.76).
    QVERIFY2(tight < loose - 0.2, qPrintable(QString("%1 %2").arg(loose).arg(tight)));
    // With views, an interrupted and resumed run still reproduces the straight run bitwise.
    TrainOptions straight = base(tmp_.filePath("views-straight"));
    straight.viewConsistency = 1;
    straight.maxSteps = 4;
    straight.checkpointEvery = 100;
    straight.batchSize = 8;
    train(straight);
    TrainOptions resumed = straight;
    resumed.outDir = tmp_.filePath("views-resumed").toStdString();
    QVERIFY(train(resumed, [](const StepMetrics& m) { return m.step < 2; }).interrupted);
    resumed.resume = true;
    QCOMPARE(train(resumed).resumedFrom, int64_t(2));
    compareWeights(tmp_.filePath("views-straight/model.torch"), tmp_.filePath("views-resumed/model.torch"));
    // Without the option no view is drawn and the metrics carry no view_cosine.
    TrainOptions off = base(tmp_.filePath("views-off"));
    off.maxSteps = 2;
    off.checkpointEvery = 1000;
    train(off);
    QVERIFY(!QString::fromStdString(uce::test::lines(tmp_.filePath("views-off/metrics.jsonl"))[0]).contains("view_cosine"));
  }

  // --view-isotropy W: W x the anisotropy of the view displacements (1 = all cells move one
  // way between their views, 1 / 8 = no preferred direction with 8 cells a micro-batch) joins
  // the loss. Trained with it, the logged anisotropy ends lower than in the same run without;
  // the masked-gene loss still falls. It needs the views, and says so.
  void viewIsotropySpreadsTheViewDisplacements() {
    auto run = [&](const QString& name, double weight) {
      const auto ls = viewRun(name, 0.1, weight);
      if (ls.empty()) return -1.0;
      double aniso = 0, first = 0, last = 0;
      for (size_t i = 0; i < 10; ++i) {
        first += uce::test::jsonNumber(ls[i], "loss") / 10;
        last += uce::test::jsonNumber(ls[ls.size() - 1 - i], "loss") / 10;
        const double a = uce::test::jsonNumber(ls[ls.size() - 1 - i], "view_anisotropy");
        if (!(a >= 1.0 / 8 - 1e-6 && a <= 1 + 1e-6)) return -2.0;
        aniso += a / 10;
      }
      return last < first - 0.02 ? aniso : -3.0;
    };
    const double free = run("iso-off", 0), iso = run("iso-on", 5);
    qInfo("view anisotropy over the last 10 of 30 steps: off %.3g, weight 5 %.3g", free, iso);
    QVERIFY2(free > 0 && iso > 0, qPrintable(QString("%1 %2").arg(free).arg(iso)));
    QVERIFY2(iso < free - 0.05, qPrintable(QString("%1 %2").arg(free).arg(iso)));
    QString out, err;
    QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("bad-iso"),
                  "--view-isotropy", "1"}, &out, &err), 2);
    QVERIFY2(err.contains("--view-isotropy") && err.contains("--view-consistency"), qPrintable(err));
    QVERIFY(!QFileInfo::exists(tmp_.filePath("bad-iso")));
  }

  // equalLengths: every training sentence has the same length, so no micro-batch is padded
  // (tokens per cell is one integer on every step); without it the lengths vary. A resume must
  // keep the setting.
  void equalLengthsLeaveNoPadding() {
    auto tokensPerCell = [&](const QString& name, bool equal) {
      TrainOptions o = base(tmp_.filePath(name));
      o.maxSteps = 4;
      o.checkpointEvery = 1000;
      o.equalLengths = equal;
      train(o);
      std::vector<double> r;
      for (const std::string& line : uce::test::lines(tmp_.filePath(name + "/metrics.jsonl")))
        r.push_back(uce::test::jsonNumber(line, "tokens_per_s") / uce::test::jsonNumber(line, "cells_per_s"));
      return r;
    };
    const std::vector<double> eq = tokensPerCell("equal", true), var = tokensPerCell("varied", false);
    QCOMPARE(eq.size(), size_t(4));
    const double most = *std::max_element(var.begin(), var.end());
    for (double x : eq) {
      QVERIFY2(std::abs(x - eq[0]) < 1e-6 * eq[0] && std::abs(x - std::round(x)) < 1e-6, qPrintable(QString::number(x)));
      QVERIFY2(x >= most && x >= 1 + 128 + 2, qPrintable(QString("%1 against %2").arg(x).arg(most)));
    }
    QVERIFY2(*std::min_element(var.begin(), var.end()) < most, "the unfilled sentences should vary in length");
    qInfo("tokens a cell: equal lengths %g; without %g-%g", eq[0], *std::min_element(var.begin(), var.end()), most);
    TrainOptions again = base(tmp_.filePath("varied"));
    again.maxSteps = 5;
    again.resume = true;
    again.equalLengths = true;
    try {
      train(again);
      QFAIL("resumed with another sentence length");
    } catch (const uce::Error& e) {
      QVERIFY2(QString(e.what()).contains("equal_lengths"), e.what());
    }
  }

  // depthAwareDecoder: the decoder's depth slope is trained (it leaves zero and changes the
  // losses), lives in the checkpoints (a resume is bitwise) but not in OUT/model.torch, which
  // keeps the release layout and embeds; resuming with the other setting is refused.
  void depthAwareDecoderTrainsASlopeOutsideTheRelease() {
    TrainOptions plain = base(tmp_.filePath("dad-plain"));
    plain.maxSteps = 6;
    plain.checkpointEvery = 3;
    plain.keepCheckpoints = 5;
    TrainOptions straight = plain;
    straight.outDir = tmp_.filePath("dad-straight").toStdString();
    straight.depthAwareDecoder = true;
    train(plain);
    train(straight);
    const QString ck = tmp_.filePath("dad-straight/checkpoints/step-0000006/depth-head.pt");
    NamedTensors head = loadTensorDict(ck.toStdString());
    QCOMPARE(head.size(), size_t(2));
    double moved = 0;
    for (const auto& kv : head) moved += kv.second.abs().sum().item<double>();
    QVERIFY2(moved > 1e-4, qPrintable(QString::number(moved)));
    auto la = uce::test::lines(tmp_.filePath("dad-plain/metrics.jsonl"));
    auto lb = uce::test::lines(tmp_.filePath("dad-straight/metrics.jsonl"));
    QCOMPARE(la.size(), size_t(6));
    QCOMPARE(lb.size(), size_t(6));
    // Step 1 starts from a zero slope: the same loss; later steps use the learned slope.
    QCOMPARE(uce::test::jsonNumber(la[0], "loss"), uce::test::jsonNumber(lb[0], "loss"));
    QVERIFY(uce::test::jsonNumber(la[5], "loss") != uce::test::jsonNumber(lb[5], "loss"));
    // The release layout: the same names and shapes as without the option.
    NamedTensors a = loadTensorDict(tmp_.filePath("dad-plain/model.torch").toStdString());
    NamedTensors b = loadTensorDict(tmp_.filePath("dad-straight/model.torch").toStdString());
    QCOMPARE(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      QVERIFY2(a[i].first == b[i].first, b[i].first.c_str());
      QVERIFY(a[i].second.sizes() == b[i].second.sizes());
    }
    EmbedReport er = embedKidney(tmp_.filePath("dad-straight/model.torch"), tmp_.filePath("dad-embedded.h5ad"));
    QVERIFY2(er.cellsEmbedded > 100, qPrintable(QString::number(er.cellsEmbedded)));
    // Stopped at step 3 and resumed: bitwise the straight run, depth head included.
    TrainOptions resumed = straight;
    resumed.outDir = tmp_.filePath("dad-resumed").toStdString();
    QVERIFY(train(resumed, [](const StepMetrics& m) { return m.step < 3; }).interrupted);
    resumed.resume = true;
    train(resumed);
    compareWeights(tmp_.filePath("dad-straight/model.torch"), tmp_.filePath("dad-resumed/model.torch"));
    NamedTensors h2 = loadTensorDict(tmp_.filePath("dad-resumed/checkpoints/step-0000006/depth-head.pt").toStdString());
    for (size_t i = 0; i < head.size(); ++i) QVERIFY2(head[i].second.equal(h2[i].second), head[i].first.c_str());
    TrainOptions other = plain;
    other.maxSteps = 8;
    other.resume = true;
    other.depthAwareDecoder = true;
    try {
      train(other);
      QFAIL("resumed a run without the depth head with it");
    } catch (const uce::Error& e) {
      QVERIFY2(QString(e.what()).contains("depth_aware_decoder"), e.what());
    }
  }

  // firstLayerQkGain: a new model's layer-0 query and key weights start scaled by the gain; the
  // values, the later layers and the rest of the network start exactly as without it.
  void firstLayerQkGainScalesLayerZeroQueryKeyOnly() {
    TrainOptions plain = base(tmp_.filePath("qk-plain")), soft = base(tmp_.filePath("qk-soft"));
    plain.maxSteps = soft.maxSteps = 0;
    soft.firstLayerQkGain = 0.125;
    Trainer(plain).run();
    Trainer(soft).run();
    NamedTensors a = loadTensorDict((tmp_.filePath("qk-plain") + "/model.torch").toStdString());
    NamedTensors b = loadTensorDict((tmp_.filePath("qk-soft") + "/model.torch").toStdString());
    QCOMPARE(a.size(), b.size());
    const int64_t d = 32;
    for (size_t i = 0; i < a.size(); ++i) {
      QVERIFY(a[i].first == b[i].first);
      if (a[i].first == "transformer_encoder.layers.0.self_attn.in_proj_weight") {
        QVERIFY(b[i].second.narrow(0, 0, 2 * d).allclose(a[i].second.narrow(0, 0, 2 * d).mul(0.125)));
        QVERIFY(b[i].second.narrow(0, 2 * d, d).equal(a[i].second.narrow(0, 2 * d, d)));
      } else {
        QVERIFY2(a[i].second.equal(b[i].second), a[i].first.c_str());
      }
    }
    TrainOptions bad = base(tmp_.filePath("qk-bad"));
    bad.firstLayerQkGain = 0;
    QVERIFY_THROWS_EXCEPTION(uce::Error, Trainer{bad});
  }

  // encoderLrScale: the cell-embedding path (encoder, transformer, decoder) steps at the scaled
  // rate, the training head at the full rate. After one step from the same start, the head has
  // moved exactly as without the option and the cell path a tenth as far.
  void encoderLrScaleSlowsTheCellPathOnly() {
    TrainOptions init = base(tmp_.filePath("els-0")), plain = base(tmp_.filePath("els-1")),
                 slow = base(tmp_.filePath("els-01"));
    init.maxSteps = 0;
    plain.maxSteps = slow.maxSteps = 1;
    slow.encoderLrScale = 0.1;
    Trainer(init).run();
    Trainer(plain).run();
    Trainer(slow).run();
    NamedTensors a = loadTensorDict((tmp_.filePath("els-0") + "/model.torch").toStdString());
    NamedTensors b = loadTensorDict((tmp_.filePath("els-1") + "/model.torch").toStdString());
    NamedTensors c = loadTensorDict((tmp_.filePath("els-01") + "/model.torch").toStdString());
    QCOMPARE(a.size(), b.size());
    QCOMPARE(a.size(), c.size());
    int head = 0, body = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string& k = a[i].first;
      QVERIFY(b[i].first == k && c[i].first == k);
      const auto full = b[i].second.sub(a[i].second);
      const auto part = c[i].second.sub(a[i].second);
      if (k.rfind("gene_embedding_layer.", 0) == 0 || k.rfind("binary_decoder.", 0) == 0) {
        QVERIFY2(full.abs().max().item().toDouble() > 1e-5, k.c_str());  // the head did move
        QVERIFY2(part.allclose(full, 0, 1e-7), k.c_str());
        ++head;
      } else if (k.rfind("encoder.", 0) == 0 || k.rfind("transformer_encoder.", 0) == 0 || k.rfind("decoder.", 0) == 0) {
        QVERIFY2(full.abs().max().item().toDouble() > 1e-5, k.c_str());
        QVERIFY2(part.allclose(full.mul(0.1), 1e-3, 1e-7), k.c_str());
        ++body;
      }
    }
    QVERIFY(head >= 10 && body >= 20);
    TrainOptions bad = base(tmp_.filePath("els-bad"));
    bad.encoderLrScale = 0;
    QVERIFY_THROWS_EXCEPTION(uce::Error, Trainer{bad});
    QString out, err;
    QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("els-cli"),
                  "--encoder-lr-scale", "-1"}, &out, &err), 2);
    QVERIFY2(err.contains("--encoder-lr-scale"), qPrintable(err));
  }

  // adamw: "auto" runs LibTorch's per-parameter AdamW on the CPU (the fused kernels are CUDA
  // only), so its weights are the loop's bit for bit; "fused" on the CPU, or a name that is not
  // an implementation, is refused before any work with a message naming the option.
  // (The fused update against the loop on CUDA: bench/gpu_train.sh RUNS=fused.)
  void adamwImplementationIsCheckedAndAutoIsTheLoopOnCpu() {
    TrainOptions loop = base(tmp_.filePath("adamw-loop")), autoImpl = base(tmp_.filePath("adamw-auto"));
    loop.maxSteps = autoImpl.maxSteps = 2;
    loop.adamw = "loop";
    Trainer(loop).run();
    Trainer(autoImpl).run();
    compareWeights(tmp_.filePath("adamw-loop/model.torch"), tmp_.filePath("adamw-auto/model.torch"));
    for (const char* impl : {"fused", "foreach"}) {
      TrainOptions bad = base(tmp_.filePath(QString("adamw-") + impl));
      bad.adamw = impl;
      try {
        Trainer t(bad);
        QFAIL(impl);
      } catch (const uce::Error& e) {
        QVERIFY2(QString(e.what()).contains("--adamw"), e.what());
      }
      QVERIFY(!QDir(tmp_.filePath(QString("adamw-") + impl) + "/checkpoints").exists());
    }
    QString out, err;
    QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("adamw-cli"), "--adamw",
                  "fused"}, &out, &err), 2);
    QVERIFY2(err.contains("--adamw fused needs --device cuda"), qPrintable(err));
  }

  // bf16Layers (--bf16-layers): the run follows the fp32 run to within bf16 rounding, step by
  // step (and is not the fp32 run: the path is taken), and what it saves is the release's fp32
  // layout, which the embedder reads. The CLI takes the switch.
  // (Its speed and its 33-layer losses on CUDA: bench/gpu_train.sh RUNS="l33_eq_bf16 bf16".)
  void bf16LayersFollowTheFp32RunAndSaveFp32() {
    auto losses = [&](const QString& name, bool bf16) {
      TrainOptions o = plain(tmp_.filePath(name), 12);
      o.dropout = false;
      o.bf16Layers = bf16;
      train(o);
      std::vector<double> r;
      for (const std::string& line : uce::test::lines(tmp_.filePath(name + "/metrics.jsonl")))
        r.push_back(uce::test::jsonNumber(line, "loss"));
      return r;
    };
    const std::vector<double> fp32 = losses("bf16-off", false), bf16 = losses("bf16-on", true);
    QCOMPARE(fp32.size(), size_t(12));
    QCOMPARE(bf16.size(), fp32.size());
    double worst = 0;
    for (size_t i = 0; i < fp32.size(); ++i) worst = std::max(worst, std::abs(fp32[i] - bf16[i]));
    qInfo("bf16 layers: losses within %.3g of the fp32 run's over 12 steps (%.4f -> %.4f)", worst, fp32.front(),
          fp32.back());
    QVERIFY2(worst > 0 && worst < 5e-3, qPrintable(QString::number(worst)));
    QVERIFY2(fp32.back() < fp32.front() - 0.01, "the reference run should learn");
    NamedTensors a = loadTensorDict(tmp_.filePath("bf16-off/model.torch").toStdString());
    NamedTensors b = loadTensorDict(tmp_.filePath("bf16-on/model.torch").toStdString());
    QCOMPARE(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      QVERIFY2(a[i].first == b[i].first && b[i].second.scalar_type() == a[i].second.scalar_type(), b[i].first.c_str());
      QCOMPARE(b[i].second.scalar_type(), torch::kFloat);
    }
    EmbedReport er = embedKidney(tmp_.filePath("bf16-on/model.torch"), tmp_.filePath("bf16-embedded.h5ad"));
    QVERIFY2(er.cellsEmbedded > 100, qPrintable(QString::number(er.cellsEmbedded)));
    QString out, err;
    QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("bf16-cli"), "--nlayers",
                  "1", "--d-model", "32", "--nhead", "4", "--batch-size", "8", "--max-steps", "2", "--sample-size",
                  "64", "--validate-every", "1000", "--threads", "1", "--bf16-layers", "--quiet"}, &out, &err),
             0);
    QVERIFY(QFile::exists(tmp_.filePath("bf16-cli/model.torch")));
  }

  // UCE_TRAIN_TRACE=1 prints one line a step whose phases (reading, tokenizing, upload, the
  // inputs, the layers, the head, backward, update) add up to the step's time (the device tool's
  // bench/gpu_train.sh reads them), and leaves the training itself alone.
  void traceAccountsForEachStepAndChangesNothing() {
    const QStringList args{"train", "--corpus", corpus_, "--assets", assets_, "--nlayers", "1", "--d-model", "32",
                           "--nhead", "4", "--batch-size", "8", "--max-steps", "3", "--sample-size", "64",
                           "--validate-every", "1000", "--checkpoint-every", "2", "--threads", "2", "--quiet"};
    QString out, err;
    QCOMPARE(cli(QStringList(args) << "--out" << tmp_.filePath("trace-off"), &out, &err), 0);
    QVERIFY2(!err.contains("trace:"), qPrintable(err));
    qputenv("UCE_TRAIN_TRACE", "1");
    const int rc = cli(QStringList(args) << "--out" << tmp_.filePath("trace-on"), &out, &err);
    qunsetenv("UCE_TRAIN_TRACE");
    QCOMPARE(rc, 0);
    compareWeights(tmp_.filePath("trace-off/model.torch"), tmp_.filePath("trace-on/model.torch"));
    QRegularExpression re(R"(trace: step (\d+): read ([0-9.]+) ms, tokenize ([0-9.]+) ms, upload ([0-9.]+) ms, )"
                          R"(inputs ([0-9.]+) ms, layers ([0-9.]+) ms, head ([0-9.]+) ms, backward ([0-9.]+) ms, )"
                          R"(update ([0-9.]+) ms, step ([0-9.]+) ms)");
    int steps = 0;
    for (auto it = re.globalMatch(err); it.hasNext();) {
      const auto m = it.next();
      QCOMPARE(m.captured(1).toInt(), ++steps);
      double parts = 0;
      for (int i = 2; i <= 9; ++i) parts += m.captured(i).toDouble();
      const double step = m.captured(10).toDouble();
      // The layers and the backward pass are where a step's compute goes: they take time.
      QVERIFY2(m.captured(6).toDouble() > 0 && m.captured(8).toDouble() > 0 &&
                   std::abs(parts - step) <= 0.5 + 0.01 * step,
               qPrintable(m.captured(0)));
    }
    QVERIFY2(steps == 3, qPrintable(err.left(2000)));
    // The checkpoints: step 2's written in the background, the last one (step 3) on the training
    // thread, each with what it cost.
    for (const char* line : {R"(trace: checkpoint 2: waited [0-9.]+ ms for the previous write, copied and serialised )"
                             R"([0-9.]+ ms on the training thread)",
                             R"(trace: checkpoint 2: written [0-9.]+ ms in the background)",
                             R"(trace: checkpoint 3: copied and serialised [0-9.]+ ms, written [0-9.]+ ms, on the )"
                             R"(training thread)"})
      QVERIFY2(QRegularExpression(line).match(err).hasMatch(), qPrintable(QString(line) + "\n" + err.left(3000)));
  }

  // headHidden: a narrower training head. The saved weights carry its widths, a resume and the
  // embedder read them back from the shapes, and the cell path is the same network as before.
  void narrowHeadIsSavedResumedAndEmbedded() {
    const QString out = tmp_.filePath("narrow");
    TrainOptions o = base(out);
    o.headHidden = {24, 12, 6};
    o.maxSteps = 4;
    o.checkpointEvery = 2;
    Trainer(o).run();
    auto shapes = [](const QString& file) {
      std::map<std::string, std::vector<int64_t>> m;
      for (auto& kv : loadTensorDict(file.toStdString())) m[kv.first] = kv.second.sizes().vec();
      return m;
    };
    auto sd = shapes(out + "/model.torch");
    QCOMPARE(sd["binary_decoder.0.0.weight"], (std::vector<int64_t>{24, 32 + 32}));
    QCOMPARE(sd["binary_decoder.1.0.weight"], (std::vector<int64_t>{12, 24}));
    QCOMPARE(sd["binary_decoder.2.0.weight"], (std::vector<int64_t>{6, 12}));
    QCOMPARE(sd["binary_decoder.3.weight"], (std::vector<int64_t>{1, 6}));
    const auto c = inferConfig(loadTensorDict((out + "/model.torch").toStdString()), "m", 4);
    QVERIFY((c.headHidden == std::array<int64_t, 3>{24, 12, 6}));
    QVERIFY2(QString::fromStdString(c.describe()).contains("head 24/12/6"), c.describe().c_str());
    // The cell path is sized by the model shape alone.
    TrainOptions release = base(tmp_.filePath("narrow-wide"));
    release.maxSteps = 0;
    Trainer(release).run();
    auto wide = shapes(tmp_.filePath("narrow-wide") + "/model.torch");
    QCOMPARE(wide["binary_decoder.1.0.weight"], (std::vector<int64_t>{512, 2048}));
    for (const auto& kv : sd)
      if (kv.first.rfind("binary_decoder.", 0) != 0) QVERIFY2(wide[kv.first] == kv.second, kv.first.c_str());

    // Resume continues with the checkpoint's head, whatever the options say now.
    TrainOptions more = base(out);
    more.maxSteps = 6;
    more.checkpointEvery = 2;
    more.resume = true;
    const TrainReport r = Trainer(more).run();
    QCOMPARE(r.steps, int64_t(6));
    QCOMPARE(shapes(out + "/model.torch")["binary_decoder.1.0.weight"], (std::vector<int64_t>{12, 24}));

    QVERIFY(embedKidney(out + "/model.torch", tmp_.filePath("narrow.h5ad")).cellsEmbedded > 100);

    // The CLI: the flag sets the widths; a malformed list is refused, naming the flag.
    QString cliOut, err;
    QCOMPARE(cli({"init-model", "--assets", assets_, "--out", tmp_.filePath("narrow-init.torch"), "--layers", "1",
                  "--d-model", "32", "--nhead", "4", "--head-hidden", "20,10,5"}, &cliOut, &err), 0);
    QCOMPARE(shapes(tmp_.filePath("narrow-init.torch"))["binary_decoder.2.0.weight"], (std::vector<int64_t>{5, 10}));
    for (const char* bad : {"20,10", "20,0,5", "20,ten,5"}) {
      QCOMPARE(cli({"train", "--corpus", corpus_, "--assets", assets_, "--out", tmp_.filePath("narrow-bad"),
                    "--head-hidden", bad}, &cliOut, &err), 2);
      QVERIFY2(err.contains("--head-hidden") && err.contains(bad), qPrintable(err));
    }
    TrainOptions zero = base(tmp_.filePath("narrow-zero"));
    zero.headHidden = {8, 0, 4};
    QVERIFY_THROWS_EXCEPTION(uce::Error, Trainer{zero});
  }

  void learnsAndWritesUsableWeights() {
    const QString out = tmp_.filePath("run");
    Trainer trainer(base(out));
    const Validation init = trainer.validate();
    QVERIFY2(init.cells > 30, qPrintable(QString::number(init.cells)));
    QVERIFY2(std::abs(init.auroc - 0.5) < 0.12, qPrintable(QString::number(init.auroc)));
    const TrainReport r = trainer.run();
    QCOMPARE(r.steps, int64_t(40));
    QVERIFY(!r.interrupted);
    const Validation done = trainer.validate();
    qInfo("val AUROC %.3f -> %.3f, val loss %.3f -> %.3f, %.1f s for 40 steps (%.2f steps/s)", init.auroc, done.auroc,
          init.loss, done.loss, r.seconds, 40.0 / r.seconds);
    QVERIFY2(done.auroc > 0.6, qPrintable(QString::number(done.auroc)));
    QVERIFY(done.loss < init.loss);

    auto ls = uce::test::lines(out + "/metrics.jsonl");
    QCOMPARE(ls.size(), size_t(40));
    double first = 0, last = 0;
    for (int i = 0; i < 5; ++i) {
      first += uce::test::jsonNumber(ls[static_cast<size_t>(i)], "loss") / 5;
      last += uce::test::jsonNumber(ls[ls.size() - 1 - static_cast<size_t>(i)], "loss") / 5;
    }
    QVERIFY2(first > last + 0.05, qPrintable(QString("first-5 %1, last-5 %2").arg(first).arg(last)));
    QVERIFY(!std::isnan(uce::test::jsonNumber(ls.back(), "val_auroc")));

    // Only the last K = 2 checkpoints remain.
    QStringList ck = QDir(out + "/checkpoints").entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(ck, QStringList({"step-0000030", "step-0000040"}));

    // metrics parse as JSON; weights load in PyTorch in the release layout.
    QString py, err;
    int rc = python(QString(R"(
import json, sys, torch
for l in open('%1/metrics.jsonl'):
    m = json.loads(l)
    assert 'step' in m and 'loss' in m and 'lr' in m and 'grad_norm' in m and 'cells_per_s' in m, m
sd = torch.load('%1/model.torch')
assert sd['encoder.0.weight'].shape == (32, 32), sd['encoder.0.weight'].shape
assert 'binary_decoder.3.weight' in sd and 'transformer_encoder.layers.1.linear1.weight' in sd
assert 'pe_embedding.weight' in sd and 'pos_encoder.pe' in sd
# The release's code builds the network and loads a state dict strictly: the final weights and
# every checkpoint's (the last one is the same step, so the same tensors).
sys.path.insert(0, '%2/tests/model')
from uce_reference import Uce
for path in ['%1/model.torch', '%1/checkpoints/step-0000030/model.torch', '%1/checkpoints/step-0000040/model.torch']:
    w = torch.load(path)
    m = Uce(w['pe_embedding.weight'].shape[0], 32, 32, 4, 64, 2, 32)
    m.load_state_dict(w, strict=True)
ck = torch.load('%1/checkpoints/step-0000040/model.torch')
assert list(ck) == list(sd)
assert all(torch.equal(ck[k], sd[k]) for k in sd)
print(len(sd))
)").arg(out, UCE_SOURCE_DIR), &py, &err);
    QVERIFY2(rc == 0, qPrintable(err + py));

    // The embedder reads the trained model.
    EmbedReport er = embedKidney(out + "/model.torch", tmp_.filePath("embedded.h5ad"));
    QVERIFY2(er.cellsEmbedded > 100, qPrintable(QString::number(er.cellsEmbedded)));

    // A fresh run into a folder with checkpoints is refused (the user must say --resume).
    try {
      Trainer again(base(out));
      QFAIL("expected an error");
    } catch (const uce::Error& ex) {
      QVERIFY2(QString(ex.what()).contains("--resume"), ex.what());
    }
  }

  // The corpus's optional `layer` column picks the counts matrix of each file: a file whose X
  // holds one set of counts and layers/spliced another trains on layers/spliced when the column
  // names it (the same weights as a copy with those counts in X), on X when the row leaves it
  // empty; a layer the file lacks is an error naming the file.
  void corpusLayerColumnPicksTheCountsMatrix() {
    const QString kidney = atlas_ + "/" + QDir(atlas_).entryList({"human_kidney*.h5ad"}).first();
    const QString mouse = QDir(atlas_).entryList({"mouse_*.h5ad"}).first();
    const QString dir = tmp_.filePath("layers");
    QVERIFY(QDir().mkpath(dir));
    QString out, err;
    const int rc = python(QString(R"(
import anndata as ad, numpy as np, scipy.sparse as sp
a = ad.read_h5ad('%1')
x = sp.csr_matrix(a.X)
alt = x.copy()
alt.data = np.floor(alt.data / 2) + 1  # other counts, the same genes detected
a.layers['spliced'] = alt.astype(x.dtype)
a.write_h5ad('%2/both.h5ad')
b = ad.AnnData(X=alt.astype(x.dtype), obs=a.obs.copy(), var=a.var.copy())
b.write_h5ad('%2/alt_in_x.h5ad')
)").arg(kidney, dir), &out, &err);
    QVERIFY2(rc == 0, qPrintable(err + out));
    // The mouse file by an absolute path, with no layer given (the guess: X).
    const QString mousePath = atlas_ + "/" + mouse;
    uce::test::writeAll(dir + "/layer.csv", ("path,species,layer\nboth.h5ad,human,layers/spliced\n" + mousePath + ",mouse,\n").toUtf8());
    uce::test::writeAll(dir + "/copy.csv", ("path,species\nalt_in_x.h5ad,human\n" + mousePath + ",mouse\n").toUtf8());
    uce::test::writeAll(dir + "/guess.csv", ("path,species\nboth.h5ad,human\n" + mousePath + ",mouse\n").toUtf8());
    uce::test::writeAll(dir + "/missing.csv", "path,species,layer\nboth.h5ad,human,layers/nope\n");
    auto run = [&](const QString& name) {
      TrainOptions o = plain(dir + "/run-" + name, 3);
      o.corpus = (dir + "/" + name + ".csv").toStdString();
      o.batchSize = 8;
      o.dropout = false;
      QCOMPARE(train(o).steps, int64_t(3));
    };
    run("layer");
    run("copy");
    run("guess");
    compareWeights(dir + "/run-layer/model.torch", dir + "/run-copy/model.torch");
    NamedTensors l = loadTensorDict((dir + "/run-layer/model.torch").toStdString());
    NamedTensors g = loadTensorDict((dir + "/run-guess/model.torch").toStdString());
    bool differ = false;
    for (size_t i = 0; i < l.size(); ++i) differ = differ || !l[i].second.equal(g[i].second);
    QVERIFY2(differ, "training on X and on layers/spliced gave the same weights");
    try {
      TrainOptions o = base(dir + "/run-missing");
      o.corpus = (dir + "/missing.csv").toStdString();
      Trainer t(o);
      QFAIL("expected an error for a missing layer");
    } catch (const uce::Error& e) {
      qInfo("missing layer: %s", e.what());
      QVERIFY2(QString(e.what()).contains("both.h5ad") && QString(e.what()).contains("layers/nope"), e.what());
    }
  }

  // The training stream: every training cell once an epoch, the same cells again the next epoch
  // in another order, files interleaved (blocks shuffled, then cells within groups of blocks),
  // validation cells never; the same stream at any thread count, another with another seed. The
  // weights then agree across thread counts to float rounding (LibTorch's CPU kernels split some
  // reductions by thread), and the losses to 5 digits.
  void streamShufflesEveryEpochAtAnyThreadCount() {
    TrainOptions o = base(tmp_.filePath("stream"));
    o.blockRows = 16;
    o.shuffleBlocks = 3;  // groups of 48 rows: several an epoch
    using Cell = std::pair<int, int64_t>;
    auto draw = [&](int threads, uint64_t seed) {
      TrainOptions x = o;
      x.threads = threads;
      x.seed = seed;
      Trainer t(x);
      std::vector<std::vector<Cell>> epochs(2);
      for (const auto& c : t.streamCells(1400))
        if (c.epoch < 2) epochs[static_cast<size_t>(c.epoch)].push_back({c.file, c.row});
      return epochs;
    };
    const auto e = draw(1, 7);
    const std::set<Cell> first(e[0].begin(), e[0].end()), second(e[1].begin(), e[1].end());
    qInfo("epoch 0: %zu cells, epoch 1: %zu", e[0].size(), e[1].size());
    QCOMPARE(first.size(), e[0].size());  // no cell twice in an epoch
    QVERIFY(first == second);             // the same cells every epoch
    QVERIFY(e[0] != e[1]);                // in another order
    // The validation split (o.valFraction 0.1) is left out: between 80 % and 97 % of the 600 cells.
    QVERIFY2(first.size() > 480 && first.size() < 582, qPrintable(QString::number(first.size())));
    // Shuffled across files and rows: the first 48 cells come from more than one file, and few
    // neighbours in the stream are neighbours on disk.
    std::set<int> files;
    for (size_t i = 0; i < 48; ++i) files.insert(e[0][i].first);
    QVERIFY(files.size() >= 2);
    int adjacent = 0;
    for (size_t i = 1; i < e[0].size(); ++i)
      adjacent += e[0][i].first == e[0][i - 1].first && e[0][i].second == e[0][i - 1].second + 1;
    QVERIFY2(adjacent < static_cast<int>(e[0].size() / 10), qPrintable(QString::number(adjacent)));
    QVERIFY(draw(3, 7) == e);  // the same stream at another thread count
    QVERIFY(draw(1, 8)[0] != e[0]);
    // Bounded memory: training reads the corpus a group of blocks (48 rows) at a time, not whole.
    {
      TrainOptions x = o;
      x.outDir = tmp_.filePath("stream-rows").toStdString();
      x.maxSteps = 4;
      x.checkpointEvery = 1000;
      x.validateEvery = 1000;
      QCOMPARE(train(x).steps, int64_t(4));
      double total = 0;
      for (const auto& l : uce::test::lines(tmp_.filePath("stream-rows/metrics.jsonl"))) {
        const double rows = uce::test::jsonNumber(l, "rows_read");
        QVERIFY2(rows >= 0 && rows <= 2 * 48, qPrintable(QString::fromStdString(l)));
        total += rows;
      }
      qInfo("rows read for 4 steps of 16 cells: %g of 600", total);
      QVERIFY2(total >= 64 && total <= 144, qPrintable(QString::number(total)));
    }

    auto run = [&](const QString& name, int threads) {
      TrainOptions x = plain(tmp_.filePath(name), 6);
      x.threads = threads;
      QCOMPARE(train(x).steps, int64_t(6));
    };
    run("threads-1", 1);
    run("threads-3", 3);
    NamedTensors a = loadTensorDict(tmp_.filePath("threads-1/model.torch").toStdString());
    NamedTensors b = loadTensorDict(tmp_.filePath("threads-3/model.torch").toStdString());
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].second.is_floating_point())
        worst = std::max(worst, (a[i].second - b[i].second).abs().max().item<double>());
    qInfo("weights after 6 steps, 1 thread against 3: max |difference| %.3g", worst);
    QVERIFY2(worst < 2e-5, qPrintable(QString::number(worst)));  // 4.6e-06 measured
    const auto la = uce::test::lines(tmp_.filePath("threads-1/metrics.jsonl"));
    const auto lb = uce::test::lines(tmp_.filePath("threads-3/metrics.jsonl"));
    QCOMPARE(la.size(), lb.size());
    for (size_t i = 0; i < la.size(); ++i) {
      const double x = uce::test::jsonNumber(la[i], "loss"), y = uce::test::jsonNumber(lb[i], "loss");
      QVERIFY2(std::abs(x - y) < 1e-5 * std::abs(x), qPrintable(QString("step %1: %2 %3").arg(i + 1).arg(x).arg(y)));
    }
  }

  // The learning rate follows the documented schedule (linear warm-up, then cosine down to
  // lr x minLrRatio at maxSteps; warm-up 5 % of the steps by default), the update applies it
  // (AdamW's first step moves a weight by at most the step's lr, the largest by about that), and
  // the gradient clip comes before the update (a clip far below AdamW's eps all but stops it).
  void scheduleAndClipDriveTheUpdate() {
    auto options = [&](const QString& name) {
      TrainOptions o = plain(tmp_.filePath(name), 20);
      o.lr = 1e-3;
      o.warmupSteps = 4;
      o.batchSize = 8;
      return o;
    };
    TrainOptions s = options("schedule");
    QCOMPARE(train(s).steps, int64_t(20));
    const auto ls = uce::test::lines(tmp_.filePath("schedule/metrics.jsonl"));
    QCOMPARE(ls.size(), size_t(20));
    std::vector<double> lr;
    for (const auto& l : ls) lr.push_back(uce::test::jsonNumber(l, "lr"));
    for (int k = 0; k < 4; ++k) QVERIFY2(std::abs(lr[k] - 1e-3 * (k + 1) / 4) < 1e-12, qPrintable(QString::number(lr[k])));
    for (int k = 4; k < 20; ++k) {
      const double want = 1e-3 * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * (k - 4) / 16.0)));
      // The metrics print 9 significant digits.
      QVERIFY2(std::abs(lr[k] - want) < 1e-8 * want, qPrintable(QString("step %1: %2, want %3").arg(k + 1).arg(lr[k]).arg(want)));
      if (k > 4) QVERIFY(lr[k] < lr[k - 1]);
    }
    QVERIFY(lr[19] > 1e-4 && lr[19] < 1.1e-4);  // near lr x minLrRatio at the end
    s = options("schedule-default");
    s.warmupSteps = -1;
    s.maxSteps = 40;
    s.outDir = tmp_.filePath("schedule-default").toStdString();
    Trainer d(s);
    QCOMPARE(d.run([](const StepMetrics& m) { return m.step < 1; }).last.lr, 1e-3 / 2);  // 5 % of 40: 2 steps

    // The first update: initial weights (a checkpoint before training) against one step's.
    auto firstStep = [&](const QString& name, double clip) {
      TrainOptions o = options(name);
      o.maxSteps = 1;
      o.weightDecay = 0;
      o.dropout = false;
      o.clipNorm = clip;
      Trainer t(o);
      const std::string before = t.writeCheckpoint() + "/model.torch";
      t.run();
      const NamedTensors a = loadTensorDict(before), b = loadTensorDict(tmp_.filePath(name + "/model.torch").toStdString());
      double worst = 0;
      for (const auto& kv : a) {
        if (kv.first == "pe_embedding.weight" || kv.first == "pos_encoder.pe") continue;
        for (const auto& kb : b)
          if (kb.first == kv.first) worst = std::max(worst, (kb.second - kv.second).abs().max().item<double>());
      }
      return worst;
    };
    const double lr1 = 1e-3 / 4, free = firstStep("update-free", 0), clipped = firstStep("update-clipped", 1e-12);
    qInfo("first step, lr %.3g: largest weight change %.4g unclipped, %.3g with the norm clipped to 1e-12", lr1, free, clipped);
    QVERIFY2(free > 0.99 * lr1 && free < 1.0001 * lr1, qPrintable(QString::number(free)));
    QVERIFY2(clipped < 1e-3 * lr1, qPrintable(QString::number(clipped)));
  }

  void resumeIsBitwiseAndSeedDeterminesTheRun() {
    TrainOptions a = base(tmp_.filePath("straight"));
    a.maxSteps = 6;
    a.checkpointEvery = 100;
    a.validateEvery = 3;
    a.gradAccum = 2;
    a.batchSize = 8;
    const TrainReport ra = train(a);
    QCOMPARE(ra.steps, int64_t(6));

    TrainOptions b = a;
    b.outDir = tmp_.filePath("resumed").toStdString();
    const TrainReport rb1 = train(b, [](const StepMetrics& m) { return m.step < 3; });
    QVERIFY(rb1.interrupted);
    QCOMPARE(rb1.steps, int64_t(3));
    QVERIFY(rb1.modelFile.empty());
    b.resume = true;
    const TrainReport rb2 = train(b);
    QCOMPARE(rb2.resumedFrom, int64_t(3));
    QCOMPARE(rb2.steps, int64_t(6));
    compareWeights(tmp_.filePath("straight/model.torch"), tmp_.filePath("resumed/model.torch"));

    // Same seed: the same losses, learning rates, gradient norms and validation numbers.
    auto la = uce::test::lines(tmp_.filePath("straight/metrics.jsonl")), lb = uce::test::lines(tmp_.filePath("resumed/metrics.jsonl"));
    QCOMPARE(la.size(), size_t(6));
    QCOMPARE(lb.size(), size_t(6));
    for (size_t i = 0; i < la.size(); ++i)
      for (const char* k : {"step", "loss", "lr", "grad_norm", "val_loss", "val_auroc"}) {
        const double x = uce::test::jsonNumber(la[i], k), y = uce::test::jsonNumber(lb[i], k);
        QVERIFY2((std::isnan(x) && std::isnan(y)) || x == y, qPrintable(QString("line %1 %2").arg(i).arg(k)));
      }
    // Another seed: another run.
    TrainOptions c = a;
    c.outDir = tmp_.filePath("seed8").toStdString();
    c.seed = 8;
    c.maxSteps = 2;
    train(c);
    QVERIFY(uce::test::jsonNumber(uce::test::lines(tmp_.filePath("seed8/metrics.jsonl"))[0], "loss") != uce::test::jsonNumber(la[0], "loss"));
  }

  // TrainOptions::prefetch: the next micro-batch read and tokenized on its own thread while the
  // step runs. The run is the one without it, bit for bit (weights, losses, rows read, epochs,
  // checkpoints), through group loads and an epoch boundary, with two micro-batches a step. A
  // checkpoint saves the position of what the training took, not of what was prefetched, so a
  // run stopped with a micro-batch prefetched resumes bitwise.
  void prefetchGivesTheSameRunAndResumes() {
    auto run = [&](const QString& name, const std::string& prefetch) {
      TrainOptions o = base(tmp_.filePath(name));
      o.maxSteps = 40;
      o.batchSize = 8;
      o.gradAccum = 2;
      o.blockRows = 16;
      o.shuffleBlocks = 3;  // a group of 48 rows loads every few micro-batches
      o.checkpointEvery = 13;
      o.keepCheckpoints = 5;
      o.prefetch = prefetch;
      o.threads = 2;
      o.sampleSize = 64;
      o.padLength = 128;
      return o;
    };
    const TrainReport off = train(run("pf-off", "off"));
    QCOMPARE(off.prefetched, int64_t(0));
    // With prefetching: stopped after step 21 (the next step's first micro-batch already
    // prefetched, then dropped), resumed to the end.
    TrainOptions r = run("pf-on", "on");
    const TrainReport stopped = train(r, [](const StepMetrics& m) { return m.step < 21; });
    QVERIFY(stopped.interrupted);
    QCOMPARE(stopped.steps, int64_t(21));
    QCOMPARE(stopped.prefetched, int64_t(2 * 21 - 1));  // every micro-batch taken but the first
    r.resume = true;
    const TrainReport resumed = train(r);
    QCOMPARE(resumed.resumedFrom, int64_t(21));
    QCOMPARE(resumed.prefetched, int64_t(2 * 19 - 1));
    compareWeights(tmp_.filePath("pf-off/model.torch"), tmp_.filePath("pf-on/model.torch"));
    const auto la = uce::test::lines(tmp_.filePath("pf-off/metrics.jsonl")),
               lb = uce::test::lines(tmp_.filePath("pf-on/metrics.jsonl"));
    QCOMPARE(la.size(), size_t(40));
    QCOMPARE(lb.size(), la.size());
    for (size_t i = 0; i < la.size(); ++i)
      for (const char* k : {"step", "epoch", "loss", "lr", "grad_norm", "rows_read", "val_loss", "val_auroc"}) {
        if (i >= 21 && std::string(k) == "rows_read") continue;  // a resume reads its group again
        const double x = uce::test::jsonNumber(la[i], k), y = uce::test::jsonNumber(lb[i], k);
        QVERIFY2((std::isnan(x) && std::isnan(y)) || x == y, qPrintable(QString("line %1 %2").arg(i).arg(k)));
      }
    QCOMPARE(uce::test::jsonNumber(la.front(), "epoch"), 0.0);
    QCOMPARE(uce::test::jsonNumber(la.back(), "epoch"), 1.0);  // 640 cells: past the first epoch
    const QStringList steps = QDir(tmp_.filePath("pf-off/checkpoints")).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(steps, QStringList({"step-0000013", "step-0000026", "step-0000039", "step-0000040"}));
    for (const QString& st : steps)  // the saved stream positions, the RNG states
      for (const char* f : {"state.txt", "rng.pt"})
        QVERIFY2(uce::test::readAll(tmp_.filePath("pf-on/checkpoints/" + st + "/" + f)) ==
                     uce::test::readAll(tmp_.filePath("pf-off/checkpoints/" + st + "/" + f)),
                 qPrintable(st + "/" + f));

    // "auto" prefetches on CUDA only; an unknown value is refused.
    TrainOptions autoOnCpu = run("pf-auto", "auto");
    autoOnCpu.maxSteps = 2;
    QCOMPARE(train(autoOnCpu).prefetched, int64_t(0));
    bool refused = false;
    try {
      train(run("pf-bad", "sometimes"));
    } catch (const uce::Error& e) {
      refused = QString(e.what()).contains("--prefetch must be auto, on or off");
    }
    QVERIFY(refused);
  }

  // Checkpoints written on the background thread (the default) are the synchronous ones byte for
  // byte, rotate the same way and leave no temporary folder; a write that fails in the background
  // (here: the file-size limit, as a full disk would) stops the run with an error naming the file,
  // and leaves no half-written checkpoint.
  void backgroundCheckpointsMatchSyncAndReportWriteErrors() {
    auto run = [&](const QString& name, bool background) {
      TrainOptions o = base(tmp_.filePath(name));
      o.maxSteps = 6;
      o.checkpointEvery = 2;
      o.keepCheckpoints = 2;
      o.validateEvery = 3;
      o.batchSize = 8;
      o.backgroundCheckpoints = background;
      return o;
    };
    QCOMPARE(train(run("ck-sync", false)).steps, int64_t(6));
    QCOMPARE(train(run("ck-bg", true)).steps, int64_t(6));
    auto entries = [&](const QString& dir) {  // hidden ones (.tmp-...) included
      return QDir(tmp_.filePath(dir)).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot);
    };
    const QStringList names = entries("ck-bg/checkpoints");
    QCOMPARE(names, QStringList({"step-0000004", "step-0000006"}));
    QCOMPARE(entries("ck-sync/checkpoints"), names);
    for (const QString& step : names) {
      const QString a = tmp_.filePath("ck-sync/checkpoints/" + step), b = tmp_.filePath("ck-bg/checkpoints/" + step);
      const QStringList files = QDir(a).entryList(QDir::Files);
      QVERIFY(files.contains("model.torch") && files.contains("optimizer.pt") && files.contains("state.txt"));
      QCOMPARE(QDir(b).entryList(QDir::Files), files);
      // LibTorch names each parameter's optimizer state by its tensor's address, so optimizer.pt
      // differs between any two runs: its state is compared by position (the background one is
      // serialised from a host copy of the optimizer), and the resume below checks it too.
      for (const QString& f : files)
        if (f != "optimizer.pt")
          QVERIFY2(uce::test::readAll(a + "/" + f) == uce::test::readAll(b + "/" + f), qPrintable(step + "/" + f));
      compareOptimizerFiles(a + "/optimizer.pt", b + "/optimizer.pt");
    }
    compareWeights(tmp_.filePath("ck-sync/model.torch"), tmp_.filePath("ck-bg/model.torch"));
    // Resumed from the background step-4 checkpoint, the run ends where the synchronous one did.
    QVERIFY(QDir(tmp_.filePath("ck-bg/checkpoints/step-0000006")).removeRecursively());
    QVERIFY(QFile::remove(tmp_.filePath("ck-bg/model.torch")));
    TrainOptions again = run("ck-bg", true);
    again.resume = true;
    QCOMPARE(train(again).resumedFrom, int64_t(4));
    compareWeights(tmp_.filePath("ck-sync/model.torch"), tmp_.filePath("ck-bg/model.torch"));

    // A limit on file size below a checkpoint's model.torch (metrics lines stay under it).
    const qint64 modelBytes = QFileInfo(tmp_.filePath("ck-bg/checkpoints/step-0000006/model.torch")).size();
    QVERIFY(modelBytes > 20000);
    auto failing = [&](const QString& name, bool background, std::string* message) {
      struct rlimit old {};
      getrlimit(RLIMIT_FSIZE, &old);
      struct rlimit lim = old;
      lim.rlim_cur = static_cast<rlim_t>(modelBytes / 2);
      auto oldHandler = std::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG
      setrlimit(RLIMIT_FSIZE, &lim);
      bool threw = false;
      try {
        train(run(name, background));
      } catch (const uce::Error& e) {
        threw = true;
        *message = e.what();
      }
      setrlimit(RLIMIT_FSIZE, &old);
      std::signal(SIGXFSZ, oldHandler);
      return threw;
    };
    std::string msg;
    QVERIFY(failing("ck-full-bg", true, &msg));
    qInfo("background write error: %s", msg.c_str());
    QVERIFY2(msg.find("model.torch") != std::string::npos && msg.find("checkpoints") != std::string::npos, msg.c_str());
    QVERIFY(entries("ck-full-bg/checkpoints").isEmpty());
    QVERIFY(!QFile::exists(tmp_.filePath("ck-full-bg/model.torch")));
    // The run stopped at the failed step-2 write (found at the next step or the next checkpoint),
    // not at the end; on the training thread the same error comes at step 2 itself.
    const size_t bgSteps = uce::test::lines(tmp_.filePath("ck-full-bg/metrics.jsonl")).size();
    QVERIFY2(bgSteps >= 2 && bgSteps <= 4, qPrintable(QString::number(bgSteps)));
    QVERIFY(failing("ck-full-sync", false, &msg));
    QCOMPARE(uce::test::lines(tmp_.filePath("ck-full-sync/metrics.jsonl")).size(), size_t(2));
    QVERIFY(entries("ck-full-sync/checkpoints").isEmpty());
  }

  // The logged loss and view cosine of a step are the means over the whole step, however it is
  // split: 2 micro-batches of 8 cells log what 1 micro-batch of 16 logs for the same cells (the
  // chart a user reads; the values are summed on the device over the micro-batches).
  void stepMetricsAreMeansOverMicroBatches() {
    auto firstLine = [&](const QString& name, int batch, int accum) {
      const auto ls = viewRun(name, 0.1, 0, 1, batch, accum);
      return ls.empty() ? std::string() : ls[0];
    };
    const std::string whole = firstLine("mean-16x1", 16, 1), split = firstLine("mean-8x2", 8, 2);
    const std::string quarter = firstLine("mean-4x4", 4, 4);
    for (const char* k : {"loss", "view_cosine"}) {
      const double w = uce::test::jsonNumber(whole, k), s = uce::test::jsonNumber(split, k);
      const double q = uce::test::jsonNumber(quarter, k);
      qInfo("%s: 16 x 1 %.7g, 8 x 2 %.7g, 4 x 4 %.7g", k, w, s, q);
      QVERIFY2(w > 0 && std::abs(w - s) < 1e-5 * std::abs(w) && std::abs(w - q) < 1e-5 * std::abs(w), k);
    }
  }

  // A run killed outright (SIGKILL: no chance to checkpoint) resumes from its last finished
  // checkpoint and ends on the uninterrupted run's weights and losses, bit for bit, though the
  // kill may land while a checkpoint is being written in the background. A temporary folder the
  // killed run left behind is cleared by the next run.
  void killedRunResumesBitwise() {
    const QString straight = tmp_.filePath("kill-straight"), killed = tmp_.filePath("kill-resumed");
    auto args = [&](const QString& out) {
      return QStringList{"train", "--corpus", corpus_, "--assets", assets_, "--out", out, "--nlayers", "2",
                         "--d-model", "64", "--nhead", "4", "--d-hid", "128", "--output-dim", "32", "--batch-size", "16",
                         "--max-steps", "32", "--sample-size", "128", "--checkpoint-every", "4", "--keep-checkpoints", "2",
                         "--validate-every", "1000", "--threads", "1", "--seed", "5"};
    };
    QString o, e;
    QVERIFY2(cli(args(straight) + QStringList{"--quiet"}, &o, &e) == 0, qPrintable(e + o));
    QProcess p;
    p.start(UCE_CLI, args(killed));
    QVERIFY(p.waitForStarted());
    QByteArray err;
    QElapsedTimer timer;
    timer.start();
    static const QRegularExpression stepRe("progress \\{\"step\":(\\d+)");
    int seen = 0;
    while (seen < 13 && p.state() == QProcess::Running && timer.elapsed() < 120000) {
      p.waitForReadyRead(20);
      err += p.readAllStandardError();
      auto it = stepRe.globalMatch(QString::fromUtf8(err));
      while (it.hasNext()) seen = std::max(seen, it.next().captured(1).toInt());
    }
    ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
    QVERIFY(p.waitForFinished(60000));
    QVERIFY2(p.exitStatus() == QProcess::CrashExit, "the run ended before it could be killed");
    QVERIFY2(seen >= 13 && seen < 32, qPrintable(QString::number(seen)));
    // A leftover from a writer that is gone (a pid that cannot be running).
    QVERIFY(QDir().mkpath(killed + "/checkpoints/.tmp-step-0000099-2147483646/sub"));
    QVERIFY2(cli(args(killed) + QStringList{"--resume", "--quiet"}, &o, &e) == 0, qPrintable(e + o));
    const int resumedFrom = QRegularExpression("resumed from (\\d+)").match(o).captured(1).toInt();
    qInfo("killed after step %d; resumed from step %d", seen, resumedFrom);
    QVERIFY2(resumedFrom >= 12 && resumedFrom % 4 == 0, qPrintable(o));
    QVERIFY(!QDir(killed + "/checkpoints/.tmp-step-0000099-2147483646").exists());
    compareWeights(straight + "/model.torch", killed + "/model.torch");
    const auto ls = uce::test::lines(straight + "/metrics.jsonl"), lk = uce::test::lines(killed + "/metrics.jsonl");
    QCOMPARE(lk.size(), ls.size());
    for (size_t i = 0; i < ls.size(); ++i)
      QCOMPARE(uce::test::jsonNumber(lk[i], "loss"), uce::test::jsonNumber(ls[i], "loss"));
  }

  void cliInterruptLeavesCheckpointAndResumes() {
    const QString out = tmp_.filePath("cli");
    QStringList args = {"train", "--corpus", corpus_, "--assets", assets_, "--out", out, "--nlayers", "1",
                        "--d-model", "16", "--nhead", "2", "--batch-size", "8", "--max-steps", "100000",
                        "--sample-size", "64", "--checkpoint-every", "1000", "--threads", "1", "--seed", "1"};
    QProcess p;
    p.start(UCE_CLI, args);
    QVERIFY(p.waitForStarted());
    QByteArray err;
    QElapsedTimer timer;
    timer.start();
    while (!err.contains("progress {\"step\":2") && timer.elapsed() < 60000) {
      p.waitForReadyRead(200);
      err += p.readAllStandardError();
    }
    QVERIFY2(err.contains("progress {\"step\":"), err.constData());
    ::kill(static_cast<pid_t>(p.processId()), SIGINT);
    QVERIFY(p.waitForFinished(60000));
    const QString stdoutText = p.readAllStandardOutput();
    QCOMPARE(p.exitStatus(), QProcess::NormalExit);
    QVERIFY2(p.exitCode() == 0, qPrintable(stdoutText + err));
    QVERIFY2(stdoutText.contains("interrupted"), qPrintable(stdoutText));
    QStringList ck = QDir(out + "/checkpoints").entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(ck.size(), 1);
    const int stepDone = ck.first().mid(5).toInt();
    QVERIFY(stepDone >= 2);

    QString o2, e2;
    args[args.indexOf("100000")] = QString::number(stepDone + 1);
    int rc = cli(args + QStringList{"--resume", "--quiet"}, &o2, &e2);
    QVERIFY2(rc == 0, qPrintable(e2 + o2));
    QVERIFY2(o2.contains(QString("resumed from %1").arg(stepDone)), qPrintable(o2));
    QVERIFY(QFile::exists(out + "/model.torch"));
    QCOMPARE(uce::test::lines(out + "/metrics.jsonl").size(), size_t(stepDone + 1));

    // Errors a user meets first: a missing corpus column.
    uce::test::writeAll(tmp_.filePath("bad.csv"), "file,organism\nx.h5ad,human\n");
    rc = cli({"train", "--corpus", tmp_.filePath("bad.csv"), "--assets", assets_, "--out", tmp_.filePath("bad")}, &o2, &e2);
    QVERIFY(rc != 0);
    QVERIFY2(e2.contains("path") && e2.contains("species"), qPrintable(e2));
  }
};

QTEST_GUILESS_MAIN(TestTrainer)
#include "test_trainer.moc"
