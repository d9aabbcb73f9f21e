// uce train: masked-expression pre-training of a UCE model on a corpus of .h5ad files
// (UCE_SPEC section 5). Metrics go to OUT/metrics.jsonl, weights to OUT/model.torch, and a
// machine-readable progress line per step to stderr. SIGINT/SIGTERM: checkpoint, then exit 0.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"
#include "uce/core/error.h"
#include "uce/model/distributed.h"
#include "uce/model/trainer.h"

extern char** environ;

namespace uce::cli {
namespace {

std::atomic<bool> gStop{false};
extern "C" void onStopSignal(int) { gStop.store(true); }

const char* kUsage =
    "usage: uce train --corpus FILE --assets DIR --out DIR [--nlayers N (4)] [--d-model D (512)]\n"
    "                 [--nhead H (8)] [--d-hid F (4*D)] [--output-dim O (D)]\n"
    "                 [--head-hidden A,B,C (2048,512,128)] [--batch-size B (16)]\n"
    "                 [--grad-accum K (1)] [--max-steps S (10000)] [--lr LR (1e-4)] [--warmup W (5% of S)]\n"
    "                 [--weight-decay WD (0.01)] [--clip C (1.0)] [--sample-size G (1024)]\n"
    "                 [--mask-ratio R (0.2)] [--n-loss N (64)] [--negatives uniform|frequency (uniform)]\n"
    "                 [--val-fraction F (0.05)] [--cell-gain G (1)] [--first-qk-gain G (1)]\n"
    "                 [--downsample-to UMIS (0 = off)] [--gene-scale-sd S (0 = off)]\n"
    "                 [--encoder-lr-scale F (1)] [--view-consistency W (0 = off)]\n"
    "                 [--view-depth-min F (0.33)] [--view-gene-sd S (0.25)] [--view-isotropy W (0 = off)]\n"
    "                 [--depth-aware-decoder]\n"
    "                 [--val-cells V (256)] [--validate-every N (100)] [--checkpoint-every N (500)]\n"
    "                 [--keep-checkpoints K (3)] [--sync-checkpoints] [--init-model FILE] [--seed S (0)]\n"
    "                 [--device cpu|cuda] [--threads T] [--resume] [--quiet]\n"
    "                 [--nproc P (1)] [--no-dropout] [--activation-checkpointing] [--equal-lengths]\n"
    "                 [--grad-sync overlap|after (overlap)] [--grad-bucket-mb M (25)]\n"
    "                 [--adamw auto|loop|fused (auto)] [--bf16-layers] [--prefetch auto|on|off (auto)]\n"
    "The corpus is a CSV with columns path,species[,layer]; relative paths are relative to it.\n"
    "Writes OUT/metrics.jsonl, OUT/checkpoints/step-N/ and OUT/model.torch (release state-dict\n"
    "layout: `uce embed --model OUT/model.torch`). Ctrl-C writes a checkpoint; --resume continues.\n"
    "Checkpoints go to disk on a background thread while training goes on (--sync-checkpoints: the\n"
    "training waits for each); the last one is on disk before the command ends. Each checkpoint's\n"
    "model.torch is a whole release-layout file, token table included (uce embed loads it).\n"
    "Data parallel: --nproc P starts P local ranks (Gloo on 127.0.0.1), each with --batch-size\n"
    "cells, so a step sees P x B cells; under torchrun or SLURM (RANK, WORLD_SIZE, MASTER_ADDR,\n"
    "MASTER_PORT set) the process joins the launcher's group and --nproc is ignored. Gradients are\n"
    "averaged in buckets of --grad-bucket-mb while the backward pass runs (--grad-sync after: once\n"
    "it is done; the same weights). --equal-lengths fills every training sentence to one length with\n"
    "extra gene draws: no padding and no attention mask, so the fused attention kernels run on CUDA.\n"
    "--adamw fused runs the clip and AdamW's update as multi-tensor CUDA kernels (LibTorch >= 2.1;\n"
    "auto: on CUDA where it can, else LibTorch's per-parameter loop; the same update and checkpoints).\n"
    "--depth-aware-decoder gives the binary decoder the cell's log depth (a learned per-gene slope),\n"
    "so the embedding need not carry it; the slope is trainer state, not part of OUT/model.torch.\n"
    "--bf16-layers runs the transformer layers wholly in bf16 (weights cast each pass from fp32\n"
    "masters; residual adds, LayerNorm and dropout in bf16): faster on GPUs than autocast alone,\n"
    "with the residual stream rounded to bf16. Validation and embedding are unaffected.\n"
    "--prefetch on reads and tokenizes the next micro-batch on its own thread while the device runs\n"
    "the current one (auto: on with --device cuda); the same data and weights either way.";

// Starts nproc copies of this program as local ranks 0..nproc-1 and waits for them. The first
// rank to fail stops the others; returns the first non-zero exit status (0 when all succeed).
int spawnRanks(const Args& args, int nproc, bool haveThreads) {
  const int port = model::freeLocalPort();
  std::vector<std::string> argvS{"uce", "train"};
  argvS.insert(argvS.end(), args.begin(), args.end());
  if (!haveThreads) {  // share the cores between the ranks
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    argvS.push_back("--threads");
    argvS.push_back(std::to_string(std::max(1u, hw / static_cast<unsigned>(nproc))));
  }
  std::vector<char*> argv;
  for (auto& a : argvS) argv.push_back(a.data());
  argv.push_back(nullptr);
  const char* const ours[] = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="};
  std::vector<std::string> baseEnv;
  for (char** e = environ; e && *e; ++e) {
    bool skip = false;
    for (const char* k : ours) skip = skip || std::strncmp(*e, k, std::strlen(k)) == 0;
    if (!skip) baseEnv.emplace_back(*e);
  }
  std::vector<pid_t> pids;
  auto stopAll = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> envS = baseEnv;
    envS.push_back("RANK=" + std::to_string(r));
    envS.push_back("WORLD_SIZE=" + std::to_string(nproc));
    envS.push_back("LOCAL_RANK=" + std::to_string(r));
    envS.push_back("LOCAL_WORLD_SIZE=" + std::to_string(nproc));
    envS.push_back("MASTER_ADDR=127.0.0.1");
    envS.push_back("MASTER_PORT=" + std::to_string(port));
    std::vector<char*> envp;
    for (auto& e : envS) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
    if (rc != 0) {
      stopAll(SIGTERM);
      for (pid_t p : pids) ::waitpid(p, nullptr, 0);
      throw Error(ErrorKind::Io, "/proc/self/exe", std::string("cannot start training rank ") + std::to_string(r) +
                                                       ": " + std::strerror(rc));
    }
    pids.push_back(pid);
  }
  int result = 0;
  size_t running = pids.size();
  bool forwarded = false;
  while (running > 0) {
    int status = 0;
    const pid_t p = ::waitpid(-1, &status, 0);
    if (p < 0) {
      if (errno == EINTR) {
        if (gStop.load() && !forwarded) {  // Ctrl-C / SIGTERM: every rank checkpoints and exits
          stopAll(SIGTERM);
          forwarded = true;
        }
        continue;
      }
      break;
    }
    bool ours_ = false;
    for (auto& q : pids)
      if (q == p) {
        q = -1;
        ours_ = true;
      }
    if (!ours_) continue;
    --running;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (code != 0 && result == 0) {
      result = code;
      std::fprintf(stderr, "error: a training rank exited with status %d; stopping the others\n", code);
      stopAll(SIGTERM);
    }
  }
  return result;
}

int runTrain(const Args& args) {
  Options o(args, {"resume", "quiet", "help", "no-dropout", "activation-checkpointing", "equal-lengths", "bf16-layers",
                   "depth-aware-decoder", "sync-checkpoints"},
            {"corpus", "assets", "out", "nlayers", "d-model", "nhead", "d-hid", "output-dim", "batch-size",
             "grad-accum", "max-steps", "lr", "warmup", "weight-decay", "clip", "sample-size", "mask-ratio",
             "n-loss", "val-fraction", "val-cells", "validate-every", "checkpoint-every", "keep-checkpoints",
             "init-model", "seed", "device", "threads", "nproc", "negatives", "cell-gain",
             "downsample-to", "gene-scale-sd", "first-qk-gain", "encoder-lr-scale", "head-hidden",
             "view-consistency", "view-depth-min", "view-gene-sd", "view-isotropy", "grad-sync", "grad-bucket-mb",
             "adamw", "prefetch"});
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
  {
    const auto h = o.getIntList("head-hidden", 3, 1, 65536, {t.headHidden[0], t.headHidden[1], t.headHidden[2]});
    for (size_t k = 0; k < 3; ++k) t.headHidden[k] = h[k];
  }
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
  t.negatives = o.get("negatives", t.negatives);
  t.cellGain = o.getDouble("cell-gain", t.cellGain);
  t.downsampleTo = o.getDouble("downsample-to", t.downsampleTo);
  t.geneScaleSd = o.getDouble("gene-scale-sd", t.geneScaleSd);
  t.viewConsistency = o.getDouble("view-consistency", t.viewConsistency);
  t.viewDepthMin = o.getDouble("view-depth-min", t.viewDepthMin);
  t.viewGeneSd = o.getDouble("view-gene-sd", t.viewGeneSd);
  t.viewIsotropy = o.getDouble("view-isotropy", t.viewIsotropy);
  {
    const std::string sync = o.get("grad-sync", "overlap");
    if (sync != "overlap" && sync != "after")
      throw Error(ErrorKind::InvalidArgument, "", "--grad-sync must be overlap or after (got '" + sync + "')");
    t.overlapGradSync = sync == "overlap";
    const double mb = o.getDouble("grad-bucket-mb", 25.0);
    if (!(mb > 0) || !(mb <= 4096))
      throw Error(ErrorKind::InvalidArgument, "", "--grad-bucket-mb must be a size in MB in (0, 4096]");
    t.gradBucketBytes = std::max<int64_t>(1, static_cast<int64_t>(mb * 1024 * 1024));
  }
  t.firstLayerQkGain = o.getDouble("first-qk-gain", t.firstLayerQkGain);
  t.encoderLrScale = o.getDouble("encoder-lr-scale", t.encoderLrScale);
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
  t.dropout = !o.has("no-dropout");
  t.activationCheckpointing = o.has("activation-checkpointing");
  t.equalLengths = o.has("equal-lengths");
  t.bf16Layers = o.has("bf16-layers");
  t.backgroundCheckpoints = !o.has("sync-checkpoints");
  t.depthAwareDecoder = o.has("depth-aware-decoder");
  t.adamw = o.get("adamw", t.adamw);
  t.prefetch = o.get("prefetch", t.prefetch);
  bool quiet = o.has("quiet");
  const long long nproc = o.getInt("nproc", 1);
  if (nproc < 1 || nproc > 4096) throw Error(ErrorKind::InvalidArgument, "", "--nproc must be between 1 and 4096");

  const model::LaunchEnv env = model::launchEnvFromEnvironment();
  t.localRank = env.localRank;
  if (nproc > 1 && !env.fromLauncher) {
    struct sigaction sa{};
    sa.sa_handler = onStopSignal;  // no SA_RESTART: waitpid returns EINTR so the ranks are told
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    const int rc = spawnRanks(args, static_cast<int>(nproc), o.has("threads"));
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    return rc;
  }
  std::unique_ptr<model::Distributed> dist;
  if (env.fromLauncher && env.worldSize > 1) {
    if (!o.has("threads")) {  // share the node's cores between its ranks
      const char* lws = std::getenv("LOCAL_WORLD_SIZE");
      const unsigned local = lws ? static_cast<unsigned>(std::max(1, std::atoi(lws))) : 1u;
      t.threads = static_cast<int>(std::max(1u, std::max(1u, std::thread::hardware_concurrency()) / local));
    }
    dist = std::make_unique<model::Distributed>(env, t.device);
    t.dist = dist.get();
    if (env.rank != 0) quiet = true;  // rank 0 reports for all
  }

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
  if (dist && dist->rank() != 0) return 0;
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
