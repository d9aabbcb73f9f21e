// CPU tokenization and embedding rates of the zero-shot pipeline's hot parts.
//   tokenize: cell sentences per second per core (target >= 20,000), on the counts of a real
//             .h5ad (e.g. made by `uce synth`), with the release's sentence parameters; the
//             baseline is the same work done the release's way in this process (weights
//             normalised per cell, draws by a per-draw linear scan + sort by (chromosome, start)),
//             printed as a ratio.
//   embed:    cells per second of a small random network (2 layers, d_model 128) on CPU.
// usage: bench_model_tokenize FILE.h5ad [CELLS=20000]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <thread>

#include "uce/core/dataset.h"
#include "uce/model/network.h"
#include "uce/model/tokenizer.h"

using namespace uce;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_model_tokenize FILE.h5ad [CELLS]\n");
    return 2;
  }
  const int64_t want = argc > 2 ? std::atoll(argv[2]) : 20000;
  auto ds = openDataset(argv[1]);
  const int64_t cells = std::min(want, ds->cells());
  CsrBlock block = ds->readRows(chooseCountsMatrix(*ds).key, 0, cells);
  const int64_t genes = block.ncols;
  // Gene table: every gene matched, chromosomes and starts drawn once (24 chromosomes).
  std::mt19937_64 rng(1);
  model::GeneTable table;
  for (int64_t g = 0; g < genes; ++g) {
    table.token.push_back(static_cast<int32_t>(g + 4));
    table.chrom.push_back(static_cast<int32_t>(rng() % 24));
    table.start.push_back(static_cast<int64_t>(rng() % 200000000));
  }
  table.finalize();
  model::SentenceOptions so;
  so.chromTokenOffset = genes + 4;
  std::vector<int32_t> out(static_cast<size_t>(so.padLength));

  // Ours.
  model::SentenceBuilder builder(table, so);
  auto t0 = Clock::now();
  int64_t tokens = 0;
  for (int64_t c = 0; c < cells; ++c) {
    const int64_t a = block.indptr[static_cast<size_t>(c)], b = block.indptr[static_cast<size_t>(c + 1)];
    tokens += builder.build(block.indices.data() + a, block.values.data() + a, b - a, static_cast<uint64_t>(c), out.data());
  }
  const double ours = std::chrono::duration<double>(Clock::now() - t0).count();

  // Baseline: the release's per-cell procedure (normalised weights over all genes, 1,024
  // inverse-CDF draws, argsort by chromosome then by start per chromosome).
  const int64_t baseCells = std::min<int64_t>(cells, 2000);
  std::vector<double> w(static_cast<size_t>(genes));
  t0 = Clock::now();
  for (int64_t c = 0; c < baseCells; ++c) {
    std::fill(w.begin(), w.end(), 0.0);
    for (int64_t k = block.indptr[static_cast<size_t>(c)]; k < block.indptr[static_cast<size_t>(c + 1)]; ++k)
      w[static_cast<size_t>(block.indices[static_cast<size_t>(k)])] = std::log1p(block.values[static_cast<size_t>(k)]);
    std::vector<double> cdf(w.size());
    std::partial_sum(w.begin(), w.end(), cdf.begin());
    std::vector<int64_t> choice(1024);
    for (auto& ch : choice)
      ch = std::upper_bound(cdf.begin(), cdf.end(), std::uniform_real_distribution<double>(0, cdf.back())(rng)) - cdf.begin();
    std::stable_sort(choice.begin(), choice.end(), [&](int64_t x, int64_t y) {
      return table.chrom[static_cast<size_t>(x)] != table.chrom[static_cast<size_t>(y)]
                 ? table.chrom[static_cast<size_t>(x)] < table.chrom[static_cast<size_t>(y)]
                 : table.start[static_cast<size_t>(x)] < table.start[static_cast<size_t>(y)];
    });
  }
  const double base = std::chrono::duration<double>(Clock::now() - t0).count();
  const double oursRate = cells / ours, baseRate = baseCells / base;
  std::printf("tokenize: %lld cells x %lld genes, %.0f cells/s on one core (target >= 20,000), "
              "%.1f tokens/cell; baseline %.0f cells/s; ratio %.1fx\n",
              static_cast<long long>(cells), static_cast<long long>(genes), oursRate,
              static_cast<double>(tokens) / cells, baseRate, oursRate / baseRate);

  // CPU embedding of a small network, batch 16, full-length sentences.
  torch::manual_seed(0);
  model::UceConfig cfg;
  cfg.nTokens = genes + 4 + 24;
  cfg.tokenDim = 64;
  cfg.dModel = 128;
  cfg.nHead = 4;
  cfg.dHid = 256;
  cfg.outputDim = 128;
  cfg.nLayers = 2;
  model::UceNetwork net(cfg);
  net->eval();
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  torch::NoGradGuard ng;
  const int64_t B = 16, L = 1075, batches = 8;
  auto tok = torch::randint(4, cfg.nTokens, {B, L}, torch::kLong);
  auto mask = torch::ones({B, L}, torch::kBool);
  net->embed(tok, mask);
  t0 = Clock::now();
  for (int i = 0; i < batches; ++i) net->embed(tok, mask);
  const double e = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("embed (CPU, %d threads): 2 layers, d_model 128, 1,075 tokens: %.1f cells/s\n",
              torch::get_num_threads(), B * batches / e);
  return 0;
}
