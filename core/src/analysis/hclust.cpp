#include "uce/core/analysis/hclust.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "uce/core/error.h"

namespace uce::analysis {
namespace {

// Condensed upper-triangle index of the pair (i, j), i != j, as scipy.spatial.distance does.
inline size_t condensed(int64_t n, int64_t i, int64_t j) {
  if (i > j) std::swap(i, j);
  return static_cast<size_t>(n * i - (i * (i + 1)) / 2 + (j - i - 1));
}

// Lance-Williams updates, written as SciPy's _hierarchy.pyx writes them so that rounding agrees.
double updated(Linkage m, double dxi, double dyi, double dxy, int64_t nx, int64_t ny, int64_t ni) {
  switch (m) {
    case Linkage::Average:
      return (static_cast<double>(nx) * dxi + static_cast<double>(ny) * dyi) / static_cast<double>(nx + ny);
    case Linkage::Complete:
      return std::max(dxi, dyi);
    case Linkage::Single:
      return std::min(dxi, dyi);
    case Linkage::Ward: {
      const double t = 1.0 / static_cast<double>(nx + ny + ni);
      return std::sqrt(static_cast<double>(ni + nx) * t * dxi * dxi + static_cast<double>(ni + ny) * t * dyi * dyi -
                       static_cast<double>(ni) * t * dxy * dxy);
    }
  }
  return 0;
}

std::string fmt(double v, const char* f) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string newickName(const std::string& s) {
  if (s.empty()) return "''";
  bool plain = true;
  for (char c : s)
    if (std::string("()[]':;,").find(c) != std::string::npos || std::isspace(static_cast<unsigned char>(c)))
      plain = false;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace

Linkage parseLinkage(const std::string& name) {
  if (name == "average") return Linkage::Average;
  if (name == "ward") return Linkage::Ward;
  if (name == "complete") return Linkage::Complete;
  if (name == "single") return Linkage::Single;
  fail(ErrorKind::InvalidArgument, "", "unknown linkage '" + name + "': choose average, ward, complete or single");
}

const char* linkageName(Linkage m) {
  switch (m) {
    case Linkage::Average: return "average";
    case Linkage::Ward: return "ward";
    case Linkage::Complete: return "complete";
    case Linkage::Single: return "single";
  }
  return "?";
}

std::vector<Merge> hierarchicalClustering(const std::vector<double>& points, int64_t n, int64_t dim, Linkage method) {
  if (n < 2) fail(ErrorKind::InvalidArgument, "", "a tree needs at least 2 centroids (labels); got " + std::to_string(n));
  if (dim < 1 || static_cast<int64_t>(points.size()) != n * dim)
    fail(ErrorKind::InvalidArgument, "", "hierarchical clustering: points do not have shape [n, dim]");
  for (double v : points)
    if (!std::isfinite(v)) fail(ErrorKind::NotFinite, "", "hierarchical clustering: a centroid holds NaN or Inf");

  // Pairwise Euclidean distances, condensed [n (n - 1) / 2] (scipy.spatial.distance.pdist).
  std::vector<double> d(static_cast<size_t>(n * (n - 1) / 2));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      const double* a = points.data() + i * dim;
      const double* b = points.data() + j * dim;
      double s = 0;
      for (int64_t c = 0; c < dim; ++c) {
        const double t = a[c] - b[c];
        s += t * t;
      }
      d[condensed(n, i, j)] = std::sqrt(s);
    }

  // Nearest-neighbour chain: follow nearest neighbours until two clusters are mutual nearest
  // neighbours, merge them (the survivor keeps the larger index, as SciPy/fastcluster do).
  std::vector<Merge> z(static_cast<size_t>(n - 1));
  std::vector<int64_t> size(static_cast<size_t>(n), 1), chain;
  chain.reserve(static_cast<size_t>(n));
  for (int64_t k = 0; k < n - 1; ++k) {
    if (chain.empty())
      for (int64_t i = 0; i < n; ++i)
        if (size[static_cast<size_t>(i)] > 0) {
          chain.push_back(i);
          break;
        }
    int64_t x = 0, y = 0;
    double best = 0;
    for (;;) {
      x = chain.back();
      if (chain.size() > 1) {
        y = chain[chain.size() - 2];
        best = d[condensed(n, x, y)];
      } else {
        best = std::numeric_limits<double>::infinity();
      }
      for (int64_t i = 0; i < n; ++i) {
        if (size[static_cast<size_t>(i)] == 0 || i == x) continue;
        const double v = d[condensed(n, x, i)];
        if (v < best) {
          best = v;
          y = i;
        }
      }
      if (chain.size() > 1 && y == chain[chain.size() - 2]) break;
      chain.push_back(y);
    }
    chain.resize(chain.size() - 2);
    if (x > y) std::swap(x, y);
    const int64_t nx = size[static_cast<size_t>(x)], ny = size[static_cast<size_t>(y)];
    z[static_cast<size_t>(k)] = {x, y, best, nx + ny};
    size[static_cast<size_t>(x)] = 0;
    size[static_cast<size_t>(y)] = nx + ny;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t ni = size[static_cast<size_t>(i)];
      if (ni == 0 || i == y) continue;
      d[condensed(n, i, y)] = updated(method, d[condensed(n, i, x)], d[condensed(n, i, y)], best, nx, ny, ni);
    }
  }

  // Merges in order of distance (stable), then renumbered through a union-find: the cluster
  // made by row i is n + i (scipy.cluster.hierarchy._hierarchy.label).
  std::stable_sort(z.begin(), z.end(), [](const Merge& a, const Merge& b) { return a.distance < b.distance; });
  std::vector<int64_t> parent(static_cast<size_t>(2 * n - 1)), csize(static_cast<size_t>(2 * n - 1), 1);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int64_t x) {
    int64_t r = x;
    while (parent[static_cast<size_t>(r)] != r) r = parent[static_cast<size_t>(r)];
    while (parent[static_cast<size_t>(x)] != r) {
      const int64_t next = parent[static_cast<size_t>(x)];
      parent[static_cast<size_t>(x)] = r;
      x = next;
    }
    return r;
  };
  int64_t next = n;
  for (auto& m : z) {
    const int64_t rx = find(m.a), ry = find(m.b);
    m.a = std::min(rx, ry);
    m.b = std::max(rx, ry);
    parent[static_cast<size_t>(rx)] = next;
    parent[static_cast<size_t>(ry)] = next;
    csize[static_cast<size_t>(next)] = csize[static_cast<size_t>(rx)] + csize[static_cast<size_t>(ry)];
    m.size = csize[static_cast<size_t>(next)];
    ++next;
  }
  return z;
}

std::string linkageCsv(const std::vector<Merge>& merges) {
  std::string s = "a,b,distance,size\n";
  for (const auto& m : merges)
    s += std::to_string(m.a) + "," + std::to_string(m.b) + "," + fmt(m.distance, "%.17g") + "," +
         std::to_string(m.size) + "\n";
  return s;
}

std::string newick(const std::vector<Merge>& merges, const std::vector<std::string>& names) {
  const int64_t n = static_cast<int64_t>(merges.size()) + 1;
  if (static_cast<int64_t>(names.size()) != n)
    fail(ErrorKind::InvalidArgument, "", "newick: " + std::to_string(names.size()) + " names for " +
                                             std::to_string(n) + " leaves");
  // Built bottom-up: node i < n is a leaf, node n + r is the cluster of merge r.
  std::vector<std::string> text(static_cast<size_t>(2 * n - 1));
  std::vector<double> height(static_cast<size_t>(2 * n - 1), 0.0);
  for (int64_t i = 0; i < n; ++i) text[static_cast<size_t>(i)] = newickName(names[static_cast<size_t>(i)]);
  for (int64_t r = 0; r < n - 1; ++r) {
    const Merge& m = merges[static_cast<size_t>(r)];
    const size_t self = static_cast<size_t>(n + r);
    height[self] = m.distance;
    auto branch = [&](int64_t child) {
      const double len = std::max(0.0, m.distance - height[static_cast<size_t>(child)]);
      return std::move(text[static_cast<size_t>(child)]) + ":" + fmt(len, "%.10g");
    };
    text[self] = "(" + branch(m.a) + "," + branch(m.b) + ")";
  }
  return text.back() + ";\n";
}

}  // namespace uce::analysis
