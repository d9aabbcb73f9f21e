// uce atlas build|search: an index of embedded reference datasets, and label transfer to query
// cells by a vote of their nearest atlas cells.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "command.h"
#include "uce/core/analysis/atlas.h"
#include "uce/core/error.h"
#include "uce/core/h5ad_writer.h"

namespace uce::cli {
namespace {

using namespace uce::analysis;

const char* kUsage =
    "usage: uce atlas build --adata F1,F2,... --labels COL[,COL] --out ATLAS_DIR\n"
    "                       [--use-rep X_uce] [--max-cells-per-dataset N (all)] [--seed S (0)]\n"
    "                       [--index auto|flat|hnsw] [--threads T]\n"
    "       uce atlas search --atlas ATLAS_DIR --adata Q --out OUT.h5ad [--k 15] [--weighted]\n"
    "                       [--use-rep KEY (the atlas's)] [--ef-search 128] [--threads T]\n"
    "build: the embeddings of every file (or a label-stratified sample of at most N cells per\n"
    "  file, seeded) in a FAISS index (index.faiss), with cells.csv (source file, row, labels)\n"
    "  and atlas.json (model identity from uns uce/model_sha256). auto: exact below 200,000 cells,\n"
    "  HNSW from there on.\n"
    "search: k nearest atlas cells per query cell; writes a copy of Q with obs predicted_<COL>\n"
    "  (majority label of the k neighbours; --weighted: votes weighted by 1/distance),\n"
    "  predicted_<COL>_confidence (share of the votes won) and atlas_distance (to the nearest\n"
    "  atlas cell). Queries embedded with another model than the atlas are refused.";

int runBuild(const Args& args) {
  Options opt(args, {"help"},
              {"adata", "labels", "out", "use-rep", "max-cells-per-dataset", "seed", "index", "threads"});
  if (opt.has("help")) {
    std::printf("%s\n", kUsage);
    return 0;
  }
  if (!opt.positional().empty() || !opt.has("adata") || !opt.has("labels") || !opt.has("out"))
    throw Error(ErrorKind::InvalidArgument, "", kUsage);
  AtlasBuildOptions o;
  o.useRep = opt.get("use-rep", o.useRep);
  o.labelColumns = splitList(opt.get("labels"));
  o.maxCellsPerDataset = opt.getInt("max-cells-per-dataset", 0);
  const long long seed = opt.getInt("seed", 0);
  if (seed < 0) throw Error(ErrorKind::InvalidArgument, "", "--seed must be a non-negative integer");
  o.seed = static_cast<uint64_t>(seed);
  o.index = opt.get("index", o.index);
  o.threads = static_cast<int>(opt.getInt("threads", 0));
  const AtlasInfo info = buildAtlas(splitList(opt.get("adata")), opt.get("out"), o);
  for (const auto& d : info.datasets)
    std::printf("%s: %lld of %lld cells (%lld embedded)\n", d.path.c_str(), static_cast<long long>(d.sampled),
                static_cast<long long>(d.cells), static_cast<long long>(d.embedded));
  std::printf("atlas %s: %lld cells x %lld dims, %s index, model %s\n", opt.get("out").c_str(),
              static_cast<long long>(info.cells), static_cast<long long>(info.dim), info.index.c_str(),
              info.modelSha256.empty() ? "(not recorded)" : info.modelSha256.c_str());
  return 0;
}

// Categorical column with "" as missing (code -1).
Column categorical(const std::string& name, const std::vector<std::string>& values) {
  Column c;
  c.name = name;
  c.kind = ColumnKind::Categorical;
  std::map<std::string, int32_t> code;
  for (const auto& v : values)
    if (!v.empty()) code.emplace(v, 0);
  for (auto& [v, i] : code) {
    i = static_cast<int32_t>(c.categories.size());
    c.categories.push_back(v);
  }
  c.codes.reserve(values.size());
  for (const auto& v : values) c.codes.push_back(v.empty() ? -1 : code[v]);
  return c;
}

int runSearch(const Args& args) {
  Options opt(args, {"help", "weighted", "allow-other-model"},
              {"atlas", "adata", "out", "k", "use-rep", "ef-search", "threads"});
  if (opt.has("help")) {
    std::printf("%s\n", kUsage);
    return 0;
  }
  if (!opt.positional().empty() || !opt.has("atlas") || !opt.has("adata") || !opt.has("out"))
    throw Error(ErrorKind::InvalidArgument, "", kUsage);
  AtlasSearchOptions o;
  const long long k = opt.getInt("k", 15);
  if (k < 1 || k > 1024) throw Error(ErrorKind::InvalidArgument, "", "--k must be between 1 and 1024");
  o.k = static_cast<int>(k);
  o.distanceWeighted = opt.has("weighted");
  o.allowOtherModel = opt.has("allow-other-model");
  o.useRep = opt.get("use-rep");
  o.efSearch = static_cast<int>(opt.getInt("ef-search", o.efSearch));
  o.threads = static_cast<int>(opt.getInt("threads", 0));
  const std::string atlas = opt.get("atlas"), query = opt.get("adata"), out = opt.get("out");
  AtlasInfo info;
  const AtlasSearchResult r = searchAtlas(atlas, query, o, &info);
  if (!r.note.empty()) std::fprintf(stderr, "note: %s\n", r.note.c_str());

  ResultsWriter w(query, out);
  std::vector<double> nearest(static_cast<size_t>(r.cells), std::nan(""));
  for (int64_t i = 0; i < r.cells; ++i)
    if (r.neighbours[static_cast<size_t>(i * r.k)] >= 0) nearest[static_cast<size_t>(i)] = r.distances[static_cast<size_t>(i * r.k)];
  for (const auto& p : r.predictions) {
    w.setObsColumn(categorical("predicted_" + p.column, p.label));
    w.setObsColumn(Column::makeFloats("predicted_" + p.column + "_confidence", p.confidence));
    double sum = 0;
    int64_t n = 0;
    for (double c : p.confidence)
      if (!std::isnan(c)) {
        sum += c;
        ++n;
      }
    std::printf("predicted_%s: %lld cells, mean confidence %.3f\n", p.column.c_str(), static_cast<long long>(n),
                n ? sum / static_cast<double>(n) : std::nan(""));
  }
  w.setObsColumn(Column::makeFloats("atlas_distance", nearest));
  w.setUns("uce/atlas/path", UnsValue::str(atlas));
  w.setUns("uce/atlas/k", UnsValue::integer(r.k));
  w.setUns("uce/atlas/weighting", UnsValue::str(o.distanceWeighted ? "inverse_distance" : "uniform"));
  if (!info.modelSha256.empty()) w.setUns("uce/atlas/model_sha256", UnsValue::str(info.modelSha256));
  w.commit();
  if (r.skipped)
    std::printf("%lld cells without a finite embedding got no prediction\n", static_cast<long long>(r.skipped));
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

int runAtlas(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (args.empty()) throw Error(ErrorKind::InvalidArgument, "", kUsage);
    std::printf("%s\n", kUsage);
    return 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "build") return runBuild(rest);
  if (args[0] == "search") return runSearch(rest);
  throw Error(ErrorKind::InvalidArgument, "", "unknown atlas action '" + args[0] + "': use build or search");
}

Registrar reg{{"atlas", "build an atlas index of embedded datasets; search it to transfer labels", runAtlas}};

}  // namespace
}  // namespace uce::cli
