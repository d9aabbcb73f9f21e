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
  tokenByRank.resize(byRank.size());
  chromByRank.resize(byRank.size());
  for (size_t r = 0; r < byRank.size(); ++r) {
    rank[byRank[r]] = static_cast<int32_t>(r);
    tokenByRank[r] = token[byRank[r]];
    chromByRank[r] = chrom[byRank[r]];
  }
}

SentenceBuilder::SentenceBuilder(const GeneTable& genes, const SentenceOptions& options)
    : genes_(genes), opt_(options), weightByRank_(genes.byRank.size(), 0.f),
      rankBits_(genes.byRank.size() / 64 + 1, 0) {}

namespace {
// log1p of small integer counts, the common case, without calling log1p.
const std::vector<float>& log1pTable() {
  static const std::vector<float> table = [] {
    std::vector<float> t(4096);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(std::log1p(static_cast<double>(i)));
    return t;
  }();
  return table;
}
}  // namespace

int SentenceBuilder::build(const int32_t* cols, const float* vals, int64_t n, uint64_t cellIndex,
                           int32_t* out) {
  std::fill(out, out + opt_.padLength, kPadToken);
  // 1. log1p weights of the cell's matched expressed genes, scattered by genomic rank; a bitmap
  //    of the ranks gives them back in genomic order without sorting.
  const std::vector<float>& lut = log1pTable();
  bool any = false;
  for (int64_t k = 0; k < n; ++k) {
    const int32_t r = genes_.rank[static_cast<size_t>(cols[k])];
    const float v = vals[k];
    if (r < 0 || !(v > 0)) continue;
    const auto iv = static_cast<uint32_t>(v);
    weightByRank_[static_cast<size_t>(r)] += (static_cast<float>(iv) == v && iv < lut.size()) ? lut[iv] : std::log1p(v);
    rankBits_[static_cast<size_t>(r) >> 6] |= uint64_t(1) << (r & 63);
    any = true;
  }
  if (!any) return 0;
  cellRanks_.clear();
  weights_.clear();
  double total = 0;
  for (size_t w = 0; w < rankBits_.size(); ++w) {
    uint64_t bits = rankBits_[w];
    if (!bits) continue;
    rankBits_[w] = 0;  // reset for the next cell
    while (bits) {
      const int32_t r = static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
      bits &= bits - 1;
      cellRanks_.push_back(r);
      const float wt = weightByRank_[static_cast<size_t>(r)];
      weightByRank_[static_cast<size_t>(r)] = 0.f;
      weights_.push_back(wt);
      total += wt;
    }
  }
  // 2. sampleSize draws with replacement, proportional to the weights: Vose's alias method,
  //    O(genes) to build and O(1) per draw.
  const size_t m = cellRanks_.size();
  aliasProb_.resize(m);
  alias_.resize(m);
  small_.clear();
  large_.clear();
  const double scale = static_cast<double>(m) / total;
  for (size_t i = 0; i < m; ++i) {
    aliasProb_[i] = static_cast<double>(weights_[i]) * scale;
    (aliasProb_[i] < 1.0 ? small_ : large_).push_back(static_cast<int32_t>(i));
  }
  while (!small_.empty() && !large_.empty()) {
    const int32_t sm = small_.back(), lg = large_.back();
    small_.pop_back();
    alias_[static_cast<size_t>(sm)] = lg;
    aliasProb_[static_cast<size_t>(lg)] -= 1.0 - aliasProb_[static_cast<size_t>(sm)];
    if (aliasProb_[static_cast<size_t>(lg)] < 1.0) {
      large_.pop_back();
      small_.push_back(lg);
    }
  }
  for (int32_t i : large_) aliasProb_[static_cast<size_t>(i)] = 1.0;
  for (int32_t i : small_) aliasProb_[static_cast<size_t>(i)] = 1.0;  // rounding leftovers
  CellRng rng(opt_.seed, cellIndex);
  auto draw = [&] {
    const uint64_t x = rng.next();
    // High 32 bits pick the column (multiply-shift), low 32 bits the coin.
    const size_t i = static_cast<size_t>(((x >> 32) * static_cast<uint64_t>(m)) >> 32);
    const double coin = static_cast<double>(x & 0xFFFFFFFFull) * 0x1.0p-32;
    return coin < aliasProb_[i] ? i : static_cast<size_t>(alias_[i]);
  };
  draws_.assign(m, 0);
  for (int d = 0; d < opt_.sampleSize; ++d) ++draws_[draw()];
  if (opt_.fixedLength > 0) {
    // 2b. Fill to fixedLength tokens (SentenceOptions::fixedLength): CLS + draws + 2 per group.
    groupOf_.resize(m);
    int32_t groups = 0;
    for (size_t i = 0; i < m; ++i) {
      if (i > 0 && genes_.chromByRank[static_cast<size_t>(cellRanks_[i])] !=
                       genes_.chromByRank[static_cast<size_t>(cellRanks_[i - 1])])
        ++groups;
      groupOf_[i] = groups;
    }
    groupHas_.assign(static_cast<size_t>(groups) + 1, 0);
    int64_t present = 0;
    for (size_t i = 0; i < m; ++i)
      if (draws_[i] && !groupHas_[static_cast<size_t>(groupOf_[i])]) {
        groupHas_[static_cast<size_t>(groupOf_[i])] = 1;
        ++present;
      }
    int64_t room = std::min(opt_.fixedLength, opt_.padLength) - (1 + opt_.sampleSize + 2 * present);
    while (room > 0) {  // ends: a present group always has weight, and a draw there takes 1
      const size_t i = draw();
      uint8_t& has = groupHas_[static_cast<size_t>(groupOf_[i])];
      if (!has && room < 3) continue;
      room -= has ? 1 : 3;
      has = 1;
      ++draws_[i];
    }
  }
  // 3. chromosome groups (contiguous in rank order) present in the draws, in random order.
  groupStart_.clear();
  int32_t lastChrom = -1;
  for (size_t i = 0; i < cellRanks_.size(); ++i) {
    if (draws_[i] == 0) continue;
    const int32_t chrom = genes_.chromByRank[static_cast<size_t>(cellRanks_[i])];
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
    if (pos + 2 > opt_.padLength) break;
    out[pos++] = static_cast<int32_t>(opt_.chromTokenOffset + genes_.chromByRank[static_cast<size_t>(cellRanks_[begin])]);
    for (size_t i = begin; i < end; ++i) {
      const int32_t token = genes_.tokenByRank[static_cast<size_t>(cellRanks_[i])];
      for (uint16_t k = 0; k < draws_[i] && pos < opt_.padLength - 1; ++k) out[pos++] = token;
    }
    out[pos++] = kChromCloseToken;
  }
  return pos;
}

}  // namespace uce::model
