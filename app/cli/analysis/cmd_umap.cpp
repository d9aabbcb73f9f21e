// uce umap --adata IN --use-rep X_uce --out OUT [--dims 2|3] [--n-neighbors 15] [--min-dist 0.5]
//          [--spread 1] [--epochs N] [--seed 0] [--threads T]
// A UMAP map of an embedding, written to obsm["X_umap"] ([cells, dims] float32) of a copy of IN
// (or IN itself when OUT == IN). Cells without an embedding (NaN rows, e.g. dropped by
// `uce embed`'s filters) are left out of the map and keep NaN rows, so obs stays aligned.
#include <cmath>
#include <cstdio>

#include "command.h"
#include "uce/core/analysis/umap.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/h5ad_writer.h"

namespace uce::cli {
namespace {

const char* kUsage =
    "usage: uce umap --adata IN --use-rep X_uce --out OUT [--dims 2|3] [--n-neighbors 15] [--min-dist 0.5] "
    "[--spread 1] [--epochs N] [--seed 0] [--threads T]";

int runUmap(const Args& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::puts(kUsage);
    return 0;
  }
  Options opt(args, {}, {"adata", "use-rep", "out", "dims", "n-neighbors", "min-dist", "spread", "epochs", "seed",
                         "threads"});
  if (!opt.positional().empty()) throw Error(ErrorKind::InvalidArgument, "", kUsage);
  const std::string in = opt.require("adata");
  const std::string out = opt.require("out");
  const std::string rep = opt.get("use-rep", "X_uce");
  analysis::UmapOptions o;
  o.dims = static_cast<int>(opt.getInt("dims", 2));
  o.nNeighbors = static_cast<int>(opt.getInt("n-neighbors", 15));
  o.minDist = static_cast<float>(opt.getDouble("min-dist", 0.5));
  o.spread = static_cast<float>(opt.getDouble("spread", 1.0));
  o.nEpochs = static_cast<int>(opt.getInt("epochs", 0));
  const long long seed = opt.getInt("seed", 0);
  if (seed < 0) throw Error(ErrorKind::InvalidArgument, "", "--seed must not be negative");
  o.seed = static_cast<uint64_t>(seed);
  o.threads = static_cast<int>(opt.getInt("threads", 0));
  if (o.threads < 0) throw Error(ErrorKind::InvalidArgument, "", "--threads must be 0 (all cores) or positive");

  auto ds = openDataset(in);
  bool found = false;
  std::string keys;
  for (const auto& k : ds->obsmKeys()) {
    found = found || k == rep;
    keys += (keys.empty() ? "" : ", ") + k;
  }
  if (!found)
    fail(ErrorKind::MissingMatrix, in,
         "no obsm['" + rep + "'] to map" + (keys.empty() ? std::string(" (the file has no obsm arrays)")
                                                         : " (obsm holds: " + keys + ")") +
             "; run `uce embed` first or choose another with --use-rep");
  const DenseMatrix x = ds->readObsm(rep);
  ds.reset();
  // Rows with any NaN/Inf are cells without an embedding: left out, mapped to NaN.
  analysis::UmapReport report;
  int64_t mapped = 0;
  DenseMatrix m;
  m.rows = x.rows;
  m.cols = o.dims;
  try {
    m.data = analysis::umapSkippingMissing(analysis::MatrixView{x.data.data(), x.rows, x.cols}, o, &report, &mapped);
  } catch (const Error& e) {
    fail(e.kind(), in, (e.kind() == ErrorKind::Empty ? "obsm['" + rep + "']: " : std::string()) + e.what());
  }
  ResultsWriter w(in, out);
  w.setObsm("X_umap", m);
  w.setUns("umap/use_rep", UnsValue::str(rep));
  w.setUns("umap/n_neighbors", UnsValue::integer(o.nNeighbors));
  w.setUns("umap/min_dist", UnsValue::real(o.minDist));
  w.setUns("umap/spread", UnsValue::real(o.spread));
  w.setUns("umap/seed", UnsValue::integer(static_cast<int64_t>(o.seed)));
  w.setUns("umap/n_epochs", UnsValue::integer(report.nEpochs));
  w.setUns("umap/init", UnsValue::str(report.init));
  w.commit();
  std::fprintf(stderr,
               "umap: %lld of %lld cells mapped (%lld without an embedding left NaN), %d-D; kNN %s %.1f s, graph %.1f s, "
               "init %s %.1f s, %d epochs %.1f s\n",
               static_cast<long long>(mapped), static_cast<long long>(x.rows), static_cast<long long>(x.rows - mapped),
               o.dims, report.knnMethod.c_str(), report.knnSeconds, report.graphSeconds, report.init.c_str(),
               report.initSeconds, report.nEpochs, report.optimizeSeconds);
  return 0;
}

Registrar reg{{"umap", "a 2-D or 3-D UMAP map of an embedding into obsm['X_umap']", runUmap}};

}  // namespace
}  // namespace uce::cli
