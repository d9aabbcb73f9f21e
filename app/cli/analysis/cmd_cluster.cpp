// uce cluster --adata IN --use-rep X_uce --resolution R --out OUT: Leiden clusters of the cells'
// embeddings into obs["leiden"] (categorical "0", "1", ...; 0 = largest cluster).
#include <cmath>
#include <cstdio>

#include "command.h"
#include "uce/core/analysis/cluster.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/h5ad_writer.h"

namespace uce::cli {
namespace {

const char* kUsage =
    "usage: uce cluster --adata IN.h5ad --out OUT.h5ad [--use-rep X_uce] [--resolution 1.0]\n"
    "                   [--n-neighbors 15] [--seed 0] [--key leiden] [--threads 0]\n"
    "Leiden clustering (modularity, igraph) of the kNN graph of obsm[REP] with scanpy's UMAP\n"
    "connectivities as edge weights. Writes obs[KEY] (categorical; \"0\" = largest cluster);\n"
    "cells whose embedding is NaN get a missing value. Same seed, same clusters.";

DenseMatrix readEmbedding(const Dataset& ds, const std::string& path, const std::string& rep) {
  const auto keys = ds.obsmKeys();
  bool found = false;
  std::string have;
  for (const auto& k : keys) {
    found = found || k == rep;
    have += (have.empty() ? "" : ", ") + k;
  }
  if (!found)
    fail(ErrorKind::InvalidArgument, path, "no obsm['" + rep + "'] to cluster (obsm holds: " +
                                               (have.empty() ? "nothing" : have) +
                                               "); run `uce embed` first or choose one with --use-rep");
  return ds.readObsm(rep);
}

int runCluster(const Args& args) {
  Options opt(args, {"help"}, {"adata", "use-rep", "resolution", "n-neighbors", "seed", "out", "key", "threads"});
  if (opt.has("help")) {
    std::puts(kUsage);
    return 0;
  }
  if (!opt.has("adata") || !opt.has("out")) throw Error(ErrorKind::InvalidArgument, "", kUsage);
  const std::string in = opt.require("adata"), out = opt.require("out");
  const std::string rep = opt.get("use-rep", "X_uce"), key = opt.get("key", "leiden");
  analysis::ClusterOptions co;
  co.leiden.resolution = opt.getDouble("resolution", 1.0);
  if (!(co.leiden.resolution > 0) || !std::isfinite(co.leiden.resolution))
    fail(ErrorKind::InvalidArgument, "", "--resolution must be a positive number (scanpy's default is 1.0)");
  const long long k = opt.getInt("n-neighbors", 15);
  if (k < 1 || k > 1000) fail(ErrorKind::InvalidArgument, "", "--n-neighbors must be between 1 and 1000");
  co.nNeighbors = static_cast<int>(k);
  const long long seed = opt.getInt("seed", 0);
  if (seed < 0) fail(ErrorKind::InvalidArgument, "", "--seed must not be negative");
  co.leiden.seed = static_cast<uint64_t>(seed);
  co.knn.threads = static_cast<int>(opt.getInt("threads", 0));
  if (key.empty()) fail(ErrorKind::InvalidArgument, "", "--key must not be empty");

  auto ds = openDataset(in);
  const DenseMatrix x = readEmbedding(*ds, in, rep);
  if (x.rows != ds->cells())
    fail(ErrorKind::Shape, in, "obsm['" + rep + "'] has " + std::to_string(x.rows) + " rows but the file has " +
                                   std::to_string(ds->cells()) + " cells");
  analysis::ClusterReport report;
  analysis::Clustering c;
  try {
    c = analysis::clusterEmbedding(analysis::MatrixView{x.data.data(), x.rows, x.cols}, co, &report);
  } catch (const Error& e) {
    fail(e.kind(), in, std::string("obsm['") + rep + "']: " + e.what());
  }

  Column col;
  col.name = key;
  col.kind = ColumnKind::Categorical;
  for (int32_t i = 0; i < c.clusters; ++i) col.categories.push_back(std::to_string(i));
  col.codes = c.labels;
  ResultsWriter w(in, out);
  w.setObsColumn(col);
  w.setUns(key + "/params/resolution", UnsValue::real(co.leiden.resolution));
  w.setUns(key + "/params/random_state", UnsValue::integer(seed));
  w.setUns(key + "/params/n_neighbors", UnsValue::integer(co.nNeighbors));
  w.setUns(key + "/params/use_rep", UnsValue::str(rep));
  w.setUns(key + "/params/weights", UnsValue::str("umap-connectivities"));
  w.setUns(key + "/params/knn", UnsValue::str(report.knn.method));
  w.commit();
  std::fprintf(stderr, "%d clusters over %lld cells (%s kNN, k = %d, resolution %.3g, seed %lld, %.1f s)",
               c.clusters, static_cast<long long>(report.cellsClustered), report.knn.method.c_str(), co.nNeighbors,
               co.leiden.resolution, seed, report.seconds);
  if (report.cellsSkipped)
    std::fprintf(stderr, "; %lld cells without an embedding left unclustered", static_cast<long long>(report.cellsSkipped));
  std::fprintf(stderr, "\nwrote obs['%s'] to %s\n", key.c_str(), out.c_str());
  return 0;
}

Registrar reg{{"cluster", "Leiden clusters of an embedding into obs (like scanpy's sc.tl.leiden)", runCluster}};

}  // namespace
}  // namespace uce::cli
