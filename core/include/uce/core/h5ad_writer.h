#pragma once
// Writing AnnData .h5ad files (anndata >= 0.8 encoding, readable by anndata 0.7-0.10), and
// adding results to existing files. All writes go to a temporary file beside the target that
// is fsync'ed and renamed over it on commit(): a killed process never leaves a half-written
// file, and the input is never modified unless in-place was asked for.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "uce/core/dataframe.h"
#include "uce/core/dataset.h"
#include "uce/core/sparse.h"

namespace uce {

// New .h5ad from scratch. X is CSR, float32 values, int32 indices, int64 indptr, streamed in
// row blocks (so synthetic atlases of millions of cells are written in bounded memory).
class H5adWriter {
 public:
  // Creates "<path>.tmp-<pid>" beside path. Throws uce::Error(Io) if it cannot.
  H5adWriter(std::string path, int64_t nGenes);
  ~H5adWriter();  // removes the temporary file when commit() was not reached
  H5adWriter(const H5adWriter&) = delete;
  H5adWriter& operator=(const H5adWriter&) = delete;

  // Appends rows to X (block.ncols must equal nGenes). Blocks come in row order.
  void appendRows(const CsrBlock& block);
  int64_t rowsWritten() const;
  void setObs(const DataFrame& obs);  // rows must equal rowsWritten() at commit
  void setVar(const DataFrame& var);  // rows must equal nGenes
  void setObsm(const std::string& name, const DenseMatrix& m);
  void setUns(const std::string& key, const UnsValue& v);  // key may contain '/'
  // Writes obs/var/obsm/uns, checks shapes, closes, fsyncs, renames over path.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Adds results to an existing .h5ad: copies `input` to a temporary file beside `output`
// (output == input means in place), adds/replaces obsm arrays, obs columns and uns entries,
// leaves every other object byte-identical, fsyncs and renames. Large obsm arrays stream in
// row blocks through beginObsm/writeObsmRows.
class ResultsWriter {
 public:
  ResultsWriter(const std::string& input, const std::string& output);
  ~ResultsWriter();  // discards the temporary copy when commit() was not reached
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;

  int64_t cells() const;
  // Replaces obsm[name] if present. [cells, cols] float32.
  void beginObsm(const std::string& name, int64_t cols);
  void writeObsmRows(const std::string& name, int64_t row0, const float* data, int64_t nrows);
  void setObsm(const std::string& name, const DenseMatrix& m);
  // Adds or replaces an obs column (categorical, float, int, bool or string).
  void setObsColumn(const Column& column);
  void setUns(const std::string& key, const UnsValue& v);
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace uce
