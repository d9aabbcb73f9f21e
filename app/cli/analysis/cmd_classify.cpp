// uce classify train|apply: classifier transfer on embeddings (the UCE paper's Norn workflow).
//   uce classify train --adata REF --label COL [--use-rep X_uce] [--class-weight balanced]
//                      [--cv 5] [--seed 0] [--C 1] [--positive CLASS] [--threads N] --out MODEL
//   uce classify apply --model MODEL --adata IN --out OUT [--min-prob 0.5] [--in-place]
#include <cstdio>
#include <string>

#include "command.h"
#include "uce/core/analysis/classifier.h"
#include "uce/core/error.h"

namespace uce::cli {
namespace {

const char* kUsage =
    "usage: uce classify train --adata REF.h5ad --label COLUMN --out MODEL.json [--use-rep X_uce]\n"
    "                          [--class-weight balanced] [--cv 5] [--seed 0] [--C 1.0]\n"
    "                          [--positive CLASS] [--max-iter 1000] [--threads N]\n"
    "       uce classify apply --model MODEL.json --adata IN.h5ad (--out OUT.h5ad | --in-place)\n"
    "                          [--min-prob 0.5]\n"
    "train: multinomial logistic regression (scikit-learn's LogisticRegression(C, multinomial,\n"
    "  lbfgs): raw embedding features, intercept, L2 on the weights), with stratified k-fold\n"
    "  cross-validated accuracy. --positive fits CLASS vs rest.\n"
    "apply: writes obs['predicted_<COLUMN>'] (\"unassigned\" below --min-prob) and\n"
    "  obs['predicted_<COLUMN>_prob']. Embeddings of another model are refused.\n";

int runTrain(const Args& args) {
  Options opt(args, {"help"},
              {"adata", "label", "out", "use-rep", "class-weight", "cv", "seed", "C", "positive", "max-iter", "threads"});
  if (opt.has("help")) { std::fputs(kUsage, stdout); return 0; }
  analysis::TrainRequest r;
  r.adata = opt.require("adata");
  r.labelColumn = opt.require("label");
  const std::string out = opt.require("out");
  r.featureKey = opt.get("use-rep", "X_uce");
  const std::string cw = opt.get("class-weight", "none");
  if (cw != "none" && cw != "balanced")
    throw Error(ErrorKind::InvalidArgument, "", "--class-weight is 'balanced' or 'none', got '" + cw + "'");
  r.options.balanced = cw == "balanced";
  const long long folds = opt.getInt("cv", 5);
  if (folds < 0 || folds == 1 || folds > 100)
    throw Error(ErrorKind::InvalidArgument, "", "--cv is 0 (none) or 2..100 folds, got " + std::to_string(folds));
  r.folds = static_cast<int>(folds);
  const long long seed = opt.getInt("seed", 0);
  if (seed < 0) throw Error(ErrorKind::InvalidArgument, "", "--seed must be >= 0");
  r.seed = static_cast<uint64_t>(seed);
  r.options.C = opt.getDouble("C", 1.0);
  if (!(r.options.C > 0)) throw Error(ErrorKind::InvalidArgument, "", "--C must be > 0");
  const long long iters = opt.getInt("max-iter", 1000);
  if (iters < 1 || iters > 1000000) throw Error(ErrorKind::InvalidArgument, "", "--max-iter must be 1..1000000");
  r.options.maxIterations = static_cast<int>(iters);
  r.options.threads = static_cast<int>(opt.getInt("threads", 0));
  r.positive = opt.get("positive");

  const analysis::ClassifierFile c = analysis::trainClassifier(r);
  analysis::saveClassifier(c, out);
  std::printf("trained on %lld cells, %zu classes, %lld dims (%s), embeddings of %s\n",
              static_cast<long long>(c.trainingCells), c.model.labels.size(), static_cast<long long>(c.model.dim),
              r.featureKey.c_str(), c.embeddingModelName.c_str());
  std::printf("fit: %d L-BFGS iterations, %s (max |gradient| %.2e)\n", c.fit.iterations,
              c.fit.converged ? "converged" : "NOT converged: raise --max-iter", c.fit.gradientMax);
  if (c.cv.folds >= 2)
    std::printf("cross-validated accuracy (%d-fold, stratified, seed %llu): %.4f (balanced accuracy %.4f)\n", c.cv.folds,
                static_cast<unsigned long long>(r.seed), c.cv.accuracy, c.cv.balancedAccuracy);
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

int runApply(const Args& args) {
  Options opt(args, {"help", "in-place"}, {"model", "adata", "out", "min-prob"});
  if (opt.has("help")) { std::fputs(kUsage, stdout); return 0; }
  const std::string modelPath = opt.require("model");
  const std::string adata = opt.require("adata");
  if (opt.has("in-place") == opt.has("out"))
    throw Error(ErrorKind::InvalidArgument, "", "give exactly one of --out OUT.h5ad and --in-place");
  const std::string out = opt.has("in-place") ? adata : opt.get("out");
  const double minProb = opt.getDouble("min-prob", 0.5);
  const analysis::ClassifierFile c = analysis::loadClassifier(modelPath);
  const analysis::ApplyReport rep = analysis::applyClassifier(c, adata, out, minProb);
  std::printf("%lld cells: %lld unassigned (probability < %.2f or not embedded)\n", static_cast<long long>(rep.cells),
              static_cast<long long>(rep.unassigned), minProb);
  for (const auto& kv : rep.counts) std::printf("  %s\t%lld\n", kv.first.c_str(), static_cast<long long>(kv.second));
  std::printf("wrote obs['%s'] and obs['%s_prob'] to %s\n", rep.labelColumn.c_str(), rep.labelColumn.c_str(), out.c_str());
  return 0;
}

int runClassify(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "train") return runTrain(rest);
  if (args[0] == "apply") return runApply(rest);
  throw Error(ErrorKind::InvalidArgument, "", "uce classify: unknown step '" + args[0] + "' (train or apply)\n" + kUsage);
}

Registrar reg{{"classify", "train a cell-type classifier on embeddings, or apply one (label transfer)", runClassify}};

}  // namespace
}  // namespace uce::cli
