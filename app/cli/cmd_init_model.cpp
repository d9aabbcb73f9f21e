// uce init-model: a randomly initialised UCE network in the release's state-dict format, sized
// to an asset bundle's token table. For tests, benchmarks and as a starting point for training.
#include <cstdio>
#include <torch/torch.h>

#include "command.h"
#include "uce/core/error.h"
#include "uce/model/assets.h"
#include "uce/model/network.h"
#include "uce/model/torch_file.h"

namespace uce::cli {
namespace {

int runInitModel(const Args& args) {
  Options o(args, {}, {"assets", "out", "layers", "d-model", "nhead", "d-hid", "output-dim", "head-hidden", "seed"});
  model::AssetBundle assets(o.require("assets"));
  if (!assets.hasTokenTable())
    throw Error(ErrorKind::Io, assets.dir(), assets.dir() + ": no all_tokens.torch in the asset directory");
  at::Tensor table = assets.tokenTable();
  model::UceConfig c;
  c.nTokens = table.size(0);
  c.tokenDim = table.size(1);
  c.nLayers = o.getInt("layers", 4);
  c.dModel = o.getInt("d-model", 1280);
  c.nHead = o.getInt("nhead", assets.manifestNhead() > 0 ? assets.manifestNhead() : 20);
  c.dHid = o.getInt("d-hid", 4 * c.dModel);
  c.outputDim = o.getInt("output-dim", c.dModel);
  c.geneHeadDim = c.dModel;
  const auto h = o.getIntList("head-hidden", 3, 1, 65536, {2048, 512, 128});
  for (size_t k = 0; k < 3; ++k) c.headHidden[k] = h[k];
  if (c.nLayers < 1 || c.dModel < 1 || c.nHead < 1 || c.dModel % c.nHead != 0 || c.dHid < 1 || c.outputDim < 1)
    throw Error(ErrorKind::InvalidArgument, "", "need layers >= 1 and d-model divisible by nhead");
  torch::manual_seed(static_cast<uint64_t>(o.getInt("seed", 0)));
  model::UceNetwork net(c);
  net->setTokenTable(table);
  const std::string out = o.require("out");
  model::saveTensorDict(net->stateDict(), out);
  std::printf("wrote %s: %s\n", out.c_str(), c.describe().c_str());
  return 0;
}

Registrar reg{{"init-model", "write a randomly initialised UCE model for an asset bundle", runInitModel}};

}  // namespace
}  // namespace uce::cli
