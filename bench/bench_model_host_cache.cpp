// The embedding pass on the calling (main) thread and on a worker thread (as the desktop app's
// jobs run it), each with LibTorch's own CPU allocator and with the embedder's caching one
// (model/include/uce/model/host_memory.h, EmbedOptions::reuseHostBuffers). Baseline: the main
// thread with LibTorch's allocator, as `uce embed` ran before the cache. Every variant runs
// REPEATS times, interleaved, in this one process; the fastest pass of each is reported.
// usage: bench_model_host_cache DATA.h5ad ASSETS_DIR MODEL.torch [SPECIES=human] [REPEATS=2]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <thread>
#include <unistd.h>

#include "uce/model/embedder.h"
#include "uce/model/host_memory.h"

using namespace uce;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_model_host_cache DATA.h5ad ASSETS_DIR MODEL.torch [SPECIES=human] [REPEATS=2]\n");
    return 2;
  }
  const std::string species = argc > 4 ? argv[4] : "human";
  const int repeats = argc > 5 ? std::max(1, std::atoi(argv[5])) : 2;
  const auto dir = std::filesystem::temp_directory_path() / ("bench_host_cache_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  struct Variant {
    const char* name;
    bool worker, cache;
    double best = 1e300;
    int64_t cells = 0;
  } variants[] = {{"main thread, LibTorch allocator (baseline)", false, false},
                  {"worker thread, LibTorch allocator", true, false},
                  {"main thread, caching allocator", false, true},
                  {"worker thread, caching allocator", true, true}};
  try {
    for (int r = 0; r < repeats; ++r)
      for (auto& v : variants) {
        model::EmbedOptions o;
        o.input = argv[1];
        o.assetsDir = argv[2];
        o.modelFile = argv[3];
        o.species = species;
        o.output = (dir / "out.h5ad").string();
        std::filesystem::remove(o.output);
        o.reuseHostBuffers = v.cache;
        model::EmbedReport rep;
        std::exception_ptr error;
        auto run = [&] {
          try {
            rep = model::embedDataset(o);
          } catch (...) {
            error = std::current_exception();
          }
        };
        if (v.worker) {
          std::thread t(run);
          t.join();
        } else {
          run();
        }
        if (error) std::rethrow_exception(error);
        v.best = std::min(v.best, rep.embedSeconds);
        v.cells = rep.cellsEmbedded;
        std::printf("round %d  %-44s pass %7.2f s\n", r + 1, v.name, rep.embedSeconds);
        std::fflush(stdout);
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_model_host_cache: %s\n", e.what());
    std::filesystem::remove_all(dir);
    return 1;
  }
  std::filesystem::remove_all(dir);
  const double base = variants[0].best;
  std::printf("\nfastest pass of %d, %lld cells:\n", repeats, static_cast<long long>(variants[0].cells));
  for (const auto& v : variants)
    std::printf("  %-44s %7.2f s  %7.1f cells/s  %5.2fx the baseline's speed\n", v.name, v.best,
                static_cast<double>(v.cells) / v.best, base / v.best);
  const model::HostCacheStats s = model::hostCacheStats();
  std::printf("caching allocator: %llu buffers reused, %llu mapped, peak %.1f MB cached\n",
              static_cast<unsigned long long>(s.hits), static_cast<unsigned long long>(s.misses),
              static_cast<double>(s.peakCachedBytes) / 1e6);
  return 0;
}
