#pragma once
// A Dataset whose count matrix is held in memory as CSR over cells. The text formats (Matrix
// Market, dense CSV/TSV) cannot seek to a row, so their readers parse the file once on open
// into this; memory is bounded by the file's non-zero entries (about 16 bytes per entry).
#include <map>
#include <string>
#include <vector>

#include "uce/core/dataset.h"

namespace uce {

class MemoryCsrDataset : public Dataset {
 public:
  MemoryCsrDataset(std::string path, std::string format) : path_(std::move(path)), format_(std::move(format)) {}

  const std::string& path() const override { return path_; }
  std::string format() const override { return format_; }
  int64_t cells() const override { return static_cast<int64_t>(indptr.size()) - 1; }
  const DataFrame& obs() const override { return obsFrame; }
  const DataFrame& var() const override { return varFrame; }
  std::vector<MatrixInfo> matrices() const override;
  // Copies rows [row0, row0 + n) of "X"; validated by validateBlock().
  CsrBlock readRows(const std::string& key, int64_t row0, int64_t n) const override;
  void readRowsInto(const std::string& key, int64_t row0, int64_t n, CsrBlock& out) const override;
  std::map<std::string, UnsValue> uns() const override { return notes; }

  // Filled by the reader, then checked by finish().
  DataFrame obsFrame;
  DataFrame varFrame;
  int64_t ncols = 0;                   // genes
  std::vector<int64_t> indptr{0};      // [cells + 1]
  std::vector<int32_t> indices;        // [nnz] gene columns, sorted within a row
  std::vector<float> values;           // [nnz]
  Storage storage = Storage::Csr;      // how the file stores it (Dense for CSV)
  DType dtype = DType::Float32;        // the file's value type
  std::map<std::string, UnsValue> notes;  // what the reader changed, e.g. dropped features

  // Runs validateShape (Empty, Shape, DuplicateGenes) with `file` named in errors.
  void finish(const std::string& file);

 private:
  std::string path_;
  std::string format_;
};

// Builds CSR over cells from (cell, gene, value) triplets in any order, summing duplicates
// of the same (cell, gene) as scipy does. Triplet vectors are released as they are consumed.
void triplesToCsr(int64_t cells, std::vector<int32_t>& cellOf, std::vector<int32_t>& geneOf,
                  std::vector<float>& valueOf, MemoryCsrDataset& out);

}  // namespace uce
