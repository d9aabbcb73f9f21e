#include "h5util.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace uce::h5 {

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = H5I_INVALID_HID;
}

QuietErrors::QuietErrors() {
  H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}
QuietErrors::~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

bool exists(hid_t loc, const std::string& path) {
  QuietErrors quiet;
  std::string prefix;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) {
      prefix += (prefix.empty() ? "" : "/") + part;
      if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      if (H5Oexists_by_name(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

static H5O_type_t objType(hid_t loc, const std::string& path) {
  if (!exists(loc, path)) return H5O_TYPE_UNKNOWN;
  QuietErrors quiet;
  H5O_info_t info;
  if (H5Oget_info_by_name2(loc, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
    return H5O_TYPE_UNKNOWN;
  return info.type;
}
bool isGroup(hid_t loc, const std::string& path) { return objType(loc, path) == H5O_TYPE_GROUP; }
bool isDataset(hid_t loc, const std::string& path) { return objType(loc, path) == H5O_TYPE_DATASET; }

bool hasAttr(hid_t obj, const std::string& name) {
  QuietErrors quiet;
  return H5Aexists(obj, name.c_str()) > 0;
}

// Reads string data of any HDF5 string flavour (fixed or variable length) from an attribute.
static bool readStringAttrData(hid_t attr, std::vector<std::string>& out) {
  Handle type(H5Aget_type(attr));
  if (H5Tget_class(type) != H5T_STRING) return false;
  Handle space(H5Aget_space(attr));
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) return false;
  out.clear();
  if (H5Tis_variable_str(type) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5Tget_cset(type));
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    if (n > 0 && H5Aread(attr, mem, ptrs.data()) < 0) return false;
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    if (n > 0) {
      Handle s(H5Screate_simple(1, std::vector<hsize_t>{static_cast<hsize_t>(n)}.data(), nullptr));
      H5Dvlen_reclaim(mem, s, H5P_DEFAULT, ptrs.data());
    }
  } else {
    size_t len = H5Tget_size(type);
    std::vector<char> buf(len * static_cast<size_t>(n) + 1, '\0');
    if (n > 0 && H5Aread(attr, type, buf.data()) < 0) return false;
    for (hssize_t i = 0; i < n; ++i) {
      const char* p = buf.data() + static_cast<size_t>(i) * len;
      size_t l = 0;
      while (l < len && p[l] != '\0') ++l;
      out.emplace_back(p, l);
    }
  }
  return true;
}

bool readAttrStrings(hid_t obj, const std::string& name, std::vector<std::string>& out) {
  if (!hasAttr(obj, name)) return false;
  QuietErrors quiet;
  Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) return false;
  return readStringAttrData(attr, out);
}

bool readAttrString(hid_t obj, const std::string& name, std::string& out) {
  std::vector<std::string> v;
  if (!readAttrStrings(obj, name, v) || v.size() != 1) return false;
  out = v[0];
  return true;
}

bool readAttrInts(hid_t obj, const std::string& name, std::vector<int64_t>& out) {
  if (!hasAttr(obj, name)) return false;
  QuietErrors quiet;
  Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) return false;
  Handle type(H5Aget_type(attr));
  if (H5Tget_class(type) != H5T_INTEGER) return false;
  Handle space(H5Aget_space(attr));
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) return false;
  out.assign(static_cast<size_t>(n), 0);
  return n == 0 || H5Aread(attr, H5T_NATIVE_INT64, out.data()) >= 0;
}

bool readAttrBool(hid_t obj, const std::string& name, bool& out) {
  if (!hasAttr(obj, name)) return false;
  QuietErrors quiet;
  Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) return false;
  Handle type(H5Aget_type(attr));
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_INTEGER && cls != H5T_ENUM) return false;  // h5py writes numpy bool as enum
  Handle space(H5Aget_space(attr));
  if (H5Sget_simple_extent_npoints(space) != 1) return false;  // H5Aread would overrun v
  int8_t v = 0;
  if (H5Aread(attr, H5T_NATIVE_INT8, &v) < 0) return false;
  out = v != 0;
  return true;
}

static void deleteAttrIfAny(hid_t obj, const std::string& name) {
  if (hasAttr(obj, name)) H5Adelete(obj, name.c_str());
}

static Handle varStringType() {
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void writeAttrStrings(hid_t obj, const std::string& name, const std::vector<std::string>& values) {
  deleteAttrIfAny(obj, name);
  Handle type = varStringType();
  hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) throw std::runtime_error("cannot create attribute " + name);
  std::vector<const char*> ptrs;
  for (const auto& s : values) ptrs.push_back(s.c_str());
  if (n > 0 && H5Awrite(attr, type, ptrs.data()) < 0) throw std::runtime_error("cannot write attribute " + name);
}

void writeAttrString(hid_t obj, const std::string& name, const std::string& value) {
  deleteAttrIfAny(obj, name);
  Handle type = varStringType();
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) throw std::runtime_error("cannot create attribute " + name);
  const char* p = value.c_str();
  if (H5Awrite(attr, type, &p) < 0) throw std::runtime_error("cannot write attribute " + name);
}

void writeAttrInts(hid_t obj, const std::string& name, const std::vector<int64_t>& values) {
  deleteAttrIfAny(obj, name);
  hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle attr(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) throw std::runtime_error("cannot create attribute " + name);
  if (n > 0 && H5Awrite(attr, H5T_NATIVE_INT64, values.data()) < 0)
    throw std::runtime_error("cannot write attribute " + name);
}

void writeAttrBool(hid_t obj, const std::string& name, bool value) {
  deleteAttrIfAny(obj, name);
  // numpy bool as h5py writes it: enum {FALSE=0, TRUE=1} over int8.
  Handle type(H5Tenum_create(H5T_NATIVE_INT8));
  int8_t f = 0, t = 1;
  H5Tenum_insert(type, "FALSE", &f);
  H5Tenum_insert(type, "TRUE", &t);
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) throw std::runtime_error("cannot create attribute " + name);
  int8_t v = value ? 1 : 0;
  if (H5Awrite(attr, type, &v) < 0) throw std::runtime_error("cannot write attribute " + name);
}

static herr_t collectName(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

std::vector<std::string> children(hid_t group) {
  std::vector<std::string> out;
  QuietErrors quiet;
  hsize_t idx = 0;
  if (H5Literate(group, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collectName, &out) < 0) {
    out.clear();
    idx = 0;
    H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, collectName, &out);
  }
  return out;
}

bool datasetDims(hid_t dset, std::vector<hsize_t>& dims) {
  QuietErrors quiet;
  Handle space(H5Dget_space(dset));
  if (!space.valid()) return false;
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return false;
  dims.assign(static_cast<size_t>(rank), 0);
  return rank == 0 || H5Sget_simple_extent_dims(space, dims.data(), nullptr) == rank;
}

bool readStringDataset(hid_t dset, std::vector<std::string>& out) {
  QuietErrors quiet;
  Handle type(H5Dget_type(dset));
  if (!type.valid() || H5Tget_class(type) != H5T_STRING) return false;
  Handle space(H5Dget_space(dset));
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) return false;
  out.clear();
  out.reserve(static_cast<size_t>(n));
  if (n == 0) return true;
  if (H5Tis_variable_str(type) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5Tget_cset(type));
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    if (H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) return false;
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
  } else {
    size_t len = H5Tget_size(type);
    if (len == 0) return false;
    std::vector<char> buf(len * static_cast<size_t>(n), '\0');
    if (H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) return false;
    for (hssize_t i = 0; i < n; ++i) {
      const char* p = buf.data() + static_cast<size_t>(i) * len;
      size_t l = 0;
      while (l < len && p[l] != '\0') ++l;
      out.emplace_back(p, l);
    }
  }
  return true;
}

bool readSlice1d(hid_t dset, hid_t memType, int64_t start, int64_t count, void* dst) {
  if (count == 0) return true;
  if (start < 0 || count < 0) return false;
  QuietErrors quiet;
  Handle fileSpace(H5Dget_space(dset));
  if (!fileSpace.valid() || H5Sget_simple_extent_ndims(fileSpace) != 1) return false;
  hsize_t off = static_cast<hsize_t>(start), cnt = static_cast<hsize_t>(count);
  if (H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &off, nullptr, &cnt, nullptr) < 0 ||
      H5Sselect_valid(fileSpace) <= 0)
    return false;
  Handle memSpace(H5Screate_simple(1, &cnt, nullptr));
  return H5Dread(dset, memType, memSpace, fileSpace, H5P_DEFAULT, dst) >= 0;
}

// LZF block format (liblzf): a control byte c < 32 starts a run of c + 1 literal bytes;
// otherwise it is a back reference of length (c >> 5) + 2 (7 meaning "7 + next byte") at
// distance ((c & 31) << 8) + next byte + 1 before the output position. Returns the decoded
// size, 0 on malformed input or when out is too small (grown by the caller).
static size_t lzfDecode(const unsigned char* in, size_t inLen, unsigned char* out, size_t outLen,
                        bool& tooSmall) {
  tooSmall = false;
  size_t ip = 0, op = 0;
  while (ip < inLen) {
    size_t ctrl = in[ip++];
    if (ctrl < 32) {
      const size_t len = ctrl + 1;
      if (ip + len > inLen) return 0;
      if (op + len > outLen) { tooSmall = true; return 0; }
      std::memcpy(out + op, in + ip, len);
      ip += len;
      op += len;
    } else {
      size_t len = ctrl >> 5;
      if (ip >= inLen) return 0;
      if (len == 7) {
        len += in[ip++];
        if (ip >= inLen) return 0;
      }
      const size_t dist = ((ctrl & 31) << 8) + in[ip++] + 1;
      len += 2;
      if (dist > op) return 0;
      if (op + len > outLen) { tooSmall = true; return 0; }
      for (size_t k = 0; k < len; ++k, ++op) out[op] = out[op - dist];  // may overlap
    }
  }
  return op;
}

// HDF5 filter callback, decode direction only (as h5py's lzf_filter.c: cd_values[2] is the
// chunk size in bytes when known).
static size_t lzfFilter(unsigned flags, size_t nelmts, const unsigned cd[], size_t nbytes,
                        size_t* bufSize, void** buf) {
  if (!(flags & H5Z_FLAG_REVERSE)) return 0;  // no LZF encoder here
  size_t outSize = nelmts >= 3 && cd[2] != 0 ? cd[2] : *bufSize;
  for (int attempt = 0; attempt < 64 && outSize > 0; ++attempt) {
    void* out = std::malloc(outSize);
    if (!out) return 0;
    bool tooSmall = false;
    const size_t n = lzfDecode(static_cast<const unsigned char*>(*buf), nbytes,
                               static_cast<unsigned char*>(out), outSize, tooSmall);
    if (n > 0) {
      std::free(*buf);
      *buf = out;
      *bufSize = outSize;
      return n;
    }
    std::free(out);
    if (!tooSmall) return 0;
    outSize += std::max(*bufSize, nbytes);
  }
  return 0;
}

void registerH5pyFilters() {
  static std::once_flag once;
  std::call_once(once, [] {
    static const H5Z_class2_t lzf = {H5Z_CLASS_T_VERS, static_cast<H5Z_filter_t>(32000), 0, 1,
                                     "lzf (decoder for h5py files)", nullptr, nullptr, lzfFilter};
    QuietErrors quiet;
    if (H5Zfilter_avail(32000) <= 0) H5Zregister(&lzf);
  });
}

}  // namespace uce::h5
