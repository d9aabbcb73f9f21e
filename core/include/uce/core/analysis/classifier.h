#pragma once
// Classifier transfer (the UCE paper's Norn-cell workflow): a multinomial logistic regression
// fitted on the embeddings of a labelled reference, saved as a small JSON file, and applied to
// the embeddings of other datasets made by the same embedding model.
//
// The model is scikit-learn's LogisticRegression(C, multi_class='multinomial', solver='lbfgs'):
// raw (not standardised) features, an intercept per class, an L2 penalty on the weights only:
//   minimise  C * sum_i s_i * (-log p(y_i | x_i)) + 0.5 * ||W||_F^2,
//   p(c | x) = softmax_c(W x + b),  s_i = 1, or n / (K * n_{y_i}) for class_weight='balanced'.
// Two classes are fitted as a two-row softmax, as scikit-learn's multinomial mode does.
// The fit is deterministic: fixed row blocks, sums reduced in block order (any thread count).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "uce/core/analysis/knn.h"
#include "uce/core/dataset.h"

namespace uce::analysis {

// Fitting options; defaults are scikit-learn's except the tighter convergence (its max_iter=100,
// tol=1e-4 often stops before the optimum; we go on to it, so results do not depend on when
// a solver happens to stop).
struct LogisticOptions {
  double C = 1.0;            // inverse L2 strength (scikit-learn's C)
  bool balanced = false;     // class_weight='balanced'
  int maxIterations = 1000;  // L-BFGS iterations
  double gradientTolerance = 1e-8;  // stop when max |gradient| of the per-weight-unit loss is below
  int memory = 10;           // L-BFGS history pairs
  int threads = 0;           // 0 = all cores (result does not depend on it)
};

struct FitReport {
  int iterations = 0;
  bool converged = false;
  double loss = 0;           // objective / sum of sample weights at the solution
  double gradientMax = 0;    // max |gradient| at the solution (same scale)
};

// Weights of a fitted model. Classes in `labels` order.
struct LogisticModel {
  std::vector<std::string> labels;  // [K]
  int64_t dim = 0;                  // embedding columns
  std::vector<double> weights;      // [K, dim] row-major
  std::vector<double> intercepts;   // [K]; -inf for a class absent from the training rows
  // Class probabilities of one cell: out [K].
  void probabilities(const float* x, double* out) const;
};

// Fits on rows of x with class indices y[i] in [0, labels.size()). Throws uce::Error when
// fewer than two classes have cells or x holds NaN/Inf. A class without cells (possible inside
// a cross-validation fold) gets probability 0.
LogisticModel fitLogistic(const MatrixView& x, const std::vector<int32_t>& y,
                          const std::vector<std::string>& labels, const LogisticOptions& options,
                          FitReport* report = nullptr);

// Predicted class index and its probability for every row: [n] each.
struct Predictions {
  std::vector<int32_t> label;
  std::vector<double> probability;
};
Predictions predict(const LogisticModel& model, const MatrixView& x, int threads = 0);

// Stratified k-fold cross-validation: each class's cells are shuffled with `seed` and dealt
// round-robin into k folds (as scikit-learn's StratifiedKFold(shuffle=True), not its exact
// split). accuracy = correct predictions over all cells, each predicted by the fold's model.
struct CrossValidation {
  int folds = 0;
  std::vector<double> foldAccuracy;  // [folds]
  double accuracy = 0;               // pooled over all cells
  double balancedAccuracy = 0;       // mean per-class recall
};
CrossValidation crossValidate(const MatrixView& x, const std::vector<int32_t>& y,
                              const std::vector<std::string>& labels, int folds, uint64_t seed,
                              const LogisticOptions& options);

// What a saved classifier knows besides its weights. The embedding identity ties it to the
// model that made the training embeddings: applying it to another model's embeddings is refused.
struct ClassifierFile {
  LogisticModel model;
  std::string labelColumn;    // obs column the labels came from ("cell_type")
  std::string positive;       // one-vs-rest: the positive class ("" = all classes)
  std::string featureKey;     // obsm key of the embeddings ("X_uce")
  std::string embeddingModel; // uns 'uce/model_sha256' of the training file, or "unknown:<hash>"
  std::string embeddingModelName;  // for messages (see embeddingModelName)
  std::string trainingFile;   // path, for the record
  int64_t trainingCells = 0;
  LogisticOptions options;
  FitReport fit;
  CrossValidation cv;         // folds = 0 when not run
  std::string source;         // path it was loaded from (not saved)
};

// JSON text of the file, and back. readClassifier throws uce::Error(Format) naming `path`.
std::string classifierToJson(const ClassifierFile& c);
ClassifierFile classifierFromJson(const std::string& text, const std::string& path);
// Atomic write / read of a classifier file.
void saveClassifier(const ClassifierFile& c, const std::string& path);
ClassifierFile loadClassifier(const std::string& path);

// The identity of the embeddings in an .h5ad: uns 'uce/model_sha256' when present (uce embed
// writes it), else "unknown:" + a hash of what is known about them (feature key, dimension,
// any uns 'uce/...' provenance entries).
// Dataset-specific entries (species, seed, genes matched) are left out of the hash, so two
// datasets embedded by the same model agree.
std::string embeddingIdentity(const std::map<std::string, UnsValue>& uns, const std::string& featureKey,
                              int64_t dim);
// A readable name for messages: uns 'uce/model_file' and the identity ("model.torch (sha256 ab12..)").
std::string embeddingModelName(const std::map<std::string, UnsValue>& uns, const std::string& identity);

// End-to-end steps the CLI and the app share.
struct TrainRequest {
  std::string adata;           // reference .h5ad
  std::string labelColumn;     // obs column with the labels
  std::string featureKey = "X_uce";
  std::string positive;        // one class vs rest ("" = multinomial over all labels)
  int folds = 5;               // 0 or 1 = no cross-validation
  uint64_t seed = 0;
  LogisticOptions options;
};
// Reads the reference, drops cells with a missing label or a NaN embedding row (cells the
// embedder skipped), fits, cross-validates. Throws uce::Error for an unknown column, a single
// class, a missing obsm key, too few cells.
ClassifierFile trainClassifier(const TrainRequest& request);

struct ApplyReport {
  int64_t cells = 0;
  int64_t unassigned = 0;      // below min-prob or not embedded
  std::vector<std::pair<std::string, int64_t>> counts;  // predicted label -> cells
  std::string labelColumn;     // "predicted_<COL>"
};
// Writes obs["predicted_<COL>"] (categorical; "unassigned" below minProb and for rows that
// are NaN) and obs["predicted_<COL>_prob"] (probability of the top class; NaN for NaN rows)
// into a copy of `adata` at `out` (out == adata: in place). Refuses embeddings from another
// model, a missing obsm key and a dimension mismatch.
ApplyReport applyClassifier(const ClassifierFile& c, const std::string& adata, const std::string& out,
                            double minProb);

}  // namespace uce::analysis
