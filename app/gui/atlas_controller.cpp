#include "atlas_controller.h"

#include <QFileInfo>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "uce/core/text.h"
#include "uce/core/analysis/umap.h"
#include "uce/core/atomic_file.h"
#include "uce/core/error.h"
#include "uce/core/json.h"

namespace fs = std::filesystem;
using namespace uce::analysis;

namespace uce::gui {
namespace {

constexpr const char* kModelKey = "uce/model_sha256";

std::string s(const QString& q) { return q.toStdString(); }

std::string readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Io, path, std::string("cannot open the atlas ") + what + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool finiteRow(const float* p, int64_t dim) {
  for (int64_t c = 0; c < dim; ++c)
    if (!std::isfinite(p[c])) return false;
  return true;
}

std::string modelOf(const Dataset& ds) {
  const auto uns = ds.uns();
  auto it = uns.find(kModelKey);
  return it == uns.end() ? std::string() : it->second.toString();
}

std::string shortHash(const std::string& h) { return h.size() > 12 ? h.substr(0, 12) + "..." : h; }

void checkCancelled(const AtlasProgress& p, int64_t done, int64_t total, const std::string& stage) {
  if (p && !p(done, total, stage)) fail(ErrorKind::Cancelled, "", "cancelled");
}

// The atlas cells' embeddings from their source files (atlas built by the CLI, or before
// embedding.f32 existed).
std::vector<float> embeddingFromSources(const AtlasData& a, const AtlasProgress& progress) {
  std::vector<float> e(static_cast<size_t>(a.info.cells * a.info.dim), std::nanf(""));
  for (size_t d = 0; d < a.info.datasets.size(); ++d) {
    checkCancelled(progress, static_cast<int64_t>(d), static_cast<int64_t>(a.info.datasets.size()),
                   "reading atlas embeddings");
    const std::string& path = a.info.datasets[d].path;
    if (!fs::exists(path))
      fail(ErrorKind::Io, path, "this source file of the atlas " + s(a.dir) +
                                    " is gone and the atlas has no embedding.f32: put the file back or rebuild the "
                                    "atlas in the app");
    auto ds = openDataset(path);
    requireObsm(*ds, a.info.useRep);
    DenseMatrix m = ds->readObsm(a.info.useRep);
    if (m.cols != a.info.dim)
      fail(ErrorKind::Shape, path, "obsm['" + a.info.useRep + "'] now has " + std::to_string(m.cols) +
                                       " columns but the atlas holds " + std::to_string(a.info.dim) +
                                       ": the file was re-embedded; rebuild the atlas");
    for (int64_t i = 0; i < a.info.cells; ++i) {
      if (a.dataset[static_cast<size_t>(i)] != static_cast<int32_t>(d)) continue;
      const int64_t r = a.row[static_cast<size_t>(i)];
      if (r < 0 || r >= m.rows)
        fail(ErrorKind::Shape, path, "has " + std::to_string(m.rows) + " cells but the atlas refers to row " +
                                         std::to_string(r) + ": the file changed; rebuild the atlas");
      std::copy(m.data.begin() + r * m.cols, m.data.begin() + (r + 1) * m.cols, e.begin() + i * m.cols);
    }
  }
  return e;
}

void writeEmbedding(const AtlasData& a) {
  std::string bytes(reinterpret_cast<const char*>(a.embedding.data()), a.embedding.size() * sizeof(float));
  writeFileAtomic((fs::path(s(a.dir)) / "embedding.f32").string(), bytes);
}

std::string fmt(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// One source's embedding rows, labels and groups (files concatenated, or the atlas).
struct SourceRows {
  std::string name;
  std::string model;
  std::vector<float> x;
  int64_t n = 0, dim = 0;
  std::vector<std::string> labels, groups;
};

SourceRows loadSource(const CentroidSource& src, const std::string& rep, const AtlasData* atlas) {
  SourceRows out;
  const std::string label = s(src.label), group = s(src.group);
  if (label.empty()) fail(ErrorKind::InvalidArgument, "", "choose a label column for the centroids");
  if (src.atlas) {
    if (!atlas) fail(ErrorKind::InvalidArgument, "", "no atlas is open: build or open one first");
    const int li = atlas->labelIndex(src.label);
    if (li < 0) {
      std::string have;
      for (const auto& c : atlas->info.labelColumns) have += (have.empty() ? "" : ", ") + c;
      fail(ErrorKind::InvalidArgument, s(atlas->dir),
           "the atlas keeps no label column '" + label + "' (it has: " + have + "); rebuild it with that column");
    }
    out.labels = atlas->labels[static_cast<size_t>(li)];
    if (!group.empty()) {
      const int gi = atlas->labelIndex(src.group);
      if (gi < 0)
        fail(ErrorKind::InvalidArgument, s(atlas->dir),
             "the atlas keeps no column '" + group + "' to group by; rebuild it with that label column");
      out.groups = atlas->labels[static_cast<size_t>(gi)];
    }
    out.x = atlas->embedding;
    out.n = atlas->cells();
    out.dim = atlas->info.dim;
    out.model = atlas->info.modelSha256;
    out.name = "atlas " + fs::path(s(atlas->dir)).filename().string();
    return out;
  }
  if (src.files.isEmpty()) fail(ErrorKind::InvalidArgument, "", "choose at least one file for the centroids");
  std::vector<std::string> paths;
  for (const QString& p : src.files) paths.push_back(s(p));
  LabelledEmbeddings le = loadLabelledEmbeddings(paths, rep, label, group);
  out.name = std::move(le.name);
  out.model = std::move(le.model);
  out.x = std::move(le.x);
  out.n = le.n;
  out.dim = le.dim;
  out.labels = std::move(le.labels);
  out.groups = std::move(le.groups);
  return out;
}

}  // namespace

int AtlasData::labelIndex(const QString& column) const {
  for (size_t i = 0; i < info.labelColumns.size(); ++i)
    if (info.labelColumns[i] == s(column)) return static_cast<int>(i);
  return -1;
}

std::vector<int64_t> CentroidResult::rowsOf(const QString& name) const {
  for (int64_t i = 0; i < reference.size(); ++i)
    if (reference.names[static_cast<size_t>(i)] == s(name)) return referenceRows[static_cast<size_t>(i)];
  return {};
}

AtlasData loadAtlas(const QString& dir, const AtlasProgress& progress) {
  AtlasData a;
  a.dir = QString::fromStdString(fs::absolute(s(dir)).lexically_normal().string());
  a.info = readAtlasInfo(s(a.dir));
  const fs::path root(s(a.dir));
  const std::string cellsPath = (root / "cells.csv").string();
  {
    std::istringstream in(readFile(cellsPath, "cell table"));
    std::string line;
    std::getline(in, line);
    const size_t want = 4 + a.info.labelColumns.size();
    if (csvSplit(line).size() != want)
      fail(ErrorKind::Format, cellsPath, "header does not match atlas.json's label columns; rebuild the atlas");
    a.labels.assign(a.info.labelColumns.size(), {});
    int64_t n = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto f = csvSplit(line);
      if (f.size() != want)
        fail(ErrorKind::Format, cellsPath, "line " + std::to_string(n + 2) + " has " + std::to_string(f.size()) +
                                               " fields, expected " + std::to_string(want) + "; rebuild the atlas");
      const long long d = std::atoll(f[1].c_str());
      if (d < 0 || static_cast<size_t>(d) >= a.info.datasets.size())
        fail(ErrorKind::Format, cellsPath, "line " + std::to_string(n + 2) + " names dataset " + f[1] +
                                               " which atlas.json does not list; rebuild the atlas");
      a.dataset.push_back(static_cast<int32_t>(d));
      a.row.push_back(std::atoll(f[2].c_str()));
      a.obsName.push_back(f[3]);
      for (size_t c = 0; c < a.labels.size(); ++c) a.labels[c].push_back(f[4 + c]);
      ++n;
    }
    if (n != a.info.cells)
      fail(ErrorKind::Format, cellsPath, "lists " + std::to_string(n) + " cells but atlas.json says " +
                                             std::to_string(a.info.cells) + "; the atlas folder is damaged, rebuild it");
  }
  const std::string embPath = (root / "embedding.f32").string();
  if (fs::exists(embPath)) {
    const std::string bytes = readFile(embPath, "embeddings");
    if (bytes.size() != static_cast<size_t>(a.info.cells * a.info.dim) * sizeof(float))
      fail(ErrorKind::Format, embPath, "holds " + std::to_string(bytes.size()) + " bytes, expected " +
                                           std::to_string(a.info.cells) + " x " + std::to_string(a.info.dim) +
                                           " float32; delete it (it is rebuilt from the source files)");
    a.embedding.resize(static_cast<size_t>(a.info.cells * a.info.dim));
    std::memcpy(a.embedding.data(), bytes.data(), bytes.size());
  } else {
    a.embedding = embeddingFromSources(a, progress);
  }
  const std::string mapPath = (root / "map.csv").string();
  if (fs::exists(mapPath)) {
    std::istringstream in(readFile(mapPath, "map"));
    std::string line;
    std::getline(in, line);
    std::vector<float> map(static_cast<size_t>(a.info.cells * 2), std::nanf(""));
    int64_t n = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto f = csvSplit(line);
      const long long r = f.size() == 3 ? std::atoll(f[0].c_str()) : -1;
      if (r < 0 || r >= a.info.cells)
        fail(ErrorKind::Format, mapPath, "line " + std::to_string(n + 2) + " is not atlas_row,umap_1,umap_2 of an "
                                         "atlas cell; delete map.csv and compute the map again");
      map[static_cast<size_t>(r * 2)] = std::strtof(f[1].c_str(), nullptr);
      map[static_cast<size_t>(r * 2 + 1)] = std::strtof(f[2].c_str(), nullptr);
      ++n;
    }
    if (n != a.info.cells)
      fail(ErrorKind::Format, mapPath, "has " + std::to_string(n) + " rows for " + std::to_string(a.info.cells) +
                                           " atlas cells; delete it and compute the map again");
    a.map = std::move(map);
    const std::string jsonPath = (root / "map.json").string();
    if (fs::exists(jsonPath)) {
      Json j = parseJson(readFile(jsonPath, "map options"), jsonPath, "atlas map options");
      if (const Json* v = j.get("n_neighbors")) a.mapOptions.nNeighbors = static_cast<int>(v->num);
      if (const Json* v = j.get("min_dist")) a.mapOptions.minDist = static_cast<float>(v->num);
      if (const Json* v = j.get("epochs")) a.mapOptions.epochs = static_cast<int>(v->num);
      if (const Json* v = j.get("seed")) a.mapOptions.seed = static_cast<quint64>(v->num);
    }
  }
  return a;
}

AtlasData buildAtlasFolder(const AtlasBuildRequest& r, const AtlasProgress& progress) {
  AtlasBuildOptions o;
  o.useRep = s(r.useRep);
  for (const auto& c : r.labelColumns) o.labelColumns.push_back(s(c));
  o.maxCellsPerDataset = r.maxCellsPerDataset;
  o.seed = r.seed;
  std::vector<std::string> files;
  for (const auto& f : r.files) files.push_back(s(f));
  checkCancelled(progress, 0, 3, "building the atlas index");
  buildAtlas(files, s(r.outDir), o);
  checkCancelled(progress, 1, 3, "reading atlas embeddings");
  AtlasData a = loadAtlas(r.outDir, progress);
  writeEmbedding(a);
  checkCancelled(progress, 3, 3, "done");
  return a;
}

void computeAtlasMap(AtlasData& a, const AtlasMapRequest& r) {
  if (a.cells() < 3) fail(ErrorKind::Empty, s(a.dir), "a map needs at least 3 atlas cells");
  UmapOptions o;
  o.dims = 2;
  o.nNeighbors = std::max(2, std::min<int>(r.nNeighbors, static_cast<int>(a.cells() - 1)));
  o.minDist = r.minDist;
  o.nEpochs = r.epochs;
  o.seed = r.seed;
  a.map = umapSkippingMissing({a.embedding.data(), a.cells(), a.info.dim}, o);
  a.mapOptions = r;
  a.mapOptions.nNeighbors = o.nNeighbors;
  std::string csv = "atlas_row,umap_1,umap_2\n";
  for (int64_t i = 0; i < a.cells(); ++i)
    csv += std::to_string(i) + "," + fmt(a.map[static_cast<size_t>(i * 2)]) + "," +
           fmt(a.map[static_cast<size_t>(i * 2 + 1)]) + "\n";
  const fs::path root(s(a.dir));
  writeFileAtomic((root / "map.csv").string(), csv);
  writeFileAtomic((root / "map.json").string(),
                  "{\"format\": \"uce-atlas-map\", \"dims\": 2, \"n_neighbors\": " + std::to_string(o.nNeighbors) +
                      ", \"min_dist\": " + fmt(o.minDist) + ", \"epochs\": " + std::to_string(o.nEpochs) +
                      ", \"seed\": " + std::to_string(o.seed) + "}\n");
  if (!fs::exists(root / "embedding.f32")) writeEmbedding(a);
}

namespace {

// The query's embedding and its model check against the atlas.
DenseMatrix queryEmbedding(const AtlasData& a, const QString& path, std::shared_ptr<const DenseMatrix> given) {
  DenseMatrix q;
  std::string model;
  if (!path.isEmpty() && fs::exists(s(path))) {
    auto ds = openDataset(s(path));
    model = modelOf(*ds);
    if (!given) {
      requireObsm(*ds, a.info.useRep);
      q = ds->readObsm(a.info.useRep);
    }
  } else if (!given) {
    fail(ErrorKind::Io, s(path), "no such file to place on the atlas");
  }
  if (given) q = *given;
  if (!model.empty() && !a.info.modelSha256.empty() && model != a.info.modelSha256)
    fail(ErrorKind::InvalidArgument, s(path),
         "was embedded with model " + shortHash(model) + ", but the atlas holds embeddings of model " +
             shortHash(a.info.modelSha256) + " (uns uce/model_sha256): embed it with the atlas's model");
  if (q.cols != a.info.dim)
    fail(ErrorKind::Shape, s(path), "its embedding has " + std::to_string(q.cols) + " columns, but the atlas holds " +
                                        std::to_string(a.info.dim) + "-dimensional embeddings: embed it with the "
                                        "atlas's model");
  return q;
}

}  // namespace

AtlasPlacement placeOnAtlas(const AtlasData& a, const QString& queryPath, std::shared_ptr<const DenseMatrix> given) {
  if (!a.hasMap()) fail(ErrorKind::InvalidArgument, s(a.dir), "the atlas has no map yet: compute the atlas map first");
  const DenseMatrix q = queryEmbedding(a, queryPath, std::move(given));
  // Reference: atlas cells with a finite map position and embedding.
  std::vector<float> ref, refMap;
  for (int64_t i = 0; i < a.cells(); ++i) {
    const float* e = a.embedding.data() + i * a.info.dim;
    const float* m = a.map.data() + i * 2;
    if (!finiteRow(e, a.info.dim) || !std::isfinite(m[0]) || !std::isfinite(m[1])) continue;
    ref.insert(ref.end(), e, e + a.info.dim);
    refMap.insert(refMap.end(), m, m + 2);
  }
  const int64_t nRef = static_cast<int64_t>(refMap.size() / 2);
  std::vector<float> qx;
  std::vector<int64_t> qRows;
  for (int64_t r = 0; r < q.rows; ++r) {
    const float* e = q.data.data() + r * q.cols;
    if (!finiteRow(e, q.cols)) continue;
    qx.insert(qx.end(), e, e + q.cols);
    qRows.push_back(r);
  }
  AtlasPlacement p;
  p.queryPath = queryPath;
  p.atlasCells = a.cells();
  p.queryCells = q.rows;
  p.coords = a.map;
  p.coords.resize(static_cast<size_t>((a.cells() + q.rows) * 2), std::nanf(""));
  p.isQuery.assign(static_cast<size_t>(a.cells()), 0);
  p.isQuery.resize(static_cast<size_t>(a.cells() + q.rows), 1);
  p.placed = static_cast<int64_t>(qRows.size());
  if (qRows.empty()) return p;
  if (nRef < 3) fail(ErrorKind::Empty, s(a.dir), "the atlas map has fewer than 3 placed cells");
  UmapOptions o;
  o.dims = 2;
  o.nNeighbors = std::max(2, std::min<int>(a.mapOptions.nNeighbors, static_cast<int>(nRef)));
  o.minDist = a.mapOptions.minDist;
  o.nEpochs = a.mapOptions.epochs;
  o.seed = a.mapOptions.seed;
  const auto placed = umapTransform({ref.data(), nRef, a.info.dim}, refMap,
                                    {qx.data(), static_cast<int64_t>(qRows.size()), q.cols}, o);
  for (size_t i = 0; i < qRows.size(); ++i) {
    const size_t at = static_cast<size_t>(a.cells() + qRows[i]) * 2;
    p.coords[at] = placed[i * 2];
    p.coords[at + 1] = placed[i * 2 + 1];
  }
  return p;
}

CentroidResult computeCentroidTable(const CentroidRequest& r, const AtlasData* atlas) {
  const std::string rep = s(r.useRep);
  SourceRows q = loadSource(r.query, rep, atlas), ref = loadSource(r.reference, rep, atlas);
  if (!q.model.empty() && !ref.model.empty() && q.model != ref.model)
    fail(ErrorKind::InvalidArgument, q.name, "was embedded with another model than " + ref.name +
                                                 " (uns uce/model_sha256 differs): centroids across models are "
                                                 "not comparable");
  if (q.dim != ref.dim)
    fail(ErrorKind::Shape, q.name, "embeddings have " + std::to_string(q.dim) + " columns but " + ref.name +
                                       " has " + std::to_string(ref.dim) + ": embedded with different models");
  CentroidOptions co;
  co.minCells = std::max<int64_t>(1, r.minCells);
  auto centroidsOf = [&](const SourceRows& src, const CentroidSource& spec, std::string& name) {
    Centroids c = computeCentroids({src.x.data(), src.n, src.dim}, src.labels, src.groups, co);
    if (!spec.group.isEmpty() && !spec.groupValue.isEmpty()) {
      c = selectGroup(c, s(spec.groupValue));
      if (c.size() == 0)
        fail(ErrorKind::InvalidArgument, src.name, "no centroid has " + s(spec.group) + " = '" + s(spec.groupValue) +
                                                        "'");
      name += " (" + s(spec.group) + " " + s(spec.groupValue) + ")";
    }
    return c;
  };
  CentroidResult res;
  std::string qName = q.name, rName = ref.name;
  res.query = centroidsOf(q, r.query, qName);
  res.reference = centroidsOf(ref, r.reference, rName);
  res.querySource = QString::fromStdString(qName);
  res.referenceSource = QString::fromStdString(rName);
  res.matches = nearestCentroids(res.query, res.reference);
  res.score = alignmentScore(res.matches);
  std::string csv;
  appendMatchTable(csv, qName, rName, res.query, res.reference, res.matches, 3);
  res.csv = QString::fromStdString(csv);
  if (res.reference.size() >= 2)
    res.tree = hierarchicalClustering(res.reference.means, res.reference.size(), res.reference.dim,
                                      parseLinkage(s(r.linkage)));
  // Rows per reference centroid: a row belongs to the centroid of its (label, group); with a
  // group value chosen, only rows of that group count.
  res.referenceIsAtlas = r.reference.atlas;
  std::map<std::pair<std::string, std::string>, size_t> at;
  const bool selected = !r.reference.group.isEmpty() && !r.reference.groupValue.isEmpty();
  for (int64_t i = 0; i < res.reference.size(); ++i)
    at[{res.reference.labels[static_cast<size_t>(i)],
        selected ? s(r.reference.groupValue) : res.reference.groups[static_cast<size_t>(i)]}] = static_cast<size_t>(i);
  res.referenceRows.assign(static_cast<size_t>(res.reference.size()), {});
  for (int64_t row = 0; row < ref.n; ++row) {
    const std::string g = ref.groups.empty() ? std::string() : ref.groups[static_cast<size_t>(row)];
    auto it = at.find({ref.labels[static_cast<size_t>(row)], g});
    if (it == at.end()) continue;
    if (!finiteRow(ref.x.data() + row * ref.dim, ref.dim)) continue;
    res.referenceRows[it->second].push_back(row);
  }
  return res;
}

CellSearchResult searchAtlasCells(const AtlasData& a, const CellSearchRequest& r, const AtlasProgress& progress) {
  if (r.k < 1) fail(ErrorKind::InvalidArgument, "", "k must be at least 1");
  if (a.cells() == 0) fail(ErrorKind::Empty, s(a.dir), "the atlas has no cells");
  const DenseMatrix q = queryEmbedding(a, r.queryPath, r.embedding);
  const int li = r.labelColumn.isEmpty() ? 0 : a.labelIndex(r.labelColumn);
  if (li < 0 || a.labels.empty())
    fail(ErrorKind::InvalidArgument, s(a.dir), "the atlas keeps no label column '" + s(r.labelColumn) + "'");
  const auto& atlasLabels = a.labels[static_cast<size_t>(li)];
  CellSearchResult res;
  res.queryPath = r.queryPath;
  res.labelColumn = QString::fromStdString(a.info.labelColumns[static_cast<size_t>(li)]);
  res.k = static_cast<int>(std::min<int64_t>(r.k, a.cells()));
  for (int64_t row : r.rows)
    if (row < 0 || row >= q.rows)
      fail(ErrorKind::InvalidArgument, s(r.queryPath), "row " + std::to_string(row) + " is not a cell of the query (" +
                                                          std::to_string(q.rows) + " cells)");
  res.hits.resize(r.rows.size());
  // Exact search: the selection is small next to the atlas, so brute force over the atlas rows
  // (threads over the query rows) beats building an index.
  const int64_t dim = a.info.dim;
  std::vector<uint8_t> atlasFinite(static_cast<size_t>(a.cells()));
  for (int64_t i = 0; i < a.cells(); ++i) atlasFinite[static_cast<size_t>(i)] = finiteRow(a.embedding.data() + i * dim, dim);
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  auto worker = [&] {
    std::vector<std::pair<float, int64_t>> d(static_cast<size_t>(a.cells()));
    for (;;) {
      const int64_t j = next++;
      if (j >= static_cast<int64_t>(r.rows.size()) || stop) return;
      CellSearchHit& h = res.hits[static_cast<size_t>(j)];
      h.queryRow = r.rows[static_cast<size_t>(j)];
      const float* x = q.data.data() + h.queryRow * dim;
      if (!finiteRow(x, dim)) {
        h.confidence = std::nan("");
        ++done;
        continue;
      }
      size_t m = 0;
      for (int64_t i = 0; i < a.cells(); ++i) {
        if (!atlasFinite[static_cast<size_t>(i)]) continue;
        const float* y = a.embedding.data() + i * dim;
        float acc = 0;
        for (int64_t c = 0; c < dim; ++c) {
          const float t = x[c] - y[c];
          acc += t * t;
        }
        d[m++] = {acc, i};
      }
      const size_t k = std::min<size_t>(static_cast<size_t>(res.k), m);
      std::partial_sort(d.begin(), d.begin() + static_cast<long>(k), d.begin() + static_cast<long>(m));
      std::vector<std::string> labels;
      for (size_t t = 0; t < k; ++t) {
        h.neighbours.push_back(d[t].second);
        h.distances.push_back(std::sqrt(d[t].first));
        labels.push_back(atlasLabels[static_cast<size_t>(d[t].second)]);
      }
      auto [label, conf] = voteLabel(labels, h.distances, r.distanceWeighted);
      h.label = QString::fromStdString(label);
      h.confidence = conf;
      ++done;
    }
  };
  const int threads = std::max(1, std::min<int>(static_cast<int>(std::thread::hardware_concurrency()),
                                                 static_cast<int>(std::max<size_t>(1, r.rows.size()))));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  // This thread works too, and reports between rows.
  std::thread mainWorker(worker);
  while (done < static_cast<int64_t>(r.rows.size()) && next <= static_cast<int64_t>(r.rows.size())) {
    if (progress && !progress(done, static_cast<int64_t>(r.rows.size()), "searching the atlas")) {
      stop = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  mainWorker.join();
  for (auto& t : pool) t.join();
  if (stop) fail(ErrorKind::Cancelled, "", "cancelled");
  std::map<QString, int64_t> votes;
  for (const auto& h : res.hits)
    if (!h.label.isEmpty()) ++votes[h.label];
  std::vector<std::pair<QString, int64_t>> v(votes.begin(), votes.end());
  std::stable_sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
  for (const auto& [l, n] : v) {
    res.voteLabels << l;
    res.voteCounts.push_back(n);
  }
  return res;
}

// --- AtlasController ---

AtlasController::AtlasController(JobManager* jobs, QObject* parent) : QObject(parent), jobs_(jobs) {}

namespace {
AtlasProgress progressOf(JobContext& ctx) {
  return [&ctx](int64_t done, int64_t total, const std::string& stage) {
    return ctx.report(done, total, QString::fromStdString(stage));
  };
}
}  // namespace

Job* AtlasController::buildAtlas(const AtlasBuildRequest& r) {
  auto out = std::make_shared<AtlasData>();
  return jobs_->start(
      "Build atlas " + QFileInfo(r.outDir).fileName(),
      [r, out](JobContext& ctx) { *out = buildAtlasFolder(r, progressOf(ctx)); },
      [this, out] {
        atlas_ = out;
        placement_.reset();
        centroids_.reset();
        search_.reset();
        Q_EMIT atlasChanged();
      });
}

Job* AtlasController::openAtlas(const QString& dir) {
  auto out = std::make_shared<AtlasData>();
  return jobs_->start(
      "Open atlas " + QFileInfo(dir).fileName(), [dir, out](JobContext& ctx) { *out = loadAtlas(dir, progressOf(ctx)); },
      [this, out] {
        atlas_ = out;
        placement_.reset();
        centroids_.reset();
        search_.reset();
        Q_EMIT atlasChanged();
        if (atlas_->hasMap()) Q_EMIT mapReady();
      });
}

Job* AtlasController::startWithAtlas(const QString& name, std::function<void(JobContext&, const AtlasData&)> work,
                                     std::function<void()> onDone) {
  std::shared_ptr<const AtlasData> a = atlas_;
  return jobs_->start(
      name,
      [a, work](JobContext& ctx) {
        if (!a) fail(ErrorKind::InvalidArgument, "", "no atlas is open: build or open an atlas first");
        work(ctx, *a);
      },
      std::move(onDone));
}

Job* AtlasController::computeMap(const AtlasMapRequest& r) {
  auto out = std::make_shared<AtlasData>();
  return startWithAtlas(
      "Atlas map",
      [r, out](JobContext& ctx, const AtlasData& a) {
        ctx.reportFraction(0, "UMAP of the atlas cells");
        *out = a;
        computeAtlasMap(*out, r);
        ctx.reportFraction(1, "done", 0);
      },
      [this, out] {
        atlas_ = out;
        placement_.reset();
        Q_EMIT mapReady();
      });
}

Job* AtlasController::placeDataset(const QString& path, std::shared_ptr<const DenseMatrix> embedding) {
  auto out = std::make_shared<AtlasPlacement>();
  return startWithAtlas(
      "Place " + QFileInfo(path).fileName() + " on the atlas",
      [path, embedding, out](JobContext& ctx, const AtlasData& a) {
        ctx.reportFraction(0, "placing cells (UMAP transform)");
        *out = placeOnAtlas(a, path, embedding);
        ctx.reportFraction(1, "done", 0);
      },
      [this, out] {
        placement_ = out;
        Q_EMIT placementReady();
      });
}

Job* AtlasController::computeCentroids(const CentroidRequest& r) {
  auto out = std::make_shared<CentroidResult>();
  std::shared_ptr<const AtlasData> a = atlas_;
  return jobs_->start(
      "Centroids",
      [r, a, out](JobContext& ctx) {
        ctx.reportFraction(0, "centroids");
        *out = computeCentroidTable(r, a.get());
        ctx.reportFraction(1, "done", 0);
      },
      [this, out] {
        centroids_ = out;
        Q_EMIT centroidsReady();
      });
}

Job* AtlasController::searchCells(const CellSearchRequest& r) {
  auto out = std::make_shared<CellSearchResult>();
  return startWithAtlas(
      "Search the atlas",
      [r, out](JobContext& ctx, const AtlasData& a) { *out = searchAtlasCells(a, r, progressOf(ctx)); },
      [this, out] {
        search_ = out;
        Q_EMIT searchReady();
      });
}

}  // namespace uce::gui
