// uce de: differential expression of one group against the rest or another group, and chosen
// genes / gene ratios across the groups of a column (paper Fig. 4e). Both write a CSV.
#include <cstdio>

#include "command.h"
#include "uce/core/analysis/de.h"
#include "uce/core/atomic_file.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"

namespace uce::cli {
namespace {

const char* kUsage =
    "usage: uce de --adata IN --groupby COL --group G [--reference rest|GROUP (rest)]\n"
    "              [--method wilcoxon|t-test (wilcoxon)] --out CSV\n"
    "   or: uce de --adata IN --groupby COL --genes A,B[,...] [--ratio A:B[,C:D...]]\n"
    "              [--reference rest|GROUP|pairs (rest)] [--group G] [--method ...] --out CSV\n"
    "common: [--within COL=VALUE (only those cells, e.g. --within cell_type=Norn cell)]\n"
    "        [--counts KEY (guessed: layers/counts, raw/X, X)] [--gene-column VARCOL (var_names)]\n"
    "        [--target-sum S (10000)] [--max-block-mb M (256)] [--threads T (all)] [--quiet]\n"
    "Expression is log1p(count / library size * S) of the raw-count matrix, per cell.\n"
    "First form: every gene, group G against the reference (rest = every other labelled cell).\n"
    "  CSV gene,pval,pval_adj,log2fc,pct_in,pct_out,mean_in,mean_out sorted by pval (mean: of the\n"
    "  normalised counts per S, in G / in the reference). wilcoxon = tie-corrected\n"
    "  rank-sum, normal approximation (scipy mannwhitneyu asymptotic, no continuity correction);\n"
    "  t-test = Welch. pval_adj: Benjamini-Hochberg. log2fc = log2((mean normalised count in G\n"
    "  + 1e-9) / (same in reference + 1e-9)). pct: share of cells with count > 0. Genes stream in\n"
    "  blocks of at most M MB of values (more passes over the file when it is larger).\n"
    "Second form: the chosen genes and ratios per group: each group vs rest, each group vs\n"
    "  GROUP, or every pair of groups (--reference pairs); --group G keeps only G's comparisons.\n"
    "  A ratio A:B is log2((normA + 1) / (normB + 1)) per cell, normX = count / library * S.\n"
    "  CSV feature,group,reference,n_group,n_reference,mean_group,mean_reference,median_group,\n"
    "  median_reference,pct_group,pct_reference,log2fc,pval,pval_adj (mean/median of the per-cell\n"
    "  value; ratio log2fc = difference of mean log2 ratios; pct for a ratio: either gene > 0;\n"
    "  pval_adj: Benjamini-Hochberg over all rows).\n"
    "Example: uce de --adata kidney.h5ad --groupby disease --genes Epas1,Egln1 --ratio Epas1:Egln1\n"
    "         --out epas1.csv";

int runDe(const Args& args) {
  Options opt(args, {"quiet", "help"},
              {"adata", "groupby", "group", "reference", "method", "out", "genes", "ratio", "counts",
               "gene-column", "target-sum", "max-block-mb", "threads", "within"});
  if (opt.has("help")) {
    std::printf("%s\n", kUsage);
    return 0;
  }
  if (!opt.positional().empty() || !opt.has("adata") || !opt.has("groupby") || !opt.has("out"))
    throw Error(ErrorKind::InvalidArgument, "", kUsage);
  const bool features = opt.has("genes") || opt.has("ratio");
  if (!features && !opt.has("group"))
    throw Error(ErrorKind::InvalidArgument, "",
                std::string("give --group G to rank genes, or --genes / --ratio to compare chosen genes; ") + kUsage);
  const analysis::DeMethod method = analysis::parseDeMethod(opt.get("method", "wilcoxon"));
  const double targetSum = opt.getDouble("target-sum", 1e4);
  if (!(targetSum > 0)) throw Error(ErrorKind::InvalidArgument, "", "--target-sum must be positive");
  const long long threads = opt.getInt("threads", 0);
  if (threads < 0) throw Error(ErrorKind::InvalidArgument, "", "--threads must be 0 (all cores) or more");
  const long long blockMb = opt.getInt("max-block-mb", 256);
  if (blockMb < 1) throw Error(ErrorKind::InvalidArgument, "", "--max-block-mb must be at least 1");
  std::string withinColumn, withinValue;
  if (opt.has("within")) {
    const std::string w = opt.get("within");
    const size_t eq = w.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == w.size())
      throw Error(ErrorKind::InvalidArgument, "", "--within expects COLUMN=VALUE (e.g. cell_type=Norn cell), got '" + w + "'");
    withinColumn = w.substr(0, eq);
    withinValue = w.substr(eq + 1);
  }
  const std::string out = opt.get("out");
  const bool quiet = opt.has("quiet");
  auto ds = openDataset(opt.get("adata"));

  if (!features) {
    analysis::DeOptions o;
    o.groupby = opt.get("groupby");
    o.group = opt.get("group");
    o.reference = opt.get("reference", "rest");
    o.method = method;
    o.withinColumn = withinColumn;
    o.withinValue = withinValue;
    o.counts = opt.get("counts");
    o.geneColumn = opt.get("gene-column");
    o.targetSum = targetSum;
    o.maxBlockBytes = blockMb << 20;
    o.threads = static_cast<int>(threads);
    const analysis::DeResult r = analysis::rankGenes(*ds, o);
    writeFileAtomic(out, analysis::deCsv(r));
    if (!quiet) {
      int64_t significant = 0;
      for (const auto& g : r.genes) significant += g.pvalAdj < 0.05;
      std::string top;
      int shown = 0;
      for (const auto& g : r.genes) {
        if (g.log2fc <= 0 || g.pvalAdj >= 0.05) continue;
        top += (shown ? ", " : "") + g.gene;
        if (++shown == 10) break;
      }
      std::fprintf(stderr,
                   "%s: '%s' (%lld cells) vs %s (%lld cells), %s on '%s' (%s), %zu genes, %lld with "
                   "pval_adj < 0.05, %d pass(es) over the file\n  top up: %s\n  wrote %s\n",
                   ds->path().c_str(), r.group.c_str(), static_cast<long long>(r.cellsIn), r.reference.c_str(),
                   static_cast<long long>(r.cellsOut), analysis::deMethodName(r.method), r.countsKey.c_str(),
                   r.countsReason.c_str(), r.genes.size(), static_cast<long long>(significant), r.passes,
                   top.empty() ? "(none)" : top.c_str(), out.c_str());
    }
    return 0;
  }

  analysis::FeatureOptions o;
  o.groupby = opt.get("groupby");
  o.genes = splitList(opt.get("genes"));
  for (const auto& r : splitList(opt.get("ratio"))) {
    const size_t colon = r.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == r.size() || r.find(':', colon + 1) != std::string::npos)
      throw Error(ErrorKind::InvalidArgument, "", "--ratio expects NUMERATOR:DENOMINATOR gene pairs such as "
                                                  "Epas1:Egln1, got '" + r + "'");
    o.ratios.emplace_back(r.substr(0, colon), r.substr(colon + 1));
  }
  const std::string ref = opt.get("reference", "rest");
  if (ref == "rest") {
    o.comparison = analysis::Comparison::VsRest;
  } else if (ref == "pairs") {
    o.comparison = analysis::Comparison::Pairwise;
  } else {
    o.comparison = analysis::Comparison::VsReference;
    o.reference = ref;
  }
  o.onlyGroup = opt.get("group");
  o.withinColumn = withinColumn;
  o.withinValue = withinValue;
  o.method = method;
  o.counts = opt.get("counts");
  o.geneColumn = opt.get("gene-column");
  o.targetSum = targetSum;
  const analysis::FeatureResult r = analysis::compareFeatures(*ds, o);
  writeFileAtomic(out, analysis::featureCsv(r));
  if (!quiet)
    std::fprintf(stderr, "%s: %zu comparison(s), %s on '%s'; wrote %s\n", ds->path().c_str(), r.rows.size(),
                 analysis::deMethodName(r.method), r.countsKey.c_str(), out.c_str());
  return 0;
}

Registrar reg{{"de", "differential expression: a group vs rest or another group; chosen genes and ratios", runDe}};

}  // namespace
}  // namespace uce::cli
