// 10x Genomics feature-barcode matrix in HDF5 (CellRanger 3+ filtered_feature_bc_matrix.h5):
//   /matrix/barcodes [cells] str, data [nnz], indices [nnz] (feature of each entry),
//   indptr [cells + 1], shape [2] = (features, cells), features/{id,name,feature_type,genome}.
// The matrix is compressed by cell (features x cells CSC), i.e. CSR over cells, so a range of
// cells is one contiguous slice of indices/data and streams without loading the whole file.
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <utility>

#include "h5util.h"
#include "readers.h"
#include "tenx_features.h"
#include "uce/core/error.h"

namespace uce {
namespace {

DType dtypeOf(hid_t type) {
  const size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      const bool sign = H5Tget_sign(type) == H5T_SGN_2;
      switch (size) {
        case 1: return sign ? DType::Int8 : DType::UInt8;
        case 2: return sign ? DType::Int16 : DType::UInt16;
        case 4: return sign ? DType::Int32 : DType::UInt32;
        case 8: return sign ? DType::Int64 : DType::UInt64;
        default: return DType::Other;
      }
    }
    case H5T_FLOAT: return size == 4 ? DType::Float32 : size == 8 ? DType::Float64 : DType::Other;
    default: return DType::Other;
  }
}

// One opened 1-D dataset of the 10x matrix group with its length and element class.
struct Array1d {
  std::string name;  // "matrix/indptr", for messages
  h5::Handle ds;
  int64_t length = 0;
  H5T_class_t cls = H5T_NO_CLASS;
  DType dtype = DType::Other;
};

// A corrupt file may declare far more elements than it stores; refuse before allocating.
void checkPlausible(const std::string& file, const Array1d& a, size_t elementBytes) {
  const double logical = static_cast<double>(a.length) * static_cast<double>(elementBytes);
  const double stored = static_cast<double>(H5Dget_storage_size(a.ds));
  if (logical > 64.0 * 1024 * 1024 && logical > stored * 4096.0)
    fail(ErrorKind::Truncated, file,
         "'" + a.name + "' declares " + std::to_string(a.length) + " values but only " +
             std::to_string(static_cast<int64_t>(stored)) + " bytes are stored; the file is damaged");
}

Array1d openArray(const std::string& file, hid_t f, const std::string& name, ErrorKind missing) {
  Array1d a;
  a.name = name;
  if (!h5::isDataset(f, name))
    fail(missing, file, "not a complete 10x matrix: '" + name + "' is missing");
  a.ds = h5::Handle(H5Dopen2(f, name.c_str(), H5P_DEFAULT));
  if (!a.ds.valid()) fail(ErrorKind::Truncated, file, "cannot open '" + name + "'");
  h5::Handle space(H5Dget_space(a.ds));
  h5::Handle type(H5Dget_type(a.ds));
  if (!space.valid() || !type.valid()) fail(ErrorKind::Truncated, file, "cannot read '" + name + "'");
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank != 1)
    fail(ErrorKind::Shape, file,
         "'" + name + "' should be a 1-D array but has " + std::to_string(rank) + " dimensions");
  hsize_t dim = 0;
  if (H5Sget_simple_extent_dims(space, &dim, nullptr) < 0 || dim > static_cast<hsize_t>(INT64_MAX))
    fail(ErrorKind::Truncated, file, "cannot read the size of '" + name + "'");
  a.length = static_cast<int64_t>(dim);
  a.cls = H5Tget_class(type);
  a.dtype = dtypeOf(type);
  checkPlausible(file, a, std::max<size_t>(H5Tget_size(type), 1));
  return a;
}

void requireNumeric(const std::string& file, const Array1d& a, bool integerOnly) {
  if (a.cls == H5T_INTEGER || (!integerOnly && a.cls == H5T_FLOAT)) return;
  fail(ErrorKind::Unsupported, file,
       "'" + a.name + "' holds " + (integerOnly ? "non-integer" : "non-numeric") +
           " values; a 10x matrix stores " + (integerOnly ? "integer positions" : "numbers") + " there");
}

// Elements [start, start + n) converted to `memType` (H5T_NATIVE_INT64 / H5T_NATIVE_FLOAT).
template <typename T>
std::vector<T> readSlice(const std::string& file, const Array1d& a, hid_t memType, int64_t start,
                         int64_t n) {
  std::vector<T> out(static_cast<size_t>(n));
  if (n == 0) return out;
  h5::Handle fileSpace(H5Dget_space(a.ds));
  hsize_t off = static_cast<hsize_t>(start), cnt = static_cast<hsize_t>(n);
  h5::Handle memSpace(H5Screate_simple(1, &cnt, nullptr));
  if (!fileSpace.valid() || !memSpace.valid() ||
      H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &off, nullptr, &cnt, nullptr) < 0 ||
      H5Dread(a.ds, memType, memSpace, fileSpace, H5P_DEFAULT, out.data()) < 0)
    fail(ErrorKind::Truncated, file,
         "cannot read '" + a.name + "' entries " + std::to_string(start) + ".." +
             std::to_string(start + n) + "; the file may be damaged or truncated");
  return out;
}

// A 1-D string dataset (fixed or variable length, as h5py / CellRanger write them).
std::vector<std::string> readStrings(const std::string& file, hid_t f, const std::string& name,
                                     ErrorKind missing) {
  Array1d a = openArray(file, f, name, missing);
  h5::Handle type(H5Dget_type(a.ds));
  if (a.cls != H5T_STRING)
    fail(ErrorKind::Unsupported, file, "'" + name + "' should hold text but holds numbers");
  std::vector<std::string> out;
  if (a.length == 0) return out;
  out.reserve(static_cast<size_t>(a.length));
  if (H5Tis_variable_str(type) > 0) {
    h5::Handle mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5Tget_cset(type));
    std::vector<char*> ptrs(static_cast<size_t>(a.length), nullptr);
    h5::Handle space(H5Dget_space(a.ds));
    if (H5Dread(a.ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      fail(ErrorKind::Truncated, file, "cannot read the text in '" + name + "'");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
  } else {
    const size_t len = H5Tget_size(type);
    if (len == 0) fail(ErrorKind::Truncated, file, "cannot read the text in '" + name + "'");
    h5::Handle mem(H5Tcopy(type));
    std::vector<char> buf(len * static_cast<size_t>(a.length));
    if (H5Dread(a.ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
      fail(ErrorKind::Truncated, file, "cannot read the text in '" + name + "'");
    for (int64_t i = 0; i < a.length; ++i) {
      const char* p = buf.data() + static_cast<size_t>(i) * len;
      size_t l = 0;
      while (l < len && p[l] != '\0') ++l;
      while (l > 0 && p[l - 1] == ' ') --l;  // space-padded strings
      out.emplace_back(p, l);
    }
  }
  return out;
}

class TenxH5Dataset : public Dataset {
 public:
  explicit TenxH5Dataset(const std::string& path) : path_(path) {
    h5::QuietErrors quiet;
    file_ = h5::Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!file_.valid()) fail(ErrorKind::NotHdf5, path, "cannot open as an HDF5 file");
    if (!h5::isGroup(file_, "matrix"))
      fail(ErrorKind::MissingMatrix, path,
           "no 'matrix' group: not a CellRanger 3+ feature-barcode matrix (.h5)");

    data_ = openArray(path, file_, "matrix/data", ErrorKind::MissingMatrix);
    indices_ = openArray(path, file_, "matrix/indices", ErrorKind::MissingMatrix);
    indptr_ = openArray(path, file_, "matrix/indptr", ErrorKind::MissingMatrix);
    Array1d shape = openArray(path, file_, "matrix/shape", ErrorKind::MissingMatrix);
    requireNumeric(path, data_, false);
    requireNumeric(path, indices_, true);
    requireNumeric(path, indptr_, true);
    requireNumeric(path, shape, true);
    if (shape.length != 2)
      fail(ErrorKind::Shape, path,
           "'matrix/shape' should hold 2 numbers (features, cells) but holds " +
               std::to_string(shape.length));
    auto dims = readSlice<int64_t>(path, shape, H5T_NATIVE_INT64, 0, 2);
    features_ = dims[0];
    cells_ = dims[1];
    if (features_ < 0 || cells_ < 0 || features_ > INT32_MAX || cells_ >= INT64_MAX)
      fail(ErrorKind::Shape, path,
           "'matrix/shape' = (" + std::to_string(features_) + ", " + std::to_string(cells_) +
               ") is not a valid (features, cells) shape");
    if (indptr_.length != cells_ + 1)
      fail(ErrorKind::Shape, path,
           "'matrix/indptr' has " + std::to_string(indptr_.length) + " entries but the shape says " +
               std::to_string(cells_) + " cells (expected " + std::to_string(cells_ + 1) + ")");
    if (indices_.length != data_.length)
      fail(ErrorKind::Shape, path,
           "'matrix/indices' has " + std::to_string(indices_.length) + " entries but 'matrix/data' has " +
               std::to_string(data_.length));
    auto first = readSlice<int64_t>(path, indptr_, H5T_NATIVE_INT64, 0, 1);
    auto last = readSlice<int64_t>(path, indptr_, H5T_NATIVE_INT64, cells_, 1);
    if (first[0] != 0 || last[0] != data_.length)
      fail(ErrorKind::BadIndex, path,
           "'matrix/indptr' runs from " + std::to_string(first[0]) + " to " + std::to_string(last[0]) +
               " but should run from 0 to the " + std::to_string(data_.length) + " stored values");

    obs_.index = readStrings(path, file_, "matrix/barcodes", ErrorKind::Format);
    if (static_cast<int64_t>(obs_.index.size()) != cells_)
      fail(ErrorKind::Shape, path,
           "'matrix/barcodes' lists " + std::to_string(obs_.index.size()) + " barcodes but the matrix has " +
               std::to_string(cells_) + " cells");

    FeatureTable t;
    t.names = readStrings(path, file_, "matrix/features/name", ErrorKind::Format);
    t.ids = h5::isDataset(file_, "matrix/features/id")
                ? readStrings(path, file_, "matrix/features/id", ErrorKind::Format)
                : t.names;
    if (h5::isDataset(file_, "matrix/features/feature_type"))
      t.types = readStrings(path, file_, "matrix/features/feature_type", ErrorKind::Format);
    if (h5::isDataset(file_, "matrix/features/genome"))
      t.genome = readStrings(path, file_, "matrix/features/genome", ErrorKind::Format);
    const std::pair<const char*, const std::vector<std::string>*> columns[] = {
        {"name", &t.names}, {"id", &t.ids}, {"feature_type", &t.types}, {"genome", &t.genome}};
    for (const auto& [column, values] : columns) {
      const bool optional = values == &t.types || values == &t.genome;
      if ((optional && values->empty()) || static_cast<int64_t>(values->size()) == features_) continue;
      fail(ErrorKind::Shape, path,
           std::string("'matrix/features/") + column + "' lists " + std::to_string(values->size()) +
               " features but the matrix has " + std::to_string(features_));
    }
    sel_ = selectGeneExpression(t, path);
    var_ = featureVar(t, sel_);
    if (!sel_.note.empty()) notes_[kNoteDroppedFeatures] = UnsValue::str(sel_.note);
    // Repeated symbols are common in 10x references; anndata users call var_names_make_unique.
    std::vector<std::string> before = var_.index;
    if (int64_t renamed = makeNamesUnique(var_.index)) {
      std::string example;
      for (size_t i = 0; i < before.size() && example.empty(); ++i)
        if (before[i] != var_.index[i]) example = "'" + before[i] + "' -> '" + var_.index[i] + "'";
      notes_[kNoteRenamedGenes] = UnsValue::str(
          "made " + std::to_string(renamed) + " repeated gene names unique as anndata's "
          "var_names_make_unique does (e.g. " + example + ")");
    }
    validateShape(path, obs_, var_, cells_, sel_.kept, "X");
  }

  const std::string& path() const override { return path_; }
  std::string format() const override { return "10x-h5"; }
  int64_t cells() const override { return cells_; }
  const DataFrame& obs() const override { return obs_; }
  const DataFrame& var() const override { return var_; }
  std::map<std::string, UnsValue> uns() const override { return notes_; }

  std::vector<MatrixInfo> matrices() const override {
    MatrixInfo m;
    m.key = "X";
    m.storage = Storage::Csr;  // CSC over features = CSR over cells
    m.dtype = data_.dtype;
    m.rows = cells_;
    m.cols = sel_.kept;
    m.nnz = data_.length;  // stored entries, including features dropped from the columns
    return {m};
  }

  CsrBlock readRows(const std::string& key, int64_t row0, int64_t n) const override {
    CsrBlock b;
    readRowsInto(key, row0, n, b);
    return b;
  }

  void readRowsInto(const std::string& key, int64_t row0, int64_t n, CsrBlock& b) const override {
    if (key != "X") matrix(key);  // throws MissingMatrix listing "X"
    if (row0 < 0 || n < 0 || row0 > cells_ || n > cells_ - row0)
      fail(ErrorKind::InvalidArgument, path_,
           "rows " + std::to_string(row0) + ".." + std::to_string(row0 + n) +
               " requested but the file has " + std::to_string(cells_) + " cells");
    std::lock_guard<std::mutex> lock(mutex_);  // one HDF5 call at a time per file
    h5::QuietErrors quiet;
    b.clear(row0, sel_.kept);
    if (n == 0) return;
    auto ptr = readSlice<int64_t>(path_, indptr_, H5T_NATIVE_INT64, row0, n + 1);
    for (int64_t r = 0; r <= n; ++r) {
      const int64_t p = ptr[static_cast<size_t>(r)];
      if (p < 0 || p > data_.length || (r > 0 && p < ptr[static_cast<size_t>(r - 1)]))
        fail(ErrorKind::BadIndex, path_,
             "'matrix/indptr' is broken at cell " + std::to_string(row0 + r) + " (value " +
                 std::to_string(p) + ", " + std::to_string(data_.length) + " values stored)");
    }
    const int64_t begin = ptr.front(), count = ptr.back() - ptr.front();
    auto idx = readSlice<int64_t>(path_, indices_, H5T_NATIVE_INT64, begin, count);
    auto val = readSlice<float>(path_, data_, H5T_NATIVE_FLOAT, begin, count);
    b.indices.reserve(static_cast<size_t>(count));
    b.values.reserve(static_cast<size_t>(count));
    b.indptr.reserve(static_cast<size_t>(n) + 1);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t k = ptr[static_cast<size_t>(r)] - begin; k < ptr[static_cast<size_t>(r + 1)] - begin; ++k) {
        const int64_t feature = idx[static_cast<size_t>(k)];
        if (feature < 0 || feature >= features_)
          fail(ErrorKind::BadIndex, path_,
               "'matrix/indices' refers to feature " + std::to_string(feature) + " in cell " +
                   std::to_string(row0 + r) + " but there are " + std::to_string(features_) + " features");
        const int32_t col = sel_.newIndex.empty() ? static_cast<int32_t>(feature)
                                                  : sel_.newIndex[static_cast<size_t>(feature)];
        if (col < 0) continue;  // not a gene-expression feature
        b.indices.push_back(col);
        b.values.push_back(val[static_cast<size_t>(k)]);
      }
      b.indptr.push_back(static_cast<int64_t>(b.values.size()));
    }
    validateBlock(path_, key, b);
  }

 private:
  std::string path_;
  h5::Handle file_;
  Array1d data_, indices_, indptr_;
  int64_t features_ = 0, cells_ = 0;
  FeatureSelection sel_;
  DataFrame obs_, var_;
  std::map<std::string, UnsValue> notes_;
  mutable std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Dataset> openTenxH5(const std::string& path) {
  return std::make_unique<TenxH5Dataset>(path);
}

}  // namespace uce
