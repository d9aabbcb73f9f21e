#include "uce/core/analysis/classifier.h"

#include <omp.h>

// Parallel over row blocks ourselves; Eigen's own GEMM threading would make the blocking (and
// the last bits of the sums) depend on the thread count.
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include "uce/core/atomic_file.h"
#include "uce/core/error.h"
#include "uce/core/h5ad_writer.h"
#include "uce/core/json.h"
#include "uce/core/sha256.h"
#include "uce/core/text.h"

namespace uce::analysis {
namespace {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows per block of the loss/gradient pass. Fixed, so the summation order (and the result)
// does not depend on the thread count.
constexpr int64_t kBlockRows = 2048;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

struct ThreadScope {
  explicit ThreadScope(int threads) : before(omp_get_max_threads()) {
    if (threads > 0) omp_set_num_threads(threads);
  }
  ~ThreadScope() { omp_set_num_threads(before); }
  int before;
};

bool rowFinite(const float* r, int64_t dim) {
  for (int64_t j = 0; j < dim; ++j)
    if (!std::isfinite(r[j])) return false;
  return true;
}

// The softmax objective over compact classes 0..K-1, all present.
//   f(theta) = (sum_i s_i CE_i + ||W||^2 / (2C)) / S,  S = sum_i s_i
// theta = [W (K x d, row-major), b (K)]. Dividing scikit-learn's objective by C*S keeps the
// minimiser and makes the gradient tolerance independent of the number of cells.
class SoftmaxObjective {
 public:
  SoftmaxObjective(const MatrixView& x, const std::vector<int32_t>& y, const std::vector<double>& s,
                   int k, double C)
      : x_(x), y_(y), s_(s), k_(k), C_(C) {
    S_ = 0;
    for (double v : s_) S_ += v;
  }
  int64_t size() const { return static_cast<int64_t>(k_) * (x_.dim + 1); }

  double operator()(const Eigen::VectorXd& theta, Eigen::VectorXd& grad) const {
    const int64_t d = x_.dim, n = x_.n;
    Eigen::Map<const RowMatrixD> W(theta.data(), k_, d);
    Eigen::Map<const Eigen::VectorXd> b(theta.data() + k_ * d, k_);
    const int64_t blocks = (n + kBlockRows - 1) / kBlockRows;
    std::vector<RowMatrixD> gW(static_cast<size_t>(blocks));
    std::vector<Eigen::VectorXd> gb(static_cast<size_t>(blocks));
    std::vector<double> loss(static_cast<size_t>(blocks), 0.0);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t r0 = blk * kBlockRows, m = std::min(kBlockRows, n - r0);
      Eigen::Map<const RowMatrixF> Xf(x_.data + r0 * d, m, d);
      const RowMatrixD Xb = Xf.cast<double>();
      RowMatrixD Z = Xb * W.transpose();
      Z.rowwise() += b.transpose();
      double l = 0;
      for (int64_t i = 0; i < m; ++i) {
        const double zmax = Z.row(i).maxCoeff();
        double sum = 0;
        for (int c = 0; c < k_; ++c) sum += std::exp(Z(i, c) - zmax);
        const double lse = zmax + std::log(sum);
        const int32_t yi = y_[static_cast<size_t>(r0 + i)];
        const double si = s_[static_cast<size_t>(r0 + i)];
        l += si * (lse - Z(i, yi));
        for (int c = 0; c < k_; ++c) Z(i, c) = si * std::exp(Z(i, c) - lse);  // s_i * p
        Z(i, yi) -= si;                                                       // s_i * (p - y)
      }
      loss[static_cast<size_t>(blk)] = l;
      gW[static_cast<size_t>(blk)] = Z.transpose() * Xb;
      gb[static_cast<size_t>(blk)] = Z.colwise().sum().transpose();
    }
    grad.setZero(size());
    Eigen::Map<RowMatrixD> GW(grad.data(), k_, d);
    Eigen::Map<Eigen::VectorXd> Gb(grad.data() + k_ * d, k_);
    double f = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) {  // block order: deterministic
      f += loss[static_cast<size_t>(blk)];
      GW += gW[static_cast<size_t>(blk)];
      Gb += gb[static_cast<size_t>(blk)];
    }
    f += W.squaredNorm() / (2 * C_);
    GW += W / C_;
    grad /= S_;
    return f / S_;
  }

 private:
  const MatrixView& x_;
  const std::vector<int32_t>& y_;
  const std::vector<double>& s_;
  int k_;
  double C_;
  double S_;
};

// L-BFGS (two-loop recursion) with a backtracking Armijo line search; the objective is convex,
// so the curvature pairs are kept whenever s'y > 0.
Eigen::VectorXd lbfgs(const SoftmaxObjective& f, const LogisticOptions& o, FitReport& rep) {
  const int64_t p = f.size();
  Eigen::VectorXd x = Eigen::VectorXd::Zero(p), g(p), xNew(p), gNew(p);
  double fx = f(x, g);
  std::deque<Eigen::VectorXd> S, Y;
  std::deque<double> rho;
  rep = FitReport{};
  int flat = 0;
  for (int it = 0; it < o.maxIterations; ++it) {
    rep.gradientMax = g.lpNorm<Eigen::Infinity>();
    if (rep.gradientMax <= o.gradientTolerance) {
      rep.converged = true;
      break;
    }
    // Search direction d = -H g.
    Eigen::VectorXd q = g;
    std::vector<double> alpha(S.size());
    for (size_t j = S.size(); j-- > 0;) {
      alpha[j] = rho[j] * S[j].dot(q);
      q -= alpha[j] * Y[j];
    }
    if (!S.empty()) q *= S.back().dot(Y.back()) / Y.back().squaredNorm();
    for (size_t j = 0; j < S.size(); ++j) {
      const double beta = rho[j] * Y[j].dot(q);
      q += (alpha[j] - beta) * S[j];
    }
    Eigen::VectorXd d = -q;
    double gd = g.dot(d);
    if (!(gd < 0)) {  // not a descent direction (numerical trouble): restart from steepest descent
      S.clear(); Y.clear(); rho.clear();
      d = -g;
      gd = g.dot(d);
    }
    double step = S.empty() ? std::min(1.0, 1.0 / g.norm()) : 1.0;
    double fNew = fx;
    bool accepted = false;
    for (int ls = 0; ls < 60; ++ls) {
      xNew = x + step * d;
      fNew = f(xNew, gNew);
      if (std::isfinite(fNew) && fNew <= fx + 1e-4 * step * gd) {
        accepted = true;
        break;
      }
      // Quadratic interpolation of the step, kept within [0.1, 0.5] of the current one.
      const double denom = 2 * (fNew - fx - step * gd);
      double next = std::isfinite(fNew) && denom > 0 ? -gd * step * step / denom : 0.5 * step;
      step = std::clamp(next, 0.1 * step, 0.5 * step);
    }
    rep.iterations = it + 1;
    if (!accepted) break;  // no decrease possible at double precision: at the optimum
    Eigen::VectorXd s = xNew - x, yv = gNew - g;
    const double sy = s.dot(yv);
    if (sy > 1e-12 * yv.squaredNorm()) {
      S.push_back(std::move(s));
      Y.push_back(std::move(yv));
      rho.push_back(1.0 / sy);
      if (static_cast<int>(S.size()) > o.memory) { S.pop_front(); Y.pop_front(); rho.pop_front(); }
    }
    const double decrease = fx - fNew;
    x.swap(xNew);
    g.swap(gNew);
    fx = fNew;
    // Progress below double precision for several steps in a row: stop.
    flat = decrease <= 1e-15 * std::max(1.0, std::abs(fx)) ? flat + 1 : 0;
    if (flat >= 5) break;
  }
  rep.loss = fx;
  rep.gradientMax = g.lpNorm<Eigen::Infinity>();
  if (rep.gradientMax <= o.gradientTolerance) rep.converged = true;
  return x;
}

std::string fmt(double v) {
  if (std::isnan(v)) return "null";
  if (std::isinf(v)) return v < 0 ? "-1e308" : "1e308";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}


const Json& need(const Json& obj, const std::string& key, Json::Kind kind, const std::string& path) {
  const Json* v = obj.get(key);
  if (!v || v->kind != kind)
    fail(ErrorKind::Format, path, "classifier file lacks a valid '" + key + "' entry; it should be the JSON file `uce classify train` writes");
  return *v;
}
std::string optString(const Json& obj, const std::string& key) {
  const Json* v = obj.get(key);
  return v && v->kind == Json::Kind::String ? v->str : std::string();
}
double optNumber(const Json& obj, const std::string& key, double def) {
  const Json* v = obj.get(key);
  return v && v->kind == Json::Kind::Number ? v->num : def;
}

std::vector<std::string> columnNames(const DataFrame& df) {
  std::vector<std::string> v;
  for (const auto& c : df.columns) v.push_back(c.name);
  return v;
}
std::string joinList(const std::vector<std::string>& v, size_t most = 12) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < most; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > most) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s.empty() ? "none" : s;
}

// Reads obsm[key] of an .h5ad, with messages that say what to do when it is not there.
DenseMatrix readEmbedding(const Dataset& ds, const std::string& file, const std::string& key) {
  const auto keys = ds.obsmKeys();
  if (std::find(keys.begin(), keys.end(), key) == keys.end())
    fail(ErrorKind::MissingMatrix, file,
         "no embedding obsm['" + key + "'] (obsm holds: " + joinList(keys) +
             "); embed the file first with `uce embed`, or choose another key with --use-rep");
  DenseMatrix m = ds.readObsm(key);
  if (m.rows != ds.cells())
    fail(ErrorKind::Shape, file, "obsm['" + key + "'] has " + std::to_string(m.rows) + " rows but the file has " +
                                     std::to_string(ds.cells()) + " cells");
  if (m.cols < 1) fail(ErrorKind::Shape, file, "obsm['" + key + "'] has no columns");
  return m;
}

}  // namespace

// ---- Model --------------------------------------------------------------------------------

void LogisticModel::probabilities(const float* x, double* out) const {
  const size_t k = labels.size();
  double zmax = kNegInf;
  for (size_t c = 0; c < k; ++c) {
    double z = intercepts[c];
    if (std::isfinite(z)) {
      const double* w = weights.data() + c * static_cast<size_t>(dim);
      for (int64_t j = 0; j < dim; ++j) z += w[j] * static_cast<double>(x[j]);
    }
    out[c] = z;
    zmax = std::max(zmax, z);
  }
  double sum = 0;
  for (size_t c = 0; c < k; ++c) {
    out[c] = std::isfinite(out[c]) ? std::exp(out[c] - zmax) : 0.0;
    sum += out[c];
  }
  for (size_t c = 0; c < k; ++c) out[c] /= sum;
}

LogisticModel fitLogistic(const MatrixView& x, const std::vector<int32_t>& y,
                          const std::vector<std::string>& labels, const LogisticOptions& options,
                          FitReport* report) {
  const int K = static_cast<int>(labels.size());
  if (static_cast<int64_t>(y.size()) != x.n)
    fail(ErrorKind::InvalidArgument, "", "labels and embedding rows differ in number");
  if (x.dim < 1) fail(ErrorKind::InvalidArgument, "", "the embedding has no columns");
  if (!(options.C > 0)) fail(ErrorKind::InvalidArgument, "", "the inverse regularisation strength C must be > 0");
  for (int64_t i = 0; i < x.n; ++i)
    if (!rowFinite(x.row(i), x.dim))
      fail(ErrorKind::NotFinite, "", "row " + std::to_string(i) + " of the embedding is not finite (NaN or Inf): "
                                     "cells that were not embedded must be left out first");
  // Classes present in y get compact indices; absent ones get probability 0.
  std::vector<int64_t> count(static_cast<size_t>(K), 0);
  for (int32_t v : y) {
    if (v < 0 || v >= K) fail(ErrorKind::InvalidArgument, "", "class index out of range");
    ++count[static_cast<size_t>(v)];
  }
  std::vector<int> compact(static_cast<size_t>(K), -1), original;
  for (int c = 0; c < K; ++c)
    if (count[static_cast<size_t>(c)] > 0) {
      compact[static_cast<size_t>(c)] = static_cast<int>(original.size());
      original.push_back(c);
    }
  const int k = static_cast<int>(original.size());
  if (k < 2)
    fail(ErrorKind::InvalidArgument, "", "a classifier needs cells of at least two classes; the training cells hold " +
                                             std::to_string(k));
  std::vector<int32_t> yc(y.size());
  for (size_t i = 0; i < y.size(); ++i) yc[i] = compact[static_cast<size_t>(y[i])];
  // class_weight='balanced': n / (k * n_c), k = classes present (scikit-learn's definition).
  std::vector<double> s(y.size(), 1.0);
  if (options.balanced)
    for (size_t i = 0; i < y.size(); ++i)
      s[i] = static_cast<double>(x.n) / (k * static_cast<double>(count[static_cast<size_t>(y[i])]));

  ThreadScope threads(options.threads);
  SoftmaxObjective objective(x, yc, s, k, options.C);
  FitReport rep;
  Eigen::VectorXd theta = lbfgs(objective, options, rep);
  if (report) *report = rep;

  LogisticModel m;
  m.labels = labels;
  m.dim = x.dim;
  m.weights.assign(static_cast<size_t>(K * x.dim), 0.0);
  m.intercepts.assign(static_cast<size_t>(K), kNegInf);
  for (int c = 0; c < k; ++c) {
    const size_t o = static_cast<size_t>(original[static_cast<size_t>(c)]);
    std::copy(theta.data() + c * x.dim, theta.data() + (c + 1) * x.dim, m.weights.begin() + static_cast<long>(o * static_cast<size_t>(x.dim)));
    m.intercepts[o] = theta[k * x.dim + c];
  }
  return m;
}

Predictions predict(const LogisticModel& model, const MatrixView& x, int threads) {
  if (x.dim != model.dim)
    fail(ErrorKind::Shape, "", "the embedding has " + std::to_string(x.dim) + " columns but the classifier expects " +
                                   std::to_string(model.dim));
  Predictions p;
  p.label.assign(static_cast<size_t>(x.n), -1);
  p.probability.assign(static_cast<size_t>(x.n), std::nan(""));
  ThreadScope scope(threads);
#pragma omp parallel
  {
    std::vector<double> prob(model.labels.size());
#pragma omp for schedule(static)
    for (int64_t i = 0; i < x.n; ++i) {
      if (!rowFinite(x.row(i), x.dim)) continue;  // not embedded: no prediction
      model.probabilities(x.row(i), prob.data());
      const size_t best = static_cast<size_t>(std::max_element(prob.begin(), prob.end()) - prob.begin());
      p.label[static_cast<size_t>(i)] = static_cast<int32_t>(best);
      p.probability[static_cast<size_t>(i)] = prob[best];
    }
  }
  return p;
}

CrossValidation crossValidate(const MatrixView& x, const std::vector<int32_t>& y,
                              const std::vector<std::string>& labels, int folds, uint64_t seed,
                              const LogisticOptions& options) {
  if (folds < 2) fail(ErrorKind::InvalidArgument, "", "cross-validation needs at least 2 folds");
  if (x.n < folds)
    fail(ErrorKind::InvalidArgument, "", "cross-validation with " + std::to_string(folds) + " folds needs at least " +
                                             std::to_string(folds) + " cells; there are " + std::to_string(x.n));
  const size_t K = labels.size();
  // Deal each class's shuffled cells round-robin into the folds. The shuffle uses the raw
  // mt19937_64 output (std:: distributions differ between standard libraries).
  std::vector<int> fold(static_cast<size_t>(x.n), 0);
  std::mt19937_64 rng(seed);
  int next = 0;
  for (size_t c = 0; c < K; ++c) {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < x.n; ++i)
      if (y[static_cast<size_t>(i)] == static_cast<int32_t>(c)) rows.push_back(i);
    for (size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[rng() % i]);
    // Continue the round-robin across classes so small classes do not all land in fold 0.
    for (int64_t r : rows) { fold[static_cast<size_t>(r)] = next; next = (next + 1) % folds; }
  }
  CrossValidation cv;
  cv.folds = folds;
  std::vector<int64_t> correct(K, 0), total(K, 0);
  int64_t allCorrect = 0;
  for (int f = 0; f < folds; ++f) {
    std::vector<float> trX, teX;
    std::vector<int32_t> trY, teY;
    for (int64_t i = 0; i < x.n; ++i) {
      auto& X = fold[static_cast<size_t>(i)] == f ? teX : trX;
      auto& Y = fold[static_cast<size_t>(i)] == f ? teY : trY;
      X.insert(X.end(), x.row(i), x.row(i) + x.dim);
      Y.push_back(y[static_cast<size_t>(i)]);
    }
    const MatrixView tr{trX.data(), static_cast<int64_t>(trY.size()), x.dim};
    const MatrixView te{teX.data(), static_cast<int64_t>(teY.size()), x.dim};
    const LogisticModel m = fitLogistic(tr, trY, labels, options);
    const Predictions p = predict(m, te, options.threads);
    int64_t ok = 0;
    for (size_t i = 0; i < teY.size(); ++i) {
      const bool hit = p.label[i] == teY[i];
      ok += hit;
      correct[static_cast<size_t>(teY[i])] += hit;
      ++total[static_cast<size_t>(teY[i])];
    }
    allCorrect += ok;
    cv.foldAccuracy.push_back(teY.empty() ? 0.0 : static_cast<double>(ok) / static_cast<double>(teY.size()));
  }
  cv.accuracy = static_cast<double>(allCorrect) / static_cast<double>(x.n);
  double sum = 0;
  int present = 0;
  for (size_t c = 0; c < K; ++c)
    if (total[c] > 0) { sum += static_cast<double>(correct[c]) / static_cast<double>(total[c]); ++present; }
  cv.balancedAccuracy = present ? sum / present : 0;
  return cv;
}

// ---- File ---------------------------------------------------------------------------------

std::string classifierToJson(const ClassifierFile& c) {
  const LogisticModel& m = c.model;
  std::ostringstream o;
  o << "{\n  \"format\": \"uce-classifier\",\n  \"version\": 1,\n"
    << "  \"kind\": \"multinomial_logistic_regression\",\n"
    << "  \"label_column\": " << jsonQuote(c.labelColumn) << ",\n"
    << "  \"positive\": " << jsonQuote(c.positive) << ",\n"
    << "  \"feature_key\": " << jsonQuote(c.featureKey) << ",\n"
    << "  \"dim\": " << m.dim << ",\n"
    << "  \"embedding_model\": " << jsonQuote(c.embeddingModel) << ",\n"
    << "  \"embedding_model_name\": " << jsonQuote(c.embeddingModelName) << ",\n"
    << "  \"training_file\": " << jsonQuote(c.trainingFile) << ",\n"
    << "  \"training_cells\": " << c.trainingCells << ",\n"
    << "  \"options\": {\"C\": " << fmt(c.options.C) << ", \"class_weight\": "
    << (c.options.balanced ? "\"balanced\"" : "null") << ", \"max_iter\": " << c.options.maxIterations
    << ", \"gradient_tolerance\": " << fmt(c.options.gradientTolerance) << ", \"features\": \"raw\"},\n"
    << "  \"fit\": {\"iterations\": " << c.fit.iterations << ", \"converged\": " << (c.fit.converged ? "true" : "false")
    << ", \"loss\": " << fmt(c.fit.loss) << ", \"gradient_max\": " << fmt(c.fit.gradientMax) << "},\n"
    << "  \"cross_validation\": {\"folds\": " << c.cv.folds << ", \"accuracy\": " << fmt(c.cv.accuracy)
    << ", \"balanced_accuracy\": " << fmt(c.cv.balancedAccuracy) << ", \"fold_accuracy\": [";
  for (size_t i = 0; i < c.cv.foldAccuracy.size(); ++i) o << (i ? ", " : "") << fmt(c.cv.foldAccuracy[i]);
  o << "]},\n  \"labels\": [";
  for (size_t i = 0; i < m.labels.size(); ++i) o << (i ? ", " : "") << jsonQuote(m.labels[i]);
  o << "],\n  \"intercepts\": [";
  for (size_t i = 0; i < m.intercepts.size(); ++i) o << (i ? ", " : "") << fmt(m.intercepts[i]);
  o << "],\n  \"weights\": [";
  for (size_t k = 0; k < m.labels.size(); ++k) {
    o << (k ? ",\n    [" : "\n    [");
    for (int64_t j = 0; j < m.dim; ++j) o << (j ? ", " : "") << fmt(m.weights[k * static_cast<size_t>(m.dim) + static_cast<size_t>(j)]);
    o << "]";
  }
  o << "\n  ]\n}\n";
  return o.str();
}

ClassifierFile classifierFromJson(const std::string& text, const std::string& path) {
  const Json doc = parseJson(text, path, "classifier file", "; it should be the JSON file `uce classify train` writes");
  if (doc.kind != Json::Kind::Object || optString(doc, "format") != "uce-classifier")
    fail(ErrorKind::Format, path, "not a classifier file (no \"format\": \"uce-classifier\"); it should be the JSON file `uce classify train` writes");
  if (optNumber(doc, "version", 0) != 1)
    fail(ErrorKind::Unsupported, path, "classifier file version " + fmt(optNumber(doc, "version", 0)) +
                                           " is not one this build reads (1)");
  ClassifierFile c;
  c.labelColumn = optString(doc, "label_column");
  c.positive = optString(doc, "positive");
  c.featureKey = need(doc, "feature_key", Json::Kind::String, path).str;
  c.embeddingModel = need(doc, "embedding_model", Json::Kind::String, path).str;
  c.embeddingModelName = optString(doc, "embedding_model_name");
  c.trainingFile = optString(doc, "training_file");
  c.trainingCells = static_cast<int64_t>(optNumber(doc, "training_cells", 0));
  if (const Json* o = doc.get("options"); o && o->kind == Json::Kind::Object) {
    c.options.C = optNumber(*o, "C", 1.0);
    c.options.balanced = optString(*o, "class_weight") == "balanced";
    c.options.maxIterations = static_cast<int>(optNumber(*o, "max_iter", 1000));
    c.options.gradientTolerance = optNumber(*o, "gradient_tolerance", c.options.gradientTolerance);
  }
  if (const Json* f = doc.get("fit"); f && f->kind == Json::Kind::Object) {
    c.fit.iterations = static_cast<int>(optNumber(*f, "iterations", 0));
    const Json* conv = f->get("converged");
    c.fit.converged = conv && conv->kind == Json::Kind::Bool && conv->b;
    c.fit.loss = optNumber(*f, "loss", 0);
    c.fit.gradientMax = optNumber(*f, "gradient_max", 0);
  }
  if (const Json* v = doc.get("cross_validation"); v && v->kind == Json::Kind::Object) {
    c.cv.folds = static_cast<int>(optNumber(*v, "folds", 0));
    c.cv.accuracy = optNumber(*v, "accuracy", 0);
    c.cv.balancedAccuracy = optNumber(*v, "balanced_accuracy", 0);
    if (const Json* fa = v->get("fold_accuracy"); fa && fa->kind == Json::Kind::Array)
      for (const auto& e : fa->items) c.cv.foldAccuracy.push_back(e.num);
  }
  const double dim = need(doc, "dim", Json::Kind::Number, path).num;
  if (!(dim >= 1 && dim < 1e7 && dim == std::floor(dim)))
    fail(ErrorKind::Format, path, "classifier file has an invalid embedding dimension");
  LogisticModel& m = c.model;
  m.dim = static_cast<int64_t>(dim);
  for (const auto& l : need(doc, "labels", Json::Kind::Array, path).items) {
    if (l.kind != Json::Kind::String) fail(ErrorKind::Format, path, "classifier file has a label that is not a string");
    m.labels.push_back(l.str);
  }
  const auto& b = need(doc, "intercepts", Json::Kind::Array, path).items;
  const auto& w = need(doc, "weights", Json::Kind::Array, path).items;
  if (m.labels.size() < 2 || b.size() != m.labels.size() || w.size() != m.labels.size())
    fail(ErrorKind::Format, path, "classifier file: labels, intercepts and weights differ in number (or fewer than 2 classes)");
  for (const auto& v : b) {
    if (v.kind != Json::Kind::Number) fail(ErrorKind::Format, path, "classifier file: an intercept is not a number");
    m.intercepts.push_back(v.num <= -1e308 ? kNegInf : v.num);
  }
  for (const auto& row : w) {
    if (row.kind != Json::Kind::Array || static_cast<int64_t>(row.items.size()) != m.dim)
      fail(ErrorKind::Format, path, "classifier file: a weight row does not have " + std::to_string(m.dim) + " numbers");
    for (const auto& v : row.items) {
      if (v.kind != Json::Kind::Number || !std::isfinite(v.num))
        fail(ErrorKind::Format, path, "classifier file: a weight is not a finite number");
      m.weights.push_back(v.num);
    }
  }
  c.source = path;
  return c;
}

void saveClassifier(const ClassifierFile& c, const std::string& path) { writeFileAtomic(path, classifierToJson(c)); }

ClassifierFile loadClassifier(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Io, path, "cannot open the classifier file");
  std::stringstream ss;
  ss << in.rdbuf();
  return classifierFromJson(ss.str(), path);
}

// ---- Embedding identity -------------------------------------------------------------------

std::string embeddingIdentity(const std::map<std::string, UnsValue>& uns, const std::string& featureKey,
                              int64_t dim) {
  if (featureKey == "X_uce") {
    auto it = uns.find("uce/model_sha256");
    if (it != uns.end() && it->second.kind == UnsValue::Kind::String && !it->second.s.empty()) return it->second.s;
  }
  // What is known about the model, not about this dataset: key, width, model description.
  std::string known = "feature_key=" + featureKey + "\ndim=" + std::to_string(dim) + "\n";
  if (featureKey == "X_uce")
    for (const char* k : {"uce/model", "uce/model_file", "uce/sample_size"}) {
      auto it = uns.find(k);
      if (it != uns.end()) known += std::string(k) + "=" + it->second.toString() + "\n";
    }
  return "unknown:" + sha256(known).substr(0, 16);
}

std::string embeddingModelName(const std::map<std::string, UnsValue>& uns, const std::string& identity) {
  std::string id = identity.rfind("unknown:", 0) == 0 ? "no model checksum recorded, fingerprint " + identity.substr(8)
                                                      : "sha256 " + identity.substr(0, 12) + "...";
  auto it = uns.find("uce/model_file");
  if (it != uns.end() && !it->second.toString().empty()) return it->second.toString() + " (" + id + ")";
  return "an unnamed model (" + id + ")";
}

// ---- End-to-end ---------------------------------------------------------------------------

ClassifierFile trainClassifier(const TrainRequest& r) {
  auto ds = openDataset(r.adata);
  const DataFrame& obs = ds->obs();
  const Column* col = obs.find(r.labelColumn);
  if (!col)
    fail(ErrorKind::InvalidArgument, r.adata,
         "no obs column '" + r.labelColumn + "' (obs holds: " + joinList(columnNames(obs), 40) + "); choose one with --label");
  const DenseMatrix emb = readEmbedding(*ds, r.adata, r.featureKey);

  // Labels of the usable cells: labelled and embedded.
  std::vector<std::string> text;
  std::vector<int64_t> rows;
  int64_t unlabelled = 0, notEmbedded = 0;
  for (int64_t i = 0; i < emb.rows; ++i) {
    std::string v = col->valueAsString(static_cast<size_t>(i));
    if (v.empty()) { ++unlabelled; continue; }
    if (!rowFinite(emb.data.data() + i * emb.cols, emb.cols)) { ++notEmbedded; continue; }
    if (!r.positive.empty()) v = v == r.positive ? r.positive : "rest";
    text.push_back(std::move(v));
    rows.push_back(i);
  }
  if (!r.positive.empty()) {
    bool found = false;
    for (int64_t i = 0; i < emb.rows && !found; ++i) found = col->valueAsString(static_cast<size_t>(i)) == r.positive;
    if (!found) {
      std::vector<std::string> seen;
      for (int64_t i = 0; i < emb.rows; ++i) {
        std::string v = col->valueAsString(static_cast<size_t>(i));
        if (!v.empty() && std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
      }
      std::sort(seen.begin(), seen.end());
      fail(ErrorKind::InvalidArgument, r.adata,
           "--positive '" + r.positive + "' is not a value of obs['" + r.labelColumn + "'] (values: " + joinList(seen) + ")");
    }
  }
  std::vector<std::string> labels = text;
  std::sort(labels.begin(), labels.end());  // scikit-learn orders classes sorted too
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  if (labels.size() < 2) {
    std::string why = labels.empty() ? "no labelled, embedded cells" : "only one label ('" + labels[0] + "')";
    fail(ErrorKind::InvalidArgument, r.adata,
         "obs['" + r.labelColumn + "'] holds " + why + " among " + std::to_string(rows.size()) +
             " labelled, embedded cells (" + std::to_string(unlabelled) + " unlabelled, " + std::to_string(notEmbedded) +
             " not embedded): a classifier needs at least two classes" +
             (r.positive.empty() ? "" : "; with --positive every other cell is 'rest'"));
  }
  std::map<std::string, int32_t> index;
  for (size_t c = 0; c < labels.size(); ++c) index[labels[c]] = static_cast<int32_t>(c);
  std::vector<int32_t> y(rows.size());
  std::vector<float> X(rows.size() * static_cast<size_t>(emb.cols));
  for (size_t i = 0; i < rows.size(); ++i) {
    y[i] = index[text[i]];
    std::copy(emb.data.begin() + rows[i] * emb.cols, emb.data.begin() + (rows[i] + 1) * emb.cols,
              X.begin() + static_cast<long>(i * static_cast<size_t>(emb.cols)));
  }
  const MatrixView xv{X.data(), static_cast<int64_t>(rows.size()), emb.cols};

  ClassifierFile c;
  c.labelColumn = r.labelColumn;
  c.positive = r.positive;
  c.featureKey = r.featureKey;
  const auto uns = ds->uns();
  c.embeddingModel = embeddingIdentity(uns, r.featureKey, emb.cols);
  c.embeddingModelName = embeddingModelName(uns, c.embeddingModel);
  c.trainingFile = r.adata;
  c.trainingCells = xv.n;
  c.options = r.options;
  if (r.folds >= 2) c.cv = crossValidate(xv, y, labels, r.folds, r.seed, r.options);
  c.model = fitLogistic(xv, y, labels, r.options, &c.fit);
  return c;
}

ApplyReport applyClassifier(const ClassifierFile& c, const std::string& adata, const std::string& out, double minProb) {
  if (!(minProb >= 0 && minProb <= 1))
    fail(ErrorKind::InvalidArgument, "", "--min-prob must be between 0 and 1, got " + fmt(minProb));
  auto ds = openDataset(adata);
  const DenseMatrix emb = readEmbedding(*ds, adata, c.featureKey);
  const std::string src = c.source.empty() ? std::string("the classifier") : "classifier " + c.source;
  if (emb.cols != c.model.dim)
    fail(ErrorKind::Shape, adata,
         "obsm['" + c.featureKey + "'] has " + std::to_string(emb.cols) + " columns but " + src + " was trained on " +
             std::to_string(c.model.dim) + "-column embeddings of " + c.embeddingModelName +
             ": embed this file with the same model as the training data");
  const auto uns = ds->uns();
  const std::string id = embeddingIdentity(uns, c.featureKey, emb.cols);
  if (id != c.embeddingModel)
    fail(ErrorKind::InvalidArgument, adata,
         "obsm['" + c.featureKey + "'] was made by " + embeddingModelName(uns, id) + ", but " + src +
             " was trained on embeddings made by " + c.embeddingModelName +
             "; embeddings of different models are not comparable: embed this file with the training data's model, "
             "or train a classifier on embeddings of this one");
  const MatrixView xv{emb.data.data(), emb.rows, emb.cols};
  const Predictions p = predict(c.model, xv, c.options.threads);

  ApplyReport rep;
  rep.cells = emb.rows;
  const std::string base = c.labelColumn.empty() ? std::string("label") : c.labelColumn;
  rep.labelColumn = "predicted_" + base;
  std::vector<std::string> names(static_cast<size_t>(emb.rows));
  std::map<std::string, int64_t> counts;
  for (size_t i = 0; i < names.size(); ++i) {
    if (p.label[i] < 0 || !(p.probability[i] >= minProb)) {
      names[i] = "unassigned";
      ++rep.unassigned;
    } else {
      names[i] = c.model.labels[static_cast<size_t>(p.label[i])];
    }
    ++counts[names[i]];
  }
  for (const auto& kv : counts) rep.counts.emplace_back(kv.first, kv.second);

  ResultsWriter w(adata, out);
  w.setObsColumn(Column::makeCategorical(rep.labelColumn, names, true));
  w.setObsColumn(Column::makeFloats(rep.labelColumn + "_prob", p.probability));
  w.setUns("uce_classify/" + rep.labelColumn + "/classifier", UnsValue::str(c.source));
  w.setUns("uce_classify/" + rep.labelColumn + "/min_prob", UnsValue::real(minProb));
  w.commit();
  return rep;
}

}  // namespace uce::analysis
