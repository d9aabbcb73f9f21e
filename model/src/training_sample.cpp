// One cell's training sample (UCE_SPEC section 5): mask, sentence from the rest, loss genes.
#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "uce/model/trainer.h"

namespace uce::model {
namespace {
uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// Mask and loss-gene draws use their own stream, apart from the sentence's draws.
constexpr uint64_t kMaskSalt = 0x6A09E667F3BCC909ull;
constexpr uint64_t kThinSalt = 0xBB67AE8584CAA73Bull;  // depth thinning: a stream of its own
constexpr uint64_t kScaleSalt = 0x3C6EF372FE94F82Bull;  // gene-scale augmentation: likewise
constexpr uint64_t kViewSalt = 0xA54FF53A5F1D36F1ull;   // the second view: a stream of its own
constexpr uint64_t kViewThinSalt = 0x510E527FADE682D1ull;

double standardNormal(CellRng& rng) {  // Box-Muller: one standard normal from two uniforms
  const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Binomial thinning of one cell's counts (rounded to whole UMIs): for each expressed gene in
// order, keep() gives its keep probability (it may draw from rng first), then each UMI is kept
// with that probability. Genes left with none are dropped. Returns the entries written.
template <class Keep>
int64_t thinCounts(const int32_t* cols, const float* vals, int64_t n, CellRng& rng, Keep keep,
                   std::vector<int32_t>& outCols, std::vector<float>& outVals) {
  outCols.clear();
  outVals.clear();
  for (int64_t k = 0; k < n; ++k) {
    if (!(vals[k] > 0)) continue;
    const double p = keep();
    const int64_t umis = std::llround(vals[k]);
    int64_t kept = 0;
    for (int64_t u = 0; u < umis; ++u) kept += rng.uniform() < p ? 1 : 0;
    if (kept == 0) continue;
    outCols.push_back(cols[k]);
    outVals.push_back(static_cast<float>(kept));
  }
  return static_cast<int64_t>(outCols.size());
}
}  // namespace

uint64_t sampleStream(uint64_t epoch, uint64_t file, uint64_t row) {
  return mix64(mix64(mix64(epoch) ^ file) + row);
}

TrainingSampleBuilder::TrainingSampleBuilder(const GeneTable& genes, const SentenceOptions& sentence,
                                             const SampleOptions& sample, const std::vector<float>* detection)
    : genes_(genes), detection_(detection), sentenceOpt_(sentence), opt_(sample), sentence_(genes, sentence),
      expressed_(genes.token.size(), 0) {
  if (opt_.negatives != "uniform" && opt_.negatives != "frequency")
    throw std::invalid_argument("negatives must be uniform or frequency");
  if (!(opt_.downsampleTo >= 0) || !std::isfinite(opt_.downsampleTo))
    throw std::invalid_argument("downsample target must be a count >= 0 (0 = off)");
  if (!(opt_.geneScaleSd >= 0) || !std::isfinite(opt_.geneScaleSd) || opt_.geneScaleSd > 5)
    throw std::invalid_argument("gene-scale sd must be between 0 and 5 (0 = off)");
  if (!(opt_.viewDepthMin > 0 && opt_.viewDepthMin <= 1))
    throw std::invalid_argument("view depth minimum must be in (0, 1]");
  if (!(opt_.viewGeneSd >= 0) || !std::isfinite(opt_.viewGeneSd) || opt_.viewGeneSd > 5)
    throw std::invalid_argument("view gene sd must be between 0 and 5");
  if (opt_.negatives == "frequency") {
    if (!detection_ || detection_->size() != genes.token.size())
      throw std::invalid_argument("frequency negatives need the per-gene detection rates");
    for (int32_t c : genes_.byRank) maxDetection_ = std::max(maxDetection_, (*detection_)[static_cast<size_t>(c)]);
  }
}

bool TrainingSampleBuilder::build(const int32_t* cols, const float* vals, int64_t n, uint64_t stream,
                                  TrainingSample& out, bool secondView) {
  if (secondView) stream = mix64(stream ^ kViewSalt);  // every draw below differs from the first view
  if (opt_.downsampleTo > 0) {
    // Thin the cell to the common depth: each UMI kept with probability target / total.
    double total = 0;
    for (int64_t k = 0; k < n; ++k)
      if (vals[k] > 0) total += std::llround(vals[k]);
    if (total > opt_.downsampleTo) {
      const double keep = opt_.downsampleTo / total;
      CellRng thin(sentenceOpt_.seed ^ kThinSalt, stream);
      n = thinCounts(cols, vals, n, thin, [keep] { return keep; }, thinCols_, thinVals_);
      cols = thinCols_.data();
      vals = thinVals_.data();
    }
  }
  if (secondView) {
    // A shallower donor with other capture efficiencies: keep each UMI with probability
    // min(1, f * exp(sd * z_gene)), f log-uniform in [viewDepthMin, 1].
    CellRng thin(sentenceOpt_.seed ^ kViewThinSalt, stream);
    const double f = std::exp(std::log(opt_.viewDepthMin) * thin.uniform());
    n = thinCounts(cols, vals, n, thin,
                   [&] { return std::min(1.0, f * std::exp(opt_.viewGeneSd * standardNormal(thin))); }, viewCols_,
                   viewVals_);
    cols = viewCols_.data();
    vals = viewVals_.data();
  }
  double umis = 0;  // the cell's depth as the model sees it (after thinning)
  for (int64_t k = 0; k < n; ++k)
    if (vals[k] > 0) umis += vals[k];
  out.logDepth = static_cast<float>(std::log(std::max(1.0, umis) / 1000.0));
  // Expressed matched genes of the cell (columns are unique in a CSR row).
  eCols_.clear();
  eVals_.clear();
  std::optional<CellRng> scale;
  if (opt_.geneScaleSd > 0) scale.emplace(sentenceOpt_.seed ^ kScaleSalt, stream);
  for (int64_t k = 0; k < n; ++k) {
    const auto c = static_cast<size_t>(cols[k]);
    if (genes_.rank[c] < 0 || !(vals[k] > 0) || expressed_[c]) continue;
    expressed_[c] = 1;
    eCols_.push_back(cols[k]);
    float v = vals[k];
    if (scale) v = static_cast<float>(v * std::exp(opt_.geneScaleSd * standardNormal(*scale)));
    eVals_.push_back(v);
  }
  struct Reset {  // leaves the marker zero for the next cell on every path
    std::vector<uint8_t>& m;
    const std::vector<int32_t>& c;
    ~Reset() { for (int32_t x : c) m[static_cast<size_t>(x)] = 0; }
  } reset{expressed_, eCols_};
  const int64_t e = static_cast<int64_t>(eCols_.size());
  if (e < 2) return false;

  CellRng rng(sentenceOpt_.seed ^ kMaskSalt, stream);
  // 1. Mask: a partial Fisher-Yates puts nMask random expressed genes first.
  int64_t nMask = std::llround(opt_.maskRatio * static_cast<double>(e));
  nMask = std::clamp<int64_t>(nMask, 1, e - 1);
  for (int64_t i = 0; i < nMask; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(e - i)));
    std::swap(eCols_[static_cast<size_t>(i)], eCols_[static_cast<size_t>(j)]);
    std::swap(eVals_[static_cast<size_t>(i)], eVals_[static_cast<size_t>(j)]);
  }
  out.maskedColumns.assign(eCols_.begin(), eCols_.begin() + nMask);
  // 2. Sentence from the unmasked genes, exactly as at inference.
  keepCols_.assign(eCols_.begin() + nMask, eCols_.end());
  keepVals_.assign(eVals_.begin() + nMask, eVals_.end());
  out.tokens.resize(static_cast<size_t>(sentenceOpt_.padLength));
  out.length = sentence_.build(keepCols_.data(), keepVals_.data(), static_cast<int64_t>(keepCols_.size()), stream,
                               out.tokens.data());
  if (out.length <= 0) return false;

  // 3. Loss genes: positives from the masked genes, negatives from the unexpressed ones.
  const int nPos = opt_.nLoss / 2, nNeg = opt_.nLoss - nPos;
  out.lossColumns.clear();
  out.labels.clear();
  if (nMask >= nPos) {
    for (int64_t i = 0; i < nPos; ++i) {  // partial Fisher-Yates inside the masked prefix
      const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(nMask - i)));
      std::swap(eCols_[static_cast<size_t>(i)], eCols_[static_cast<size_t>(j)]);
      out.lossColumns.push_back(eCols_[static_cast<size_t>(i)]);
    }
  } else {
    for (int64_t i = 0; i < nMask; ++i) out.lossColumns.push_back(eCols_[static_cast<size_t>(i)]);
    // Too few masked genes: top up with draws, with replacement, from all expressed genes.
    for (int64_t i = nMask; i < nPos; ++i)
      out.lossColumns.push_back(eCols_[rng.below(static_cast<uint64_t>(e))]);
  }
  out.labels.assign(static_cast<size_t>(nPos), 1.f);
  const int64_t matched = genes_.matched();
  const int64_t unexpressed = matched - e;
  if (opt_.negatives == "frequency" && unexpressed >= 4 * static_cast<int64_t>(nNeg) && maxDetection_ > 0) {
    // Rejection draws: a uniform matched gene, kept with probability detection / max detection
    // when the cell does not express it. Bounded: after many misses the rest are uniform.
    const size_t first = out.lossColumns.size();
    int64_t tries = 0;
    const int64_t maxTries = 20000 * static_cast<int64_t>(nNeg);
    while (static_cast<int64_t>(out.lossColumns.size() - first) < nNeg) {
      const int32_t c = genes_.byRank[rng.below(static_cast<uint64_t>(matched))];
      if (expressed_[static_cast<size_t>(c)]) continue;
      if (std::find(out.lossColumns.begin() + static_cast<std::ptrdiff_t>(first), out.lossColumns.end(), c) !=
          out.lossColumns.end())
        continue;
      if (++tries < maxTries && rng.uniform() * maxDetection_ >= (*detection_)[static_cast<size_t>(c)]) continue;
      out.lossColumns.push_back(c);
    }
    out.labels.resize(out.lossColumns.size(), 0.f);
  } else if (unexpressed >= 4 * static_cast<int64_t>(nNeg)) {
    // Many unexpressed genes: rejection draws over all matched genes are cheap and uniform.
    const size_t first = out.lossColumns.size();
    while (static_cast<int64_t>(out.lossColumns.size() - first) < nNeg) {
      const int32_t c = genes_.byRank[rng.below(static_cast<uint64_t>(matched))];
      if (expressed_[static_cast<size_t>(c)]) continue;
      if (std::find(out.lossColumns.begin() + static_cast<std::ptrdiff_t>(first), out.lossColumns.end(), c) !=
          out.lossColumns.end())
        continue;
      out.lossColumns.push_back(c);
    }
    out.labels.resize(out.lossColumns.size(), 0.f);
  } else if (unexpressed > 0) {
    pool_.clear();
    for (int32_t c : genes_.byRank)
      if (!expressed_[static_cast<size_t>(c)]) pool_.push_back(c);
    const int64_t u = static_cast<int64_t>(pool_.size());
    for (int64_t i = 0; i < nNeg; ++i) {
      if (i < u) {  // without replacement while the set lasts
        const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(u - i)));
        std::swap(pool_[static_cast<size_t>(i)], pool_[static_cast<size_t>(j)]);
        out.lossColumns.push_back(pool_[static_cast<size_t>(i)]);
      } else {
        out.lossColumns.push_back(pool_[rng.below(static_cast<uint64_t>(u))]);
      }
    }
    out.labels.resize(out.lossColumns.size(), 0.f);
  } else {
    // Every matched gene is expressed: no negatives exist; score more expressed genes instead.
    for (int i = 0; i < nNeg; ++i) out.lossColumns.push_back(eCols_[rng.below(static_cast<uint64_t>(e))]);
    out.labels.resize(out.lossColumns.size(), 1.f);
  }
  out.lossTokens.resize(out.lossColumns.size());
  for (size_t i = 0; i < out.lossColumns.size(); ++i)
    out.lossTokens[i] = genes_.token[static_cast<size_t>(out.lossColumns[i])];
  return true;
}

}  // namespace uce::model
