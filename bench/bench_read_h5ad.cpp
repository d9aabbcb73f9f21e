// Reads ALL of X of one .h5ad into a single in-memory CSR with our reader (openDataset +
// readRows over every row) and prints wall time, nnz and peak RSS, for bench/read_h5ad.sh to
// compare with anndata.read_h5ad on the same file.
//   usage: bench_read_h5ad FILE [--key X] [--blocks ROWS]
//   --blocks ROWS: read in row blocks of ROWS cells (RowStream) appended into one CSR instead
//                  of one readRows call over all rows.
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [--key X] [--blocks ROWS]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  std::string key = "X";
  long long blocks = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--key") key = argv[i + 1];
    else if (opt == "--blocks") blocks = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", opt.c_str());
      return 2;
    }
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    auto ds = uce::openDataset(path);
    const int64_t rows = ds->matrix(key).rows;
    uce::CsrBlock all;
    if (blocks <= 0) {
      all = ds->readRows(key, 0, rows);
    } else {
      all.clear(0, ds->matrix(key).cols);
      const int64_t nnz = ds->matrix(key).nnz;
      if (nnz > 0) {
        all.indices.reserve(static_cast<size_t>(nnz));
        all.values.reserve(static_cast<size_t>(nnz));
      }
      all.indptr.reserve(static_cast<size_t>(rows + 1));
      uce::RowStream stream(*ds, key, blocks);
      uce::CsrBlock b;
      while (stream.next(b)) {
        const int64_t base = all.nnz();
        all.indices.insert(all.indices.end(), b.indices.begin(), b.indices.end());
        all.values.insert(all.values.end(), b.values.begin(), b.values.end());
        for (size_t r = 1; r < b.indptr.size(); ++r) all.indptr.push_back(base + b.indptr[r]);
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double checksum = 0;
    for (size_t i = 0; i < all.values.size(); i += 4096) checksum += all.values[i];
    std::printf("ours_seconds=%.3f rows=%lld nnz=%lld peak_rss_mib=%.1f checksum=%.0f\n", secs,
                static_cast<long long>(all.rows()), static_cast<long long>(all.nnz()), peakRssMiB(),
                checksum);
    return 0;
  } catch (const uce::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
