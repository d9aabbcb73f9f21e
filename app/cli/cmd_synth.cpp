// uce synth --out DIR: a synthetic atlas (.h5ad per species x tissue) and its UCE asset bundle.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "resources.h"
#include "uce/core/error.h"
#include "uce/core/synth.h"
#include "uce/model/asset_bundle.h"

#ifndef UCE_GENE_POSITIONS
#define UCE_GENE_POSITIONS ""
#endif

namespace uce::cli {
namespace {

const char* kUsage =
    "usage: uce synth --out DIR [--cells N (10000, total over datasets)] [--seed S (0)]\n"
    "                 [--genes G (5000 per species)] [--token-dim D (256)]\n"
    "                 [--gene-positions CSV] [--chunk-cells K (4096)] [--threads T (2)]\n"
    "                 [--species human,mouse] [--tissues kidney,lung,heart]\n"
    "                 [--single-dataset (= --species human --tissues kidney)]\n"
    "                 [--type-genes N (0)] [--no-assets] [--quiet]\n"
    "Writes DIR/<species>_<tissue>.h5ad (raw UMI counts, obs cell_type, coarse_cell_type,\n"
    "tissue, species, batch, disease) and DIR/assets/ (protein_embeddings/*.pt,\n"
    "all_tokens.torch, species_offsets.pkl, species_chrom.csv, manifest.json).\n"
    "--type-genes N: every coarse and every fine cell type also switches on N genes that are\n"
    "silent in the other types (the demo world uses 40; 0 = only markers and moderate folds).";

int runSynth(const Args& args) {
  Options opt(args, {"single-dataset", "no-assets", "quiet", "help"},
              {"out", "cells", "seed", "genes", "token-dim", "gene-positions", "chunk-cells",
               "threads", "species", "tissues", "type-genes"});
  if (opt.has("help")) {
    std::printf("%s\n", kUsage);
    return 0;
  }
  if (!opt.positional().empty() || !opt.has("out"))
    throw Error(ErrorKind::InvalidArgument, "", kUsage);
  SynthOptions so;
  so.cells = opt.getInt("cells", so.cells);
  const long long seed = opt.getInt("seed", 0);
  if (seed < 0) throw Error(ErrorKind::InvalidArgument, "", "--seed must be a non-negative integer");
  so.seed = static_cast<uint64_t>(seed);
  so.genesPerSpecies = opt.getInt("genes", so.genesPerSpecies);
  so.tokenDim = opt.getInt("token-dim", so.tokenDim);
  so.chunkCells = opt.getInt("chunk-cells", so.chunkCells);
  so.threads = static_cast<int>(opt.getInt("threads", so.threads));
  so.typeGenes = opt.getInt("type-genes", so.typeGenes);
  // Installed, the table is <prefix>/share/uce-atlas/human_gene_positions.csv.
  so.genePositionsCsv =
      opt.get("gene-positions", resourcePath("human_gene_positions.csv", UCE_GENE_POSITIONS));
  if (!opt.has("gene-positions") && !std::filesystem::exists(so.genePositionsCsv))
    throw Error(ErrorKind::InvalidArgument, so.genePositionsCsv,
                "the built-in gene-position table is missing; pass --gene-positions CSV "
                "(columns species,gene_symbol,chromosome,start)");
  so.species = splitList(opt.get("species"));
  so.tissues = splitList(opt.get("tissues"));
  if (opt.has("single-dataset")) {
    if (so.species.empty()) so.species = {"human"};
    if (so.tissues.empty()) so.tissues = {"kidney"};
    so.species.resize(1);
    so.tissues.resize(1);
  }
  const bool quiet = opt.has("quiet");
  const std::string out = opt.get("out");

  const auto t0 = std::chrono::steady_clock::now();
  SynthAtlas atlas(so);
  std::string lastName;
  auto progress = [&](const std::string& name, int64_t done, int64_t total) {
    if (quiet) return;
    if (name != lastName && !lastName.empty()) std::fprintf(stderr, "\n");
    lastName = name;
    std::fprintf(stderr, "\r%s: %lld / %lld cells", name.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total));
    std::fflush(stderr);
  };
  const auto infos = atlas.writeDatasets(out, progress);
  if (!quiet && !lastName.empty()) std::fprintf(stderr, "\n");
  std::vector<std::string> assetFiles;
  if (!opt.has("no-assets"))
    assetFiles = model::writeAssetBundle(atlas.assets(), (std::filesystem::path(out) / "assets").string());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  for (const auto& d : infos) {
    const double zeros = 1.0 - static_cast<double>(d.nnz) / (static_cast<double>(d.cells) * static_cast<double>(d.genes));
    std::printf("%s\t%lld cells x %lld genes\t%.1f%% zeros\n", d.path.c_str(),
                static_cast<long long>(d.cells), static_cast<long long>(d.genes), 100.0 * zeros);
  }
  for (const auto& f : assetFiles) std::printf("%s\n", f.c_str());
  if (!quiet) std::fprintf(stderr, "done in %.1f s\n", secs);
  return 0;
}

Registrar reg{{"synth", "write a synthetic atlas (.h5ad per species x tissue) and its asset bundle", runSynth}};

}  // namespace
}  // namespace uce::cli
