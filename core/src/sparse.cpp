#include "uce/core/sparse.h"

namespace uce {

void CsrBlock::clear(int64_t newRow0, int64_t newNcols) {
  row0 = newRow0;
  ncols = newNcols;
  indptr.assign(1, 0);
  indices.clear();
  values.clear();
}

void CsrBlock::appendRow(const int32_t* cols, const float* vals, int64_t n) {
  indices.insert(indices.end(), cols, cols + n);
  values.insert(values.end(), vals, vals + n);
  indptr.push_back(static_cast<int64_t>(values.size()));
}

}  // namespace uce
