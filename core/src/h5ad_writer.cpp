// AnnData .h5ad writing in the anndata >= 0.8 encoding, and adding results to existing files.
// Every write goes to "<target>.tmp-<pid>" and is fsync'ed and renamed over the target on
// commit(), so a killed process leaves the target either absent or at its previous version.
#include "uce/core/h5ad_writer.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "h5util.h"
#include "readers.h"
#include "uce/core/error.h"

namespace uce {
namespace {

namespace fs = std::filesystem;
using h5::Handle;

// Chunk of the streamed 1-D X arrays: 2^18 elements = 1 MiB of float32 / int32. Uncompressed,
// so reading a row block touches few chunks and needs no inflation.
constexpr hsize_t kChunkElems = hsize_t{1} << 18;

std::string errnoText(int err) { return std::strerror(err); }

// The innermost description on the HDF5 error stack, e.g. "No space available for allocation".
herr_t innermostDesc(unsigned, const H5E_error2_t* e, void* data) {
  if (e->desc && *e->desc) *static_cast<std::string*>(data) = e->desc;
  return 0;
}
std::string hdf5Reason() {
  std::string s;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermostDesc, &s);
  // System errors come as "..., errno = 28, error message = 'No space left on device', ...".
  const std::string tag = "error message = '";
  size_t at = s.find(tag);
  if (at != std::string::npos) {
    size_t end = s.find('\'', at + tag.size());
    if (end != std::string::npos) return s.substr(at + tag.size(), end - at - tag.size());
  }
  return s;
}

[[noreturn]] void ioFail(const std::string& file, const std::string& what) {
  std::string why = hdf5Reason();
  fail(ErrorKind::Io, file, what + (why.empty() ? "" : " (" + why + ")"));
}

// Splits "a/b/c" into its non-empty parts.
std::vector<std::string> splitKey(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= key.size()) {
    size_t slash = key.find('/', start);
    if (slash == std::string::npos) slash = key.size();
    if (slash > start) parts.push_back(key.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string tempPathFor(const std::string& target) {
  return target + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
}

void requireParentDir(const std::string& target) {
  fs::path parent = fs::path(target).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    fail(ErrorKind::Io, target,
         "cannot write here: folder '" + parent.string() + "' does not exist");
}

void fsyncPath(const std::string& path, bool directory, const std::string& nameForErrors) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) fail(ErrorKind::Io, nameForErrors, "cannot open for syncing: " + errnoText(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems do not support fsync on directories; the rename itself is still atomic.
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS)))
    fail(ErrorKind::Io, nameForErrors, "cannot flush to disk: " + errnoText(err));
}

// fsync the finished temporary file, rename it over `target`, fsync the folder.
void publish(const std::string& tmp, const std::string& target) {
  fsyncPath(tmp, false, target);
  if (::rename(tmp.c_str(), target.c_str()) != 0)
    fail(ErrorKind::Io, target, "cannot replace the file: " + errnoText(errno));
  fs::path parent = fs::path(target).parent_path();
  fsyncPath(parent.empty() ? std::string(".") : parent.string(), true, target);
}

// Byte copy of `from` into a new file `to` (copy_file_range, falling back to read/write).
// Returns the permission bits of `from`.
mode_t copyFile(const std::string& from, const std::string& to, const std::string& target) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) fail(ErrorKind::Io, from, "cannot open: " + errnoText(errno));
  struct stat st {};
  if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(in);
    fail(ErrorKind::Io, from, "not a regular file");
  }
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   (st.st_mode & 0777) | S_IRUSR | S_IWUSR);
  if (out < 0) {
    int err = errno;
    ::close(in);
    fail(ErrorKind::Io, target, "cannot create a temporary file beside it: " + errnoText(err));
  }
  auto bail = [&](const std::string& file, const std::string& what, int err) {
    ::close(in);
    ::close(out);
    ::unlink(to.c_str());
    fail(ErrorKind::Io, file,
         what + ": " + (err == ENOSPC ? std::string("the disk is full") : errnoText(err)));
  };
  off_t remaining = st.st_size;
  bool fallback = false;
  while (remaining > 0 && !fallback) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(remaining), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP ||
          errno == EPERM || errno == EBADF) {
        fallback = true;  // offsets of both descriptors stay where the copy got to
        break;
      }
      bail(target, "cannot copy '" + from + "'", errno);
    }
    if (n == 0) break;  // input shrank while copying; copy what exists
    remaining -= n;
  }
  if (fallback) {
    std::vector<char> buf(size_t{4} << 20);
    for (;;) {
      ssize_t n = ::read(in, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        bail(from, "cannot read", errno);
      }
      if (n == 0) break;
      for (ssize_t done = 0; done < n;) {
        ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
        if (w < 0) {
          if (errno == EINTR) continue;
          bail(target, "cannot copy '" + from + "'", errno);
        }
        done += w;
      }
    }
  }
  ::close(in);
  if (::close(out) != 0) {
    int err = errno;
    ::unlink(to.c_str());
    fail(ErrorKind::Io, target, "cannot copy '" + from + "': " + errnoText(err));
  }
  return st.st_mode & 07777;
}

Handle boolType() {
  // numpy bool as h5py stores it: enum {FALSE = 0, TRUE = 1} over int8.
  Handle t(H5Tenum_create(H5T_NATIVE_INT8));
  int8_t f = 0, v = 1;
  H5Tenum_insert(t, "FALSE", &f);
  H5Tenum_insert(t, "TRUE", &v);
  return t;
}

Handle utf8Type() {
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

// pandas' code width for a categorical with n categories (coerce_indexer_dtype).
hid_t codesFileType(size_t n) {
  if (n < 127) return H5T_STD_I8LE;
  if (n < 32767) return H5T_STD_I16LE;
  return H5T_STD_I32LE;
}

// Datasets written without a chunk cache: uncompressed chunks are then written straight to
// the file (no read-modify-write), and nothing raw stays dirty in memory, so an abandoned
// file on a full disk can still be closed (see abandonTemp).
Handle dataAccessUncached() {
  Handle dapl(H5Pcreate(H5P_DATASET_ACCESS));
  H5Pset_chunk_cache(dapl, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 0, H5D_CHUNK_CACHE_W0_DEFAULT);
  return dapl;
}

Handle fileAccess() {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  // H5Fclose really closes (and flushes) the file even if an object id were left open.
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  // The temporary file is ours alone: lock it where the file system can, go on where it cannot
  // (NFS and some cluster file systems refuse flock).
  H5Pset_file_locking(fapl, true, true);
  return fapl;
}

// Writes anndata elements (groups, arrays, dataframes, scalars) with their encoding attributes.
// `file` is the path named in error messages: the target, not the temporary file.
class ElementWriter {
 public:
  explicit ElementWriter(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }

  void encode(hid_t obj, const char* type, const char* version) {
    attrs([&] {
      h5::writeAttrString(obj, "encoding-type", type);
      h5::writeAttrString(obj, "encoding-version", version);
    });
  }

  template <class F>
  void attrs(F&& f) {
    try {
      f();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      ioFail(file_, e.what());
    }
  }

  void remove(hid_t loc, const std::string& name) {
    if (!h5::exists(loc, name)) return;
    if (H5Ldelete(loc, name.c_str(), H5P_DEFAULT) < 0)
      ioFail(file_, "cannot replace '" + name + "'");
  }

  Handle openGroup(hid_t loc, const std::string& name) {
    Handle g(H5Gopen2(loc, name.c_str(), H5P_DEFAULT));
    if (!g.valid()) ioFail(file_, "cannot open group '" + name + "'");
    return g;
  }

  // New group (replacing whatever had the name), with encoding attributes when type is given.
  Handle newGroup(hid_t loc, const std::string& name, const char* type = nullptr,
                  const char* version = nullptr) {
    remove(loc, name);
    Handle g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!g.valid()) ioFail(file_, "cannot create group '" + name + "'");
    if (type) encode(g, type, version);
    return g;
  }

  // Existing group, or a new dict group.
  Handle dictGroup(hid_t loc, const std::string& name) {
    if (h5::isGroup(loc, name)) return openGroup(loc, name);
    return newGroup(loc, name, "dict", "0.1.0");
  }

  // 1-D dataset of n elements written from `data` (converted from memType to fileType).
  Handle array1D(hid_t loc, const std::string& name, hid_t fileType, hid_t memType,
                 const void* data, size_t n, const char* enc = "array") {
    remove(loc, name);
    hsize_t dims = n;
    Handle space(H5Screate_simple(1, &dims, nullptr));
    Handle ds(
        H5Dcreate2(loc, name.c_str(), fileType, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!ds.valid()) ioFail(file_, "cannot create '" + name + "'");
    if (n > 0 && H5Dwrite(ds, memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
      ioFail(file_, "cannot write '" + name + "'");
    if (enc) encode(ds, enc, "0.2.0");
    return ds;
  }

  Handle strings(hid_t loc, const std::string& name, const std::vector<std::string>& v) {
    std::vector<const char*> ptrs;
    ptrs.reserve(v.size());
    for (const auto& s : v) ptrs.push_back(s.c_str());
    Handle t = utf8Type();
    return array1D(loc, name, t, t, ptrs.data(), ptrs.size(), "string-array");
  }

  Handle bools(hid_t loc, const std::string& name, const std::vector<uint8_t>& v) {
    std::vector<int8_t> b(v.size());
    for (size_t i = 0; i < v.size(); ++i) b[i] = v[i] ? 1 : 0;
    Handle t = boolType();
    return array1D(loc, name, t, t, b.data(), b.size());
  }

  // An obs/var column in the 0.2.0 dataframe encoding (or, for categoricals with oldLayout,
  // anndata 0.7's codes dataset + __categories/<name>).
  void column(hid_t df, const Column& c, size_t rows, bool oldLayout) {
    if (c.size() != rows)
      fail(ErrorKind::Shape, file_,
           "column '" + c.name + "' has " + std::to_string(c.size()) +
               " values but the table has " + std::to_string(rows) + " rows");
    if (!c.missing.empty() && c.missing.size() != rows)
      fail(ErrorKind::Shape, file_,
           "column '" + c.name + "' has " + std::to_string(c.missing.size()) +
               " missing-value flags for " + std::to_string(rows) + " rows");
    const bool anyMissing =
        std::any_of(c.missing.begin(), c.missing.end(), [](uint8_t m) { return m != 0; });
    auto isMissing = [&](size_t i) { return anyMissing && c.missing[i] != 0; };
    switch (c.kind) {
      case ColumnKind::String: {
        if (!anyMissing) {
          strings(df, c.name, c.strings);
        } else {
          std::vector<std::string> v = c.strings;
          for (size_t i = 0; i < rows; ++i)
            if (isMissing(i)) v[i].clear();
          strings(df, c.name, v);
        }
        break;
      }
      case ColumnKind::Float: {
        std::vector<double> v = c.floats;
        for (size_t i = 0; i < rows; ++i)
          if (isMissing(i)) v[i] = std::numeric_limits<double>::quiet_NaN();
        array1D(df, c.name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.data(), v.size());
        break;
      }
      case ColumnKind::Int:
      case ColumnKind::Bool: {
        const bool isInt = c.kind == ColumnKind::Int;
        if (!anyMissing) {
          if (isInt)
            array1D(df, c.name, H5T_STD_I64LE, H5T_NATIVE_INT64, c.ints.data(), rows);
          else
            bools(df, c.name, c.bools);
          break;
        }
        // pandas' nullable Int64 / boolean: values + mask.
        Handle g = newGroup(df, c.name, isInt ? "nullable-integer" : "nullable-boolean", "0.1.0");
        if (isInt) {
          std::vector<int64_t> v = c.ints;
          for (size_t i = 0; i < rows; ++i)
            if (isMissing(i)) v[i] = 0;
          array1D(g, "values", H5T_STD_I64LE, H5T_NATIVE_INT64, v.data(), rows);
        } else {
          std::vector<uint8_t> v = c.bools;
          for (size_t i = 0; i < rows; ++i)
            if (isMissing(i)) v[i] = 0;
          bools(g, "values", v);
        }
        bools(g, "mask", c.missing);
        break;
      }
      case ColumnKind::Categorical: {
        const size_t ncat = c.categories.size();
        std::vector<int32_t> codes = c.codes;
        for (size_t i = 0; i < rows; ++i) {
          if (isMissing(i)) codes[i] = -1;
          if (codes[i] < -1 || (codes[i] >= 0 && static_cast<size_t>(codes[i]) >= ncat))
            fail(ErrorKind::InvalidArgument, file_,
                 "categorical column '" + c.name + "' has code " + std::to_string(codes[i]) +
                     " at row " + std::to_string(i) + " but only " + std::to_string(ncat) +
                     " categories");
        }
        std::set<std::string> seen(c.categories.begin(), c.categories.end());
        if (seen.size() != ncat)
          fail(ErrorKind::InvalidArgument, file_,
               "categorical column '" + c.name + "' has repeated category labels");
        if (oldLayout) {
          oldCategorical(df, c, codes);
          break;
        }
        Handle g = newGroup(df, c.name, "categorical", "0.2.0");
        attrs([&] { h5::writeAttrBool(g, "ordered", c.ordered); });
        array1D(g, "codes", codesFileType(ncat), H5T_NATIVE_INT32, codes.data(), rows);
        strings(g, "categories", c.categories);
        break;
      }
    }
  }

  // anndata 0.7 layout: int codes dataset whose attr `categories` references
  // __categories/<name>, a string dataset with attr `ordered`.
  void oldCategorical(hid_t df, const Column& c, const std::vector<int32_t>& codes) {
    Handle cats = h5::isGroup(df, "__categories") ? openGroup(df, "__categories")
                                                  : newGroup(df, "__categories");
    Handle catDs = strings(cats, c.name, c.categories);
    attrs([&] { h5::writeAttrBool(catDs, "ordered", c.ordered); });
    Handle codesDs = array1D(df, c.name, codesFileType(c.categories.size()), H5T_NATIVE_INT32,
                             codes.data(), codes.size());
    hobj_ref_t ref{};
    if (H5Rcreate(&ref, cats, c.name.c_str(), H5R_OBJECT, -1) < 0)
      ioFail(file_, "cannot reference the categories of '" + c.name + "'");
    Handle space(H5Screate(H5S_SCALAR));
    Handle attr(
        H5Acreate2(codesDs, "categories", H5T_STD_REF_OBJ, space, H5P_DEFAULT, H5P_DEFAULT));
    if (!attr.valid() || H5Awrite(attr, H5T_STD_REF_OBJ, &ref) < 0)
      ioFail(file_, "cannot link the categories of '" + c.name + "'");
  }

  // column-order attribute; anndata itself writes an empty list as an empty float64 array.
  void columnOrder(hid_t df, const std::vector<std::string>& names) {
    if (!names.empty()) {
      attrs([&] { h5::writeAttrStrings(df, "column-order", names); });
      return;
    }
    if (h5::hasAttr(df, "column-order")) H5Adelete(df, "column-order");
    hsize_t zero = 0;
    Handle space(H5Screate_simple(1, &zero, nullptr));
    Handle attr(H5Acreate2(df, "column-order", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT));
    if (!attr.valid()) ioFail(file_, "cannot write the column order");
  }

  void checkColumnName(const std::string& table, const std::string& name,
                       const std::string& indexName) {
    if (name.empty() || name.find('/') != std::string::npos || name == "_index" ||
        name == indexName || name == "__categories")
      fail(ErrorKind::InvalidArgument, file_,
           table + " column name '" + name +
               "' cannot be stored (empty, contains '/', or is reserved for the index)");
  }

  void dataframe(hid_t loc, const std::string& name, const DataFrame& df) {
    const std::string indexName = df.indexName.empty() ? "_index" : df.indexName;
    std::set<std::string> names;
    std::vector<std::string> order;
    for (const auto& c : df.columns) {
      checkColumnName(name, c.name, indexName);
      if (!names.insert(c.name).second)
        fail(ErrorKind::InvalidArgument, file_, name + " has two columns named '" + c.name + "'");
      order.push_back(c.name);
    }
    if (indexName.find('/') != std::string::npos)
      fail(ErrorKind::InvalidArgument, file_,
           name + " index name '" + indexName + "' contains '/'");
    Handle g = newGroup(loc, name, "dataframe", "0.2.0");
    attrs([&] { h5::writeAttrString(g, "_index", indexName); });
    columnOrder(g, order);
    strings(g, indexName, df.index);
    for (const auto& c : df.columns) column(g, c, df.rows(), false);
  }

  // [rows, cols] float32, chunked by row blocks of ~1 MiB.
  Handle dense(hid_t loc, const std::string& name, int64_t rows, int64_t cols) {
    if (rows < 0 || cols < 0)
      fail(ErrorKind::InvalidArgument, file_, "obsm['" + name + "'] has a negative size");
    remove(loc, name);
    hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
    Handle space(H5Screate_simple(2, dims, nullptr));
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (rows > 0 && cols > 0) {
      hsize_t chunkRows = std::max<hsize_t>(1, kChunkElems / dims[1]);
      hsize_t chunk[2] = {std::min<hsize_t>(chunkRows, dims[0]), dims[1]};
      H5Pset_chunk(dcpl, 2, chunk);
    }
    Handle dapl = dataAccessUncached();
    Handle ds(H5Dcreate2(loc, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, dapl));
    if (!ds.valid()) ioFail(file_, "cannot create obsm['" + name + "']");
    encode(ds, "array", "0.2.0");
    return ds;
  }

  void denseRows(hid_t ds, const std::string& name, int64_t row0, const float* data, int64_t nrows,
                 int64_t cols) {
    if (nrows <= 0 || cols <= 0) return;
    Handle fspace(H5Dget_space(ds));
    hsize_t start[2] = {static_cast<hsize_t>(row0), 0};
    hsize_t count[2] = {static_cast<hsize_t>(nrows), static_cast<hsize_t>(cols)};
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr);
    Handle mspace(H5Screate_simple(2, count, nullptr));
    if (H5Dwrite(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, data) < 0)
      ioFail(file_, "cannot write obsm['" + name + "']");
  }

  // uns/<key>, creating dict groups for '/' in key; replaces what was there.
  void uns(hid_t root, const std::string& key, const UnsValue& v) {
    std::vector<std::string> parts = splitKey(key);
    if (parts.empty()) fail(ErrorKind::InvalidArgument, file_, "empty uns key");
    Handle cur = dictGroup(root, "uns");
    for (size_t i = 0; i + 1 < parts.size(); ++i) cur = dictGroup(cur, parts[i]);
    const std::string& leaf = parts.back();
    remove(cur, leaf);
    Handle scalar(H5Screate(H5S_SCALAR));
    Handle ds;
    auto create = [&](hid_t type) {
      ds = Handle(
          H5Dcreate2(cur, leaf.c_str(), type, scalar, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      if (!ds.valid()) ioFail(file_, "cannot create uns['" + key + "']");
    };
    herr_t rc = 0;
    switch (v.kind) {
      case UnsValue::Kind::String: {
        Handle t = utf8Type();
        create(t);
        const char* p = v.s.c_str();
        rc = H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p);
        break;
      }
      case UnsValue::Kind::Float:
        create(H5T_IEEE_F64LE);
        rc = H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v.f);
        break;
      case UnsValue::Kind::Int:
        create(H5T_STD_I64LE);
        rc = H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v.i);
        break;
      case UnsValue::Kind::Bool: {
        Handle t = boolType();
        create(t);
        int8_t b = v.b ? 1 : 0;
        rc = H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &b);
        break;
      }
    }
    if (rc < 0) ioFail(file_, "cannot write uns['" + key + "']");
    encode(ds, v.kind == UnsValue::Kind::String ? "string" : "numeric-scalar", "0.2.0");
  }

 private:
  std::string file_;
};

// 1-D dataset that grows by appends: [0] now, unlimited, chunked.
Handle extendable(ElementWriter& w, hid_t loc, const std::string& name, hid_t type, hsize_t chunk) {
  hsize_t dims = 0, maxdims = H5S_UNLIMITED;
  Handle space(H5Screate_simple(1, &dims, &maxdims));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_chunk(dcpl, 1, &chunk);
  Handle dapl = dataAccessUncached();
  Handle ds(H5Dcreate2(loc, name.c_str(), type, space, H5P_DEFAULT, dcpl, dapl));
  if (!ds.valid()) ioFail(w.file(), "cannot create X/" + name);
  return ds;
}

void append(ElementWriter& w, hid_t ds, const std::string& name, hid_t memType, const void* data,
            hsize_t offset, hsize_t n) {
  if (n == 0) return;
  hsize_t newSize = offset + n;
  if (H5Dset_extent(ds, &newSize) < 0) ioFail(w.file(), "cannot grow X/" + name);
  Handle fspace(H5Dget_space(ds));
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &offset, nullptr, &n, nullptr);
  Handle mspace(H5Screate_simple(1, &n, nullptr));
  if (H5Dwrite(ds, memType, mspace, fspace, H5P_DEFAULT, data) < 0)
    ioFail(w.file(), "cannot write X/" + name);
}

constexpr uint64_t kSpaceReserve = uint64_t{64} << 20;  // for HDF5 metadata and slack

// Free bytes on the file system that holds target; max when unknown.
uint64_t freeBytes(const std::string& target) {
  fs::path parent = fs::path(target).parent_path();
  struct statvfs st {};
  if (::statvfs(parent.empty() ? "." : parent.c_str(), &st) != 0)
    return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// Fails early, with a clear message, when the target's file system cannot take `bytes` more
// plus the reserve. Besides being clearer, this keeps HDF5 away from a full disk: in 1.10 a
// failed flush leaves a file that can no longer be closed (see abandonTemp).
void ensureSpace(const std::string& target, uint64_t bytes) {
  const uint64_t avail = freeBytes(target);
  if (avail >= bytes + kSpaceReserve) return;
  auto mb = [](uint64_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MB"; };
  fail(ErrorKind::Io, target,
       "not enough free disk space: writing needs about " + mb(bytes + kSpaceReserve) + ", " +
           mb(avail) + " are free; free some space or write elsewhere");
}

void closeFile(hid_t& file, const std::string& target, const std::string& tmp) {
  hid_t id = std::exchange(file, H5I_INVALID_HID);
  if (id >= 0 && H5Fclose(id) < 0)
    ioFail(target, "cannot finish writing the temporary file '" + tmp + "'");
}

// Drops an unfinished temporary file; releaseObjects closes the ids opened in it.
// HDF5 1.10 frees a file whose close failed yet keeps its id, and its exit handler then
// crashes on it; closing must write the dirty metadata, so on a (nearly) full disk the
// doomed file's own space is given back first. Raw data is never cached (dataAccessUncached),
// so only a little metadata is left to write.
template <class F>
void abandonTemp(hid_t& file, const std::string& tmp, const std::string& target,
                 F&& releaseObjects) noexcept {
  h5::QuietErrors quiet;
  if (file >= 0 && freeBytes(target) < kSpaceReserve && ::truncate(tmp.c_str(), 0) != 0) {
    // Best effort only: the file is removed below either way.
  }
  releaseObjects();
  hid_t id = std::exchange(file, H5I_INVALID_HID);
  if (id >= 0) H5Fclose(id);
  ::unlink(tmp.c_str());
}

// Rough on-disk size of a table column / a table (for ensureSpace).
uint64_t approxBytes(const Column& c) {
  uint64_t b = 16 * static_cast<uint64_t>(c.size());
  for (const auto& s : c.strings) b += s.size();
  for (const auto& s : c.categories) b += s.size() + 16;
  return b;
}
uint64_t approxBytes(const DataFrame& df) {
  uint64_t b = 16 * static_cast<uint64_t>(df.rows());
  for (const auto& s : df.index) b += s.size();
  for (const auto& c : df.columns) b += approxBytes(c);
  return b;
}

DataFrame defaultFrame(int64_t rows) {
  DataFrame df;
  df.index.reserve(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) df.index.push_back(std::to_string(i));
  return df;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// H5adWriter

struct H5adWriter::Impl {
  std::string path, tmp;
  int64_t nGenes = 0;
  ElementWriter w;
  hid_t file = H5I_INVALID_HID;  // raw: its close is checked in commit()
  Handle root, xData, xIndices, xIndptr;
  int64_t rows = 0, nnz = 0;
  int64_t obsRows = -1, varRows = -1;  // -1: not set, default index written at commit
  std::map<std::string, int64_t> obsmRows;
  bool finished = false;  // committed or discarded

  explicit Impl(std::string p) : path(std::move(p)), tmp(tempPathFor(path)), w(path) {}

  void discard() noexcept {
    abandonTemp(file, tmp, path, [this] {
      xData.reset();
      xIndices.reset();
      xIndptr.reset();
      root.reset();
    });
    finished = true;
  }
  void requireOpen() const {
    if (finished)
      fail(ErrorKind::InvalidArgument, path, "this file was already committed or discarded");
  }
};

H5adWriter::H5adWriter(std::string path, int64_t nGenes)
    : impl_(std::make_unique<Impl>(std::move(path))) {
  Impl& d = *impl_;
  if (nGenes < 0) fail(ErrorKind::InvalidArgument, d.path, "negative number of genes");
  d.nGenes = nGenes;
  requireParentDir(d.path);
  h5::QuietErrors quiet;
  try {
    Handle fapl = fileAccess();
    d.file = H5Fcreate(d.tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (d.file < 0) ioFail(d.path, "cannot create the temporary file '" + d.tmp + "'");
    d.root = d.w.openGroup(d.file, "/");
    d.w.encode(d.root, "anndata", "0.1.0");
    Handle x = d.w.newGroup(d.root, "X", "csr_matrix", "0.1.0");
    d.w.attrs([&] { h5::writeAttrInts(x, "shape", {0, nGenes}); });
    d.xData = extendable(d.w, x, "data", H5T_IEEE_F32LE, kChunkElems);
    d.xIndices = extendable(d.w, x, "indices", H5T_STD_I32LE, kChunkElems);
    d.xIndptr = extendable(d.w, x, "indptr", H5T_STD_I64LE, kChunkElems / 2);
    const int64_t zero = 0;
    append(d.w, d.xIndptr, "indptr", H5T_NATIVE_INT64, &zero, 0, 1);
    for (const char* g : {"layers", "obsm", "obsp", "uns", "varm", "varp"})
      d.w.dictGroup(d.root, g);
  } catch (...) {
    d.discard();
    throw;
  }
}

H5adWriter::~H5adWriter() {
  if (impl_ && !impl_->finished) impl_->discard();
}

void H5adWriter::appendRows(const CsrBlock& block) {
  Impl& d = *impl_;
  d.requireOpen();
  if (block.ncols != d.nGenes)
    fail(ErrorKind::Shape, d.path,
         "a block of X has " + std::to_string(block.ncols) + " genes but the file has " +
             std::to_string(d.nGenes));
  validateBlock(d.path, "X", block);
  ensureSpace(d.path,
              static_cast<uint64_t>(block.nnz()) * 8 + static_cast<uint64_t>(block.rows()) * 8);
  h5::QuietErrors quiet;
  const hsize_t nnz = static_cast<hsize_t>(block.nnz());
  append(d.w, d.xData, "data", H5T_NATIVE_FLOAT, block.values.data(), static_cast<hsize_t>(d.nnz),
         nnz);
  append(d.w, d.xIndices, "indices", H5T_NATIVE_INT32, block.indices.data(),
         static_cast<hsize_t>(d.nnz), nnz);
  std::vector<int64_t> ptr(block.indptr.begin() + 1, block.indptr.end());
  for (auto& p : ptr) p += d.nnz;
  append(d.w, d.xIndptr, "indptr", H5T_NATIVE_INT64, ptr.data(), static_cast<hsize_t>(d.rows + 1),
         ptr.size());
  d.rows += block.rows();
  d.nnz += block.nnz();
}

int64_t H5adWriter::rowsWritten() const { return impl_->rows; }

void H5adWriter::setObs(const DataFrame& obs) {
  Impl& d = *impl_;
  d.requireOpen();
  ensureSpace(d.path, approxBytes(obs));
  h5::QuietErrors quiet;
  d.w.dataframe(d.root, "obs", obs);
  d.obsRows = static_cast<int64_t>(obs.rows());
}

void H5adWriter::setVar(const DataFrame& var) {
  Impl& d = *impl_;
  d.requireOpen();
  if (static_cast<int64_t>(var.rows()) != d.nGenes)
    fail(ErrorKind::Shape, d.path,
         "var has " + std::to_string(var.rows()) + " rows but X has " + std::to_string(d.nGenes) +
             " genes");
  ensureSpace(d.path, approxBytes(var));
  h5::QuietErrors quiet;
  d.w.dataframe(d.root, "var", var);
  d.varRows = static_cast<int64_t>(var.rows());
}

void H5adWriter::setObsm(const std::string& name, const DenseMatrix& m) {
  Impl& d = *impl_;
  d.requireOpen();
  if (name.empty() || name.find('/') != std::string::npos)
    fail(ErrorKind::InvalidArgument, d.path, "obsm name '" + name + "' cannot be stored");
  if (static_cast<int64_t>(m.data.size()) != m.rows * m.cols)
    fail(ErrorKind::Shape, d.path,
         "obsm['" + name + "'] holds " + std::to_string(m.data.size()) + " values, not " +
             std::to_string(m.rows) + " x " + std::to_string(m.cols));
  ensureSpace(d.path, m.data.size() * sizeof(float));
  h5::QuietErrors quiet;
  Handle obsm = d.w.dictGroup(d.root, "obsm");
  Handle ds = d.w.dense(obsm, name, m.rows, m.cols);
  d.w.denseRows(ds, name, 0, m.data.data(), m.rows, m.cols);
  d.obsmRows[name] = m.rows;
}

void H5adWriter::setUns(const std::string& key, const UnsValue& v) {
  Impl& d = *impl_;
  d.requireOpen();
  h5::QuietErrors quiet;
  d.w.uns(d.root, key, v);
}

void H5adWriter::commit() {
  Impl& d = *impl_;
  d.requireOpen();
  h5::QuietErrors quiet;
  try {
    if (d.obsRows >= 0 && d.obsRows != d.rows)
      fail(ErrorKind::Shape, d.path,
           "obs has " + std::to_string(d.obsRows) + " rows but " + std::to_string(d.rows) +
               " cells were written to X");
    for (const auto& [name, n] : d.obsmRows)
      if (n != d.rows)
        fail(ErrorKind::Shape, d.path,
             "obsm['" + name + "'] has " + std::to_string(n) + " rows but X has " +
                 std::to_string(d.rows) + " cells");
    if (d.obsRows < 0) d.w.dataframe(d.root, "obs", defaultFrame(d.rows));
    if (d.varRows < 0) d.w.dataframe(d.root, "var", defaultFrame(d.nGenes));
    {
      Handle x = d.w.openGroup(d.root, "X");
      d.w.attrs([&] { h5::writeAttrInts(x, "shape", {d.rows, d.nGenes}); });
    }
    ensureSpace(d.path, 0);  // room for the metadata the close writes
    d.xData.reset();
    d.xIndices.reset();
    d.xIndptr.reset();
    d.root.reset();
    closeFile(d.file, d.path, d.tmp);
    publish(d.tmp, d.path);
    d.finished = true;
  } catch (...) {
    d.discard();
    throw;
  }
}

// ---------------------------------------------------------------------------------------------
// ResultsWriter

namespace {
// An obsm array being filled row block by row block; `filled` tracks which cells got values.
struct ObsmStream {
  Handle ds;
  int64_t cols = 0;
  std::vector<bool> filled;
  int64_t filledCount = 0;
};
}  // namespace

struct ResultsWriter::Impl {
  std::string input, output, tmp;
  ElementWriter w;
  hid_t file = H5I_INVALID_HID;  // raw: its close is checked in commit()
  Handle root;
  mode_t finalMode = 0644;  // in place: the input's own; else the input's, plus owner write
  int64_t cells = 0;
  bool oldObsLayout = false;  // anndata 0.7: dataframe 0.1.0 with __categories
  std::map<std::string, ObsmStream> streams;
  bool finished = false;

  Impl(std::string in, std::string out)
      : input(std::move(in)), output(std::move(out)), tmp(tempPathFor(output)), w(output) {}

  void discard() noexcept {
    abandonTemp(file, tmp, output, [this] {
      streams.clear();
      root.reset();
    });
    finished = true;
  }
  void requireOpen() const {
    if (finished)
      fail(ErrorKind::InvalidArgument, output, "these results were already committed or discarded");
  }
  void readLayout();
};

void ResultsWriter::Impl::readLayout() {
  if (h5::isDataset(root, "obs"))
    fail(ErrorKind::Unsupported, input,
         "obs is stored in the pre-0.7 anndata layout; re-save the file with anndata >= 0.7");
  if (h5::isGroup(root, "obs")) {
    Handle obs = w.openGroup(root, "obs");
    std::string version, type, indexName = "_index";
    h5::readAttrString(obs, "_index", indexName);
    h5::readAttrString(obs, "encoding-version", version);
    bool typed = h5::readAttrString(obs, "encoding-type", type);
    oldObsLayout = !typed || version == "0.1.0" || h5::isGroup(obs, "__categories");
    if (h5::isDataset(obs, indexName)) {
      Handle ds(H5Dopen2(obs, indexName.c_str(), H5P_DEFAULT));
      Handle space(H5Dget_space(ds));
      hsize_t dims[H5S_MAX_RANK] = {};
      if (ds.valid() && H5Sget_simple_extent_ndims(space) == 1) {
        H5Sget_simple_extent_dims(space, dims, nullptr);
        cells = static_cast<int64_t>(dims[0]);
        return;
      }
    }
    fail(ErrorKind::Truncated, input, "obs has no readable index '" + indexName + "'");
  }
  fail(ErrorKind::Unsupported, input, "not an AnnData file: it has no obs table");
}

ResultsWriter::ResultsWriter(const std::string& input, const std::string& output)
    : impl_(std::make_unique<Impl>(input, output)) {
  Impl& d = *impl_;
  std::error_code ec;
  if (!fs::exists(input, ec)) fail(ErrorKind::Io, input, "no such file");
  if (!fs::is_regular_file(input, ec)) fail(ErrorKind::Io, input, "not a regular file");
  {
    h5::QuietErrors quiet;
    if (H5Fis_hdf5(input.c_str()) <= 0) fail(ErrorKind::NotHdf5, input, "not an HDF5 (.h5ad) file");
  }
  requireParentDir(output);
  const bool inPlace = fs::exists(output, ec) && fs::equivalent(input, output, ec);
  const auto inputBytes = fs::file_size(input, ec);
  ensureSpace(output, ec ? 0 : static_cast<uint64_t>(inputBytes));
  const mode_t inputMode = copyFile(input, d.tmp, output);
  d.finalMode = inPlace ? inputMode : (inputMode | S_IRUSR | S_IWUSR);
  h5::QuietErrors quiet;
  try {
    Handle fapl = fileAccess();
    d.file = H5Fopen(d.tmp.c_str(), H5F_ACC_RDWR, fapl);
    if (d.file < 0)
      fail(ErrorKind::Truncated, input, "HDF5 cannot open the file (truncated or damaged?)");
    d.root = d.w.openGroup(d.file, "/");
    d.readLayout();
  } catch (...) {
    d.discard();
    throw;
  }
}

ResultsWriter::~ResultsWriter() {
  if (impl_ && !impl_->finished) impl_->discard();
}

int64_t ResultsWriter::cells() const { return impl_->cells; }

void ResultsWriter::beginObsm(const std::string& name, int64_t cols) {
  Impl& d = *impl_;
  d.requireOpen();
  if (name.empty() || name.find('/') != std::string::npos)
    fail(ErrorKind::InvalidArgument, d.output, "obsm name '" + name + "' cannot be stored");
  if (cols < 0)
    fail(ErrorKind::InvalidArgument, d.output, "obsm['" + name + "'] with negative width");
  ensureSpace(d.output, static_cast<uint64_t>(d.cells) * static_cast<uint64_t>(cols) * 4);
  h5::QuietErrors quiet;
  d.streams.erase(name);
  Handle obsm = d.w.dictGroup(d.root, "obsm");
  ObsmStream s;
  s.ds = d.w.dense(obsm, name, d.cells, cols);
  s.cols = cols;
  s.filled.assign(static_cast<size_t>(d.cells), false);
  d.streams[name] = std::move(s);
}

void ResultsWriter::writeObsmRows(const std::string& name, int64_t row0, const float* data,
                                  int64_t nrows) {
  Impl& d = *impl_;
  d.requireOpen();
  auto it = d.streams.find(name);
  if (it == d.streams.end())
    fail(ErrorKind::InvalidArgument, d.output, "obsm['" + name + "'] was not begun (beginObsm)");
  ObsmStream& s = it->second;
  if (row0 < 0 || nrows < 0 || row0 + nrows > d.cells)
    fail(ErrorKind::Shape, d.output,
         "rows " + std::to_string(row0) + ".." + std::to_string(row0 + nrows - 1) + " of obsm['" +
             name + "'] are outside the " + std::to_string(d.cells) + " cells of the file");
  h5::QuietErrors quiet;
  d.w.denseRows(s.ds, name, row0, data, nrows, s.cols);
  for (int64_t r = row0; r < row0 + nrows; ++r) {
    if (!s.filled[static_cast<size_t>(r)]) {
      s.filled[static_cast<size_t>(r)] = true;
      ++s.filledCount;
    }
  }
}

void ResultsWriter::setObsm(const std::string& name, const DenseMatrix& m) {
  Impl& d = *impl_;
  d.requireOpen();
  if (m.rows != d.cells)
    fail(ErrorKind::Shape, d.output,
         "obsm['" + name + "'] has " + std::to_string(m.rows) + " rows but the file has " +
             std::to_string(d.cells) + " cells");
  if (static_cast<int64_t>(m.data.size()) != m.rows * m.cols)
    fail(ErrorKind::Shape, d.output,
         "obsm['" + name + "'] holds " + std::to_string(m.data.size()) + " values, not " +
             std::to_string(m.rows) + " x " + std::to_string(m.cols));
  beginObsm(name, m.cols);
  writeObsmRows(name, 0, m.data.data(), m.rows);
}

void ResultsWriter::setObsColumn(const Column& column) {
  Impl& d = *impl_;
  d.requireOpen();
  if (static_cast<int64_t>(column.size()) != d.cells)
    fail(ErrorKind::Shape, d.output,
         "obs column '" + column.name + "' has " + std::to_string(column.size()) +
             " values but the file has " + std::to_string(d.cells) + " cells");
  ensureSpace(d.output, approxBytes(column));
  h5::QuietErrors quiet;
  Handle obs = d.w.openGroup(d.root, "obs");
  std::string indexName = "_index";
  h5::readAttrString(obs, "_index", indexName);
  d.w.checkColumnName("obs", column.name, indexName);
  d.w.remove(obs, column.name);
  if (d.oldObsLayout && h5::isGroup(obs, "__categories")) {
    Handle cats = d.w.openGroup(obs, "__categories");
    d.w.remove(cats, column.name);
  }
  d.w.column(obs, column, static_cast<size_t>(d.cells), d.oldObsLayout);
  std::vector<std::string> order;
  h5::readAttrStrings(obs, "column-order", order);
  if (std::find(order.begin(), order.end(), column.name) == order.end())
    order.push_back(column.name);
  d.w.columnOrder(obs, order);
}

void ResultsWriter::setUns(const std::string& key, const UnsValue& v) {
  Impl& d = *impl_;
  d.requireOpen();
  h5::QuietErrors quiet;
  d.w.uns(d.root, key, v);
}

void ResultsWriter::commit() {
  Impl& d = *impl_;
  d.requireOpen();
  h5::QuietErrors quiet;
  try {
    for (const auto& [name, s] : d.streams)
      if (s.filledCount != d.cells)
        fail(ErrorKind::Shape, d.output,
             "obsm['" + name + "'] got values for " + std::to_string(s.filledCount) + " of " +
                 std::to_string(d.cells) + " cells");
    ensureSpace(d.output, 0);  // room for the metadata the close writes
    d.streams.clear();
    d.root.reset();
    closeFile(d.file, d.output, d.tmp);
    if (::chmod(d.tmp.c_str(), d.finalMode) != 0)
      fail(ErrorKind::Io, d.output, "cannot set permissions: " + errnoText(errno));
    publish(d.tmp, d.output);
    d.finished = true;
  } catch (...) {
    d.discard();
    throw;
  }
}

}  // namespace uce
