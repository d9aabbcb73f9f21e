#include "uce/core/analysis/atlas.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>

#include "uce/core/atomic_file.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/remove_tree.h"
#include "uce/core/json.h"
#include "uce/core/text.h"

namespace fs = std::filesystem;

namespace uce::analysis {
namespace {

using idx_t = faiss::Index::idx_t;

constexpr const char* kModelKey = "uce/model_sha256";

struct ThreadScope {  // FAISS parallelises with OpenMP
  explicit ThreadScope(int threads) : before(omp_get_max_threads()) {
    if (threads > 0) omp_set_num_threads(threads);
  }
  ~ThreadScope() { omp_set_num_threads(before); }
  int before;
};

std::string modelOf(const Dataset& ds) {
  const auto uns = ds.uns();
  auto it = uns.find(kModelKey);
  return it == uns.end() ? std::string() : it->second.toString();
}

std::string shortHash(const std::string& h) { return h.size() > 12 ? h.substr(0, 12) + "..." : h; }

const Column& obsColumn(const Dataset& ds, const std::string& name) {
  const Column* c = ds.obs().find(name);
  if (!c) {
    std::string have;
    for (const auto& col : ds.obs().columns) have += (have.empty() ? "" : ", ") + col.name;
    fail(ErrorKind::InvalidArgument, ds.path(), "obs has no column '" + name + "' (columns: " +
                                                    (have.empty() ? "none" : have) + ")");
  }
  return *c;
}

bool finiteRow(const DenseMatrix& m, int64_t r) {
  for (int64_t c = 0; c < m.cols; ++c)
    if (!std::isfinite(m.at(r, c))) return false;
  return true;
}

// splitmix64: a portable generator, so samples are the same on every platform.
struct SplitMix {
  uint64_t s;
  uint64_t operator()() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

void shuffle(std::vector<int64_t>& v, SplitMix& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng() % i)]);
}


std::string readText(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Io, path, "cannot open the atlas " + what + ": " + std::strerror(errno) +
                                         " (is this a folder written by uce atlas build?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One line's text without line breaks (labels with a newline would break cells.csv).
std::string oneLine(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// faiss::write_index to a FILE* so that the bytes can be fsync'ed before the rename.
void writeIndexFile(const faiss::Index& index, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail(ErrorKind::Io, path, std::string("cannot create the atlas index file: ") + std::strerror(errno));
  try {
    faiss::write_index(&index, f);
  } catch (const faiss::FaissException& e) {
    std::fclose(f);
    fail(ErrorKind::Io, path, std::string("cannot write the atlas index: ") + e.what());
  }
  if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) {
    const int err = errno;
    std::fclose(f);
    fail(ErrorKind::Io, path, std::string("cannot write the atlas index: ") + std::strerror(err));
  }
  std::fclose(f);
}

// Removes a half-built temporary atlas folder unless released.
struct TempDir {
  std::string path;
  bool keep = false;
  ~TempDir() {
    if (!keep && !path.empty()) removeTree(path);
  }
};

std::string atlasJson(const AtlasInfo& info, const AtlasBuildOptions& o) {
  std::string s = "{\n  \"format\": \"uce-atlas\",\n  \"version\": 1,\n";
  s += "  \"use_rep\": " + jsonQuote(info.useRep) + ",\n";
  s += "  \"dim\": " + std::to_string(info.dim) + ",\n";
  s += "  \"cells\": " + std::to_string(info.cells) + ",\n";
  s += "  \"index\": " + jsonQuote(info.index) + ",\n";
  s += "  \"metric\": \"euclidean\",\n";
  s += "  \"model_sha256\": " + jsonQuote(info.modelSha256) + ",\n";
  s += "  \"max_cells_per_dataset\": " + std::to_string(o.maxCellsPerDataset) + ",\n";
  s += "  \"seed\": " + std::to_string(o.seed) + ",\n";
  s += "  \"label_columns\": [";
  for (size_t i = 0; i < info.labelColumns.size(); ++i) s += (i ? ", " : "") + jsonQuote(info.labelColumns[i]);
  s += "],\n  \"datasets\": [\n";
  for (size_t i = 0; i < info.datasets.size(); ++i) {
    const auto& d = info.datasets[i];
    s += "    {\"path\": " + jsonQuote(d.path) + ", \"cells\": " + std::to_string(d.cells) +
         ", \"embedded\": " + std::to_string(d.embedded) + ", \"sampled\": " + std::to_string(d.sampled) +
         ", \"model_sha256\": " + jsonQuote(d.modelSha256) + "}" + (i + 1 < info.datasets.size() ? "," : "") + "\n";
  }
  s += "  ]\n}\n";
  return s;
}

}  // namespace

std::vector<int64_t> stratifiedSample(const std::vector<int64_t>& rows, const std::vector<std::string>& labels,
                                      int64_t max, uint64_t seed) {
  if (labels.size() != rows.size())
    fail(ErrorKind::Shape, "", "stratifiedSample: one label per row is needed");
  if (max < 0) fail(ErrorKind::InvalidArgument, "", "the number of cells to sample must not be negative");
  const int64_t n = static_cast<int64_t>(rows.size());
  if (max >= n) {
    std::vector<int64_t> all = rows;
    std::sort(all.begin(), all.end());
    return all;
  }
  SplitMix rng{seed};
  std::map<std::string, std::vector<int64_t>> strata;
  for (size_t i = 0; i < rows.size(); ++i) strata[labels[i]].push_back(rows[i]);
  std::vector<int64_t> out;
  const int64_t s = static_cast<int64_t>(strata.size());
  if (max < s) {  // fewer cells than labels: a plain random sample
    std::vector<int64_t> all = rows;
    shuffle(all, rng);
    out.assign(all.begin(), all.begin() + max);
  } else {
    // One cell per label, the rest proportional to (size - 1) by largest remainders.
    const int64_t rest = max - s;
    const double denom = static_cast<double>(n - s);
    std::vector<std::pair<double, std::string>> remainders;
    std::map<std::string, int64_t> quota;
    int64_t given = 0;
    for (const auto& [label, members] : strata) {
      const double exact = denom > 0 ? static_cast<double>(rest) * static_cast<double>(members.size() - 1) / denom : 0;
      const int64_t q = static_cast<int64_t>(std::floor(exact));
      quota[label] = 1 + q;
      given += q;
      remainders.emplace_back(exact - static_cast<double>(q), label);
    }
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; given < rest && i < remainders.size(); ++i) {
      auto& q = quota[remainders[i].second];
      if (q < static_cast<int64_t>(strata[remainders[i].second].size())) {
        ++q;
        ++given;
      }
    }
    for (auto& [label, members] : strata) {
      shuffle(members, rng);
      out.insert(out.end(), members.begin(), members.begin() + quota[label]);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

AtlasInfo buildAtlas(const std::vector<std::string>& datasets, const std::string& atlasDir,
                     const AtlasBuildOptions& o) {
  if (datasets.empty()) fail(ErrorKind::InvalidArgument, "", "an atlas needs at least one dataset (--adata)");
  if (o.labelColumns.empty())
    fail(ErrorKind::InvalidArgument, "", "name at least one obs column to store as atlas labels (--labels)");
  if (o.index != "auto" && o.index != "flat" && o.index != "hnsw")
    fail(ErrorKind::InvalidArgument, "", "unknown index type '" + o.index + "': choose auto, flat or hnsw");
  if (o.maxCellsPerDataset < 0)
    fail(ErrorKind::InvalidArgument, "", "--max-cells-per-dataset must be 0 (all cells) or positive");
  if (atlasDir.empty()) fail(ErrorKind::InvalidArgument, "", "no atlas folder given (--out)");
  if (fs::exists(atlasDir) && (!fs::is_directory(atlasDir) ||
                               (!fs::is_empty(atlasDir) && !fs::exists(fs::path(atlasDir) / "atlas.json"))))
    fail(ErrorKind::InvalidArgument, atlasDir,
         "exists and is not an atlas folder; choose a new folder (an existing atlas is replaced)");

  AtlasInfo info;
  info.useRep = o.useRep;
  info.labelColumns = o.labelColumns;
  std::vector<float> vectors;
  std::string cellsCsv = "atlas_row,dataset,row,obs_name";
  for (const auto& c : o.labelColumns) cellsCsv += "," + csvField(oneLine(c));
  cellsCsv += "\n";
  std::string firstModelFile;
  for (size_t di = 0; di < datasets.size(); ++di) {
    const std::string& path = datasets[di];
    auto ds = openDataset(path);
    requireObsm(*ds, o.useRep);
    DenseMatrix m = ds->readObsm(o.useRep);
    if (m.rows != ds->cells())
      fail(ErrorKind::Shape, path, "obsm['" + o.useRep + "'] has " + std::to_string(m.rows) + " rows for " +
                                       std::to_string(ds->cells()) + " cells");
    if (info.dim == 0) info.dim = m.cols;
    if (m.cols != info.dim)
      fail(ErrorKind::Shape, path, "obsm['" + o.useRep + "'] has " + std::to_string(m.cols) + " columns, but " +
                                       datasets[0] + " has " + std::to_string(info.dim) +
                                       ": the datasets were embedded with different models");
    AtlasDatasetInfo d;
    d.path = fs::absolute(path).lexically_normal().string();
    d.cells = ds->cells();
    d.modelSha256 = modelOf(*ds);
    if (!d.modelSha256.empty()) {
      if (info.modelSha256.empty()) {
        info.modelSha256 = d.modelSha256;
        firstModelFile = path;
      } else if (d.modelSha256 != info.modelSha256) {
        fail(ErrorKind::InvalidArgument, path,
             "was embedded with model " + shortHash(d.modelSha256) + " but " + firstModelFile + " with model " +
                 shortHash(info.modelSha256) +
                 " (uns uce/model_sha256): an atlas mixes only embeddings of one model; re-embed one of them");
      }
    }
    std::vector<const Column*> cols;
    for (const auto& c : o.labelColumns) cols.push_back(&obsColumn(*ds, c));
    std::vector<int64_t> rows;
    std::vector<std::string> strata;
    for (int64_t r = 0; r < m.rows; ++r)
      if (finiteRow(m, r)) {
        rows.push_back(r);
        strata.push_back(cols[0]->valueAsString(static_cast<size_t>(r)));
      }
    d.embedded = static_cast<int64_t>(rows.size());
    if (o.maxCellsPerDataset > 0 && d.embedded > o.maxCellsPerDataset)
      rows = stratifiedSample(rows, strata, o.maxCellsPerDataset, o.seed + 0x9E3779B97F4A7C15ull * (di + 1));
    d.sampled = static_cast<int64_t>(rows.size());
    const auto& names = ds->obs().index;
    for (int64_t r : rows) {
      vectors.insert(vectors.end(), m.data.begin() + r * m.cols, m.data.begin() + (r + 1) * m.cols);
      cellsCsv += std::to_string(info.cells++) + "," + std::to_string(di) + "," + std::to_string(r) + "," +
                  csvField(oneLine(static_cast<size_t>(r) < names.size() ? names[static_cast<size_t>(r)] : "")) ;
      for (const Column* c : cols) cellsCsv += "," + csvField(oneLine(c->valueAsString(static_cast<size_t>(r))));
      cellsCsv += "\n";
    }
    info.datasets.push_back(d);
  }
  if (info.cells == 0)
    fail(ErrorKind::Empty, datasets[0], "no cell has a finite embedding in obsm['" + o.useRep + "']: nothing to index");

  ThreadScope scope(o.threads);
  std::unique_ptr<faiss::Index> index;
  const bool hnsw = o.index == "hnsw" || (o.index == "auto" && info.cells >= o.hnswFrom);
  info.index = hnsw ? "hnsw" : "flat";
  if (hnsw) {
    auto h = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(info.dim), o.hnswM);
    h->hnsw.efConstruction = o.efConstruction;
    index = std::move(h);
  } else {
    index = std::make_unique<faiss::IndexFlatL2>(static_cast<int>(info.dim));
  }
  index->add(info.cells, vectors.data());
  std::vector<float>().swap(vectors);  // the index holds its own copy: [cells, dim] float32 once, not twice

  // Written into a temporary folder beside the target, then renamed into place.
  fs::path target = fs::absolute(atlasDir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  TempDir tmp{target.string() + ".tmp-" + std::to_string(static_cast<long long>(::getpid()))};
  removeTree(tmp.path);
  std::error_code ec;
  if (!fs::create_directories(tmp.path, ec) || ec)
    fail(ErrorKind::Io, atlasDir, "cannot create the atlas folder: " + ec.message());
  writeIndexFile(*index, tmp.path + "/index.faiss");
  writeFileAtomic(tmp.path + "/cells.csv", cellsCsv);
  writeFileAtomic(tmp.path + "/atlas.json", atlasJson(info, o));
  const std::string old = target.string() + ".old-" + std::to_string(static_cast<long long>(::getpid()));
  const bool replacing = fs::exists(target);
  if (replacing && ::rename(target.c_str(), old.c_str()) != 0)
    fail(ErrorKind::Io, atlasDir, std::string("cannot move the previous atlas aside: ") + std::strerror(errno));
  if (::rename(tmp.path.c_str(), target.c_str()) != 0) {
    const int err = errno;
    if (replacing) (void)::rename(old.c_str(), target.c_str());
    fail(ErrorKind::Io, atlasDir, std::string("cannot rename the finished atlas into place: ") + std::strerror(err));
  }
  tmp.keep = true;
  if (replacing) removeTree(old);
  return info;
}

AtlasInfo readAtlasInfo(const std::string& atlasDir) {
  const std::string path = (fs::path(atlasDir) / "atlas.json").string();
  if (!fs::is_directory(atlasDir))
    fail(ErrorKind::Io, atlasDir, "no such atlas folder (build one with uce atlas build)");
  Json j = parseJson(readText(path, "metadata"), path, "atlas metadata file");
  auto need = [&](const char* key, Json::Kind kind) -> const Json& {
    const Json* v = j.get(key);
    if (!v || v->kind != kind)
      fail(ErrorKind::Format, path, std::string("atlas metadata lacks '") + key + "'; rebuild the atlas");
    return *v;
  };
  if (need("format", Json::Kind::String).str != "uce-atlas")
    fail(ErrorKind::Format, path, "is not the metadata of a uce atlas");
  AtlasInfo info;
  info.useRep = need("use_rep", Json::Kind::String).str;
  info.dim = static_cast<int64_t>(need("dim", Json::Kind::Number).num);
  info.cells = static_cast<int64_t>(need("cells", Json::Kind::Number).num);
  info.index = need("index", Json::Kind::String).str;
  info.modelSha256 = need("model_sha256", Json::Kind::String).str;
  for (const auto& c : need("label_columns", Json::Kind::Array).items) info.labelColumns.push_back(c.str);
  for (const auto& d : need("datasets", Json::Kind::Array).items) {
    AtlasDatasetInfo di;
    if (const Json* v = d.get("path")) di.path = v->str;
    if (const Json* v = d.get("cells")) di.cells = static_cast<int64_t>(v->num);
    if (const Json* v = d.get("embedded")) di.embedded = static_cast<int64_t>(v->num);
    if (const Json* v = d.get("sampled")) di.sampled = static_cast<int64_t>(v->num);
    if (const Json* v = d.get("model_sha256")) di.modelSha256 = v->str;
    info.datasets.push_back(di);
  }
  return info;
}

std::pair<std::string, double> voteLabel(const std::vector<std::string>& labels, const std::vector<float>& distances,
                                         bool distanceWeighted) {
  // Votes in neighbour order: the first label to reach the top total keeps it on ties, i.e.
  // ties go to the label whose best neighbour is nearest.
  std::vector<std::pair<std::string, double>> tally;
  double total = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].empty()) continue;
    const double w = distanceWeighted ? 1.0 / (static_cast<double>(distances[i]) + 1e-9) : 1.0;
    total += w;
    auto it = std::find_if(tally.begin(), tally.end(), [&](const auto& t) { return t.first == labels[i]; });
    if (it == tally.end())
      tally.emplace_back(labels[i], w);
    else
      it->second += w;
  }
  if (tally.empty()) return {std::string(), std::numeric_limits<double>::quiet_NaN()};
  size_t best = 0;
  for (size_t i = 1; i < tally.size(); ++i)
    if (tally[i].second > tally[best].second) best = i;
  return {tally[best].first, tally[best].second / total};
}

AtlasSearchResult searchAtlas(const std::string& atlasDir, const std::string& queryPath,
                              const AtlasSearchOptions& o, AtlasInfo* infoOut) {
  if (o.k < 1) fail(ErrorKind::InvalidArgument, "", "--k must be at least 1");
  AtlasInfo info = readAtlasInfo(atlasDir);
  const std::string indexPath = (fs::path(atlasDir) / "index.faiss").string();
  const std::string cellsPath = (fs::path(atlasDir) / "cells.csv").string();

  // The query first: a wrong model is the likeliest mistake, and the cheapest to find.
  auto ds = openDataset(queryPath);
  const std::string rep = o.useRep.empty() ? info.useRep : o.useRep;
  AtlasSearchResult res;
  const std::string qModel = modelOf(*ds);
  if (!o.allowOtherModel && !qModel.empty() && !info.modelSha256.empty() && qModel != info.modelSha256)
    fail(ErrorKind::InvalidArgument, queryPath,
         "was embedded with model " + shortHash(qModel) + ", but the atlas " + atlasDir +
             " holds embeddings of model " + shortHash(info.modelSha256) +
             " (uns uce/model_sha256): neighbours across models are meaningless; embed the query with the "
             "atlas's model");
  if (qModel.empty() || info.modelSha256.empty())
    res.note = std::string("the embedding model could not be checked: ") +
               (qModel.empty() ? queryPath : atlasDir) + " records no uns uce/model_sha256";
  requireObsm(*ds, rep);
  DenseMatrix q = ds->readObsm(rep);
  if (q.cols != info.dim)
    fail(ErrorKind::Shape, queryPath, "obsm['" + rep + "'] has " + std::to_string(q.cols) +
                                          " columns, but the atlas holds " + std::to_string(info.dim) +
                                          "-dimensional embeddings: embed the query with the atlas's model");

  // Atlas labels, one code table per column.
  std::vector<std::vector<std::string>> categories(info.labelColumns.size());
  std::vector<std::vector<int32_t>> codes(info.labelColumns.size());
  {
    std::istringstream in(readText(cellsPath, "cell table"));
    std::string line;
    std::getline(in, line);
    const size_t want = 4 + info.labelColumns.size();
    if (csvSplit(line).size() != want)
      fail(ErrorKind::Format, cellsPath, "header does not match atlas.json's label columns; rebuild the atlas");
    std::vector<std::map<std::string, int32_t>> lookup(info.labelColumns.size());
    int64_t rows = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto f = csvSplit(line);
      if (f.size() != want)
        fail(ErrorKind::Format, cellsPath, "line " + std::to_string(rows + 2) + " has " + std::to_string(f.size()) +
                                               " fields, expected " + std::to_string(want) + "; rebuild the atlas");
      for (size_t c = 0; c < info.labelColumns.size(); ++c) {
        auto [it, added] = lookup[c].emplace(f[4 + c], static_cast<int32_t>(categories[c].size()));
        if (added) categories[c].push_back(f[4 + c]);
        codes[c].push_back(it->second);
      }
      ++rows;
    }
    if (rows != info.cells)
      fail(ErrorKind::Format, cellsPath, "lists " + std::to_string(rows) + " cells but atlas.json says " +
                                             std::to_string(info.cells) + "; the atlas folder is damaged, rebuild it");
  }

  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::read_index(indexPath.c_str()));
  } catch (const faiss::FaissException&) {
    fail(ErrorKind::Format, indexPath, "cannot read the atlas index (damaged or not a FAISS index); rebuild the atlas");
  }
  if (index->ntotal != info.cells || index->d != info.dim)
    fail(ErrorKind::Format, indexPath, "index holds " + std::to_string(index->ntotal) + " x " +
                                           std::to_string(index->d) + " vectors but atlas.json says " +
                                           std::to_string(info.cells) + " x " + std::to_string(info.dim) +
                                           "; the atlas folder is damaged, rebuild it");
  const int k = static_cast<int>(std::min<int64_t>(o.k, info.cells));
  if (auto* h = dynamic_cast<faiss::IndexHNSW*>(index.get())) h->hnsw.efSearch = std::max(o.efSearch, k);

  ThreadScope scope(o.threads);
  res.cells = q.rows;
  res.k = k;
  res.neighbours.assign(static_cast<size_t>(q.rows * k), -1);
  res.distances.assign(static_cast<size_t>(q.rows * k), 0.f);
  for (size_t c = 0; c < info.labelColumns.size(); ++c) {
    AtlasPrediction p;
    p.column = info.labelColumns[c];
    p.label.assign(static_cast<size_t>(q.rows), std::string());
    p.confidence.assign(static_cast<size_t>(q.rows), std::numeric_limits<double>::quiet_NaN());
    res.predictions.push_back(std::move(p));
  }
  // Finite rows only, in blocks (bounded scratch memory).
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < q.rows; ++r)
    if (finiteRow(q, r))
      rows.push_back(r);
    else
      ++res.skipped;
  const size_t block = 8192;
  std::vector<float> buf, dist;
  std::vector<idx_t> ids;
  for (size_t b0 = 0; b0 < rows.size(); b0 += block) {
    const size_t b1 = std::min(rows.size(), b0 + block);
    const int64_t m = static_cast<int64_t>(b1 - b0);
    buf.resize(static_cast<size_t>(m * q.cols));
    for (int64_t i = 0; i < m; ++i)
      std::copy(q.data.begin() + rows[b0 + static_cast<size_t>(i)] * q.cols,
                q.data.begin() + (rows[b0 + static_cast<size_t>(i)] + 1) * q.cols, buf.begin() + i * q.cols);
    dist.resize(static_cast<size_t>(m * k));
    ids.resize(static_cast<size_t>(m * k));
    index->search(m, buf.data(), k, dist.data(), ids.data());
    for (int64_t i = 0; i < m; ++i) {
      const int64_t r = rows[b0 + static_cast<size_t>(i)];
      for (int j = 0; j < k; ++j) {
        const idx_t id = ids[static_cast<size_t>(i * k + j)];
        res.neighbours[static_cast<size_t>(r * k + j)] = id;
        res.distances[static_cast<size_t>(r * k + j)] =
            id < 0 ? 0.f : std::sqrt(std::max(0.f, dist[static_cast<size_t>(i * k + j)]));
      }
    }
  }
  // Votes per label column.
  std::vector<std::string> nl(static_cast<size_t>(k));
  std::vector<float> nd(static_cast<size_t>(k));
  for (int64_t r : rows) {
    for (size_t c = 0; c < info.labelColumns.size(); ++c) {
      for (int j = 0; j < k; ++j) {
        const int64_t id = res.neighbours[static_cast<size_t>(r * k + j)];
        nl[static_cast<size_t>(j)] =
            id < 0 ? std::string() : categories[c][static_cast<size_t>(codes[c][static_cast<size_t>(id)])];
        nd[static_cast<size_t>(j)] = res.distances[static_cast<size_t>(r * k + j)];
      }
      auto [label, conf] = voteLabel(nl, nd, o.distanceWeighted);
      res.predictions[c].label[static_cast<size_t>(r)] = label;
      res.predictions[c].confidence[static_cast<size_t>(r)] = conf;
    }
  }
  if (infoOut) *infoOut = info;
  return res;
}

}  // namespace uce::analysis
