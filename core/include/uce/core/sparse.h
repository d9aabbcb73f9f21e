#pragma once
// Row blocks of a count matrix in CSR form: the unit every reader streams in.
#include <cstdint>
#include <vector>

namespace uce {

// Rows [row0, row0 + rows()) of a cells x genes matrix.
// indptr: [rows + 1], starting at 0; indices: [nnz] gene columns; values: [nnz].
struct CsrBlock {
  int64_t row0 = 0;
  int64_t ncols = 0;
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  std::vector<float> values;

  int64_t rows() const { return static_cast<int64_t>(indptr.size()) - 1; }
  int64_t nnz() const { return static_cast<int64_t>(values.size()); }
  void clear(int64_t newRow0, int64_t newNcols);
  // Appends one row given its (column, value) pairs; columns need not be sorted.
  void appendRow(const int32_t* cols, const float* vals, int64_t n);
};

}  // namespace uce
