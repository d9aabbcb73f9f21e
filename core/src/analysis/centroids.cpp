#include "uce/core/analysis/centroids.h"

#include <faiss/IndexFlat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstdio>
#include <limits>
#include <map>
#include <utility>

#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/text.h"

namespace uce::analysis {

Centroids computeCentroids(const MatrixView& x, const std::vector<std::string>& labels,
                           const std::vector<std::string>& groups, const CentroidOptions& options) {
  if (static_cast<int64_t>(labels.size()) != x.n)
    fail(ErrorKind::Shape, "", "centroids: " + std::to_string(labels.size()) + " labels for " +
                                   std::to_string(x.n) + " embedded cells");
  if (!groups.empty() && groups.size() != labels.size())
    fail(ErrorKind::Shape, "", "centroids: " + std::to_string(groups.size()) + " group values for " +
                                   std::to_string(labels.size()) + " cells");
  if (x.dim < 1) fail(ErrorKind::InvalidArgument, "", "centroids: the embedding has no columns");
  const bool grouped = !groups.empty();
  // Sums per (label, group), in double: means of a million float32 rows stay exact to ~1e-12.
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, std::vector<double>>> acc;
  for (int64_t i = 0; i < x.n; ++i) {
    const std::string& l = labels[static_cast<size_t>(i)];
    if (l.empty()) continue;
    const float* r = x.row(i);
    bool finite = true;
    for (int64_t c = 0; c < x.dim && finite; ++c) finite = std::isfinite(r[c]);
    if (!finite) continue;  // cells the embedder left out (NaN rows)
    auto& a = acc[{l, grouped ? groups[static_cast<size_t>(i)] : std::string()}];
    if (a.second.empty()) a.second.assign(static_cast<size_t>(x.dim), 0.0);
    ++a.first;
    for (int64_t c = 0; c < x.dim; ++c) a.second[static_cast<size_t>(c)] += static_cast<double>(r[c]);
  }
  Centroids out;
  out.dim = x.dim;
  for (auto& [key, a] : acc) {
    if (a.first < options.minCells) continue;
    out.labels.push_back(key.first);
    out.groups.push_back(key.second);
    out.names.push_back(grouped ? key.first + "|" + key.second : key.first);
    out.cells.push_back(a.first);
    for (double s : a.second) out.means.push_back(s / static_cast<double>(a.first));
  }
  if (out.names.empty())
    fail(ErrorKind::Empty, "", "no centroid could be computed: every cell lacks a label, has a non-finite "
                               "embedding, or its label has fewer than " + std::to_string(options.minCells) +
                               " cells");
  return out;
}

Centroids selectGroup(const Centroids& c, const std::string& group) {
  Centroids out;
  out.dim = c.dim;
  for (int64_t i = 0; i < c.size(); ++i) {
    if (c.groups[static_cast<size_t>(i)] != group) continue;
    out.names.push_back(c.labels[static_cast<size_t>(i)]);
    out.labels.push_back(c.labels[static_cast<size_t>(i)]);
    out.groups.push_back(group);
    out.cells.push_back(c.cells[static_cast<size_t>(i)]);
    out.means.insert(out.means.end(), c.mean(i), c.mean(i) + c.dim);
  }
  return out;
}

std::vector<CentroidMatch> nearestCentroids(const Centroids& query, const Centroids& reference, bool excludeSameIndex) {
  if (query.dim != reference.dim)
    fail(ErrorKind::Shape, "", "the two embeddings have different widths (" + std::to_string(query.dim) + " and " +
                                   std::to_string(reference.dim) + " columns): they come from different models");
  std::vector<CentroidMatch> out;
  if (query.size() == 0 || reference.size() == 0) return out;
  std::vector<float> q(query.means.begin(), query.means.end()), r(reference.means.begin(), reference.means.end());
  faiss::IndexFlatL2 index(static_cast<int>(reference.dim));
  index.add(reference.size(), r.data());
  // Every reference centroid is ranked (they are few: labels, not cells).
  const int64_t k = reference.size();
  std::vector<float> dist(static_cast<size_t>(query.size() * k));
  std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(query.size() * k));
  index.search(query.size(), q.data(), k, dist.data(), ids.data());
  std::map<std::string, int64_t> refByName;
  for (int64_t j = 0; j < reference.size(); ++j) refByName[reference.names[static_cast<size_t>(j)]] = j;
  for (int64_t i = 0; i < query.size(); ++i) {
    CentroidMatch m;
    m.query = query.names[static_cast<size_t>(i)];
    m.queryCells = query.cells[static_cast<size_t>(i)];
    auto own = refByName.find(m.query);
    // Distances are recomputed in double from the centroids: FAISS ranks in float, the table
    // reports exact values, re-sorted (stably) so that near-ties in float cannot disorder them.
    std::vector<std::pair<double, int64_t>> ranked;
    for (int64_t c = 0; c < k; ++c) {
      const int64_t j = ids[static_cast<size_t>(i * k + c)];
      if (j < 0 || (excludeSameIndex && j == i)) continue;
      double s = 0;
      for (int64_t d = 0; d < query.dim; ++d) {
        const double t = query.mean(i)[d] - reference.mean(j)[d];
        s += t * t;
      }
      ranked.emplace_back(std::sqrt(s), j);
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [dist1, j] : ranked) {
      m.nearest.push_back(j);
      m.distances.push_back(dist1);
      if (own != refByName.end() && own->second == j && !excludeSameIndex) {
        m.ownRank = static_cast<int64_t>(m.nearest.size());
        m.ownDistance = dist1;
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

double AlignmentScore::at1() const {
  return shared ? static_cast<double>(hitsAt1) / static_cast<double>(shared) : std::numeric_limits<double>::quiet_NaN();
}
double AlignmentScore::at3() const {
  return shared ? static_cast<double>(hitsAt3) / static_cast<double>(shared) : std::numeric_limits<double>::quiet_NaN();
}

AlignmentScore alignmentScore(const std::vector<CentroidMatch>& matches) {
  AlignmentScore s;
  for (const auto& m : matches) {
    if (m.ownRank <= 0) continue;
    ++s.shared;
    if (m.ownRank <= 1) ++s.hitsAt1;
    if (m.ownRank <= 3) ++s.hitsAt3;
  }
  return s;
}

void appendMatchTable(std::string& csv, const std::string& querySource, const std::string& referenceSource,
                      const Centroids& query, const Centroids& reference,
                      const std::vector<CentroidMatch>& matches, int k) {
  auto num = [](double v) {
    char b[48];
    std::snprintf(b, sizeof b, "%.9g", v);
    return std::string(b);
  };
  if (csv.empty()) {
    csv = "query_source,reference_source,query_label,query_group,query_cells,own_rank,own_distance";
    for (int c = 1; c <= k; ++c) csv += ",nearest_" + std::to_string(c) + ",distance_" + std::to_string(c);
    csv += "\n";
  }
  for (size_t i = 0; i < matches.size(); ++i) {
    const CentroidMatch& m = matches[i];
    csv += csvField(querySource) + "," + csvField(referenceSource) + "," + csvField(query.labels[i]) + "," +
           csvField(query.groups[i]) + "," + std::to_string(m.queryCells) + ",";
    csv += (m.ownRank > 0 ? std::to_string(m.ownRank) : std::string()) + "," +
           (m.ownRank > 0 ? num(m.ownDistance) : std::string());
    for (int c = 0; c < k; ++c) {
      if (static_cast<size_t>(c) < m.nearest.size())
        csv += "," + csvField(reference.names[static_cast<size_t>(m.nearest[static_cast<size_t>(c)])]) + "," +
               num(m.distances[static_cast<size_t>(c)]);
      else
        csv += ",,";
    }
    csv += "\n";
  }
}

static std::vector<std::string> columnText(const Dataset& ds, const std::string& col) {
  const Column* c = ds.obs().find(col);
  if (!c) {
    std::string have;
    for (const auto& cc : ds.obs().columns) have += (have.empty() ? "" : ", ") + cc.name;
    fail(ErrorKind::InvalidArgument, ds.path(), "obs has no column '" + col + "' (columns: " +
                                                    (have.empty() ? "none" : have) + ")");
  }
  std::vector<std::string> v(static_cast<size_t>(ds.cells()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = c->valueAsString(i);
  return v;
}

LabelledEmbeddings loadLabelledEmbeddings(const std::vector<std::string>& paths, const std::string& rep,
                                          const std::string& label, const std::string& group) {
  LabelledEmbeddings s;
  for (const auto& p : paths) {
    auto ds = openDataset(p);
    requireObsm(*ds, rep);
    DenseMatrix m = ds->readObsm(rep);
    if (m.rows != ds->cells())
      fail(ErrorKind::Shape, p, "obsm['" + rep + "'] has " + std::to_string(m.rows) + " rows for " +
                                    std::to_string(ds->cells()) + " cells");
    if (s.dim == 0) s.dim = m.cols;
    if (m.cols != s.dim)
      fail(ErrorKind::Shape, p, "obsm['" + rep + "'] has " + std::to_string(m.cols) + " columns but " +
                                    paths[0] + " has " + std::to_string(s.dim) + ": embedded with different models");
    const auto uns = ds->uns();
    auto it = uns.find("uce/model_sha256");
    const std::string model = it == uns.end() ? std::string() : it->second.toString();
    if (!model.empty()) {
      if (s.model.empty()) {
        s.model = model;
        s.firstPath = p;
      } else if (model != s.model) {
        fail(ErrorKind::InvalidArgument, p, "was embedded with another model than " + s.firstPath +
                                                " (uns uce/model_sha256 differs): centroids across models are "
                                                "not comparable");
      }
    }
    auto l = columnText(*ds, label);
    s.labels.insert(s.labels.end(), l.begin(), l.end());
    if (!group.empty()) {
      auto g = columnText(*ds, group);
      s.groups.insert(s.groups.end(), g.begin(), g.end());
    }
    s.x.insert(s.x.end(), m.data.begin(), m.data.end());
    s.n += m.rows;
    s.name += (s.name.empty() ? "" : "+") + std::filesystem::path(p).stem().string();
  }
  return s;
}

}  // namespace uce::analysis
