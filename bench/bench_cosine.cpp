// Cosine similarity between the same obsm array in two .h5ad files, row by row (rows that are
// NaN in either file, i.e. filtered cells, are skipped). Prints mean, min and the row count.
// usage: bench_cosine A.h5ad B.h5ad [KEY=X_uce]
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>

#include "uce/core/dataset.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_cosine A.h5ad B.h5ad [KEY]\n");
    return 2;
  }
  const std::string key = argc > 3 ? argv[3] : "X_uce";
  try {
    uce::DenseMatrix a = uce::openDataset(argv[1])->readObsm(key);
    uce::DenseMatrix b = uce::openDataset(argv[2])->readObsm(key);
    if (a.rows != b.rows || a.cols != b.cols) {
      std::fprintf(stderr, "error: shapes differ\n");
      return 1;
    }
    double sum = 0, worst = 1;
    long n = 0;
    for (int64_t r = 0; r < a.rows; ++r) {
      double ab = 0, aa = 0, bb = 0;
      for (int64_t c = 0; c < a.cols; ++c) {
        const double x = a.at(r, c), y = b.at(r, c);
        ab += x * y;
        aa += x * x;
        bb += y * y;
      }
      if (!std::isfinite(ab) || aa == 0 || bb == 0) continue;
      const double cos = ab / std::sqrt(aa * bb);
      sum += cos;
      worst = std::fmin(worst, cos);
      ++n;
    }
    std::printf("cosine %s: mean %.6f, min %.6f over %ld cells\n", key.c_str(), n ? sum / n : 0.0, worst, n);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
