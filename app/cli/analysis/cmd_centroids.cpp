// uce centroids: mean embedding per label (or label x group), nearest centroids across sources,
// the UCE paper's alignment score, and a hierarchical tree of the centroids.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "command.h"
#include "uce/core/analysis/centroids.h"
#include "uce/core/analysis/hclust.h"
#include "uce/core/atomic_file.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/text.h"

namespace uce::cli {
namespace {

using namespace uce::analysis;

const char* kUsage =
    "usage: uce centroids --adata A[,A2,...] --label COL --out CSV [--adata2 B[,B2,...]]\n"
    "                     [--group COL] [--use-rep X_uce] [--k 3] [--min-cells 1]\n"
    "                     [--tree OUT.nwk] [--linkage OUT.csv] [--method average|ward|complete|single]\n"
    "Centroid = mean of obsm[--use-rep] over the cells of one label (of one label x group with --group).\n"
    "  --adata2 B   query A's centroids among B's: per label the rank of B's centroid of the same\n"
    "               label (and group) and the alignment score, the share of labels whose own\n"
    "               centroid is the nearest (k=1) or among the 3 nearest (k=3); UCE paper Fig. 3d.\n"
    "  --group COL  without --adata2: each value of COL (e.g. species) is a source, and every\n"
    "               ordered pair of sources is aligned as above.\n"
    "  neither      the nearest other centroids of each label within A.\n"
    "--out CSV: query_source,reference_source,query_label,query_group,query_cells,own_rank,\n"
    "  own_distance,nearest_1,distance_1,... (--k nearest, Euclidean; grouped names 'label|group').\n"
    "--tree/--linkage: average (default) or Ward tree of A's centroids as Newick and as SciPy's\n"
    "  linkage matrix (a,b,distance,size); leaf i is row i of <linkage>_leaves.csv (index,name,cells).\n"
    "Files from several models (different uns uce/model_sha256) are refused.";


std::string ratio(int64_t hits, int64_t n) {
  char b[64];
  std::snprintf(b, sizeof b, "%lld/%lld = %.3f", static_cast<long long>(hits), static_cast<long long>(n),
                n ? static_cast<double>(hits) / static_cast<double>(n) : std::nan(""));
  return b;
}

void printScore(const std::string& q, const std::string& r, const std::vector<CentroidMatch>& matches) {
  const AlignmentScore s = alignmentScore(matches);
  if (s.shared == 0) {
    std::printf("alignment %s -> %s: no label in common\n", q.c_str(), r.c_str());
    return;
  }
  std::printf("alignment %s -> %s: %lld shared labels; own centroid nearest (k=1): %s; among the 3 nearest "
              "(k=3): %s\n",
              q.c_str(), r.c_str(), static_cast<long long>(s.shared), ratio(s.hitsAt1, s.shared).c_str(),
              ratio(s.hitsAt3, s.shared).c_str());
}

int runCentroids(const Args& args) {
  Options opt(args, {"help"},
              {"adata", "adata2", "label", "group", "use-rep", "k", "min-cells", "out", "tree", "linkage", "method"});
  if (opt.has("help")) {
    std::printf("%s\n", kUsage);
    return 0;
  }
  if (!opt.positional().empty() || !opt.has("adata") || !opt.has("label") || !opt.has("out"))
    throw Error(ErrorKind::InvalidArgument, "", kUsage);
  const std::string rep = opt.get("use-rep", "X_uce");
  const std::string label = opt.get("label"), group = opt.get("group");
  const long long k = opt.getInt("k", 3);
  if (k < 1) throw Error(ErrorKind::InvalidArgument, "", "--k must be at least 1");
  CentroidOptions co;
  co.minCells = opt.getInt("min-cells", 1);
  if (co.minCells < 1) throw Error(ErrorKind::InvalidArgument, "", "--min-cells must be at least 1");
  const Linkage method = parseLinkage(opt.get("method", "average"));

  const analysis::LabelledEmbeddings a = analysis::loadLabelledEmbeddings(splitList(opt.get("adata")), rep, label, group);
  const Centroids ca = computeCentroids({a.x.data(), a.n, a.dim}, a.labels, a.groups, co);
  std::printf("%s: %lld centroids (%s%s) from %lld cells\n", a.name.c_str(), static_cast<long long>(ca.size()),
              label.c_str(), group.empty() ? "" : (" x " + group).c_str(), static_cast<long long>(a.n));

  std::string csv;
  if (opt.has("adata2")) {
    const analysis::LabelledEmbeddings b = analysis::loadLabelledEmbeddings(splitList(opt.get("adata2")), rep, label, group);
    if (!a.model.empty() && !b.model.empty() && a.model != b.model)
      fail(ErrorKind::InvalidArgument, b.firstPath, "was embedded with another model than " + a.firstPath +
                                                        " (uns uce/model_sha256 differs): centroids across models "
                                                        "are not comparable");
    if (b.dim != a.dim)
      fail(ErrorKind::Shape, b.firstPath, "obsm['" + rep + "'] has " + std::to_string(b.dim) + " columns but " +
                                              a.firstPath + " has " + std::to_string(a.dim) +
                                              ": embedded with different models");
    const Centroids cb = computeCentroids({b.x.data(), b.n, b.dim}, b.labels, b.groups, co);
    std::printf("%s: %lld centroids\n", b.name.c_str(), static_cast<long long>(cb.size()));
    auto m = nearestCentroids(ca, cb);
    appendMatchTable(csv, a.name, b.name, ca, cb, m, static_cast<int>(k));
    printScore(a.name, b.name, m);
  } else if (!group.empty()) {
    std::set<std::string> values(ca.groups.begin(), ca.groups.end());
    if (values.size() < 2)
      fail(ErrorKind::InvalidArgument, opt.get("adata"), "column '" + group + "' has " +
                                                             std::to_string(values.size()) +
                                                             " value(s) among labelled cells: alignment needs two "
                                                             "or more (or pass --adata2)");
    for (const auto& g1 : values)
      for (const auto& g2 : values) {
        if (g1 == g2) continue;
        const Centroids q = selectGroup(ca, g1), r = selectGroup(ca, g2);
        auto m = nearestCentroids(q, r);
        appendMatchTable(csv, g1, g2, q, r, m, static_cast<int>(k));
        printScore(g1, g2, m);
      }
  } else {
    auto m = nearestCentroids(ca, ca, true);
    appendMatchTable(csv, a.name, a.name, ca, ca, m, static_cast<int>(k));
  }
  writeFileAtomic(opt.get("out"), csv);
  std::printf("wrote %s\n", opt.get("out").c_str());

  if (opt.has("tree") || opt.has("linkage")) {
    if (ca.size() < 2)
      fail(ErrorKind::InvalidArgument, opt.get("adata"), "a tree needs at least 2 centroids; found " +
                                                             std::to_string(ca.size()));
    const auto merges = hierarchicalClustering(ca.means, ca.size(), ca.dim, method);
    if (opt.has("tree")) {
      writeFileAtomic(opt.get("tree"), newick(merges, ca.names));
      std::printf("wrote %s (%s linkage, %lld leaves)\n", opt.get("tree").c_str(), linkageName(method),
                  static_cast<long long>(ca.size()));
    }
    if (opt.has("linkage")) {
      const std::string path = opt.get("linkage");
      writeFileAtomic(path, linkageCsv(merges));
      std::filesystem::path leaves(path);
      leaves.replace_extension();
      const std::string leavesPath = leaves.string() + "_leaves.csv";
      std::string l = "index,name,cells\n";
      for (int64_t i = 0; i < ca.size(); ++i)
        l += std::to_string(i) + "," + csvField(ca.names[static_cast<size_t>(i)]) + "," +
             std::to_string(ca.cells[static_cast<size_t>(i)]) + "\n";
      writeFileAtomic(leavesPath, l);
      std::printf("wrote %s and %s\n", path.c_str(), leavesPath.c_str());
    }
  }
  return 0;
}

Registrar reg{{"centroids", "mean embedding per label, nearest centroids across datasets, alignment score, tree",
               runCentroids}};

}  // namespace
}  // namespace uce::cli
