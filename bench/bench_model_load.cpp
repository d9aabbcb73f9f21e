// What `uce embed` spends before its first batch, on the model side: reading the weights,
// building the network, loading the weights into it. The baseline is the network built the
// way the embedder did before session 10, with every parameter drawn at random first
// (UceNetwork(cfg)), then the weights copied in; the embedder now builds it uninitialised
// (UceNetwork(cfg, false)), since every parameter is overwritten next, and adopts the loaded
// tensors as its parameters (loadStateDict(..., adopt)). All are timed here in one process.
// usage: bench_model_load MODEL.torch [NHEAD=20] [TOKEN_ROWS]
//   TOKEN_ROWS: rows of the token table the network is built for (the release: 145,469);
//   default the model's own pe_embedding rows. With TOKEN_ROWS the file's pe_embedding is not
//   copied in (the embedder takes the table from the asset bundle instead).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "uce/model/network.h"
#include "uce/model/torch_file.h"

using namespace uce;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_model_load MODEL.torch [NHEAD=20] [TOKEN_ROWS]\n");
    return 2;
  }
  const int64_t nhead = argc > 2 ? std::atoll(argv[2]) : 20;
  torch::NoGradGuard noGrad;
  auto t = Clock::now();
  model::NamedTensors sd = model::loadTensorDict(argv[1]);
  const double read = since(t);
  model::UceConfig cfg = model::inferConfig(sd, argv[1], nhead);
  int64_t params = 0;
  for (const auto& kv : sd) params += kv.second.numel();
  if (argc > 3) {  // as the embedder: the asset bundle's token table replaces pe_embedding
    cfg.nTokens = std::atoll(argv[3]);
    sd.erase(std::remove_if(sd.begin(), sd.end(), [](const auto& kv) { return kv.first == "pe_embedding.weight"; }),
             sd.end());
  }
  std::printf("model: %s; %.0f M values in the file\n", cfg.describe().c_str(), params / 1e6);
  std::printf("read the file: %.2f s\n", read);
  double with = 1e9, without = 1e9, copy = 1e9, adopt = 1e9;
  for (int rep = 0; rep < 2; ++rep) {  // best of 2
    t = Clock::now();
    { model::UceNetwork a(cfg); }
    with = std::min(with, since(t));
    {
      t = Clock::now();
      model::UceNetwork b(cfg, /*initialize=*/false);
      without = std::min(without, since(t));
      t = Clock::now();
      b->loadStateDict(sd, argv[1], /*requireTokens=*/false);
      copy = std::min(copy, since(t));
    }
    model::UceNetwork c(cfg, /*initialize=*/false);
    t = Clock::now();
    c->loadStateDict(sd, argv[1], /*requireTokens=*/false, /*adopt=*/true);
    adopt = std::min(adopt, since(t));
  }
  std::printf("build the network: with random initialisation %.2f s (baseline), uninitialised %.3f s (%.0fx)\n", with,
              without, with / without);
  std::printf("weights in: copied %.2f s (baseline), adopted %.3f s\n", copy, adopt);
  std::printf("read + build + load: before %.2f s, now %.2f s (%.2fx)\n", read + with + copy, read + without + adopt,
              (read + with + copy) / (read + without + adopt));
  return 0;
}
