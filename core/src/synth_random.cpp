#include "synth_random.h"

#include <array>

namespace uce::synth {

namespace {
__extension__ typedef unsigned __int128 U128;
constexpr double kPi = 3.14159265358979323846;
}  // namespace

double logFactorial(int64_t k) {
  static const std::array<double, 64> table = [] {
    std::array<double, 64> t{};
    t[0] = 0;
    for (size_t i = 1; i < t.size(); ++i) t[i] = t[i - 1] + std::log(static_cast<double>(i));
    return t;
  }();
  if (k < 64) return table[static_cast<size_t>(k < 0 ? 0 : k)];
  const double n = static_cast<double>(k);
  const double inv = 1.0 / n, inv2 = inv * inv;
  // ln n! = n ln n - n + ln(2 pi n)/2 + 1/(12n) - 1/(360n^3) + 1/(1260n^5)
  return n * std::log(n) - n + 0.5 * std::log(2.0 * kPi * n) +
         inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0));
}

uint64_t Rng::below(uint64_t n) {
  // Lemire (2019): multiply into 128 bits, reject the few values that would bias the result.
  U128 m = static_cast<U128>(eng_()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<U128>(eng_()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

double Rng::normal() {
  if (hasSpare_) {
    hasSpare_ = false;
    return spare_;
  }
  const double r = std::sqrt(-2.0 * std::log(uniformOpen()));
  const double theta = 2.0 * kPi * uniform();
  spare_ = r * std::sin(theta);
  hasSpare_ = true;
  return r * std::cos(theta);
}

double Rng::gammaMT(double d, double c) {
  for (;;) {
    double x, v;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = uniformOpen();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

double Rng::gamma(double shape) {
  if (shape >= 1.0) {
    const double d = shape - 1.0 / 3.0;
    return gammaMT(d, 1.0 / std::sqrt(9.0 * d));
  }
  const double d = shape + 1.0 - 1.0 / 3.0;
  const double g = gammaMT(d, 1.0 / std::sqrt(9.0 * d));
  return g * std::pow(uniformOpen(), 1.0 / shape);
}

int64_t Rng::poisson(double lambda) {
  if (!(lambda > 0)) return 0;
  if (lambda < 12.0) {
    // Inversion by sequential search from 0.
    double p = std::exp(-lambda), s = p;
    const double u = uniform();
    int64_t k = 0;
    while (u > s && k < 200) {
      ++k;
      p *= lambda / static_cast<double>(k);
      s += p;
    }
    return k;
  }
  // PTRS: transformed rejection with squeeze (Hoermann 1993), as in numpy.
  const double slam = std::sqrt(lambda), loglam = std::log(lambda);
  const double b = 0.931 + 2.53 * slam;
  const double a = -0.059 + 0.02483 * b;
  const double invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const double vr = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double U = uniform() - 0.5;
    const double V = uniformOpen();
    const double us = 0.5 - std::fabs(U);
    const double kd = std::floor((2.0 * a / us + b) * U + lambda + 0.43);
    if (us >= 0.07 && V <= vr) return static_cast<int64_t>(kd);
    if (kd < 0 || (us < 0.013 && V > us)) continue;
    const int64_t k = static_cast<int64_t>(kd);
    if (std::log(V) + std::log(invalpha) - std::log(a / (us * us) + b) <=
        -lambda + kd * loglam - logFactorial(k))
      return k;
  }
}

int64_t Rng::negBinomial(double mu, double theta, double d, double c) {
  if (!(mu > 0)) return 0;
  if (mu < 8.0) {
    // P(0) = (theta / (theta + mu))^theta; P(k+1) = P(k) (k + theta) / (k + 1) q.
    const double q = mu / (theta + mu);
    double p = std::exp(-theta * std::log1p(mu / theta)), s = p;
    const double u = uniform();
    int64_t k = 0;
    while (u > s && k < 100000) {
      p *= (static_cast<double>(k) + theta) / static_cast<double>(k + 1) * q;
      ++k;
      s += p;
      if (p < 1e-300 && static_cast<double>(k) > mu) break;  // rounding left u above the total
    }
    return k;
  }
  return poisson(mu * gammaMT(d, c) / theta);
}

size_t Rng::categorical(const std::vector<double>& cumulative) {
  const double u = uniform() * cumulative.back();
  size_t i = 0;
  while (i + 1 < cumulative.size() && !(u < cumulative[i])) ++i;
  return i;
}

AliasTable::AliasTable(const std::vector<double>& weights) {
  const size_t n = weights.size();
  if (n == 0) return;
  double total = 0;
  for (double w : weights) total += w;
  prob_.assign(n, 1.0);
  alias_.resize(n);
  for (size_t i = 0; i < n; ++i) alias_[i] = static_cast<uint32_t>(i);
  if (!(total > 0)) return;
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  small.reserve(n);
  large.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * static_cast<double>(n) / total;
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back(), l = large.back();
    small.pop_back();
    prob_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers are 1 up to rounding.
  for (uint32_t i : small) prob_[i] = 1.0;
  for (uint32_t i : large) prob_[i] = 1.0;
}

}  // namespace uce::synth
