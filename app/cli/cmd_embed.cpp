// uce embed: zero-shot UCE embeddings of a dataset into obsm["X_uce"].
// Options mirror the public release's eval_single_anndata.py where they overlap.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "command.h"
#include "uce/core/error.h"
#include "uce/model/embedder.h"
#include "uce/model/version.h"

extern char** environ;

namespace uce::cli {
namespace {

const char* kUsage =
    "usage: uce embed --adata IN --out OUT --assets DIR [--model FILE] [--species human]\n"
    "                 [--nlayers N] [--nhead H (20)] [--batch-size B (32)] [--device auto|cpu|cuda|cuda:N]\n"
    "                 [--precision fp32|bf16|bf16-autocast (fp32; bf16 on CUDA only)] [--seed S (0)]\n"
    "                 [--gene-column VARCOL] [--counts KEY] [--sample-size G (1024)] [--pad-length L (1536)]\n"
    "                 [--min-cells-per-gene C (10)] [--min-genes-per-cell G (25)] [--threads T]\n"
    "                 [--chunk-cells K (2048)] [--shards N (1)] [--in-place] [--quiet]\n"
    "                 [--attention-kernels auto|flash|cudnn (auto; CUDA benchmarking)]\n"
    "                 [--new-species-embeddings PT --new-species-positions CSV [--extended-assets DIR]]\n"
    "Zero-shot UCE embeddings of every cell of IN (h5ad, 10x .h5, MTX folder, CSV) into\n"
    "obsm['X_uce'] of OUT, with provenance in uns['uce/...'] and obs['uce_kept']; cells the filters\n"
    "drop keep a NaN row. DIR holds the release's asset files (all_tokens.torch, species_offsets.pkl,\n"
    "species_chrom.csv, protein_embeddings/). Options mirror the release's eval_single_anndata.py.\n"
    "An interrupted run resumes from OUT.uce-resume.";

int runEmbed(const Args& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::printf("%s\n", kUsage);
      return 0;
    }
  Options o(args, {"in-place", "quiet"},
            {"adata", "out", "species", "assets", "model", "nlayers", "nhead", "batch-size", "device",
             "seed", "gene-column", "precision", "attention-kernels", "counts", "sample-size", "pad-length",
             "min-cells-per-gene", "min-genes-per-cell", "threads", "chunk-cells", "shards", "shard", "new-species-embeddings",
             "new-species-positions", "new-species-seed", "extended-assets"});
  model::EmbedOptions e;
  e.input = o.require("adata");
  e.inPlace = o.has("in-place");
  e.output = e.inPlace ? e.input : o.require("out");
  e.species = o.get("species", "human");
  e.assetsDir = o.require("assets");
  e.modelFile = o.get("model");
  e.nLayers = o.getInt("nlayers", -1);
  e.nHead = o.getInt("nhead", 0);
  e.batchSize = static_cast<int>(o.getInt("batch-size", 32));
  e.device = o.get("device", "auto");
  e.seed = static_cast<uint64_t>(o.getInt("seed", 0));
  e.geneColumn = o.get("gene-column");
  e.precision = o.get("precision", "fp32");
  e.attentionKernels = o.get("attention-kernels", "auto");
  e.countsKey = o.get("counts");
  e.sampleSize = static_cast<int>(o.getInt("sample-size", 1024));
  e.padLength = static_cast<int>(o.getInt("pad-length", 1536));
  e.minCellsPerGene = static_cast<int>(o.getInt("min-cells-per-gene", 10));
  e.minGenesPerCell = static_cast<int>(o.getInt("min-genes-per-cell", 25));
  e.threads = static_cast<int>(o.getInt("threads", 0));
  e.chunkCells = o.getInt("chunk-cells", 2048);
  e.newSpeciesEmbeddings = o.get("new-species-embeddings");
  e.newSpeciesPositions = o.get("new-species-positions");
  e.newSpeciesSeed = o.getInt("new-species-seed", -1);
  e.extendedAssetsDir = o.get("extended-assets");
  e.shards = static_cast<int>(o.getInt("shards", 1));
  e.shardIndex = static_cast<int>(o.getInt("shard", -1));
  if (e.shards < 1 || e.shards > 64) throw Error(ErrorKind::InvalidArgument, "", "--shards must be 1..64");
  const bool quiet = o.has("quiet");
  if (e.shards > 1 && e.shardIndex < 0) {
    // Multi-GPU: one worker process per shard, shard k on cuda:k (or the CPU when no GPU is
    // there), then this process merges the shards' results into the output.
    const bool gpu = e.device != "cpu" && model::cudaAvailable();
    std::vector<pid_t> pids;
    for (int k = 0; k < e.shards; ++k) {
      std::vector<std::string> argv = {"/proc/self/exe", "embed"};
      argv.insert(argv.end(), args.begin(), args.end());
      argv.insert(argv.end(), {"--shard", std::to_string(k), "--quiet", "--device", gpu ? "cuda:" + std::to_string(k) : "cpu"});
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
      pid_t pid = 0;
      const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, cargv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      if (rc != 0) throw Error(ErrorKind::Io, "", "cannot start embedding worker " + std::to_string(k));
      pids.push_back(pid);
    }
    if (!quiet) std::fprintf(stderr, "embedding with %d worker processes on %s\n", e.shards, gpu ? "GPUs 0.." : "the CPU");
    int failed = 0;
    for (pid_t pid : pids) {
      int status = 0;
      waitpid(pid, &status, 0);
      failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    if (failed)
      throw Error(ErrorKind::Io, e.input, std::to_string(failed) + " of " + std::to_string(e.shards) +
                                              " embedding workers failed (see their errors above); run again to resume");
  }
  int lastPct = -1;
  auto progress = [&](const model::EmbedProgress& p) {
    if (quiet || p.cellsTotal == 0) return true;
    int pct = static_cast<int>(100 * p.cellsDone / p.cellsTotal);
    if (pct != lastPct) {
      std::fprintf(stderr, "\r%s: %lld / %lld cells (%d%%)", p.stage.c_str(), static_cast<long long>(p.cellsDone),
                   static_cast<long long>(p.cellsTotal), pct);
      if (p.cellsPerSecond > 0) std::fprintf(stderr, ", %.0f cells/s, ETA %.0f s   ", p.cellsPerSecond, p.etaSeconds);
      lastPct = pct;
    }
    return true;
  };
  model::EmbedReport r = model::embedDataset(e, progress);
  if (!quiet) std::fprintf(stderr, "\n");
  if (e.shardIndex >= 0) {
    std::printf("shard %d of %d: %lld cells embedded in %.1f s\n", e.shardIndex, e.shards,
                static_cast<long long>(r.cellsEmbedded), r.embedSeconds);
    return 0;
  }
  for (const auto& w : r.warnings) std::fprintf(stderr, "%s\n", w.c_str());
  if (r.assetsExtended)
    std::printf("new species '%s': gene tokens from %lld, %lld chromosome tokens (seed %llu); extended assets %s %s\n"
                "  (later runs: --assets %s --species %s)\n",
                e.species.c_str(), static_cast<long long>(r.newSpeciesOffset),
                static_cast<long long>(r.newSpeciesChromTokens), static_cast<unsigned long long>(r.newSpeciesSeed),
                r.extensionReused ? "reused from" : "saved to", r.assetsDir.c_str(), r.assetsDir.c_str(),
                e.species.c_str());
  std::printf("counts: %s (%s)\n", r.countsKey.c_str(), r.countsReason.c_str());
  std::printf("genes: %lld, matched to %s protein embeddings: %lld, kept after filters: %lld\n",
              static_cast<long long>(r.genes), e.species.c_str(), static_cast<long long>(r.genesMatched),
              static_cast<long long>(r.genesKept));
  std::printf("cells: %lld, embedded: %lld, dropped by the min-genes filter: %lld, without matched genes: %lld\n",
              static_cast<long long>(r.cells), static_cast<long long>(r.cellsEmbedded),
              static_cast<long long>(r.cellsDroppedFilter), static_cast<long long>(r.cellsNoMatchedGenes));
  if (r.resumedFrom > 0) std::printf("resumed after %lld cells done earlier\n", static_cast<long long>(r.resumedFrom));
  std::printf("model: %s on %s\n", r.modelSummary.c_str(), r.device.c_str());
  std::printf("embedding pass: %.2f s (%.1f cells/s, %lld batches)\n", r.embedSeconds,
              r.embedSeconds > 0 ? static_cast<double>(r.cells - r.resumedFrom) / r.embedSeconds : 0.0,
              static_cast<long long>(r.batches));
  std::printf("before the pass: counting genes %.2f s, loading the model %.2f s; after it: writing %.2f s\n",
              r.countSeconds, r.loadSeconds, r.writeSeconds);
  std::printf("wrote obsm['X_uce'] to %s in %.1f s (%.1f cells/s end to end)\n", e.output.c_str(), r.seconds,
              r.seconds > 0 ? static_cast<double>(r.cells) / r.seconds : 0.0);
  return 0;
}

Registrar reg{{"embed", "zero-shot UCE embeddings of a dataset into obsm['X_uce']", runEmbed}};

}  // namespace
}  // namespace uce::cli
