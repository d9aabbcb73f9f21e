// Copies one obsm array of an .h5ad into a NumPy .npy file (float32, C order), so benchmark
// scripts can bring embeddings back from a machine without Python's HDF5 stack.
// usage: bench_obsm_npy IN.h5ad OUT.npy [KEY=X_uce]
#include <cstdio>
#include <exception>
#include <string>

#include "uce/core/atomic_file.h"
#include "uce/core/dataset.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_obsm_npy IN.h5ad OUT.npy [KEY]\n");
    return 2;
  }
  const std::string key = argc > 3 ? argv[3] : "X_uce";
  try {
    const uce::DenseMatrix m = uce::openDataset(argv[1])->readObsm(key);
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(m.rows) + ", " +
                         std::to_string(m.cols) + "), }";
    header.append(64 - (10 + header.size() + 1) % 64, ' ');  // header block a multiple of 64 bytes
    header += '\n';
    std::string bytes("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    bytes += header;
    bytes.append(reinterpret_cast<const char*>(m.data.data()), m.data.size() * sizeof(float));
    uce::writeFileAtomic(argv[2], bytes);
    std::printf("%s: %s [%lld, %lld]\n", argv[2], key.c_str(), static_cast<long long>(m.rows),
                static_cast<long long>(m.cols));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
