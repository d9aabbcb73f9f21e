// uce metrics --adata IN --use-rep X_uce --label COL [--batch COL] [--json]: scIB integration
// metrics of an embedding (cell-type / batch ASW, NMI, ARI, graph connectivity, isolated
// labels, iLISI) and the collapsed-embedding check.
#include <cmath>
#include <cstdio>
#include <map>

#include "command.h"
#include "uce/core/analysis/metrics.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"

namespace uce::cli {
namespace {

const char* kUsage =
    "usage: uce metrics --adata IN.h5ad --label COL [--batch COL] [--use-rep X_uce] [--json]\n"
    "                   [--seed 0] [--max-silhouette-cells 50000] [--threads 0]\n"
    "scIB integration metrics of obsm[REP] (all in [0, 1], higher = better). Cells with a NaN\n"
    "embedding or a missing label/batch are left out. Warns when the embedding looks collapsed.";

// Codes of an obs column (any kind) with names; "" / missing values get -1.
std::vector<int32_t> codesOf(const Dataset& ds, const std::string& path, const std::string& name,
                             const char* option, std::vector<std::string>& names) {
  const Column* c = ds.obs().find(name);
  if (!c) {
    std::string have;
    for (const auto& col : ds.obs().columns) have += (have.empty() ? "" : ", ") + col.name;
    fail(ErrorKind::InvalidArgument, path, std::string("no obs column '") + name + "' for " + option +
                                               " (obs holds: " + (have.empty() ? "nothing" : have) + ")");
  }
  std::vector<int32_t> codes(c->size(), -1);
  if (c->kind == ColumnKind::Categorical) {
    names = c->categories;
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = c->codes[i];
    return codes;
  }
  if (c->kind == ColumnKind::Float)
    for (double v : c->floats)
      if (std::isfinite(v) && v != std::floor(v))
        fail(ErrorKind::InvalidArgument, path, std::string("obs column '") + name + "' holds continuous numbers (e.g. " +
                                                   std::to_string(v) + "), not " + option + " labels");
  std::map<std::string, int32_t> index;
  for (size_t i = 0; i < codes.size(); ++i) {
    const std::string v = c->valueAsString(i);
    if (v.empty()) continue;
    auto [it, added] = index.emplace(v, static_cast<int32_t>(names.size()));
    if (added) names.push_back(v);
    codes[i] = it->second;
  }
  return codes;
}

int runMetrics(const Args& args) {
  Options opt(args, {"json", "help"},
              {"adata", "use-rep", "label", "batch", "seed", "max-silhouette-cells", "threads"});
  if (opt.has("help")) {
    std::puts(kUsage);
    return 0;
  }
  if (!opt.has("adata") || !opt.has("label")) throw Error(ErrorKind::InvalidArgument, "", kUsage);
  const std::string in = opt.require("adata"), rep = opt.get("use-rep", "X_uce");
  analysis::MetricsOptions mo;
  const long long seed = opt.getInt("seed", 0);
  if (seed < 0) fail(ErrorKind::InvalidArgument, "", "--seed must not be negative");
  mo.seed = static_cast<uint64_t>(seed);
  mo.silhouetteMaxCells = opt.getInt("max-silhouette-cells", 50000);
  if (mo.silhouetteMaxCells < 10) fail(ErrorKind::InvalidArgument, "", "--max-silhouette-cells must be at least 10");
  mo.threads = static_cast<int>(opt.getInt("threads", 0));

  auto ds = openDataset(in);
  bool found = false;
  for (const auto& k : ds->obsmKeys()) found = found || k == rep;
  if (!found)
    fail(ErrorKind::InvalidArgument, in, "no obsm['" + rep + "']: run `uce embed` first or choose one with --use-rep");
  const DenseMatrix x = ds->readObsm(rep);
  if (x.rows != ds->cells())
    fail(ErrorKind::Shape, in, "obsm['" + rep + "'] has " + std::to_string(x.rows) + " rows but the file has " +
                                   std::to_string(ds->cells()) + " cells");
  std::vector<std::string> labelNames, batchNames;
  const auto labels = codesOf(*ds, in, opt.get("label"), "--label", labelNames);
  std::vector<int32_t> batches;
  if (opt.has("batch")) batches = codesOf(*ds, in, opt.get("batch"), "--batch", batchNames);
  analysis::IntegrationMetrics m;
  try {
    m = analysis::integrationMetrics(analysis::MatrixView{x.data.data(), x.rows, x.cols}, labels, labelNames, batches, mo);
  } catch (const Error& e) {
    fail(e.kind(), in, std::string("obsm['") + rep + "']: " + e.what());
  }
  for (const auto& w : m.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::fputs((opt.has("json") ? analysis::toJson(m) : analysis::toText(m)).c_str(), stdout);
  return 0;
}

Registrar reg{{"metrics", "scIB integration metrics of an embedding (ASW, NMI/ARI, iLISI, ...)", runMetrics}};

}  // namespace
}  // namespace uce::cli
