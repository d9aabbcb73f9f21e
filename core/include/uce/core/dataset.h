#pragma once
// An opened single-cell file (h5ad, 10x HDF5, Matrix Market directory, dense CSV/TSV), read
// lazily: metadata on open, count rows on demand in blocks, so memory stays bounded.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "uce/core/dataframe.h"
#include "uce/core/sparse.h"

namespace uce {

enum class Storage { Dense, Csr, Csc };
enum class DType { Float32, Float64, Int32, Int64, Int16, Int8, UInt32, UInt64, UInt16, UInt8, Other };
const char* storageName(Storage s);
const char* dtypeName(DType t);

// One count-like matrix in the file. key: "X", "layers/<name>" or "raw/X".
struct MatrixInfo {
  std::string key;
  Storage storage = Storage::Csr;
  DType dtype = DType::Float32;
  int64_t rows = 0;  // cells
  int64_t cols = 0;  // genes
  int64_t nnz = -1;  // stored entries; -1 for dense
};

// Row-major dense float matrix ([rows, cols] float32), used for obsm/varm arrays.
struct DenseMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;
  float at(int64_t r, int64_t c) const { return data[static_cast<size_t>(r * cols + c)]; }
};

// A scalar or string from uns. Nested dicts are flattened with '/' ("provenance/seed").
struct UnsValue {
  enum class Kind { String, Float, Int, Bool } kind = Kind::String;
  std::string s;
  double f = 0;
  int64_t i = 0;
  bool b = false;
  static UnsValue str(std::string v) { UnsValue u; u.kind = Kind::String; u.s = std::move(v); return u; }
  static UnsValue real(double v) { UnsValue u; u.kind = Kind::Float; u.f = v; return u; }
  static UnsValue integer(int64_t v) { UnsValue u; u.kind = Kind::Int; u.i = v; return u; }
  static UnsValue boolean(bool v) { UnsValue u; u.kind = Kind::Bool; u.b = v; return u; }
  std::string toString() const;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual const std::string& path() const = 0;
  virtual std::string format() const = 0;  // "h5ad", "10x-h5", "mtx", "csv"
  virtual int64_t cells() const = 0;
  virtual const DataFrame& obs() const = 0;
  // var of X (and of layers/*). raw/X has its own var: varFor("raw/X").
  virtual const DataFrame& var() const = 0;
  virtual const DataFrame& varFor(const std::string& matrixKey) const;
  virtual std::vector<MatrixInfo> matrices() const = 0;
  MatrixInfo matrix(const std::string& key) const;  // throws MissingMatrix naming the keys
  // Rows [row0, row0 + n) of matrix `key`, validated: indptr monotone, indices in range,
  // values finite. Throws uce::Error naming the file and the problem.
  virtual CsrBlock readRows(const std::string& key, int64_t row0, int64_t n) const = 0;
  // readRows into `out`, reusing its buffers: RowStream streams this way, so a pass over a
  // large matrix does not allocate and zero-fill fresh memory for every block. On error `out`
  // holds unspecified rows. The default copies readRows().
  virtual void readRowsInto(const std::string& key, int64_t row0, int64_t n, CsrBlock& out) const;
  virtual std::vector<std::string> obsmKeys() const { return {}; }
  virtual DenseMatrix readObsm(const std::string& key) const;
  virtual std::vector<std::string> varmKeys() const { return {}; }
  virtual DenseMatrix readVarm(const std::string& key) const;
  virtual std::map<std::string, UnsValue> uns() const { return {}; }
};

// Throws uce::Error(MissingMatrix) naming the file and the obsm keys it has when obsm[key] is
// absent, so the user can pick another --use-rep or embed the file first.
void requireObsm(const Dataset& ds, const std::string& key);

struct OpenOptions {
  // For CSV/TSV: true when rows are genes and columns are cells.
  bool csvGenesAsRows = false;
};

// Picks the reader from the path (directory -> Matrix Market; HDF5 with /matrix -> 10x;
// .h5ad or HDF5 with /X -> AnnData; .csv/.tsv[.gz] -> dense text). Throws uce::Error.
std::unique_ptr<Dataset> openDataset(const std::string& path, const OpenOptions& options = {});

// Which matrix holds raw counts. requested: "" = guess ("layers/counts", then "raw/X", then "X",
// the first whose sampled values are non-negative integers). reason says why, for the report.
struct CountsChoice {
  std::string key;
  std::string reason;
};
CountsChoice chooseCountsMatrix(const Dataset& ds, const std::string& requested = "");

// Throws NegativeValue / NotCounts (suggesting the counts layer when one exists) if `block`
// is not raw counts.
void requireRawCounts(const Dataset& ds, const std::string& key, const CsrBlock& block);

// Iterates all rows of one matrix in blocks of `blockRows` cells.
// part / parts: only blocks k with k % parts == part are read (one worker's share of the file
// among `parts`, e.g. a data-parallel rank's); the default reads every block.
class RowStream {
 public:
  RowStream(const Dataset& ds, std::string key, int64_t blockRows = 4096, int part = 0, int parts = 1);
  bool next(CsrBlock& out);  // false when done; out.row0 is the block's first row
  int64_t rowsDone() const { return pos_; }  // rows passed, this share's and the others'

 private:
  const Dataset& ds_;
  std::string key_;
  int64_t blockRows_;
  int part_, parts_;
  int64_t block_ = 0;
  int64_t pos_ = 0;
  int64_t total_;
};

}  // namespace uce
