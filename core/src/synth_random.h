#pragma once
// Random numbers for the synthetic atlas, private to core. std::mt19937_64 is specified bit for
// bit by the standard, but std::*_distribution are not (libstdc++ and libc++ give different
// draws), so the samplers are ours: the same seed gives the same atlas with any standard
// library. Only libm's exp/log/sqrt/cos are relied on.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace uce::synth {

// SplitMix64 finaliser: a bijection on 64 bits with good avalanche; used to derive seeds.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline uint64_t hashString(const std::string& s) {  // FNV-1a, 64 bit
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Seed for stream (a, b, c), e.g. (seed, hash(dataset), chunk).
inline uint64_t deriveSeed(uint64_t a, uint64_t b, uint64_t c = 0) {
  return mix64(mix64(mix64(a) ^ b) ^ (c * 0xd1b54a32d192ed03ULL));
}

// log(k!) for k >= 0: table below 64, Stirling series above (error < 1e-13).
double logFactorial(int64_t k);

class Rng {
 public:
  explicit Rng(uint64_t seed) : eng_(seed) {}

  uint64_t bits() { return eng_(); }
  // [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(eng_() >> 11) * 0x1.0p-53; }
  // (0, 1): never 0, so log() is safe.
  double uniformOpen() { return (static_cast<double>(eng_() >> 11) + 0.5) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift with rejection: unbiased).
  uint64_t below(uint64_t n);
  // Standard normal (Box-Muller; both values of a pair are used).
  double normal();
  // Gamma(shape, scale 1), shape > 0 (Marsaglia-Tsang; shape < 1 by the U^(1/a) boost).
  double gamma(double shape);
  // Gamma(shape >= 1) with d = shape - 1/3 and c = 1/sqrt(9 d) precomputed by the caller.
  double gammaMT(double d, double c);
  // Poisson(lambda): inversion below 12, PTRS (Hoermann 1993) above.
  int64_t poisson(double lambda);
  // Negative binomial with mean mu and size theta (variance mu + mu^2/theta): CDF inversion
  // below mean 8, else Poisson(mu * Gamma(theta)/theta) with d, c as for gammaMT.
  int64_t negBinomial(double mu, double theta, double d, double c);
  // Index drawn from non-negative weights via their running sums (cum.back() = total).
  size_t categorical(const std::vector<double>& cumulative);

 private:
  std::mt19937_64 eng_;
  bool hasSpare_ = false;
  double spare_ = 0;
};

// Walker/Vose alias table: O(1) draws from a fixed discrete distribution.
class AliasTable {
 public:
  AliasTable() = default;
  explicit AliasTable(const std::vector<double>& weights);
  bool empty() const { return prob_.empty(); }
  uint32_t sample(Rng& rng) const {
    uint32_t i = static_cast<uint32_t>(rng.below(prob_.size()));
    return rng.uniform() < prob_[i] ? i : alias_[i];
  }

 private:
  std::vector<double> prob_;
  std::vector<uint32_t> alias_;
};

}  // namespace uce::synth
