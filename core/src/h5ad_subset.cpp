// Row subsets of .h5ad files at the HDF5 level: every object indexed by cells is rewritten with
// the chosen rows (dense arrays gathered in row blocks, CSR/CSC matrices re-compressed), every
// other object is copied with H5Ocopy, and attributes are copied one by one (object references,
// anndata 0.7's link from categorical codes to obs/__categories, are re-pointed into the new
// file). The new file is written beside the output and renamed over it when complete.
#include "uce/core/h5ad_subset.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "h5util.h"
#include "uce/core/error.h"

namespace uce {
namespace {

namespace fs = std::filesystem;
using h5::Handle;

// Bytes of source rows read at a time when gathering dense rows / sparse entries.
constexpr size_t kBlockBytes = size_t{32} << 20;
// Chunk (elements) of the extendible 1-D arrays of re-compressed sparse matrices.
constexpr hsize_t kChunkElems = hsize_t{1} << 18;

// Which rows survive: rows (sorted, unique) and, per input row, its output row or -1.
struct RowMap {
  int64_t n = 0;
  std::vector<int64_t> rows;
  std::vector<int64_t> newIndex;
};

class Subsetter {
 public:
  Subsetter(std::string input, std::string output, const RowMap& map, SubsetReport& report)
      : input_(std::move(input)), output_(std::move(output)), map_(map), report_(report) {}

  void run(hid_t src, hid_t dst) {
    copyAttrs(src, dst);
    for (const std::string& name : h5::children(src)) {
      if (name == "X") {
        element(src, dst, name, name, false);
      } else if (name == "layers" || name == "obsm" || name == "raw") {
        Handle sg = openGroup(src, name), dg = newGroup(dst, name);
        copyAttrs(sg, dg);
        for (const std::string& child : h5::children(sg)) {
          const std::string path = name + "/" + child;
          if (name == "raw" && child != "X") copyWhole(sg, dg, child, path);
          else element(sg, dg, child, path, false);
        }
      } else if (name == "obsp") {
        Handle sg = openGroup(src, name), dg = newGroup(dst, name);
        copyAttrs(sg, dg);
        for (const std::string& child : h5::children(sg)) element(sg, dg, child, name + "/" + child, true);
      } else if (name == "obs") {
        if (!h5::isGroup(src, name))
          fail(ErrorKind::Unsupported, input_,
               "obs is stored as one table (anndata < 0.7); open and save the file with a current anndata "
               "(anndata.read_h5ad(f).write_h5ad(f)) and export the selection again");
        element(src, dst, name, name, false);
      } else {
        copyWhole(src, dst, name, name);
      }
    }
  }

 private:
  [[noreturn]] void readFail(const std::string& what) const {
    fail(ErrorKind::Truncated, input_, "cannot read '" + what + "' (the file may be damaged or truncated)");
  }
  [[noreturn]] void writeFail(const std::string& what) const {
    fail(ErrorKind::Io, output_, "cannot write '" + what + "' (is the disk full?)");
  }

  Handle openGroup(hid_t loc, const std::string& name) const {
    Handle g(H5Gopen2(loc, name.c_str(), H5P_DEFAULT));
    if (!g.valid()) readFail(name);
    return g;
  }
  Handle newGroup(hid_t loc, const std::string& name) const {
    Handle g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!g.valid()) writeFail(name);
    return g;
  }

  void copyWhole(hid_t src, hid_t dst, const std::string& name, const std::string& path) {
    if (H5Ocopy(src, name.c_str(), dst, name.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0) writeFail(path);
    report_.copied.push_back(path);
  }

  struct AttrCopy {
    hid_t dst;
    bool skipShape;
  };

  static herr_t copyOneAttr(hid_t obj, const char* name, const H5A_info_t*, void* data) {
    auto* c = static_cast<AttrCopy*>(data);
    if (c->skipShape && std::strcmp(name, "shape") == 0) return 0;
    Handle a(H5Aopen(obj, name, H5P_DEFAULT));
    Handle type(H5Aget_type(a)), space(H5Aget_space(a));
    if (!a.valid() || !type.valid() || !space.valid()) return -1;
    if (H5Aexists(c->dst, name) > 0) H5Adelete(c->dst, name);
    Handle out(H5Acreate2(c->dst, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    if (!out.valid()) return -1;
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n < 0) return -1;
    if (H5Tget_class(type) == H5T_REFERENCE) {
      // Object references point into the source file: re-create each to the object of the same
      // path in the new file (anndata 0.7 categoricals; the target is copied before its users).
      if (!H5Tequal(type, H5T_STD_REF_OBJ)) return -1;
      std::vector<hobj_ref_t> refs(static_cast<size_t>(n));
      if (n > 0 && H5Aread(a, H5T_STD_REF_OBJ, refs.data()) < 0) return -1;
      for (hobj_ref_t& r : refs) {
        Handle target(H5Rdereference2(obj, H5P_DEFAULT, H5R_OBJECT, &r));
        if (!target.valid()) return -1;
        char path[4096];
        if (H5Iget_name(target, path, sizeof path) <= 0) return -1;
        if (H5Rcreate(&r, c->dst, path, H5R_OBJECT, -1) < 0) return -1;
      }
      return H5Awrite(out, H5T_STD_REF_OBJ, refs.data()) < 0 ? -1 : 0;
    }
    std::vector<char> buf(static_cast<size_t>(n) * H5Tget_size(type) + 1);
    if (n > 0 && H5Aread(a, type, buf.data()) < 0) return -1;
    herr_t rc = n > 0 ? H5Awrite(out, type, buf.data()) : 0;
    if (n > 0 && (H5Tdetect_class(type, H5T_VLEN) > 0 || H5Tis_variable_str(type) > 0))
      H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf.data());
    return rc < 0 ? -1 : 0;
  }

  void copyAttrs(hid_t src, hid_t dst, bool skipShape = false) const {
    AttrCopy c{dst, skipShape};
    hsize_t idx = 0;
    if (H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, &Subsetter::copyOneAttr, &c) < 0) {
      char name[1024] = "";
      H5Iget_name(src, name, sizeof name);
      writeFail(std::string("attributes of ") + name);
    }
  }

  std::string encodingOf(hid_t obj) const {
    std::string enc;
    h5::readAttrString(obj, "encoding-type", enc);
    return enc;
  }

  // One element indexed by cells along its first axis (and the second too when square).
  void element(hid_t src, hid_t dst, const std::string& name, const std::string& path, bool square) {
    if (h5::isDataset(src, name)) {
      denseRows(src, dst, name, path, square);
      return;
    }
    if (!h5::isGroup(src, name)) {  // soft links and the like: keep as they are
      copyWhole(src, dst, name, path);
      return;
    }
    Handle sg = openGroup(src, name);
    const std::string enc = encodingOf(sg);
    if (enc == "csr_matrix" || enc == "csc_matrix") {
      sg.reset();
      sparse(src, dst, name, path, enc == "csr_matrix", square);
    } else if (enc == "categorical") {
      Handle dg = newGroup(dst, name);
      copyAttrs(sg, dg);
      for (const std::string& child : h5::children(sg)) {
        if (child == "codes") element(sg, dg, child, path + "/" + child, false);
        else copyWhole(sg, dg, child, path + "/" + child);
      }
    } else {
      // dataframe (obs, or a data frame in obsm), nullable arrays, dicts: each member is indexed
      // by cells, except a data frame's __categories (anndata 0.7), which is copied first.
      Handle dg = newGroup(dst, name);
      copyAttrs(sg, dg);
      std::vector<std::string> kids = h5::children(sg);
      auto cats = std::find(kids.begin(), kids.end(), "__categories");
      if (cats != kids.end()) {
        copyWhole(sg, dg, *cats, path + "/__categories");
        kids.erase(cats);
      }
      for (const std::string& child : kids) element(sg, dg, child, path + "/" + child, false);
    }
  }

  // A dataset whose first dimension is cells: the chosen rows, in row blocks. Scalars and
  // arrays of another length are not per-cell data and are copied whole.
  void denseRows(hid_t src, hid_t dst, const std::string& name, const std::string& path, bool square) {
    Handle sd(H5Dopen2(src, name.c_str(), H5P_DEFAULT));
    if (!sd.valid()) readFail(path);
    std::vector<hsize_t> dims;
    if (!h5::datasetDims(sd, dims)) readFail(path);
    if (dims.empty() || static_cast<int64_t>(dims[0]) != map_.n) {
      copyWhole(src, dst, name, path);
      return;
    }
    const bool cols = square && dims.size() == 2 && static_cast<int64_t>(dims[1]) == map_.n;
    Handle type(H5Dget_type(sd));
    if (!type.valid()) readFail(path);
    const size_t elem = H5Tget_size(type);
    size_t perRow = 1;
    for (size_t d = 1; d < dims.size(); ++d) perRow *= dims[d];
    const size_t rowBytes = elem * perRow;
    std::vector<hsize_t> outDims = dims;
    outDims[0] = map_.rows.size();
    if (cols) outDims[1] = map_.rows.size();
    const size_t outRowBytes = cols ? elem * map_.rows.size() : rowBytes;
    Handle outSpace(H5Screate_simple(static_cast<int>(outDims.size()), outDims.data(), nullptr));
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    const bool big = outRowBytes * map_.rows.size() > (size_t{1} << 20);
    if (big) {  // chunked and deflated like anndata's own large arrays; small ones contiguous
      std::vector<hsize_t> chunk = outDims;
      const size_t chunkRows = std::max<size_t>(1, (size_t{1} << 20) / std::max<size_t>(outRowBytes, 1));
      chunk[0] = std::min<hsize_t>(outDims[0], chunkRows);
      for (size_t d = 1; d < chunk.size(); ++d) chunk[d] = std::max<hsize_t>(1, chunk[d]);
      H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
      if (H5Tget_class(type) != H5T_STRING) H5Pset_deflate(dcpl, 4);
    }
    Handle dd(H5Dcreate2(dst, name.c_str(), type, outSpace, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    if (!dd.valid()) writeFail(path);
    copyAttrs(sd, dd);

    const bool vlen = H5Tdetect_class(type, H5T_VLEN) > 0 || H5Tis_variable_str(type) > 0;
    const int64_t blockRows = std::max<int64_t>(1, static_cast<int64_t>(kBlockBytes / std::max<size_t>(rowBytes, 1)));
    Handle inSpace(H5Dget_space(sd));
    std::vector<char> in, out;
    size_t k = 0;  // next selected row
    int64_t written = 0;
    while (k < map_.rows.size()) {
      const int64_t r0 = map_.rows[k];
      const int64_t r1 = std::min(map_.n, r0 + blockRows);
      size_t kEnd = k;
      while (kEnd < map_.rows.size() && map_.rows[kEnd] < r1) ++kEnd;
      // Read the source rows [r0, r1) in full, keep the selected ones.
      std::vector<hsize_t> start(dims.size(), 0), count = dims;
      start[0] = static_cast<hsize_t>(r0);
      count[0] = static_cast<hsize_t>(r1 - r0);
      in.resize(static_cast<size_t>(r1 - r0) * rowBytes);
      Handle memIn(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
      H5Sselect_hyperslab(inSpace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
      if (H5Dread(sd, type, memIn, inSpace, H5P_DEFAULT, in.data()) < 0) readFail(path);
      const size_t nOut = kEnd - k;
      out.resize(nOut * outRowBytes);
      for (size_t j = 0; j < nOut; ++j) {
        const char* row = in.data() + static_cast<size_t>(map_.rows[k + j] - r0) * rowBytes;
        char* o = out.data() + j * outRowBytes;
        if (!cols) {
          std::memcpy(o, row, rowBytes);
        } else {
          for (size_t c = 0; c < map_.rows.size(); ++c)
            std::memcpy(o + c * elem, row + static_cast<size_t>(map_.rows[c]) * elem, elem);
        }
      }
      std::vector<hsize_t> ostart(outDims.size(), 0), ocount = outDims;
      ostart[0] = static_cast<hsize_t>(written);
      ocount[0] = nOut;
      Handle memOut(H5Screate_simple(static_cast<int>(ocount.size()), ocount.data(), nullptr));
      Handle fileOut(H5Dget_space(dd));
      H5Sselect_hyperslab(fileOut, H5S_SELECT_SET, ostart.data(), nullptr, ocount.data(), nullptr);
      const herr_t rc = H5Dwrite(dd, type, memOut, fileOut, H5P_DEFAULT, out.data());
      if (vlen) H5Dvlen_reclaim(type, memIn, H5P_DEFAULT, in.data());  // frees the strings read
      if (rc < 0) writeFail(path);
      written += static_cast<int64_t>(nOut);
      k = kEnd;
    }
    report_.subset.push_back(path);
  }

  Handle extendible(hid_t group, const char* name, hid_t type, const std::string& path) const {
    const hsize_t zero = 0, unlimited = H5S_UNLIMITED;
    Handle space(H5Screate_simple(1, &zero, &unlimited));
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl, 1, &kChunkElems);
    Handle d(H5Dcreate2(group, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    if (!d.valid()) writeFail(path + "/" + name);
    return d;
  }

  void append(hid_t d, hid_t memType, const void* data, size_t n, hsize_t& size, const std::string& path) const {
    if (n == 0) return;
    const hsize_t newSize = size + n;
    if (H5Dset_extent(d, &newSize) < 0) writeFail(path);
    Handle fs(H5Dget_space(d));
    const hsize_t start = size, count = n;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
    Handle ms(H5Screate_simple(1, &count, nullptr));
    if (H5Dwrite(d, memType, ms, fs, H5P_DEFAULT, data) < 0) writeFail(path);
    size = newSize;
  }

  // CSR keeps the chosen rows (cells); CSC keeps, in each column, the entries of chosen rows. For
  // square obsp matrices both axes are subset. Entries are read in blocks of whole rows/columns.
  void sparse(hid_t src, hid_t dst, const std::string& name, const std::string& path, bool csr, bool square) {
    Handle sg = openGroup(src, name);
    std::vector<int64_t> shape;
    if (!h5::readAttrInts(sg, "shape", shape) || shape.size() != 2) readFail(path + " (its shape)");
    if (shape[0] != map_.n) {  // not indexed by cells: keep as it is
      copyWhole(src, dst, name, path);
      return;
    }
    square = square && shape[1] == map_.n;
    const int64_t k = static_cast<int64_t>(map_.rows.size());
    const int64_t major = csr ? shape[0] : shape[1];
    // Kept major elements (rows of a CSR, columns of a CSC) and the map of minor indices.
    std::vector<int64_t> keep;
    if (csr) {
      keep = map_.rows;
    } else if (square) {
      keep = map_.rows;
    } else {
      keep.resize(static_cast<size_t>(major));
      for (int64_t j = 0; j < major; ++j) keep[static_cast<size_t>(j)] = j;
    }
    const std::vector<int64_t>* minorMap = (!csr || square) ? &map_.newIndex : nullptr;

    Handle sData(H5Dopen2(sg, "data", H5P_DEFAULT)), sIdx(H5Dopen2(sg, "indices", H5P_DEFAULT)),
        sPtr(H5Dopen2(sg, "indptr", H5P_DEFAULT));
    if (!sData.valid() || !sIdx.valid() || !sPtr.valid()) readFail(path + " (data, indices or indptr)");
    std::vector<int64_t> indptr(static_cast<size_t>(major + 1));
    std::vector<hsize_t> pdims;
    if (!h5::datasetDims(sPtr, pdims) || pdims.size() != 1 || static_cast<int64_t>(pdims[0]) != major + 1 ||
        H5Dread(sPtr, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, indptr.data()) < 0)
      readFail(path + "/indptr");
    for (int64_t j = 0; j < major; ++j)
      if (indptr[static_cast<size_t>(j)] < 0 || indptr[static_cast<size_t>(j + 1)] < indptr[static_cast<size_t>(j)])
        fail(ErrorKind::BadIndex, input_, "'" + path + "/indptr' is not monotone; the matrix is damaged");
    Handle dataType(H5Dget_type(sData)), idxType(H5Dget_type(sIdx)), ptrType(H5Dget_type(sPtr));
    const size_t elem = H5Tget_size(dataType);

    Handle dg = newGroup(dst, name);
    copyAttrs(sg, dg, /*skipShape=*/true);
    h5::writeAttrInts(dg, "shape", {k, square ? k : shape[1]});
    Handle oData = extendible(dg, "data", dataType, path);
    Handle oIdx = extendible(dg, "indices", idxType, path);
    hsize_t nData = 0, nIdx = 0;
    std::vector<int64_t> outPtr{0};
    outPtr.reserve(keep.size() + 1);

    const size_t blockElems = std::max<size_t>(1, kBlockBytes / (elem + 8));
    std::vector<char> data, outData;
    std::vector<int64_t> idx, outIdx;
    size_t q = 0;
    while (q < keep.size()) {
      // Kept majors [q, qEnd) whose entries, with the skipped ones between, fit one block.
      const int64_t e0 = indptr[static_cast<size_t>(keep[q])];
      size_t qEnd = q + 1;
      while (qEnd < keep.size() &&
             static_cast<size_t>(indptr[static_cast<size_t>(keep[qEnd]) + 1] - e0) <= blockElems)
        ++qEnd;
      const int64_t e1 = indptr[static_cast<size_t>(keep[qEnd - 1]) + 1];
      const size_t n = static_cast<size_t>(e1 - e0);
      data.resize(n * elem);
      idx.resize(n);
      if (n > 0) {
        Handle fs1(H5Dget_space(sData)), fs2(H5Dget_space(sIdx));
        const hsize_t start = static_cast<hsize_t>(e0), count = n;
        Handle ms(H5Screate_simple(1, &count, nullptr));
        H5Sselect_hyperslab(fs1, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
        H5Sselect_hyperslab(fs2, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
        if (H5Dread(sData, dataType, ms, fs1, H5P_DEFAULT, data.data()) < 0) readFail(path + "/data");
        if (H5Dread(sIdx, H5T_NATIVE_INT64, ms, fs2, H5P_DEFAULT, idx.data()) < 0) readFail(path + "/indices");
      }
      outData.clear();
      outIdx.clear();
      for (size_t j = q; j < qEnd; ++j) {
        const int64_t m = keep[j];
        for (int64_t p = indptr[static_cast<size_t>(m)]; p < indptr[static_cast<size_t>(m) + 1]; ++p) {
          const size_t local = static_cast<size_t>(p - e0);
          int64_t minor = idx[local];
          if (minorMap) {
            if (minor < 0 || minor >= map_.n)
              fail(ErrorKind::BadIndex, input_, "'" + path + "/indices' holds an index out of range; the matrix is damaged");
            minor = (*minorMap)[static_cast<size_t>(minor)];
            if (minor < 0) continue;
          }
          outIdx.push_back(minor);
          outData.insert(outData.end(), data.data() + local * elem, data.data() + (local + 1) * elem);
        }
        outPtr.push_back(static_cast<int64_t>(nIdx + outIdx.size()));
      }
      append(oData, dataType, outData.data(), outIdx.size(), nData, path + "/data");
      append(oIdx, H5T_NATIVE_INT64, outIdx.data(), outIdx.size(), nIdx, path + "/indices");
      q = qEnd;
    }
    const hsize_t np = outPtr.size();
    Handle ps(H5Screate_simple(1, &np, nullptr));
    Handle oPtr(H5Dcreate2(dg, "indptr", ptrType, ps, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!oPtr.valid() || H5Dwrite(oPtr, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, outPtr.data()) < 0)
      writeFail(path + "/indptr");
    copyAttrs(sData, oData);
    copyAttrs(sIdx, oIdx);
    copyAttrs(sPtr, oPtr);
    report_.subset.push_back(path);
  }

  std::string input_, output_;
  const RowMap& map_;
  SubsetReport& report_;
};

void fsyncPath(const std::string& path, bool directory, const std::string& target) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) fail(ErrorKind::Io, target, std::string("cannot open for syncing: ") + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS)))
    fail(ErrorKind::Io, target, std::string("cannot flush to disk: ") + std::strerror(err));
}

// Removes the temporary file unless the rename took it.
struct TempFile {
  std::string path;
  bool keep = false;
  ~TempFile() {
    if (!keep) {
      std::error_code ec;
      fs::remove(path, ec);
    }
  }
};

}  // namespace

SubsetReport writeH5adSubset(const std::string& input, const std::string& output, std::vector<int64_t> rows) {
  std::error_code ec;
  if (fs::exists(output, ec) && fs::equivalent(input, output, ec))
    fail(ErrorKind::InvalidArgument, output,
         "is the input file; choose another name for the selection (the input is never overwritten)");
  const fs::path parent = fs::path(output).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    fail(ErrorKind::Io, output, "cannot write here: folder '" + parent.string() + "' does not exist");
  std::unique_ptr<Dataset> ds = openDataset(input);
  if (ds->format() != "h5ad")
    fail(ErrorKind::Unsupported, input,
         "is a " + ds->format() + " file; a selection can be exported from an .h5ad only (export the annotated "
         ".h5ad first, or embed the file, which writes one)");
  RowMap map;
  map.n = ds->cells();
  ds.reset();
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  if (rows.empty()) fail(ErrorKind::InvalidArgument, input, "no cells selected; select cells to export first");
  if (rows.front() < 0 || rows.back() >= map.n)
    fail(ErrorKind::InvalidArgument, input,
         "selection holds cell " + std::to_string(rows.front() < 0 ? rows.front() : rows.back()) +
             ", but the file has " + std::to_string(map.n) + " cells");
  map.rows = std::move(rows);
  map.newIndex.assign(static_cast<size_t>(map.n), -1);
  for (size_t i = 0; i < map.rows.size(); ++i) map.newIndex[static_cast<size_t>(map.rows[i])] = static_cast<int64_t>(i);

  SubsetReport report;
  report.cellsIn = map.n;
  report.cellsOut = static_cast<int64_t>(map.rows.size());
  TempFile tmp{output + ".tmp-" + std::to_string(static_cast<long long>(::getpid()))};
  {
    h5::registerH5pyFilters();
    h5::QuietErrors quiet;
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    Handle in(H5Fopen(input.c_str(), H5F_ACC_RDONLY, fapl));
    if (!in.valid()) fail(ErrorKind::Io, input, "cannot open the file for reading");
    Handle out(H5Fcreate(tmp.path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
    if (!out.valid()) fail(ErrorKind::Io, output, "cannot create the temporary file '" + tmp.path + "'");
    Handle srcRoot(H5Gopen2(in, "/", H5P_DEFAULT)), dstRoot(H5Gopen2(out, "/", H5P_DEFAULT));
    Subsetter(input, output, map, report).run(srcRoot, dstRoot);
    dstRoot.reset();
    if (H5Fflush(out, H5F_SCOPE_GLOBAL) < 0) fail(ErrorKind::Io, output, "cannot finish writing (is the disk full?)");
  }
  fsyncPath(tmp.path, false, output);
  if (::rename(tmp.path.c_str(), output.c_str()) != 0)
    fail(ErrorKind::Io, output, std::string("cannot replace the file: ") + std::strerror(errno));
  tmp.keep = true;
  fsyncPath(parent.empty() ? std::string(".") : parent.string(), true, output);
  return report;
}

Column subsetColumn(const Column& c, const std::vector<int64_t>& rows) {
  Column o;
  o.name = c.name;
  o.kind = c.kind;
  o.categories = c.categories;
  o.ordered = c.ordered;
  auto pick = [&](const auto& v, auto& out) {
    if (v.empty()) return;
    out.reserve(rows.size());
    for (int64_t r : rows) out.push_back(v.at(static_cast<size_t>(r)));
  };
  pick(c.strings, o.strings);
  pick(c.codes, o.codes);
  pick(c.floats, o.floats);
  pick(c.ints, o.ints);
  pick(c.bools, o.bools);
  pick(c.missing, o.missing);
  return o;
}

DenseMatrix subsetRows(const DenseMatrix& m, const std::vector<int64_t>& rows) {
  DenseMatrix o;
  o.rows = static_cast<int64_t>(rows.size());
  o.cols = m.cols;
  o.data.reserve(rows.size() * static_cast<size_t>(m.cols));
  for (int64_t r : rows) {
    if (r < 0 || r >= m.rows) fail(ErrorKind::InvalidArgument, "", "row " + std::to_string(r) + " out of range");
    const auto* p = m.data.data() + static_cast<size_t>(r * m.cols);
    o.data.insert(o.data.end(), p, p + m.cols);
  }
  return o;
}

}  // namespace uce
