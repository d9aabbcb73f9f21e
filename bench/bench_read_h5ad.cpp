// Reads ALL of X of one .h5ad with our reader and prints wall time, nnz and peak RSS, for
// bench/read_h5ad.sh to compare with anndata.read_h5ad on the same file. The time includes
// opening the file (obs and var are read on open, as anndata reads them).
//   usage: bench_read_h5ad FILE [--mode stream|full] [--key X] [--block-rows 4096]
//   --mode stream: every row through RowStream in blocks of --block-rows cells, the way the
//                  embedder and every other consumer reads (memory bounded by one block);
//   --mode full:   one readRows over all rows into a single in-memory CSR (what anndata does).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "uce/core/dataset.h"
#include "uce/core/error.h"

namespace {

double peakRssMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return -1;
}

// Rows, non-zeros and a checksum of every 1024th stored value (the same entries in both
// modes), so that the reads cannot be optimised away; cheap next to the reading itself, as
// anndata's figure includes no pass over the values either.
struct Summary {
  double checksum = 0;
  int64_t rows = 0, nnz = 0;
  void add(const uce::CsrBlock& b) {
    const int64_t first = (1024 - nnz % 1024) % 1024;
    for (int64_t k = first; k < b.nnz(); k += 1024) checksum += b.values[static_cast<size_t>(k)];
    rows += b.rows();
    nnz += b.nnz();
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [--mode stream|full] [--key X] [--block-rows N]\n",
                 argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  std::string key = "X", mode = "full";
  long long blockRows = 4096;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--key") key = argv[i + 1];
    else if (opt == "--mode") mode = argv[i + 1];
    else if (opt == "--block-rows") blockRows = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", opt.c_str());
      return 2;
    }
  }
  if (mode != "stream" && mode != "full") {
    std::fprintf(stderr, "--mode must be stream or full\n");
    return 2;
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    auto ds = uce::openDataset(path);
    Summary s;
    if (mode == "full") {
      const uce::CsrBlock all = ds->readRows(key, 0, ds->matrix(key).rows);
      s.add(all);
    } else {
      uce::RowStream stream(*ds, key, blockRows);
      uce::CsrBlock b;
      while (stream.next(b)) s.add(b);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("mode=%s seconds=%.3f rows=%lld nnz=%lld peak_rss_mib=%.1f checksum=%.0f\n",
                mode.c_str(), secs, static_cast<long long>(s.rows),
                static_cast<long long>(s.nnz), peakRssMiB(), s.checksum);
    return 0;
  } catch (const uce::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
