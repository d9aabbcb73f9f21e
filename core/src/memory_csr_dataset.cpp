#include "memory_csr_dataset.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "readers.h"
#include "uce/core/error.h"

namespace uce {

std::vector<MatrixInfo> MemoryCsrDataset::matrices() const {
  MatrixInfo m;
  m.key = "X";
  m.storage = storage;
  m.dtype = dtype;
  m.rows = cells();
  m.cols = ncols;
  m.nnz = storage == Storage::Dense ? -1 : static_cast<int64_t>(values.size());
  return {m};
}

CsrBlock MemoryCsrDataset::readRows(const std::string& key, int64_t row0, int64_t n) const {
  CsrBlock b;
  readRowsInto(key, row0, n, b);
  return b;
}

void MemoryCsrDataset::readRowsInto(const std::string& key, int64_t row0, int64_t n, CsrBlock& b) const {
  if (key != "X") matrix(key);  // throws MissingMatrix listing "X"
  if (row0 < 0 || n < 0 || row0 > cells() || n > cells() - row0)
    fail(ErrorKind::InvalidArgument, path_,
         "rows " + std::to_string(row0) + ".." + std::to_string(row0 + n) +
             " requested but the file has " + std::to_string(cells()) + " cells");
  const auto first = static_cast<size_t>(row0);
  const auto begin = static_cast<std::ptrdiff_t>(indptr[first]);
  const auto end = static_cast<std::ptrdiff_t>(indptr[first + static_cast<size_t>(n)]);
  b.row0 = row0;
  b.ncols = ncols;
  b.indptr.resize(static_cast<size_t>(n) + 1);
  for (size_t r = 0; r <= static_cast<size_t>(n); ++r) b.indptr[r] = indptr[first + r] - begin;
  b.indices.assign(indices.begin() + begin, indices.begin() + end);
  b.values.assign(values.begin() + begin, values.begin() + end);
  validateBlock(path_, key, b);
}

void MemoryCsrDataset::finish(const std::string& file) {
  validateShape(file, obsFrame, varFrame, cells(), ncols, "X");
}

void triplesToCsr(int64_t cells, std::vector<int32_t>& cellOf, std::vector<int32_t>& geneOf,
                  std::vector<float>& valueOf, MemoryCsrDataset& out) {
  const size_t nnz = valueOf.size();
  std::vector<int64_t> ptr(static_cast<size_t>(cells) + 1, 0);
  for (int32_t c : cellOf) ++ptr[static_cast<size_t>(c) + 1];
  std::partial_sum(ptr.begin(), ptr.end(), ptr.begin());
  std::vector<int32_t> idx(nnz);
  std::vector<float> val(nnz);
  {
    std::vector<int64_t> fillAt(ptr.begin(), ptr.end() - 1);
    for (size_t k = 0; k < nnz; ++k) {
      auto p = static_cast<size_t>(fillAt[static_cast<size_t>(cellOf[k])]++);
      idx[p] = geneOf[k];
      val[p] = valueOf[k];
    }
  }
  std::vector<int32_t>().swap(cellOf);
  std::vector<int32_t>().swap(geneOf);
  std::vector<float>().swap(valueOf);

  // Sort each row by gene and sum repeated (cell, gene) entries, compacting in place.
  std::vector<std::pair<int32_t, float>> row;
  size_t w = 0;
  for (int64_t r = 0; r < cells; ++r) {
    auto b = static_cast<size_t>(ptr[static_cast<size_t>(r)]);
    auto e = static_cast<size_t>(ptr[static_cast<size_t>(r) + 1]);
    ptr[static_cast<size_t>(r)] = static_cast<int64_t>(w);
    if (!std::is_sorted(idx.begin() + static_cast<std::ptrdiff_t>(b), idx.begin() + static_cast<std::ptrdiff_t>(e))) {
      row.clear();
      for (size_t k = b; k < e; ++k) row.emplace_back(idx[k], val[k]);
      std::stable_sort(row.begin(), row.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      for (size_t k = b; k < e; ++k) {
        idx[k] = row[k - b].first;
        val[k] = row[k - b].second;
      }
    }
    for (size_t k = b; k < e; ++k) {
      if (w > static_cast<size_t>(ptr[static_cast<size_t>(r)]) && idx[w - 1] == idx[k]) {
        val[w - 1] += val[k];
      } else {
        idx[w] = idx[k];
        val[w] = val[k];
        ++w;
      }
    }
  }
  ptr[static_cast<size_t>(cells)] = static_cast<int64_t>(w);
  idx.resize(w);
  val.resize(w);
  out.indptr = std::move(ptr);
  out.indices = std::move(idx);
  out.values = std::move(val);
}

}  // namespace uce
