// uce train: masked-expression pre-training of a UCE model on a corpus of .h5ad files
// (UCE_SPEC section 5). Metrics go to OUT/metrics.jsonl, weights to OUT/model.torch, and a
// machine-readable progress line per step to stderr. SIGINT/SIGTERM: checkpoint, then exit 0.
#include <atomic>
#include <csignal>
#include <cstdio>

#include "command.h"
#include "uce/core/error.h"
#include "uce/model/trainer.h"

namespace uce::cli {
namespace {

std::atomic<bool> gStop{false};
extern "C" void onStopSignal(int) { gStop.store(true); }

const char* kUsage =
    "usage: uce train --corpus FILE --assets DIR --out DIR [--nlayers N (4)] [--d-model D (512)]\n"
    "                 [--nhead H (8)] [--d-hid F (4*D)] [--output-dim O (D)] [--batch-size B (16)]\n"
    "                 [--grad-accum K (1)] [--max-steps S (10000)] [--lr LR (1e-4)] [--warmup W (5% of S)]\n"
    "                 [--weight-decay WD (0.01)] [--clip C (1.0)] [--sample-size G (1024)]\n"
    "                 [--mask-ratio R (0.2)] [--n-loss N (64)] [--val-fraction F (0.05)]\n"
    "                 [--val-cells V (256)] [--validate-every N (100)] [--checkpoint-every N (500)]\n"
    "                 [--keep-checkpoints K (3)] [--init-model FILE] [--seed S (0)]\n"
    "                 [--device cpu|cuda] [--threads T] [--resume] [--quiet]\n"
    "The corpus is a CSV with columns path,species[,layer]; relative paths are relative to it.\n"
    "Writes OUT/metrics.jsonl, OUT/checkpoints/step-N/ and OUT/model.torch (release state-dict\n"
    "layout: `uce embed --model OUT/model.torch`). Ctrl-C writes a checkpoint; --resume continues.";

int runTrain(const Args& args) {
  Options o(args, {"resume", "quiet", "help"},
            {"corpus", "assets", "out", "nlayers", "d-model", "nhead", "d-hid", "output-dim", "batch-size",
             "grad-accum", "max-steps", "lr", "warmup", "weight-decay", "clip", "sample-size", "mask-ratio",
             "n-loss", "val-fraction", "val-cells", "validate-every", "checkpoint-every", "keep-checkpoints",
             "init-model", "seed", "device", "threads"});
  if (o.has("help")) {
    std::printf("%s\n", kUsage);
    return 0;
  }
  if (!o.positional().empty() || !o.has("corpus") || !o.has("assets") || !o.has("out"))
    throw Error(ErrorKind::InvalidArgument, "", kUsage);
  model::TrainOptions t;
  t.corpus = o.get("corpus");
  t.assetsDir = o.get("assets");
  t.outDir = o.get("out");
  t.initModel = o.get("init-model");
  t.nLayers = o.getInt("nlayers", t.nLayers);
  t.dModel = o.getInt("d-model", t.dModel);
  t.nHead = o.getInt("nhead", t.nHead);
  t.dHid = o.getInt("d-hid", t.dHid);
  t.outputDim = o.getInt("output-dim", t.outputDim);
  t.batchSize = static_cast<int>(o.getInt("batch-size", t.batchSize));
  t.gradAccum = static_cast<int>(o.getInt("grad-accum", t.gradAccum));
  t.maxSteps = o.getInt("max-steps", t.maxSteps);
  t.lr = o.getDouble("lr", t.lr);
  t.warmupSteps = static_cast<int>(o.getInt("warmup", t.warmupSteps));
  t.weightDecay = o.getDouble("weight-decay", t.weightDecay);
  t.clipNorm = o.getDouble("clip", t.clipNorm);
  t.sampleSize = static_cast<int>(o.getInt("sample-size", t.sampleSize));
  t.maskRatio = o.getDouble("mask-ratio", t.maskRatio);
  t.nLoss = static_cast<int>(o.getInt("n-loss", t.nLoss));
  t.valFraction = o.getDouble("val-fraction", t.valFraction);
  t.valCells = static_cast<int>(o.getInt("val-cells", t.valCells));
  t.validateEvery = o.getInt("validate-every", t.validateEvery);
  t.checkpointEvery = o.getInt("checkpoint-every", t.checkpointEvery);
  t.keepCheckpoints = static_cast<int>(o.getInt("keep-checkpoints", t.keepCheckpoints));
  const long long seed = o.getInt("seed", 0);
  if (seed < 0) throw Error(ErrorKind::InvalidArgument, "", "--seed must be a non-negative integer");
  t.seed = static_cast<uint64_t>(seed);
  t.device = o.get("device", "cpu");
  t.threads = static_cast<int>(o.getInt("threads", 0));
  t.resume = o.has("resume");
  t.stop = &gStop;
  const bool quiet = o.has("quiet");

  std::signal(SIGINT, onStopSignal);
  std::signal(SIGTERM, onStopSignal);
  model::Trainer trainer(t);
  if (!quiet) std::fprintf(stderr, "model: %s\n", trainer.summary().c_str());
  auto progress = [&](const model::StepMetrics& m) {
    // One JSON object a line, prefixed so that a GUI can pick it out of the log.
    if (!quiet) std::fprintf(stderr, "progress %s\n", m.json().c_str());
    return true;
  };
  const model::TrainReport r = trainer.run(progress);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::printf("steps: %lld (resumed from %lld) in %.1f s\n", static_cast<long long>(r.steps),
              static_cast<long long>(r.resumedFrom), r.seconds);
  std::printf("last loss: %.5f\n", r.last.loss);
  std::printf("checkpoint: %s\n", r.lastCheckpoint.c_str());
  if (r.interrupted) std::printf("interrupted: continue with --resume\n");
  else std::printf("model: %s\n", r.modelFile.c_str());
  return 0;
}

Registrar reg{{"train", "pre-train a UCE model (masked expression) on a corpus of .h5ad files", runTrain}};

}  // namespace
}  // namespace uce::cli
