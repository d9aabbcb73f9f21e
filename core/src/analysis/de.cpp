#include "uce/core/analysis/de.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include "uce/core/error.h"
#include "uce/core/text.h"

namespace uce::analysis {

const char* deMethodName(DeMethod m) { return m == DeMethod::Wilcoxon ? "wilcoxon" : "t-test"; }

DeMethod parseDeMethod(const std::string& s) {
  if (s == "wilcoxon") return DeMethod::Wilcoxon;
  if (s == "t-test" || s == "ttest" || s == "welch") return DeMethod::TTest;
  fail(ErrorKind::InvalidArgument, "", "unknown test '" + s + "': choose wilcoxon or t-test");
}

// ---------------------------------------------------------------------------------------------
// Special functions.

double normalTwoSided(double z) {
  if (std::isnan(z)) return 1.0;
  return std::min(1.0, std::erfc(std::fabs(z) / std::sqrt(2.0)));
}

namespace {

// Continued fraction for I_x(a, b) (modified Lentz), converging for x < (a + 1) / (a + b + 2).
double betaContinuedFraction(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-16;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 200000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < eps) break;
  }
  return h;
}

// I_x(a, b) with y = 1 - x given separately, so that x near 1 loses no digits.
double incompleteBetaXY(double a, double b, double x, double y) {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const double logFront = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log(y);
  if (x < (a + 1) / (a + b + 2)) return std::exp(logFront) * betaContinuedFraction(a, b, x) / a;
  return 1 - std::exp(logFront) * betaContinuedFraction(b, a, y) / b;
}

}  // namespace

double incompleteBeta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1))
    fail(ErrorKind::InvalidArgument, "", "incompleteBeta: needs a, b > 0 and 0 <= x <= 1");
  return incompleteBetaXY(a, b, x, 1 - x);
}

double studentTwoSided(double t, double df) {
  if (std::isnan(t) || !(df > 0)) return 1.0;
  if (std::isinf(t)) return 0.0;
  // P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).
  const double t2 = t * t;
  const double x = df / (df + t2), y = t2 / (df + t2);
  return std::min(1.0, incompleteBetaXY(df / 2, 0.5, x, y));
}

// ---------------------------------------------------------------------------------------------
// Tests.

namespace {

// Rank sum of sample a among a and b, both sorted ascending, each preceded by zerosA / zerosB
// values smaller than all of them; tieTerm = sum over tie groups of t^3 - t.
void rankSumSorted(int64_t zerosA, const double* a, int64_t na, int64_t zerosB, const double* b, int64_t nb,
                   double& rankSumA, double& tieTerm, int64_t& distinct) {
  rankSumA = 0;
  tieTerm = 0;
  distinct = 0;
  double pos = 0;  // ranks used so far
  auto group = [&](int64_t ta, int64_t tb) {
    const double t = static_cast<double>(ta + tb);
    rankSumA += static_cast<double>(ta) * (pos + (t + 1) / 2);
    tieTerm += (t - 1) * t * (t + 1);
    pos += t;
    ++distinct;
  };
  if (zerosA + zerosB > 0) group(zerosA, zerosB);
  int64_t i = 0, j = 0;
  while (i < na || j < nb) {
    const double v = (j >= nb || (i < na && a[i] <= b[j])) ? a[i] : b[j];
    int64_t ta = 0, tb = 0;
    while (i < na && a[i] == v) ++i, ++ta;
    while (j < nb && b[j] == v) ++j, ++tb;
    group(ta, tb);
  }
}

TestResult wilcoxonFromRanks(int64_t na, int64_t nb, double rankSumA, double tieTerm, int64_t distinct) {
  TestResult r;
  if (na < 1 || nb < 1 || distinct < 2) return r;  // nothing to rank: untestable
  const double n1 = static_cast<double>(na), n2 = static_cast<double>(nb), n = n1 + n2;
  const double var = n1 * n2 / 12 * ((n + 1) - tieTerm / (n * (n - 1)));
  if (!(var > 0)) return r;
  r.statistic = (rankSumA - n1 * (n + 1) / 2) / std::sqrt(var);
  r.pval = normalTwoSided(r.statistic);
  return r;
}

}  // namespace

TestResult wilcoxonSparseSorted(int64_t na, const double* aNonzero, int64_t aNnz, int64_t nb,
                                const double* bNonzero, int64_t bNnz) {
  double rs = 0, tie = 0;
  int64_t distinct = 0;
  rankSumSorted(na - aNnz, aNonzero, aNnz, nb - bNnz, bNonzero, bNnz, rs, tie, distinct);
  return wilcoxonFromRanks(na, nb, rs, tie, distinct);
}

TestResult wilcoxonRankSum(const double* a, int64_t na, const double* b, int64_t nb) {
  std::vector<double> sa(a, a + na), sb(b, b + nb);
  std::sort(sa.begin(), sa.end());
  std::sort(sb.begin(), sb.end());
  double rs = 0, tie = 0;
  int64_t distinct = 0;
  rankSumSorted(0, sa.data(), na, 0, sb.data(), nb, rs, tie, distinct);
  return wilcoxonFromRanks(na, nb, rs, tie, distinct);
}

TestResult welchTTest(double meanA, double varA, int64_t na, double meanB, double varB, int64_t nb) {
  TestResult r;
  if (na < 2 || nb < 2) return r;
  const double sa = std::max(0.0, varA) / static_cast<double>(na);
  const double sb = std::max(0.0, varB) / static_cast<double>(nb);
  const double se2 = sa + sb;
  if (!(se2 > 0)) return r;  // no spread on either side: undefined (scipy: NaN)
  r.statistic = (meanA - meanB) / std::sqrt(se2);
  const double df = se2 * se2 / (sa * sa / static_cast<double>(na - 1) + sb * sb / static_cast<double>(nb - 1));
  r.pval = studentTwoSided(r.statistic, df);
  return r;
}

TestResult welchTTest(const double* a, int64_t na, const double* b, int64_t nb) {
  auto moments = [](const double* v, int64_t n, double& mean, double& var) {
    mean = 0;
    for (int64_t i = 0; i < n; ++i) mean += v[i];
    mean /= static_cast<double>(std::max<int64_t>(n, 1));
    var = 0;
    for (int64_t i = 0; i < n; ++i) var += (v[i] - mean) * (v[i] - mean);
    var /= static_cast<double>(std::max<int64_t>(n - 1, 1));
  };
  double ma, va, mb, vb;
  moments(a, na, ma, va);
  moments(b, nb, mb, vb);
  return welchTTest(ma, va, na, mb, vb, nb);
}

std::vector<double> benjaminiHochberg(const std::vector<double>& p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), size_t{0});
  auto val = [&](size_t i) { return std::isnan(p[i]) ? 1.0 : p[i]; };
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return val(x) < val(y); });
  std::vector<double> adj(m);
  double running = 1.0;
  for (size_t r = m; r-- > 0;) {
    const size_t i = order[r];
    running = std::min(running, val(i) * static_cast<double>(m) / static_cast<double>(r + 1));
    adj[i] = std::min(1.0, running);
  }
  return adj;
}

// ---------------------------------------------------------------------------------------------
// Cell selection.

int32_t Grouping::find(const std::string& g) const {
  for (size_t i = 0; i < groups.size(); ++i)
    if (groups[i] == g) return static_cast<int32_t>(i);
  return -1;
}

std::string Grouping::describe(size_t maxGroups) const {
  std::string s;
  for (size_t i = 0; i < groups.size() && i < maxGroups; ++i)
    s += (i ? ", " : "") + ("'" + groups[i] + "' (" + std::to_string(sizes[i]) + (sizes[i] == 1 ? " cell)" : " cells)"));
  if (groups.size() > maxGroups) s += ", ... (" + std::to_string(groups.size()) + " groups)";
  return s.empty() ? "none" : s;
}

Grouping groupingOf(const Dataset& ds, const std::string& column) {
  const DataFrame& obs = ds.obs();
  const Column* col = obs.find(column);
  if (!col) {
    std::string names;
    for (const auto& c : obs.columns) names += (names.empty() ? "" : ", ") + c.name;
    fail(ErrorKind::InvalidArgument, ds.path(),
         "obs has no column '" + column + "'; the columns are: " + (names.empty() ? "(none)" : names));
  }
  if (col->kind == ColumnKind::Float)
    fail(ErrorKind::InvalidArgument, ds.path(),
         "obs column '" + column + "' holds real numbers, not groups; choose a categorical column "
         "(e.g. cell_type, disease, leiden)");
  Grouping g;
  g.column = column;
  const size_t n = static_cast<size_t>(ds.cells());
  if (col->size() != n)
    fail(ErrorKind::Shape, ds.path(), "obs column '" + column + "' has " + std::to_string(col->size()) +
                                          " rows but the matrix has " + std::to_string(n) + " cells");
  g.codes.assign(n, -1);
  if (col->kind == ColumnKind::Categorical) {
    g.groups = col->categories;
    for (size_t i = 0; i < n; ++i) {
      const int32_t c = col->codes[i];
      if (c >= 0 && static_cast<size_t>(c) < g.groups.size() && (col->missing.empty() || !col->missing[i]))
        g.codes[i] = c;
    }
  } else {
    std::vector<std::string> labels(n);
    for (size_t i = 0; i < n; ++i) labels[i] = col->valueAsString(i);
    std::vector<std::string> uniq;
    for (const auto& l : labels)
      if (!l.empty()) uniq.push_back(l);
    std::sort(uniq.begin(), uniq.end());
    uniq.erase(std::unique(uniq.begin(), uniq.end()), uniq.end());
    if (col->kind == ColumnKind::Int)  // numeric order: 2 before 10
      std::sort(uniq.begin(), uniq.end(),
                [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
    g.groups = uniq;
    std::map<std::string, int32_t> code;
    for (size_t k = 0; k < uniq.size(); ++k) code[uniq[k]] = static_cast<int32_t>(k);
    for (size_t i = 0; i < n; ++i)
      if (!labels[i].empty()) g.codes[i] = code[labels[i]];
  }
  g.sizes.assign(g.groups.size(), 0);
  for (int32_t c : g.codes)
    if (c >= 0) ++g.sizes[static_cast<size_t>(c)];
  return g;
}

Grouping groupingWithin(const Dataset& ds, const std::string& column, const std::string& withinColumn,
                        const std::string& withinValue) {
  Grouping g = groupingOf(ds, column);
  if (withinColumn.empty()) return g;
  const Grouping w = groupingOf(ds, withinColumn);
  const int32_t k = w.find(withinValue);
  if (k < 0)
    fail(ErrorKind::InvalidArgument, ds.path(),
         "obs column '" + withinColumn + "' has no value '" + withinValue + "' to restrict the cells to; its values are: " +
             w.describe());
  std::fill(g.sizes.begin(), g.sizes.end(), 0);
  for (size_t i = 0; i < g.codes.size(); ++i) {
    if (w.codes[i] != k) g.codes[i] = -1;
    if (g.codes[i] >= 0) ++g.sizes[static_cast<size_t>(g.codes[i])];
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing of rankGenes and compareFeatures.

namespace {

std::vector<std::string> geneNames(const Dataset& ds, const std::string& key, const std::string& geneColumn,
                                   int64_t genes) {
  const DataFrame& var = ds.varFor(key);
  std::vector<std::string> names;
  if (geneColumn.empty()) {
    names = var.index;
  } else {
    const Column* c = var.find(geneColumn);
    if (!c) {
      std::string list;
      for (const auto& col : var.columns) list += (list.empty() ? "" : ", ") + col.name;
      fail(ErrorKind::InvalidArgument, ds.path(),
           "var of '" + key + "' has no column '" + geneColumn + "'; the columns are: " +
               (list.empty() ? "(none)" : list));
    }
    for (size_t i = 0; i < c->size(); ++i) names.push_back(c->valueAsString(i));
  }
  if (static_cast<int64_t>(names.size()) != genes)
    fail(ErrorKind::Shape, ds.path(), "'" + key + "' has " + std::to_string(genes) + " genes but its var has " +
                                          std::to_string(names.size()) + " rows");
  return names;
}

// Library size of row r of a block (sum over all genes), rejecting negative counts.
double librarySize(const Dataset& ds, const std::string& key, const CsrBlock& b, int64_t r) {
  double lib = 0;
  for (int64_t p = b.indptr[static_cast<size_t>(r)]; p < b.indptr[static_cast<size_t>(r) + 1]; ++p) {
    const float v = b.values[static_cast<size_t>(p)];
    if (v < 0)
      fail(ErrorKind::NegativeValue, ds.path(),
           "matrix '" + key + "' has a negative value (" + std::to_string(v) + ") in cell " +
               std::to_string(b.row0 + r) + ": differential expression needs raw counts; give the "
               "raw-count matrix with --counts");
    lib += v;
  }
  return lib;
}

struct ThreadCount {
  explicit ThreadCount(int threads) : n(threads > 0 ? threads : omp_get_max_threads()) {}
  int n;
};

std::string fmt(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// rankGenes.

DeResult rankGenes(const Dataset& ds, const DeOptions& o) {
  if (o.groupby.empty()) fail(ErrorKind::InvalidArgument, ds.path(), "no obs column given to group cells by (--groupby)");
  if (o.group.empty()) fail(ErrorKind::InvalidArgument, ds.path(), "no group given to test (--group)");
  if (!(o.targetSum > 0)) fail(ErrorKind::InvalidArgument, "", "the normalisation target must be positive");
  const Grouping grouping = groupingWithin(ds, o.groupby, o.withinColumn, o.withinValue);
  const std::string where =
      o.withinColumn.empty() ? std::string() : " among cells with " + o.withinColumn + " = '" + o.withinValue + "'";
  const int32_t gi = grouping.find(o.group);
  if (gi < 0)
    fail(ErrorKind::InvalidArgument, ds.path(),
         "obs column '" + o.groupby + "' has no group '" + o.group + "'; its groups are: " + grouping.describe());
  const bool vsRest = o.reference.empty() || o.reference == "rest";
  int32_t ri = -1;
  if (!vsRest) {
    ri = grouping.find(o.reference);
    if (ri < 0)
      fail(ErrorKind::InvalidArgument, ds.path(),
           "obs column '" + o.groupby + "' has no reference group '" + o.reference +
               "' (give 'rest' to compare with all other cells); its groups are: " + grouping.describe());
    if (ri == gi)
      fail(ErrorKind::InvalidArgument, ds.path(), "the group and the reference are both '" + o.group +
                                                      "': choose another reference or 'rest'");
  }
  // side: 0 = not compared, 1 = group, 2 = reference.
  const int64_t n = ds.cells();
  std::vector<uint8_t> side(static_cast<size_t>(n), 0);
  int64_t nIn = 0, nOut = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = grouping.codes[static_cast<size_t>(i)];
    if (c < 0) continue;
    if (c == gi) side[static_cast<size_t>(i)] = 1, ++nIn;
    else if (vsRest || c == ri) side[static_cast<size_t>(i)] = 2, ++nOut;
  }
  const std::string refName = vsRest ? "rest" : o.reference;
  if (nIn < 2)
    fail(ErrorKind::InvalidArgument, ds.path(),
         "group '" + o.group + "' of '" + o.groupby + "' has " + std::to_string(nIn) + " cell(s)" + where +
             "; a test needs at least 2 in each side. Groups: " + grouping.describe());
  if (nOut < 2)
    fail(ErrorKind::InvalidArgument, ds.path(),
         "the reference '" + refName + "' has " + std::to_string(nOut) + " cell(s)" + where +
             "; a test needs at least 2 in each side. Groups: " + grouping.describe());

  DeResult res;
  const CountsChoice counts = chooseCountsMatrix(ds, o.counts);
  res.countsKey = counts.key;
  res.countsReason = counts.reason;
  res.group = o.group;
  res.reference = refName;
  res.method = o.method;
  res.cellsIn = nIn;
  res.cellsOut = nOut;
  const MatrixInfo info = ds.matrix(counts.key);
  const int64_t G = info.cols;
  if (G < 1) fail(ErrorKind::Empty, ds.path(), "matrix '" + counts.key + "' has no genes");
  const std::vector<std::string> names = geneNames(ds, counts.key, o.geneColumn, G);
  const int64_t rowBlock = std::max<int64_t>(1, o.rowBlock);

  // Pass 1: library sizes, and per gene and side the sums behind means, variances and pct.
  std::vector<double> scale(static_cast<size_t>(n), 0.0);  // targetSum / library size (0: empty cell)
  struct Sums {
    std::vector<double> norm, log, logSq;
    std::vector<int64_t> nnz;
    explicit Sums(int64_t g) : norm(size_t(g)), log(size_t(g)), logSq(size_t(g)), nnz(size_t(g)) {}
  };
  Sums in(G), out(G);
  {
    RowStream rows(ds, counts.key, rowBlock);
    CsrBlock b;
    while (rows.next(b)) {
      for (int64_t r = 0; r < b.rows(); ++r) {
        const int64_t cell = b.row0 + r;
        const double lib = librarySize(ds, counts.key, b, r);
        const double s = lib > 0 ? o.targetSum / lib : 0.0;
        scale[static_cast<size_t>(cell)] = s;
        const uint8_t sd = side[static_cast<size_t>(cell)];
        if (sd == 0) continue;
        Sums& S = sd == 1 ? in : out;
        for (int64_t p = b.indptr[static_cast<size_t>(r)]; p < b.indptr[static_cast<size_t>(r) + 1]; ++p) {
          const float v = b.values[static_cast<size_t>(p)];
          if (v == 0) continue;
          const size_t g = static_cast<size_t>(b.indices[static_cast<size_t>(p)]);
          const double norm = v * s, x = std::log1p(norm);
          S.norm[g] += norm;
          S.log[g] += x;
          S.logSq[g] += x * x;
          ++S.nnz[g];
        }
      }
    }
  }
  res.passes = 1;

  res.genes.resize(static_cast<size_t>(G));
  const double dIn = static_cast<double>(nIn), dOut = static_cast<double>(nOut);
  for (int64_t g = 0; g < G; ++g) {
    const size_t k = static_cast<size_t>(g);
    DeGene& d = res.genes[k];
    d.gene = names[k];
    d.index = g;
    d.meanIn = in.norm[k] / dIn;
    d.meanOut = out.norm[k] / dOut;
    d.meanLogIn = in.log[k] / dIn;
    d.meanLogOut = out.log[k] / dOut;
    d.log2fc = std::log2((d.meanIn + 1e-9) / (d.meanOut + 1e-9));
    d.pctIn = static_cast<double>(in.nnz[k]) / dIn;
    d.pctOut = static_cast<double>(out.nnz[k]) / dOut;
  }

  const ThreadCount threads(o.threads);
  if (o.method == DeMethod::TTest) {
    for (int64_t g = 0; g < G; ++g) {
      const size_t k = static_cast<size_t>(g);
      const double varIn = (in.logSq[k] - in.log[k] * in.log[k] / dIn) / (dIn - 1);
      const double varOut = (out.logSq[k] - out.log[k] * out.log[k] / dOut) / (dOut - 1);
      const TestResult t = welchTTest(res.genes[k].meanLogIn, varIn, nIn, res.genes[k].meanLogOut, varOut, nOut);
      res.genes[k].statistic = t.statistic;
      res.genes[k].pval = t.pval;
    }
  } else {
    // Gene blocks whose non-zero values fit the budget; each is one more pass over the cells.
    const int64_t budget = std::max<int64_t>(1, o.maxBlockBytes / static_cast<int64_t>(sizeof(double)));
    std::vector<double> values;
    std::vector<int64_t> start;  // per gene of the block: in-values at [start, start + nnzIn), then out-values
    std::vector<int64_t> cursorIn, cursorOut;
    int64_t g0 = 0;
    while (g0 < G) {
      int64_t g1 = g0, total = 0;
      while (g1 < G) {
        const int64_t c = in.nnz[static_cast<size_t>(g1)] + out.nnz[static_cast<size_t>(g1)];
        if (g1 > g0 && total + c > budget) break;
        total += c;
        ++g1;
      }
      const int64_t width = g1 - g0;
      values.assign(static_cast<size_t>(total), 0.0);
      start.assign(static_cast<size_t>(width + 1), 0);
      cursorIn.assign(static_cast<size_t>(width), 0);
      cursorOut.assign(static_cast<size_t>(width), 0);
      for (int64_t j = 0; j < width; ++j) {
        const size_t k = static_cast<size_t>(g0 + j);
        start[static_cast<size_t>(j) + 1] = start[static_cast<size_t>(j)] + in.nnz[k] + out.nnz[k];
        cursorIn[static_cast<size_t>(j)] = start[static_cast<size_t>(j)];
        cursorOut[static_cast<size_t>(j)] = start[static_cast<size_t>(j)] + in.nnz[k];
      }
      if (total > 0) {
        RowStream rows(ds, counts.key, rowBlock);
        CsrBlock b;
        while (rows.next(b)) {
          for (int64_t r = 0; r < b.rows(); ++r) {
            const size_t cell = static_cast<size_t>(b.row0 + r);
            const uint8_t sd = side[cell];
            if (sd == 0) continue;
            const double s = scale[cell];
            for (int64_t p = b.indptr[static_cast<size_t>(r)]; p < b.indptr[static_cast<size_t>(r) + 1]; ++p) {
              const uint64_t j = static_cast<uint64_t>(b.indices[static_cast<size_t>(p)] - g0);
              if (j >= static_cast<uint64_t>(width)) continue;
              const float v = b.values[static_cast<size_t>(p)];
              if (v == 0) continue;
              int64_t& cur = (sd == 1 ? cursorIn : cursorOut)[j];
              values[static_cast<size_t>(cur++)] = v * s;  // ranks of v * s = ranks of log1p(v * s)
            }
          }
        }
        ++res.passes;
      }
      // A file changed under us would overrun a gene's slots; the cursors must land exactly.
      for (int64_t j = 0; j < width; ++j) {
        const size_t k = static_cast<size_t>(g0 + j);
        if (cursorIn[static_cast<size_t>(j)] != start[static_cast<size_t>(j)] + in.nnz[k] ||
            cursorOut[static_cast<size_t>(j)] != start[static_cast<size_t>(j) + 1])
          fail(ErrorKind::Io, ds.path(), "the file changed while it was being read; run again");
      }
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads.n)
      for (int64_t j = 0; j < width; ++j) {
        const size_t k = static_cast<size_t>(g0 + j);
        double* a = values.data() + start[static_cast<size_t>(j)];
        double* bb = a + in.nnz[k];
        double* e = values.data() + start[static_cast<size_t>(j) + 1];
        std::sort(a, bb);
        std::sort(bb, e);
        const TestResult t = wilcoxonSparseSorted(nIn, a, in.nnz[k], nOut, bb, out.nnz[k]);
        res.genes[k].statistic = t.statistic;
        res.genes[k].pval = t.pval;
      }
      g0 = g1;
    }
  }

  std::vector<double> p(static_cast<size_t>(G));
  for (size_t k = 0; k < p.size(); ++k) p[k] = res.genes[k].pval;
  const std::vector<double> adj = benjaminiHochberg(p);
  for (size_t k = 0; k < p.size(); ++k) res.genes[k].pvalAdj = adj[k];
  std::stable_sort(res.genes.begin(), res.genes.end(), [](const DeGene& a, const DeGene& b) {
    if (a.pval != b.pval) return a.pval < b.pval;
    return std::fabs(a.statistic) > std::fabs(b.statistic);
  });
  return res;
}

std::string deCsv(const DeResult& r) {
  std::string s = "gene,pval,pval_adj,log2fc,pct_in,pct_out,mean_in,mean_out\n";
  for (const DeGene& g : r.genes)
    s += csvField(g.gene) + "," + fmt(g.pval) + "," + fmt(g.pvalAdj) + "," + fmt(g.log2fc) + "," + fmt(g.pctIn) +
         "," + fmt(g.pctOut) + "," + fmt(g.meanIn) + "," + fmt(g.meanOut) + "\n";
  return s;
}

// ---------------------------------------------------------------------------------------------
// compareFeatures.

namespace {

int64_t findGene(const Dataset& ds, const std::vector<std::string>& names, const std::string& gene) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == gene) return static_cast<int64_t>(i);
  const std::string up = toUpper(gene);
  std::vector<int64_t> hits;
  for (size_t i = 0; i < names.size(); ++i)
    if (toUpper(names[i]) == up) hits.push_back(static_cast<int64_t>(i));
  if (hits.size() == 1) return hits[0];
  if (hits.size() > 1)
    fail(ErrorKind::InvalidArgument, ds.path(),
         "gene '" + gene + "' matches several genes when case is ignored ('" + names[size_t(hits[0])] + "', '" +
             names[size_t(hits[1])] + "'); write it exactly as in the file");
  std::string similar;
  int shown = 0;
  const std::string prefix = up.substr(0, std::min<size_t>(3, up.size()));
  for (size_t i = 0; i < names.size() && shown < 8; ++i)
    if (toUpper(names[i]).rfind(prefix, 0) == 0) similar += (shown++ ? ", " : "") + names[i];
  fail(ErrorKind::InvalidArgument, ds.path(),
       "no gene '" + gene + "' in var" + (similar.empty() ? std::string(" (genes are matched by var_names, or by "
                                                                        "the column given with --gene-column)")
                                                          : "; genes starting alike: " + similar));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h), v.end());
  const double hi = v[h];
  if (v.size() % 2) return hi;
  const double lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h));
  return (lo + hi) / 2;
}

}  // namespace

FeatureResult compareFeatures(const Dataset& ds, const FeatureOptions& o) {
  if (o.groupby.empty()) fail(ErrorKind::InvalidArgument, ds.path(), "no obs column given to group cells by (--groupby)");
  if (o.genes.empty() && o.ratios.empty())
    fail(ErrorKind::InvalidArgument, "", "no genes or gene ratios given to compare (--genes A,B / --ratio A:B)");
  if (!(o.targetSum > 0)) fail(ErrorKind::InvalidArgument, "", "the normalisation target must be positive");
  const Grouping grouping = groupingWithin(ds, o.groupby, o.withinColumn, o.withinValue);
  auto requireGroup = [&](const std::string& g, const char* what) {
    const int32_t i = grouping.find(g);
    if (i < 0)
      fail(ErrorKind::InvalidArgument, ds.path(),
           "obs column '" + o.groupby + "' has no " + what + " '" + g + "'; its groups are: " + grouping.describe());
    if (grouping.sizes[size_t(i)] < 2)
      fail(ErrorKind::InvalidArgument, ds.path(),
           std::string(what) + " '" + g + "' has " + std::to_string(grouping.sizes[size_t(i)]) +
               " cell(s); a test needs at least 2 in each side");
    return i;
  };
  const int32_t only = o.onlyGroup.empty() ? -1 : requireGroup(o.onlyGroup, "group");
  const int32_t ref = o.comparison == Comparison::VsReference ? requireGroup(o.reference, "reference group") : -1;

  FeatureResult res;
  res.method = o.method;
  const CountsChoice counts = chooseCountsMatrix(ds, o.counts);
  res.countsKey = counts.key;
  const MatrixInfo info = ds.matrix(counts.key);
  const std::vector<std::string> names = geneNames(ds, counts.key, o.geneColumn, info.cols);

  // Genes needed, each read once into a dense [cells, slots] table of counts.
  std::vector<int64_t> slotGene;
  std::vector<int32_t> slotOf(static_cast<size_t>(info.cols), -1);
  auto slot = [&](const std::string& gene) {
    const int64_t g = findGene(ds, names, gene);
    if (slotOf[size_t(g)] < 0) {
      slotOf[size_t(g)] = static_cast<int32_t>(slotGene.size());
      slotGene.push_back(g);
    }
    return slotOf[size_t(g)];
  };
  struct Feature {
    std::string name;
    int32_t a = -1, b = -1;  // b >= 0: ratio a:b
  };
  std::vector<Feature> features;
  for (const auto& g : o.genes) features.push_back({names[size_t(findGene(ds, names, g))], slot(g), -1});
  for (const auto& [a, b] : o.ratios) {
    const int32_t sa = slot(a), sb = slot(b);
    features.push_back({names[size_t(slotGene[size_t(sa)])] + ":" + names[size_t(slotGene[size_t(sb)])], sa, sb});
  }
  const int64_t n = ds.cells();
  const size_t S = slotGene.size();
  std::vector<float> cnt(static_cast<size_t>(n) * S, 0.0f);
  std::vector<double> scale(static_cast<size_t>(n), 0.0);
  {
    RowStream rows(ds, counts.key, std::max<int64_t>(1, o.rowBlock));
    CsrBlock b;
    while (rows.next(b)) {
      for (int64_t r = 0; r < b.rows(); ++r) {
        const int64_t cell = b.row0 + r;
        const double lib = librarySize(ds, counts.key, b, r);
        scale[size_t(cell)] = lib > 0 ? o.targetSum / lib : 0.0;
        for (int64_t p = b.indptr[size_t(r)]; p < b.indptr[size_t(r) + 1]; ++p) {
          const int32_t s = slotOf[size_t(b.indices[size_t(p)])];
          if (s >= 0) cnt[size_t(cell) * S + size_t(s)] += b.values[size_t(p)];
        }
      }
    }
  }

  // Comparisons as (group, reference) codes; reference -1 = rest.
  std::vector<std::pair<int32_t, int32_t>> comps;
  const int32_t G = static_cast<int32_t>(grouping.groups.size());
  auto big = [&](int32_t g) { return grouping.sizes[size_t(g)] >= 2; };
  int64_t labelled = 0;
  for (int64_t s : grouping.sizes) labelled += s;
  for (int32_t g = 0; g < G; ++g) {
    if (!big(g)) continue;
    if (o.comparison == Comparison::VsRest) {
      if (labelled - grouping.sizes[size_t(g)] >= 2 && (only < 0 || only == g)) comps.push_back({g, -1});
    } else if (o.comparison == Comparison::VsReference) {
      if (g != ref && (only < 0 || only == g)) comps.push_back({g, ref});
    } else {
      for (int32_t h = g + 1; h < G; ++h)
        if (big(h) && (only < 0 || only == g || only == h)) comps.push_back({g, h});
    }
  }
  if (comps.empty())
    fail(ErrorKind::InvalidArgument, ds.path(),
         "nothing to compare: each side of a test needs at least 2 cells; groups of '" + o.groupby +
             "': " + grouping.describe());

  // value: what is reported and t-tested; rankValue: the same order without log rounding (see de.h).
  std::vector<double> value(static_cast<size_t>(n)), rankValue(static_cast<size_t>(n));
  std::vector<double> expressed(static_cast<size_t>(n)), norm(static_cast<size_t>(n));
  for (const Feature& f : features) {
    for (int64_t i = 0; i < n; ++i) {
      const size_t c = size_t(i);
      const double na = cnt[c * S + size_t(f.a)] * scale[c];
      if (f.b < 0) {
        value[c] = std::log1p(na);
        rankValue[c] = na;
        norm[c] = na;
        expressed[c] = cnt[c * S + size_t(f.a)] > 0;
      } else {
        const double nb = cnt[c * S + size_t(f.b)] * scale[c];
        rankValue[c] = (na + 1) / (nb + 1);
        value[c] = std::log2(rankValue[c]);
        norm[c] = 0;  // unused: a ratio's fold change is the difference of mean log2 ratios
        expressed[c] = cnt[c * S + size_t(f.a)] > 0 || cnt[c * S + size_t(f.b)] > 0;
      }
    }
    for (const auto& [g, h] : comps) {
      std::vector<double> a, b, ra, rb;
      double normA = 0, normB = 0, exprA = 0, exprB = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int32_t c = grouping.codes[size_t(i)];
        if (c < 0) continue;
        if (c == g) {
          a.push_back(value[size_t(i)]);
          ra.push_back(rankValue[size_t(i)]);
          normA += norm[size_t(i)];
          exprA += expressed[size_t(i)];
        } else if (h < 0 || c == h) {
          b.push_back(value[size_t(i)]);
          rb.push_back(rankValue[size_t(i)]);
          normB += norm[size_t(i)];
          exprB += expressed[size_t(i)];
        }
      }
      FeatureComparison row;
      row.feature = f.name;
      row.group = grouping.groups[size_t(g)];
      row.reference = h < 0 ? "rest" : grouping.groups[size_t(h)];
      row.nGroup = static_cast<int64_t>(a.size());
      row.nReference = static_cast<int64_t>(b.size());
      const double da = static_cast<double>(a.size()), db = static_cast<double>(b.size());
      row.meanGroup = std::accumulate(a.begin(), a.end(), 0.0) / da;
      row.meanReference = std::accumulate(b.begin(), b.end(), 0.0) / db;
      row.medianGroup = median(a);
      row.medianReference = median(b);
      row.pctGroup = exprA / da;
      row.pctReference = exprB / db;
      row.log2fc = f.b < 0 ? std::log2((normA / da + 1e-9) / (normB / db + 1e-9)) : row.meanGroup - row.meanReference;
      const TestResult t = o.method == DeMethod::Wilcoxon
                               ? wilcoxonRankSum(ra.data(), row.nGroup, rb.data(), row.nReference)
                               : welchTTest(a.data(), row.nGroup, b.data(), row.nReference);
      row.statistic = t.statistic;
      row.pval = t.pval;
      res.rows.push_back(std::move(row));
    }
  }
  std::vector<double> p;
  for (const auto& r : res.rows) p.push_back(r.pval);
  const std::vector<double> adj = benjaminiHochberg(p);
  for (size_t i = 0; i < adj.size(); ++i) res.rows[i].pvalAdj = adj[i];
  return res;
}

std::string featureCsv(const FeatureResult& r) {
  std::string s =
      "feature,group,reference,n_group,n_reference,mean_group,mean_reference,median_group,median_reference,"
      "pct_group,pct_reference,log2fc,pval,pval_adj\n";
  for (const auto& x : r.rows)
    s += csvField(x.feature) + "," + csvField(x.group) + "," + csvField(x.reference) + "," +
         std::to_string(x.nGroup) + "," + std::to_string(x.nReference) + "," + fmt(x.meanGroup) + "," +
         fmt(x.meanReference) + "," + fmt(x.medianGroup) + "," + fmt(x.medianReference) + "," + fmt(x.pctGroup) +
         "," + fmt(x.pctReference) + "," + fmt(x.log2fc) + "," + fmt(x.pval) + "," + fmt(x.pvalAdj) + "\n";
  return s;
}

}  // namespace uce::analysis
