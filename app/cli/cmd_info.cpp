// uce info FILE [--json]: what is in a dataset and where its raw counts live.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>

#include "command.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/inspect.h"
#include "uce/model/network.h"
#include "uce/model/torch_file.h"

namespace uce::cli {
namespace {

bool isModelFile(std::string path) {
  std::transform(path.begin(), path.end(), path.begin(), [](unsigned char c) { return std::tolower(c); });
  auto ends = [&](const std::string& x) { return path.size() >= x.size() && path.compare(path.size() - x.size(), x.size(), x) == 0; };
  return ends(".torch") || ends(".pt") || ends(".pth");
}

// A UCE state dict: its shape as the embedder and the trainer read it (nhead is not stored).
int modelInfo(const std::string& path, bool json) {
  const model::NamedTensors sd = model::loadTensorDict(path);
  const model::UceConfig c = model::inferConfig(sd, path, 1);
  long long params = 0;
  bool tokens = false;
  for (const auto& kv : sd) {
    if (kv.first == "pe_embedding.weight") tokens = true;
    else if (kv.first != "pos_encoder.pe") params += static_cast<long long>(kv.second.numel());
  }
  const std::string head = c.trainingHead ? std::to_string(c.headHidden[0]) + "/" + std::to_string(c.headHidden[1]) +
                                                "/" + std::to_string(c.headHidden[2])
                                          : std::string("none");
  if (json) {
    std::printf("{\"file\": \"%s\", \"kind\": \"uce-model\", \"layers\": %lld, \"d_model\": %lld, \"d_hid\": %lld, "
                "\"output_dim\": %lld, \"token_dim\": %lld, \"tokens\": %lld, \"training_head\": \"%s\", "
                "\"parameters\": %lld}\n",
                path.c_str(), (long long)c.nLayers, (long long)c.dModel, (long long)c.dHid, (long long)c.outputDim,
                (long long)c.tokenDim, tokens ? (long long)c.nTokens : 0LL, head.c_str(), params);
    return 0;
  }
  std::printf("file:     %s (UCE model weights)\n", path.c_str());
  std::printf("shape:    %lld layers, d_model %lld, d_hid %lld, output_dim %lld, token_dim %lld\n", (long long)c.nLayers,
              (long long)c.dModel, (long long)c.dHid, (long long)c.outputDim, (long long)c.tokenDim);
  std::printf("tokens:   %s\n", tokens ? (std::to_string(c.nTokens) + " in the file").c_str()
                                        : "not in the file (the asset bundle's all_tokens.torch is used)");
  std::printf("head:     %s\n", c.trainingHead ? ("binary decoder " + head + " (training)").c_str()
                                               : "none (embedding only; cannot continue training)");
  std::printf("weights:  %lld trainable parameters; attention heads are not stored (pass --nhead)\n", params);
  return 0;
}

int runInfo(const Args& args) {
  Options opt(args, {"json", "genes-as-rows"}, {"counts"});
  if (opt.positional().size() != 1)
    throw Error(ErrorKind::InvalidArgument, "", "usage: uce info FILE [--json] [--counts KEY] [--genes-as-rows]");
  if (isModelFile(opt.positional()[0])) return modelInfo(opt.positional()[0], opt.has("json"));
  OpenOptions oo;
  oo.csvGenesAsRows = opt.has("genes-as-rows");
  auto ds = openDataset(opt.positional()[0], oo);
  DatasetSummary s = summarize(*ds);
  if (opt.has("counts")) {
    // The user's choice wins over the guess, but must hold raw counts.
    CountsChoice c = chooseCountsMatrix(*ds, opt.get("counts"));
    s.countsKey = c.key;
    s.countsReason = c.reason;
  }
  std::fputs((opt.has("json") ? toJson(s) : toText(s)).c_str(), stdout);
  return 0;
}

Registrar reg{{"info", "describe a dataset (cells, genes, counts matrix, columns, species) or a model file (.torch)", runInfo}};

}  // namespace
}  // namespace uce::cli
