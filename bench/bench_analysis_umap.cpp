// UMAP benchmark: seeded Gaussian-cluster data (cells x dim, like an embedding of an atlas),
// the kNN graph (FAISS), our UMAP timed, trustworthiness (k = 15) of the map.
//
//   bench_analysis_umap --cells N --dim D [--clusters C] [--seed S] [--threads T] [--epochs E]
//                       [--dims 2] [--trust-sample M] [--export DIR] [--score FILE] [--no-umap]
//                       [--leiden] (also times Leiden at resolution 1 on the same graph)
//                       [--graph DIR] (reads the kNN graph an earlier --export of the same data
//                       wrote instead of building it again) [--repeats R] (the UMAP R times;
//                       umap_seconds is the fastest, the maps are identical)
//
// --export DIR writes the data and the kNN graph (15 neighbours, self first, as umap-learn's and
// umap-js's own kNN) for bench/umap_js_run.js, so the baseline maps the same input with the same
// neighbours. --score FILE scores another tool's map ([cells, dims] float32) on the same sample.
// Prints "key value" lines; bench/umap_compare.sh turns them into ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "uce/core/analysis/cluster.h"
#include "uce/core/analysis/knn.h"
#include "uce/core/analysis/umap.h"

using namespace uce::analysis;

namespace {

std::string arg(int argc, char** argv, const char* key, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], key) == 0) return argv[i + 1];
  return def;
}
bool flag(int argc, char** argv, const char* key) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], key) == 0) return true;
  return false;
}

template <class T>
void writeRaw(const std::string& path, const std::vector<T>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}

// The graph --export wrote (15 columns, self first) back as a KnnGraph of 14 neighbours.
KnnGraph readGraph(const std::string& dir, int64_t n, int k, KnnReport& kr) {
  std::vector<int32_t> idx(static_cast<size_t>(n * (k + 1)));
  std::vector<float> dist(idx.size());
  std::ifstream fi(dir + "/knn_idx.i32", std::ios::binary), fd(dir + "/knn_dist.f32", std::ios::binary);
  fi.read(reinterpret_cast<char*>(idx.data()), static_cast<std::streamsize>(idx.size() * sizeof(int32_t)));
  fd.read(reinterpret_cast<char*>(dist.data()), static_cast<std::streamsize>(dist.size() * sizeof(float)));
  if (!fi || !fd) {
    std::fprintf(stderr, "error: %s: no kNN graph of %lld cells there (write one with --export)\n", dir.c_str(),
                 static_cast<long long>(n));
    std::exit(1);
  }
  KnnGraph g;
  g.n = n;
  g.k = k;
  g.indices.resize(static_cast<size_t>(n * k));
  g.distances.resize(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) {
      g.indices[static_cast<size_t>(i * k + j)] = idx[static_cast<size_t>(i * (k + 1) + j + 1)];
      g.distances[static_cast<size_t>(i * k + j)] = dist[static_cast<size_t>(i * (k + 1) + j + 1)];
    }
  kr.method = "read from " + dir;
  kr.recall = 1;
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = std::stoll(arg(argc, argv, "--cells", "20000"));
  const int64_t dim = std::stoll(arg(argc, argv, "--dim", "64"));
  const int nClusters = std::stoi(arg(argc, argv, "--clusters", "20"));
  const uint64_t seed = std::stoull(arg(argc, argv, "--seed", "0"));
  const int threads = std::stoi(arg(argc, argv, "--threads", "0"));
  const int epochs = std::stoi(arg(argc, argv, "--epochs", "0"));
  const int dims = std::stoi(arg(argc, argv, "--dims", "2"));
  const int64_t trustSample = std::stoll(arg(argc, argv, "--trust-sample", "2000"));
  const std::string exportDir = arg(argc, argv, "--export", "");
  const std::string score = arg(argc, argv, "--score", "");

  // Clusters of unequal size and spread: centres N(0, 3^2) per coordinate, cells N(centre, s^2)
  // with s in [0.5, 1.5], sizes drawn from a Dirichlet-like split.
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> z(0.f, 1.f);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> centres(static_cast<size_t>(nClusters * dim)), spread(static_cast<size_t>(nClusters)),
      share(static_cast<size_t>(nClusters));
  for (auto& c : centres) c = 3.f * z(rng);
  float total = 0;
  for (int c = 0; c < nClusters; ++c) {
    spread[static_cast<size_t>(c)] = 0.5f + u(rng);
    share[static_cast<size_t>(c)] = 0.2f + u(rng);
    total += share[static_cast<size_t>(c)];
  }
  std::discrete_distribution<int> pick(share.begin(), share.end());
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    const int c = pick(rng);
    for (int64_t d = 0; d < dim; ++d)
      x[static_cast<size_t>(i * dim + d)] =
          centres[static_cast<size_t>(c * dim + d)] + spread[static_cast<size_t>(c)] * z(rng);
  }
  const MatrixView view{x.data(), n, dim};
  std::printf("cells %lld\ndim %lld\nthreads %d\n", static_cast<long long>(n), static_cast<long long>(dim), threads);

  KnnOptions ko;
  ko.k = 14;  // n_neighbors 15 counts the cell itself
  ko.threads = threads;
  KnnReport kr;
  const std::string graphDir = arg(argc, argv, "--graph", "");
  const KnnGraph g = graphDir.empty() ? knnGraph(view, ko, &kr) : readGraph(graphDir, n, ko.k, kr);
  std::printf("knn_method %s\nknn_seconds %.3f\nknn_recall %.4f\nknn_ef_search %d\n", kr.method.c_str(), kr.seconds, kr.recall,
              kr.efSearch);
  std::fflush(stdout);

  if (!exportDir.empty()) {
    writeRaw(exportDir + "/data.f32", x);
    std::vector<int32_t> idx(static_cast<size_t>(n * 15));
    std::vector<float> dist(static_cast<size_t>(n * 15));
    for (int64_t i = 0; i < n; ++i) {
      idx[static_cast<size_t>(i * 15)] = static_cast<int32_t>(i);
      dist[static_cast<size_t>(i * 15)] = 0.f;
      for (int j = 0; j < 14; ++j) {
        idx[static_cast<size_t>(i * 15 + j + 1)] = static_cast<int32_t>(g.neighbours(i)[j]);
        dist[static_cast<size_t>(i * 15 + j + 1)] = g.dists(i)[j];
      }
    }
    writeRaw(exportDir + "/knn_idx.i32", idx);
    writeRaw(exportDir + "/knn_dist.f32", dist);
    std::ofstream(exportDir + "/shape.txt") << n << " " << dim << " 15\n";
  }

  // The cells whose neighbourhoods trustworthiness scores: a fixed seeded sample.
  std::vector<int64_t> rows;
  if (trustSample > 0 && trustSample < n) {
    std::mt19937_64 r2(seed + 99);
    std::uniform_int_distribution<int64_t> anyCell(0, n - 1);
    for (int64_t i = 0; i < trustSample; ++i) rows.push_back(anyCell(r2));
  }

  if (flag(argc, argv, "--leiden")) {
    const auto t0 = std::chrono::steady_clock::now();
    const WeightedGraph w = fuzzyConnectivities(g);
    const Clustering c = leiden(w, LeidenOptions{});
    std::printf("leiden_seconds %.3f\nleiden_clusters %d\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), c.clusters);
  }
  if (!flag(argc, argv, "--no-umap")) {
    UmapOptions o;
    o.dims = dims;
    o.nEpochs = epochs;
    o.seed = seed;
    o.threads = threads;
    UmapReport r;
    std::vector<float> map;
    double secs = 0;
    const int repeats = std::max(1, std::stoi(arg(argc, argv, "--repeats", "1")));
    std::printf("umap_all_seconds");
    for (int rep = 0; rep < repeats; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      map = umapFromGraph(g, o, &r);
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf(" %.3f", t);
      secs = rep == 0 ? t : std::min(secs, t);
    }
    std::printf("\n");
    std::printf("umap_seconds %.3f\numap_graph_seconds %.3f\numap_init %s\numap_init_seconds %.3f\n"
                "umap_optimize_seconds %.3f\numap_epochs %d\numap_edges %lld\n",
                secs, r.graphSeconds, r.init.c_str(), r.initSeconds, r.optimizeSeconds, r.nEpochs,
                static_cast<long long>(r.edges));
    std::fflush(stdout);
    if (trustSample != 0)
      std::printf("umap_trustworthiness %.4f\n", trustworthiness(view, MatrixView{map.data(), n, dims}, 15, rows, threads));
    if (!exportDir.empty()) writeRaw(exportDir + "/ours.f32", map);
  }
  if (!score.empty()) {
    std::vector<float> other(static_cast<size_t>(n * dims));
    std::ifstream f(score, std::ios::binary);
    f.read(reinterpret_cast<char*>(other.data()), static_cast<std::streamsize>(other.size() * sizeof(float)));
    if (!f) {
      std::fprintf(stderr, "error: %s: expected %lld x %d float32 values\n", score.c_str(), static_cast<long long>(n), dims);
      return 1;
    }
    std::printf("other_trustworthiness %.4f\n", trustworthiness(view, MatrixView{other.data(), n, dims}, 15, rows, threads));
  }
  return 0;
}
