// uce info FILE [--json]: what is in a dataset and where its raw counts live.
#include <cstdio>

#include "command.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/inspect.h"

namespace uce::cli {
namespace {

int runInfo(const Args& args) {
  Options opt(args, {"json", "genes-as-rows"}, {"counts"});
  if (opt.positional().size() != 1)
    throw Error(ErrorKind::InvalidArgument, "", "usage: uce info FILE [--json] [--counts KEY] [--genes-as-rows]");
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

Registrar reg{{"info", "describe a dataset: cells, genes, counts matrix, columns, species", runInfo}};

}  // namespace
}  // namespace uce::cli
