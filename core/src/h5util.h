#pragma once
// Thin RAII and attribute helpers over the HDF5 C API, private to core.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace uce::h5 {

// Owns one hid_t and closes it with the right H5?close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) { reset(); id_ = std::exchange(o.id_, H5I_INVALID_HID); }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Silences HDF5's default error printing for the lifetime of the object.
class QuietErrors {
 public:
  QuietErrors();
  ~QuietErrors();

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

bool exists(hid_t loc, const std::string& path);  // each component checked, never throws
bool isGroup(hid_t loc, const std::string& path);
bool isDataset(hid_t loc, const std::string& path);
bool hasAttr(hid_t obj, const std::string& name);
// Attribute readers: return false when missing or of another type.
bool readAttrString(hid_t obj, const std::string& name, std::string& out);
bool readAttrStrings(hid_t obj, const std::string& name, std::vector<std::string>& out);
bool readAttrInts(hid_t obj, const std::string& name, std::vector<int64_t>& out);
bool readAttrBool(hid_t obj, const std::string& name, bool& out);
// Attribute writers (replace existing). Strings are written as variable-length UTF-8.
void writeAttrString(hid_t obj, const std::string& name, const std::string& value);
void writeAttrStrings(hid_t obj, const std::string& name, const std::vector<std::string>& values);
void writeAttrInts(hid_t obj, const std::string& name, const std::vector<int64_t>& values);
void writeAttrBool(hid_t obj, const std::string& name, bool value);
// Names of the members of a group, in creation/name order.
std::vector<std::string> children(hid_t group);

// Extent of a dataset's dataspace (empty for a scalar). False when it cannot be read.
bool datasetDims(hid_t dset, std::vector<hsize_t>& dims);
// Reads a string dataset (fixed or variable length, scalar or any rank, row-major order).
// False when the dataset is not of string type or cannot be read.
bool readStringDataset(hid_t dset, std::vector<std::string>& out);
// Reads elements [start, start + count) of a 1-D dataset straight into dst, converted by HDF5
// to memType (e.g. H5T_NATIVE_FLOAT); dst holds count elements of memType. False on error.
bool readSlice1d(hid_t dset, hid_t memType, int64_t start, int64_t count, void* dst);
// Registers a decoder for LZF (filter 32000), which h5py writes (anndata/scanpy
// compression="lzf") but libhdf5 does not ship. Idempotent and thread-safe.
void registerH5pyFilters();

}  // namespace uce::h5
