#include "uce/model/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace uce::model {

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

CellRng::CellRng(uint64_t seed, uint64_t cell) {
  uint64_t x = seed * 0xD1B54A32D192ED03ull ^ (cell + 0x8CB92BA72F3D8DD7ull);
  for (auto& s : s_) s = splitmix64(x);
}

// xoshiro256**
uint64_t CellRng::next() {
  auto rotl = [](uint64_t v, int k) { return (v << k) | (v >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double CellRng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

uint64_t CellRng::below(uint64_t n) {
  // Rejection keeps the result unbiased: accept only draws from a whole number of cycles.
  const uint64_t threshold = (0 - n) % n;
  while (true) {
    const uint64_t r = next();
    if (r >= threshold) return r % n;
  }
}

void GeneTable::finalize() {
  const size_t n = token.size();
  byRank.clear();
  for (size_t c = 0; c < n; ++c)
    if (token[c] >= 0) byRank.push_back(static_cast<int32_t>(c));
  std::sort(byRank.begin(), byRank.end(), [&](int32_t a, int32_t b) {
    if (chrom[a] != chrom[b]) return chrom[a] < chrom[b];
    if (start[a] != start[b]) return start[a] < start[b];
    return a < b;
  });
  rank.assign(n, -1);
  for (size_t r = 0; r < byRank.size(); ++r) rank[byRank[r]] = static_cast<int32_t>(r);
}

SentenceBuilder::SentenceBuilder(const GeneTable& genes, const SentenceOptions& options)
    : genes_(genes), opt_(options), weightByRank_(genes.byRank.size(), 0.f) {}

int SentenceBuilder::build(const int32_t* cols, const float* vals, int64_t n, uint64_t cellIndex,
                           int32_t* out) {
  std::fill(out, out + opt_.padLength, kPadToken);
  // 1. log1p weights of the cell's matched expressed genes, scattered by genomic rank.
  touched_.clear();
  for (int64_t k = 0; k < n; ++k) {
    const int32_t r = genes_.rank[static_cast<size_t>(cols[k])];
    if (r < 0 || !(vals[k] > 0)) continue;
    if (weightByRank_[r] == 0.f) touched_.push_back(r);
    weightByRank_[r] += std::log1p(vals[k]);
  }
  if (touched_.empty()) return 0;
  // Genomic order of the expressed genes = sorted ranks.
  std::sort(touched_.begin(), touched_.end());
  cellRanks_.assign(touched_.begin(), touched_.end());
  cumulative_.resize(cellRanks_.size());
  double total = 0;
  for (size_t i = 0; i < cellRanks_.size(); ++i) {
    total += weightByRank_[cellRanks_[i]];
    cumulative_[i] = total;
    weightByRank_[cellRanks_[i]] = 0.f;  // reset for the next cell
  }
  // 2. sampleSize draws with replacement, proportional to the weights.
  CellRng rng(opt_.seed, cellIndex);
  draws_.assign(cellRanks_.size(), 0);
  for (int d = 0; d < opt_.sampleSize; ++d) {
    const double u = rng.uniform() * total;
    size_t i = static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin());
    if (i >= cumulative_.size()) i = cumulative_.size() - 1;
    ++draws_[i];
  }
  // 3. chromosome groups (contiguous in rank order) present in the draws, in random order.
  groupStart_.clear();
  int32_t lastChrom = -1;
  for (size_t i = 0; i < cellRanks_.size(); ++i) {
    if (draws_[i] == 0) continue;
    const int32_t chrom = genes_.chrom[genes_.byRank[cellRanks_[i]]];
    if (groupStart_.empty() || chrom != lastChrom) {
      groupStart_.push_back(static_cast<int32_t>(i));
      lastChrom = chrom;
    }
  }
  const int32_t nGroups = static_cast<int32_t>(groupStart_.size());
  groupOrder_.resize(static_cast<size_t>(nGroups));
  std::iota(groupOrder_.begin(), groupOrder_.end(), 0);
  for (int32_t g = nGroups - 1; g > 0; --g)  // Fisher-Yates
    std::swap(groupOrder_[static_cast<size_t>(g)], groupOrder_[rng.below(static_cast<uint64_t>(g) + 1)]);
  // 4. CLS, then per group: chromosome token, genes by start (each repeated per draw), close.
  int pos = 0;
  out[pos++] = kClsToken;
  for (int32_t g : groupOrder_) {
    const size_t begin = static_cast<size_t>(groupStart_[static_cast<size_t>(g)]);
    const size_t end = static_cast<size_t>(g + 1 < nGroups ? groupStart_[static_cast<size_t>(g + 1)]
                                                           : static_cast<int32_t>(cellRanks_.size()));
    const int32_t firstCol = genes_.byRank[cellRanks_[begin]];
    if (pos + 2 > opt_.padLength) break;
    out[pos++] = static_cast<int32_t>(opt_.chromTokenOffset + genes_.chrom[firstCol]);
    for (size_t i = begin; i < end; ++i) {
      const int32_t token = genes_.token[genes_.byRank[cellRanks_[i]]];
      for (uint16_t k = 0; k < draws_[i] && pos < opt_.padLength - 1; ++k) out[pos++] = token;
    }
    out[pos++] = kChromCloseToken;
  }
  return pos;
}

}  // namespace uce::model
