#pragma once
// A row subset of an .h5ad: chosen cells of X, layers/*, raw/X, obs, obsm/* and obsp/* (both
// axes), with var, varm, varp, raw/var, uns and every attribute kept as they are. Written to
// "<output>.tmp-<pid>", fsync'ed and renamed, so a reader sees no file or the whole file; the
// input is never modified. Memory stays bounded: dense arrays and sparse matrices are copied in
// row blocks, and values keep their stored HDF5 type (float32 stays float32, int64 stays int64).
#include <cstdint>
#include <string>
#include <vector>

#include "uce/core/dataframe.h"
#include "uce/core/dataset.h"

namespace uce {

struct SubsetReport {
  int64_t cellsIn = 0, cellsOut = 0;
  std::vector<std::string> subset;  // objects whose rows were picked ("X", "obsm/X_uce", ...)
  std::vector<std::string> copied;  // objects copied whole ("var", "uns", ...)
};

// rows: indices of the cells to keep, each in [0, cells); sorted and de-duplicated here, so the
// output keeps the input's cell order. Throws uce::Error: InvalidArgument for no rows, rows out
// of range or output == input; Unsupported for a file that is not an anndata .h5ad (e.g. 10x or
// anndata < 0.7's obs table); Io when the output cannot be written.
SubsetReport writeH5adSubset(const std::string& input, const std::string& output, std::vector<int64_t> rows);

// The same rows of an in-memory obs column / obsm matrix (rows as for writeH5adSubset, sorted).
Column subsetColumn(const Column& column, const std::vector<int64_t>& rows);
DenseMatrix subsetRows(const DenseMatrix& m, const std::vector<int64_t>& rows);

}  // namespace uce
