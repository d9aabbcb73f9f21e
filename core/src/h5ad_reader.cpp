// AnnData .h5ad reader for the layouts anndata 0.7 to 0.10 write: metadata (obs, var, obsm
// and varm names, uns scalars) on open, count rows on demand in bounded memory. CSR rows go
// straight from the file into the CsrBlock buffers (pread / H5Dread_chunk when the arrays are
// stored as float32 / int32, else HDF5's type conversion), without zero-filling them first,
// and are checked slice by slice while in cache, on two threads for large blocks; CSC and
// dense matrices are converted to CSR rows.
#include <fcntl.h>
#include <hdf5.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "h5util.h"
#include "readers.h"
#include "uce/core/error.h"

namespace uce {
namespace {

using h5::Handle;

// Entries per slice when scanning CSC columns or dense rows: bounds the temporary buffers to
// a few tens of MB whatever the matrix size.
constexpr int64_t kSliceEntries = int64_t{1} << 22;
// Chunk cache per sparse array, so that a chunk split by two row blocks is decompressed once.
constexpr size_t kChunkCacheBytes = size_t{16} << 20;
// CSR blocks are read and checked in slices of this many entries, so that a slice is still in
// cache (512 KiB of indices or of values) when it is checked. Blocks of at least
// kParallelEntries entries use a second thread (see readDirect, readChecked).
constexpr int64_t kCheckSlice = int64_t{1} << 17;
constexpr int64_t kParallelEntries = int64_t{1} << 20;
// uns dicts nested deeper than this are not followed (guards against looping hard links).
constexpr int kMaxUnsDepth = 32;

DType dtypeOf(hid_t type) {
  const size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return size == 4 ? DType::Float32 : size == 8 ? DType::Float64 : DType::Other;
    case H5T_INTEGER: {
      const bool sign = H5Tget_sign(type) == H5T_SGN_2;
      switch (size) {
        case 1:
          return sign ? DType::Int8 : DType::UInt8;
        case 2:
          return sign ? DType::Int16 : DType::UInt16;
        case 4:
          return sign ? DType::Int32 : DType::UInt32;
        case 8:
          return sign ? DType::Int64 : DType::UInt64;
        default:
          return DType::Other;
      }
    }
    default:
      return DType::Other;
  }
}

// How a 1-D array stored exactly as the wanted memory type (no filter, same byte order and
// width) can be read without HDF5's selection and conversion machinery:
//  - contiguous: pread() at its file offset;
//  - chunked (anndata and H5adWriter write growable, chunked arrays): pread() at the file
//    offset of each chunk where those can be looked up cheaply (chunkOffsets), else
//    H5Dread_chunk straight into the block for every chunk a read covers whole.
// pread() needs no HDF5 call (nor its library-wide lock), so two threads can fill a block.
struct DirectLayout {
  enum class Kind { None, Contiguous, Chunked } kind = Kind::None;
  int64_t offset = 0;         // Contiguous: byte offset of element 0 in the file
  int64_t chunkLen = 0;       // Chunked: elements per chunk
  bool chunkOffsets = false;  // Chunked: see fileRuns
  size_t elemSize = 0;
};

// In HDF5 1.10, H5Dget_chunk_info_by_coord walks the chunk index from its first entry
// (~16 ns an entry here), so looking up every chunk of an array of n chunks takes ~n^2 / 2
// steps. Chunk offsets are looked up only while that stays under ~10% of copying the chunks:
// n <= chunk bytes / kBytesPerChunkLookup (H5adWriter's 1 MiB chunks: up to 2,048 chunks;
// anndata's ~80 KB chunks: up to ~150). Nor when the file has a user block: HDF5 1.10 gives
// chunk addresses relative to its end.
constexpr int64_t kBytesPerChunkLookup = 512;

DirectLayout directLayout(hid_t dset, hid_t memType, int64_t length, int64_t fileSize,
                          bool userBlock) {
  Handle dcpl(H5Dget_create_plist(dset));
  Handle type(H5Dget_type(dset));
  if (!dcpl.valid() || !type.valid() || H5Pget_nfilters(dcpl) != 0 ||
      H5Pget_external_count(dcpl) != 0 || H5Tequal(type, memType) <= 0)
    return {};
  DirectLayout l;
  l.elemSize = H5Tget_size(memType);
  const auto elem = static_cast<int64_t>(l.elemSize);
  switch (H5Pget_layout(dcpl)) {
    case H5D_CONTIGUOUS: {
      const haddr_t offset = H5Dget_offset(dset);
      if (offset == HADDR_UNDEF || offset > static_cast<haddr_t>(fileSize) ||
          static_cast<int64_t>(offset) + length * elem > fileSize)
        return {};  // not written, or past the end: HDF5 reports it
      l.kind = DirectLayout::Kind::Contiguous;
      l.offset = static_cast<int64_t>(offset);
      return l;
    }
    case H5D_CHUNKED: {
      hsize_t chunk = 0;
      if (H5Pget_chunk(dcpl, 1, &chunk) != 1 || chunk == 0 ||
          chunk > static_cast<hsize_t>(INT32_MAX))
        return {};
      l.kind = DirectLayout::Kind::Chunked;
      l.chunkLen = static_cast<int64_t>(chunk);
      const int64_t chunks = (length + l.chunkLen - 1) / l.chunkLen;
      l.chunkOffsets = !userBlock && chunks <= l.chunkLen * elem / kBytesPerChunkLookup;
      return l;
    }
    default:
      return {};
  }
}

// Where elements [first, last) of a 1-D array lie in the file: runs of consecutive bytes.
struct FileRuns {
  struct Run {
    int64_t elem;    // the run holds elements elem.. (up to the next run's elem, or last)
    int64_t offset;  // byte offset of element `elem` in the file
  };
  std::vector<Run> runs;
  int64_t last = 0;
  int64_t elemSize = 0;
};

// The runs of elements [first, last) of an array that pread() can read: contiguous, or
// chunked with chunkOffsets and every chunk stored in its nominal size inside the file (not
// never written: HDF5 then gives the fill value).
bool fileRuns(hid_t dset, const DirectLayout& l, int64_t first, int64_t last, int64_t fileSize,
              FileRuns& out) {
  out.runs.clear();
  out.last = last;
  out.elemSize = static_cast<int64_t>(l.elemSize);
  if (l.kind == DirectLayout::Kind::Contiguous) {
    out.runs.push_back({first, l.offset + first * out.elemSize});
    return true;
  }
  if (l.kind != DirectLayout::Kind::Chunked || !l.chunkOffsets) return false;
  const int64_t len = l.chunkLen, chunkBytes = len * out.elemSize;
  for (int64_t c = first / len; c * len < last; ++c) {
    hsize_t coord = static_cast<hsize_t>(c * len), size = 0;
    unsigned filters = 0;
    haddr_t addr = HADDR_UNDEF;
    if (H5Dget_chunk_info_by_coord(dset, &coord, &filters, &addr, &size) < 0 ||
        addr == HADDR_UNDEF || filters != 0 || size != static_cast<hsize_t>(chunkBytes) ||
        fileSize < chunkBytes || addr > static_cast<haddr_t>(fileSize - chunkBytes))
      return false;
    const int64_t elem = std::max(first, c * len);
    const int64_t offset = static_cast<int64_t>(addr) + (elem - c * len) * out.elemSize;
    // Chunks stored one after the other join into one run (one pread).
    if (!out.runs.empty() &&
        out.runs.back().offset + (elem - out.runs.back().elem) * out.elemSize == offset)
      continue;
    out.runs.push_back({elem, offset});
  }
  return true;
}

// Owns a POSIX file descriptor (-1: none).
class FileDescriptor {
 public:
  FileDescriptor() = default;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  void open(const std::string& path) { fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

bool preadAll(int fd, void* dst, size_t bytes, int64_t offset) {
  auto* p = static_cast<char*>(dst);
  while (bytes > 0) {
    const ssize_t got = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    bytes -= static_cast<size_t>(got);
    offset += got;
  }
  return true;
}

// Elements [from, to) of the runs' range into dst.
bool preadRuns(int fd, const FileRuns& r, int64_t from, int64_t to, void* dst) {
  auto* out = static_cast<char*>(dst);
  auto run = std::upper_bound(r.runs.begin(), r.runs.end(), from,
                              [](int64_t e, const FileRuns::Run& x) { return e < x.elem; });
  if (run == r.runs.begin()) return false;
  for (--run; from < to; ++run) {
    const int64_t runEnd = std::next(run) == r.runs.end() ? r.last : std::next(run)->elem;
    const int64_t n = std::min(to, runEnd) - from;
    if (n <= 0 || !preadAll(fd, out, static_cast<size_t>(n * r.elemSize),
                            run->offset + (from - run->elem) * r.elemSize))
      return false;
    out += n * r.elemSize;
    from += n;
  }
  return true;
}

// Makes room for n elements in v without writing them: the caller then grows v slice by slice
// just before reading into each slice, so that resize()'s zero-filling touches a slice that is
// overwritten while still in cache, instead of a first pass over the whole buffer. When v must
// grow, its old contents are dropped, not copied.
template <typename T>
void reserveFor(std::vector<T>& v, int64_t n) {
  const auto count = static_cast<size_t>(n);
  if (v.capacity() >= count) {
    if (v.size() > count) v.resize(count);
    return;
  }
  const bool regrow = v.capacity() > 0;  // a reused block (RowStream): leave some room
  std::vector<T>().swap(v);
  v.reserve(regrow ? count + count / 8 : count);
}

// Grows v (within its capacity) to n elements. Fresh memory is first mapped in by the kernel
// in one call (MADV_POPULATE_WRITE, Linux >= 5.14; elsewhere a no-op) rather than by one page
// fault per 4 KiB page in resize(): for a 2.5 GB matrix that is 0.5 s less on a 2-core VM.
// (Transparent huge pages would save more, but cost seconds on VMs whose free memory was
// handed back to the host, so they are not asked for.)
template <typename T>
void growTo(std::vector<T>& v, int64_t n) {
  const auto count = static_cast<size_t>(n);
  if (v.size() >= count) return;
#ifdef MADV_POPULATE_WRITE
  static const auto pageSize = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t from = (reinterpret_cast<uintptr_t>(v.data() + v.size()) + pageSize - 1) &
                         ~(pageSize - 1);
  const uintptr_t to = reinterpret_cast<uintptr_t>(v.data() + count) & ~(pageSize - 1);
  if (to > from) madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE);
#endif
  v.resize(count);
}

struct ReadOutcome {
  bool indicesRead = true, valuesRead = true;  // false: reading that array failed
  bool valid = true;                           // every index in range, every value finite
};

// Entries [start, start + count) of a CSR matrix, read into indices / values [count] (their
// buffers, with room for count entries) slice by slice by readSlice(from, to) (offsets in the
// block; false when the read failed) on this thread, and checked with entriesValid; true when
// every slice read is valid. Slices end at multiples of `slice` in the file arrays. For blocks
// of kParallelEntries entries or more a helper thread checks each slice as soon as it is read
// (still in cache), so that checking overlaps reading.
template <typename ReadSlice>
bool readChecked(int64_t start, int64_t count, int64_t slice, int64_t ncols,
                 const int32_t* indices, const float* values, ReadSlice readSlice) {
  if (count <= 0) return true;
  const int64_t end = start + count, first = start / slice, last = (end - 1) / slice;
  auto bounds = [&](int64_t i) {
    return std::pair{std::max(start, i * slice) - start, std::min(end, (i + 1) * slice) - start};
  };
  auto check = [&](int64_t i) {
    const auto [from, to] = bounds(i);
    return entriesValid(indices + from, values + from, static_cast<size_t>(to - from), ncols);
  };
  bool read = true, valid = true;
  if (count < kParallelEntries) {
    for (int64_t i = first; i <= last && read; ++i) {
      const auto [from, to] = bounds(i);
      read = readSlice(from, to);
      valid = read && check(i) && valid;
    }
    return valid;
  }
  std::mutex mutex;
  std::condition_variable progress;
  int64_t readUpTo = first;  // slices before this one are read
  bool done = false, helperValid = true;
  std::thread checker([&] {
    for (int64_t i = first;; ++i) {
      std::unique_lock<std::mutex> lock(mutex);
      progress.wait(lock, [&] { return readUpTo > i || done; });
      if (readUpTo <= i) return;
      lock.unlock();
      helperValid = check(i) && helperValid;
    }
  });
  for (int64_t i = first; i <= last && read; ++i) {
    const auto [from, to] = bounds(i);
    read = readSlice(from, to);
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (read) readUpTo = i + 1;
    }
    progress.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  progress.notify_one();
  checker.join();
  return read && helperValid;
}

bool isNumericClass(H5T_class_t c) {
  return c == H5T_INTEGER || c == H5T_FLOAT;
}

// numpy bool as h5py writes it: a one-byte enum {FALSE, TRUE}.
bool isBoolType(hid_t type) {
  return H5Tget_class(type) == H5T_ENUM && H5Tget_size(type) == 1;
}

// Python's repr of a float (shortest round-trip text, "1.0" rather than "1"), so numeric
// category labels read the same as pandas shows them.
std::string floatLabel(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::vector<std::string> numberedLabels(int64_t n) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) out.push_back(std::to_string(i));
  return out;
}

class H5adDataset final : public Dataset {
 public:
  explicit H5adDataset(std::string path);

  const std::string& path() const override { return path_; }
  std::string format() const override { return "h5ad"; }
  int64_t cells() const override { return cells_; }
  const DataFrame& obs() const override { return obs_; }
  const DataFrame& var() const override { return var_; }
  const DataFrame& varFor(const std::string& key) const override {
    return key == "raw/X" && hasRaw_ ? rawVar_ : var_;
  }
  std::vector<MatrixInfo> matrices() const override;
  CsrBlock readRows(const std::string& key, int64_t row0, int64_t n) const override;
  void readRowsInto(const std::string& key, int64_t row0, int64_t n, CsrBlock& b) const override;
  std::vector<std::string> obsmKeys() const override { return obsmKeys_; }
  DenseMatrix readObsm(const std::string& key) const override;
  std::vector<std::string> varmKeys() const override { return varmKeys_; }
  DenseMatrix readVarm(const std::string& key) const override;
  std::map<std::string, UnsValue> uns() const override { return uns_; }
  // HDF5 paths of obs/var columns, obsm/varm entries and uns values in encodings this reader
  // does not decode ("obs/some_column"), so that a writer can carry them over untouched.
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  struct Matrix {
    MatrixInfo info;
    Handle dense;                            // Storage::Dense: the 2-D [rows, cols] dataset
    Handle data, indices, indptr;            // Storage::Csr / Csc: the three 1-D arrays
    std::vector<int64_t> colPtr;             // Storage::Csc: indptr [cols + 1], checked on open
    DirectLayout directData, directIndices;  // Storage::Csr: see DirectLayout
  };

  [[noreturn]] void unreadable(const std::string& what) const;
  Handle openDataset(hid_t loc, const std::string& name, const std::string& what,
                     hid_t dapl = H5P_DEFAULT) const;
  std::vector<hsize_t> dimsOf(hid_t dset, const std::string& what) const;
  void openFile();
  Matrix openMatrix(const std::string& key, const std::string& h5path) const;
  void openSparse(Matrix& m, hid_t group, const std::string& encoding,
                  const std::vector<int64_t>& shape) const;
  void addOptionalMatrix(const std::string& key, const std::string& h5path,
                         const std::string& varPath);

  DataFrame readFrame(const std::string& gpath, int64_t expectedRows);
  bool readColumn(hid_t group, const std::string& gpath, const std::string& name, Column& c) const;
  bool readLegacyCategorical(hid_t codes, const std::string& what, Column& c) const;
  std::vector<std::string> readLabels(hid_t dset, const std::string& what) const;
  std::vector<int32_t> readCodes(hid_t dset, const std::string& what) const;
  template <typename T>
  std::vector<T> readVector(hid_t dset, hid_t memType, const std::string& what) const;
  void checkCodes(const Column& c, const std::string& what) const;

  void listArrays(const std::string& gname, std::vector<std::string>& keys);
  DenseMatrix readArray(const std::string& gname, const std::string& key, int64_t rows) const;
  void readUns(hid_t group, const std::string& prefix, int depth);

  void readCsr(const Matrix& m, int64_t row0, int64_t n, CsrBlock& b) const;
  ReadOutcome readDirect(const FileRuns& indexRuns, const FileRuns& valueRuns, int64_t start,
                         int64_t count, CsrBlock& b) const;
  ReadOutcome readOneByOne(const Matrix& m, int64_t start, int64_t count, CsrBlock& b) const;
  bool readArray(hid_t dset, const DirectLayout& layout, hid_t memType, int64_t start,
                 int64_t count, void* dst, std::vector<char>& scratch) const;
  void readCsc(const Matrix& m, int64_t row0, int64_t n, CsrBlock& b) const;
  void readDense(const Matrix& m, int64_t row0, int64_t n, CsrBlock& b) const;

  Handle file_;  // first member, so it is closed after every object opened in it
  std::string path_;
  FileDescriptor fd_;  // the same file, for pread() (see DirectLayout)
  int64_t fileSize_ = 0;
  bool userBlock_ = true;  // the HDF5 data starts after a user block (or that is unknown)
  int64_t cells_ = 0;
  DataFrame obs_, var_, rawVar_;
  bool hasRaw_ = false;
  std::vector<Matrix> matrices_;
  // Layers / raw that could not be opened: the error is given when that matrix is read, so a
  // broken optional matrix does not stop the user from reading X.
  std::map<std::string, Error> deferred_;
  std::vector<std::string> obsmKeys_, varmKeys_;
  std::map<std::string, UnsValue> uns_;
  std::vector<std::string> skipped_;
};

void H5adDataset::unreadable(const std::string& what) const {
  fail(ErrorKind::Truncated, path_, "cannot read '" + what + "': the file is truncated or corrupt");
}

Handle H5adDataset::openDataset(hid_t loc, const std::string& name, const std::string& what,
                                hid_t dapl) const {
  Handle d(H5Dopen2(loc, name.c_str(), dapl));
  if (!d.valid()) unreadable(what);
  return d;
}

std::vector<hsize_t> H5adDataset::dimsOf(hid_t dset, const std::string& what) const {
  std::vector<hsize_t> dims;
  if (!h5::datasetDims(dset, dims)) unreadable(what);
  return dims;
}

H5adDataset::H5adDataset(std::string path) : path_(std::move(path)) {
  h5::QuietErrors quiet;
  openFile();

  if (!h5::exists(file_, "X"))
    fail(ErrorKind::MissingMatrix, path_,
         "no X matrix in this .h5ad (anndata X is None); save the counts as X or layers");
  Matrix x = openMatrix("X", "X");
  cells_ = x.info.rows;
  obs_ = readFrame("obs", x.info.rows);
  var_ = readFrame("var", x.info.cols);
  validateShape(path_, obs_, var_, x.info.rows, x.info.cols, "X");
  matrices_.push_back(std::move(x));

  if (h5::isGroup(file_, "layers")) {
    Handle layers(H5Gopen2(file_, "layers", H5P_DEFAULT));
    if (!layers.valid()) unreadable("layers");
    for (const auto& name : h5::children(layers))
      addOptionalMatrix("layers/" + name, "layers/" + name, "");
  }
  // anndata < 0.7 wrote raw as top-level "raw.X" / "raw.var".
  if (h5::exists(file_, "raw/X"))
    addOptionalMatrix("raw/X", "raw/X", "raw/var");
  else if (h5::exists(file_, "raw.X"))
    addOptionalMatrix("raw/X", "raw.X", "raw.var");

  listArrays("obsm", obsmKeys_);
  listArrays("varm", varmKeys_);
  if (h5::isGroup(file_, "uns")) {
    Handle uns(H5Gopen2(file_, "uns", H5P_DEFAULT));
    if (uns.valid()) readUns(uns, "", 0);
  }
}

void H5adDataset::openFile() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path_, ec)) fail(ErrorKind::Io, path_, "no such file");
  if (fs::is_directory(path_, ec)) fail(ErrorKind::Io, path_, "is a folder, not an .h5ad file");
  if (!std::ifstream(path_, std::ios::binary))
    fail(ErrorKind::Io, path_, "cannot open the file for reading (check its permissions)");
  if (H5Fis_hdf5(path_.c_str()) <= 0)
    fail(ErrorKind::NotHdf5, path_,
         "not an HDF5 file; .h5ad files are HDF5 containers written by anndata/scanpy");
  h5::registerH5pyFilters();  // files saved with compression="lzf"
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  // Reading only: do not fail because another program (e.g. a notebook) has the file open.
  H5Pset_file_locking(fapl, false, true);
  file_ = Handle(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, fapl));
  if (!file_.valid())
    fail(ErrorKind::Truncated, path_,
         "file is truncated or corrupt (HDF5 cannot open it); copy or download it again");
  fd_.open(path_);
  fileSize_ = static_cast<int64_t>(fs::file_size(path_, ec));
  if (ec) fileSize_ = 0;
  Handle fcpl(H5Fget_create_plist(file_));
  hsize_t userBlock = 0;
  userBlock_ = !fcpl.valid() || H5Pget_userblock(fcpl, &userBlock) < 0 || userBlock != 0;
}

// ---- matrices -------------------------------------------------------------------------------

H5adDataset::Matrix H5adDataset::openMatrix(const std::string& key,
                                            const std::string& h5path) const {
  Matrix m;
  m.info.key = key;
  if (h5::isDataset(file_, h5path)) {
    m.dense = openDataset(file_, h5path, h5path);
    std::vector<hsize_t> dims = dimsOf(m.dense, h5path);
    if (dims.size() != 2)
      fail(ErrorKind::Shape, path_,
           "matrix '" + key + "' is a " + std::to_string(dims.size()) +
               "-dimensional array, not a cells x genes matrix");
    Handle type(H5Dget_type(m.dense));
    if (!type.valid()) unreadable(h5path);
    if (!isNumericClass(H5Tget_class(type)))
      fail(ErrorKind::Unsupported, path_,
           "matrix '" + key + "' does not hold numbers (e.g. it is boolean or text)");
    m.info.storage = Storage::Dense;
    m.info.dtype = dtypeOf(type);
    m.info.rows = static_cast<int64_t>(dims[0]);
    m.info.cols = static_cast<int64_t>(dims[1]);
    m.info.nnz = -1;
  } else if (h5::isGroup(file_, h5path)) {
    Handle g(H5Gopen2(file_, h5path.c_str(), H5P_DEFAULT));
    if (!g.valid()) unreadable(h5path);
    std::string encoding;
    std::vector<int64_t> shape;
    h5::readAttrString(g, "encoding-type", encoding);
    if (encoding == "csr_matrix" || encoding == "csc_matrix") {
      h5::readAttrInts(g, "shape", shape);
    } else if (std::string legacy; h5::readAttrString(g, "h5sparse_format", legacy)) {
      encoding = legacy + "_matrix";  // anndata 0.7: h5sparse_format "csr" / "csc"
      h5::readAttrInts(g, "h5sparse_shape", shape);
    }
    if (encoding != "csr_matrix" && encoding != "csc_matrix")
      fail(ErrorKind::Unsupported, path_,
           "matrix '" + key + "' is stored as " +
               (encoding.empty() ? std::string("a group without an encoding-type")
                                 : "'" + encoding + "'") +
               "; expected a dense array or a csr_matrix / csc_matrix");
    openSparse(m, g, encoding, shape);
  } else {
    fail(ErrorKind::MissingMatrix, path_, "cannot find matrix '" + key + "' in this file");
  }
  if (m.info.cols > INT32_MAX)
    fail(ErrorKind::Unsupported, path_,
         "matrix '" + key + "' has " + std::to_string(m.info.cols) + " genes, more than 2^31");
  return m;
}

void H5adDataset::openSparse(Matrix& m, hid_t group, const std::string& encoding,
                             const std::vector<int64_t>& shape) const {
  const std::string& key = m.info.key;
  if (shape.size() != 2 || shape[0] < 0 || shape[1] < 0)
    fail(ErrorKind::Shape, path_, "sparse matrix '" + key + "' has no valid shape attribute");
  m.info.storage = encoding == "csr_matrix" ? Storage::Csr : Storage::Csc;
  m.info.rows = shape[0];
  m.info.cols = shape[1];

  Handle dapl(H5Pcreate(H5P_DATASET_ACCESS));
  H5Pset_chunk_cache(dapl, 4099, kChunkCacheBytes, 1.0);
  auto part = [&](const char* name, Handle& out) -> int64_t {
    const std::string what = key + "/" + name;
    if (!h5::isDataset(group, name))
      fail(ErrorKind::Shape, path_,
           "sparse matrix '" + key + "' has no '" + name + "' array; the file is incomplete");
    out = openDataset(group, name, what, dapl);
    std::vector<hsize_t> dims = dimsOf(out, what);
    if (dims.size() != 1)
      fail(ErrorKind::Shape, path_, "'" + what + "' is not a 1-dimensional array");
    Handle type(H5Dget_type(out));
    if (!type.valid()) unreadable(what);
    const H5T_class_t cls = H5Tget_class(type);
    if (std::string(name) == "data" ? !isNumericClass(cls) : cls != H5T_INTEGER)
      fail(ErrorKind::Unsupported, path_,
           "'" + what + "' holds " +
               (std::string(name) == "data" ? "non-numeric values" : "non-integer positions"));
    if (std::string(name) == "data") m.info.dtype = dtypeOf(type);
    return static_cast<int64_t>(dims[0]);
  };
  const int64_t nnz = part("data", m.data);
  const int64_t nIndices = part("indices", m.indices);
  const int64_t nIndptr = part("indptr", m.indptr);
  m.info.nnz = nnz;

  if (nIndices != nnz)
    fail(ErrorKind::BadIndex, path_,
         "matrix '" + key + "' stores " + std::to_string(nnz) + " values but " +
             std::to_string(nIndices) + " indices");
  const bool csr = m.info.storage == Storage::Csr;
  const int64_t major = csr ? m.info.rows : m.info.cols;
  if (nIndptr != major + 1)
    fail(ErrorKind::Shape, path_,
         "matrix '" + key + "': indptr has " + std::to_string(nIndptr) +
             " entries but the matrix has " + std::to_string(major) + (csr ? " rows" : " columns") +
             " (expected " + std::to_string(major + 1) + ")");
  int64_t first = 0, last = 0;
  if (csr) {
    // Only the ends here: rows are checked block by block in validateBlock.
    if (!h5::readSlice1d(m.indptr, H5T_NATIVE_INT64, 0, 1, &first) ||
        !h5::readSlice1d(m.indptr, H5T_NATIVE_INT64, major, 1, &last))
      unreadable(key + "/indptr");
  } else {
    m.colPtr = readVector<int64_t>(m.indptr, H5T_NATIVE_INT64, key + "/indptr");
    first = m.colPtr.front();
    last = m.colPtr.back();
    for (size_t c = 1; c < m.colPtr.size(); ++c)
      if (m.colPtr[c] < m.colPtr[c - 1])
        fail(ErrorKind::BadIndex, path_,
             "matrix '" + key + "': indptr decreases at column " + std::to_string(c - 1));
  }
  if (first != 0)
    fail(ErrorKind::BadIndex, path_,
         "matrix '" + key + "': indptr starts at " + std::to_string(first) + ", not 0");
  if (last != nnz)
    fail(ErrorKind::BadIndex, path_,
         "matrix '" + key + "': indptr ends at " + std::to_string(last) + " but " +
             std::to_string(nnz) + " values are stored");
  if (csr && fd_.get() >= 0) {
    m.directData = directLayout(m.data, H5T_NATIVE_FLOAT, nnz, fileSize_, userBlock_);
    m.directIndices = directLayout(m.indices, H5T_NATIVE_INT32, nnz, fileSize_, userBlock_);
  }
}

void H5adDataset::addOptionalMatrix(const std::string& key, const std::string& h5path,
                                    const std::string& varPath) {
  try {
    Matrix m = openMatrix(key, h5path);
    if (varPath.empty()) {
      if (m.info.rows != cells_ || m.info.cols != static_cast<int64_t>(var_.rows()))
        fail(ErrorKind::Shape, path_,
             "matrix '" + key + "' is " + std::to_string(m.info.rows) + " x " +
                 std::to_string(m.info.cols) + " but X is " + std::to_string(cells_) + " x " +
                 std::to_string(var_.rows()));
    } else {
      rawVar_ = readFrame(varPath, m.info.cols);
      validateShape(path_, obs_, rawVar_, m.info.rows, m.info.cols, key);
      hasRaw_ = true;
    }
    matrices_.push_back(std::move(m));
  } catch (const Error& e) {
    deferred_.emplace(key, e);
  }
}

std::vector<MatrixInfo> H5adDataset::matrices() const {
  std::vector<MatrixInfo> out;
  for (const auto& m : matrices_) out.push_back(m.info);
  return out;
}

CsrBlock H5adDataset::readRows(const std::string& key, int64_t row0, int64_t n) const {
  CsrBlock b;
  readRowsInto(key, row0, n, b);
  return b;
}

// Buffers of b are resized, never cleared first, so a reused block is not zero-filled again.
void H5adDataset::readRowsInto(const std::string& key, int64_t row0, int64_t n, CsrBlock& b) const {
  h5::QuietErrors quiet;
  if (auto d = deferred_.find(key); d != deferred_.end()) throw d->second;
  const Matrix* m = nullptr;
  for (const auto& candidate : matrices_)
    if (candidate.info.key == key) m = &candidate;
  if (!m) {
    matrix(key);  // throws MissingMatrix listing the keys
    fail(ErrorKind::MissingMatrix, path_, "no matrix '" + key + "' in this file");
  }
  if (row0 < 0 || n < 0 || row0 > m->info.rows - n)
    fail(ErrorKind::InvalidArgument, path_,
         "rows " + std::to_string(row0) + ".." + std::to_string(row0 + n) + " are outside '" + key +
             "' (" + std::to_string(m->info.rows) + " cells)");
  b.row0 = row0;
  b.ncols = m->info.cols;
  switch (m->info.storage) {
    case Storage::Csr:
      readCsr(*m, row0, n, b);
      return;  // validated slice by slice
    case Storage::Csc:
      readCsc(*m, row0, n, b);
      break;
    case Storage::Dense:
      readDense(*m, row0, n, b);
      break;
  }
  validateBlock(path_, key, b);
}

void H5adDataset::readCsr(const Matrix& m, int64_t row0, int64_t n, CsrBlock& b) const {
  const std::string& key = m.info.key;
  b.indptr.resize(static_cast<size_t>(n + 1));
  if (!h5::readSlice1d(m.indptr, H5T_NATIVE_INT64, row0, n + 1, b.indptr.data()))
    unreadable(key + "/indptr");
  const int64_t start = b.indptr.front(), end = b.indptr.back();
  if (start < 0 || end < start || end > m.info.nnz)
    fail(ErrorKind::BadIndex, path_,
         "matrix '" + key + "': indptr of rows " + std::to_string(row0) + ".." +
             std::to_string(row0 + n) + " points to entries " + std::to_string(start) + ".." +
             std::to_string(end) + " outside the " + std::to_string(m.info.nnz) + " stored");
  if (start != 0)
    for (auto& p : b.indptr) p -= start;

  const int64_t count = end - start;
  reserveFor(b.indices, count);
  reserveFor(b.values, count);
  FileRuns indexRuns, valueRuns;
  const ReadOutcome out =
      count > 0 && fd_.get() >= 0 &&
              fileRuns(m.indices, m.directIndices, start, end, fileSize_, indexRuns) &&
              fileRuns(m.data, m.directData, start, end, fileSize_, valueRuns)
          ? readDirect(indexRuns, valueRuns, start, count, b)
          : readOneByOne(m, start, count, b);
  if (!out.indicesRead) unreadable(key + "/indices");
  if (!out.valuesRead) unreadable(key + "/data");
  validateIndptr(path_, key, b);
  if (!out.valid) validateBlock(path_, key, b);  // throws, naming the first bad entry
}

// Both arrays by pread(), each grown, read and checked slice by slice (see reserveFor); in
// blocks of kParallelEntries entries or more the indices on a helper thread, so that both
// cores copy and fault in memory.
ReadOutcome H5adDataset::readDirect(const FileRuns& indexRuns, const FileRuns& valueRuns,
                                    int64_t start, int64_t count, CsrBlock& b) const {
  const int fd = fd_.get();
  // No exceptions and no HDF5 calls: may run on the helper thread.
  auto fill = [&](auto& v, const FileRuns& runs, auto valid, bool& read, bool& ok) {
    for (int64_t from = 0; from < count && read; from += kCheckSlice) {
      const int64_t to = std::min(count, from + kCheckSlice);
      growTo(v, to);  // within the reserved capacity: no reallocation
      read = preadRuns(fd, runs, start + from, start + to, v.data() + from);
      ok = read && valid(v.data() + from, static_cast<size_t>(to - from)) && ok;
    }
  };
  const int64_t ncols = b.ncols;
  ReadOutcome out;
  bool indicesOk = true, valuesOk = true;
  auto fillIndices = [&] {
    fill(b.indices, indexRuns,
         [ncols](const int32_t* p, size_t n) { return indicesInRange(p, n, ncols); },
         out.indicesRead, indicesOk);
  };
  auto fillValues = [&] {
    fill(b.values, valueRuns, [](const float* p, size_t n) { return valuesFinite(p, n); },
         out.valuesRead, valuesOk);
  };
  if (count >= kParallelEntries) {
    std::thread helper(fillIndices);
    fillValues();
    helper.join();
  } else {
    fillIndices();
    if (out.indicesRead) fillValues();
  }
  out.valid = indicesOk && valuesOk;
  return out;
}

// Both arrays slice by slice on this thread (through HDF5 where pread cannot, which
// serialises reads), a helper checking each slice (see readChecked).
ReadOutcome H5adDataset::readOneByOne(const Matrix& m, int64_t start, int64_t count,
                                      CsrBlock& b) const {
  int32_t* indices = b.indices.data();  // stable: growTo stays within the reserved capacity
  float* values = b.values.data();
  // Slices at multiples of `slice` in the file arrays: whole chunks when the data is chunked.
  int64_t slice = kCheckSlice;
  if (m.directData.kind == DirectLayout::Kind::Chunked)
    slice = std::max<int64_t>(1, kCheckSlice / m.directData.chunkLen) * m.directData.chunkLen;
  std::vector<char> scratch;  // one chunk, for chunks a slice covers in part
  ReadOutcome out;
  out.valid =
      readChecked(start, count, slice, b.ncols, indices, values, [&](int64_t from, int64_t to) {
        growTo(b.indices, to);
        out.indicesRead = readArray(m.indices, m.directIndices, H5T_NATIVE_INT32, start + from,
                                    to - from, indices + from, scratch);
        if (!out.indicesRead) return false;
        growTo(b.values, to);
        return out.valuesRead = readArray(m.data, m.directData, H5T_NATIVE_FLOAT, start + from,
                                          to - from, values + from, scratch);
      });
  return out;
}

// Elements [start, start + count) of a 1-D array into dst as memType: the direct way when the
// layout allows (see DirectLayout), else HDF5 with its type conversion (out-of-range int64
// indices saturate, and fail the check). No exceptions.
bool H5adDataset::readArray(hid_t dset, const DirectLayout& layout, hid_t memType, int64_t start,
                            int64_t count, void* dst, std::vector<char>& scratch) const {
  using Kind = DirectLayout::Kind;
  const auto elem = static_cast<int64_t>(layout.elemSize);
  if (layout.kind == Kind::Contiguous)
    return preadAll(fd_.get(), dst, static_cast<size_t>(count * elem), layout.offset + start * elem);
  if (layout.kind == Kind::None) return h5::readSlice1d(dset, memType, start, count, dst);
  const int64_t len = layout.chunkLen, end = start + count;
  const auto chunkBytes = static_cast<hsize_t>(len * elem);
  auto* out = static_cast<char*>(dst);
  for (int64_t c = start / len; c * len < end; ++c) {
    const int64_t from = std::max(start, c * len), to = std::min(end, (c + 1) * len);
    auto offset = static_cast<hsize_t>(c * len);
    uint32_t filters = 0;
    char* target = out + (from - start) * elem;
    // H5Dread_chunk writes as many bytes as the file's chunk index says are stored: only
    // chunks stored in their nominal size are read that way. The others (e.g. never written:
    // HDF5 gives the fill value) go through HDF5's selection machinery.
    hsize_t stored = 0;
    bool read = false;
    if (H5Dget_chunk_storage_size(dset, &offset, &stored) >= 0 && stored == chunkBytes) {
      // A chunk is stored whole (also the last, partial one), so it goes straight into the
      // block only when the read covers all of it.
      const bool whole = from == c * len && to == (c + 1) * len;
      if (!whole) scratch.resize(static_cast<size_t>(chunkBytes));
      void* into = whole ? static_cast<void*>(target) : scratch.data();
      read = H5Dread_chunk(dset, H5P_DEFAULT, &offset, &filters, into) >= 0;
      if (read && !whole)
        std::memcpy(target, scratch.data() + (from - c * len) * elem,
                    static_cast<size_t>((to - from) * elem));
    }
    if (!read && !h5::readSlice1d(dset, memType, from, to - from, target)) return false;
  }
  return true;
}

void H5adDataset::readCsc(const Matrix& m, int64_t row0, int64_t n, CsrBlock& b) const {
  const std::string& key = m.info.key;
  const std::vector<int64_t>& colPtr = m.colPtr;
  const int64_t nnz = colPtr.back(), rows = m.info.rows, rowEnd = row0 + n;
  // Entries of the wanted rows in column order: (local row, column, value).
  std::vector<int32_t> hitRow, hitCol;
  std::vector<float> hitVal;
  std::vector<int32_t> rowBuf;
  std::vector<float> valBuf;
  int64_t col = 0;
  for (int64_t s = 0; s < nnz; s += kSliceEntries) {
    const int64_t count = std::min(kSliceEntries, nnz - s);
    rowBuf.resize(static_cast<size_t>(count));
    if (!h5::readSlice1d(m.indices, H5T_NATIVE_INT32, s, count, rowBuf.data()))
      unreadable(key + "/indices");
    bool any = false;
    for (int32_t r : rowBuf) {
      if (r < 0 || r >= rows)
        fail(ErrorKind::BadIndex, path_,
             "matrix '" + key + "': row index " + std::to_string(r) + " out of range [0, " +
                 std::to_string(rows) + ")");
      any = any || (r >= row0 && r < rowEnd);
    }
    if (!any) continue;  // no wanted rows here: skip reading the values
    valBuf.resize(static_cast<size_t>(count));
    if (!h5::readSlice1d(m.data, H5T_NATIVE_FLOAT, s, count, valBuf.data()))
      unreadable(key + "/data");
    for (int64_t k = 0; k < count; ++k) {
      const int32_t r = rowBuf[static_cast<size_t>(k)];
      if (r < row0 || r >= rowEnd) continue;
      while (colPtr[static_cast<size_t>(col + 1)] <= s + k) ++col;
      hitRow.push_back(static_cast<int32_t>(r - row0));
      hitCol.push_back(static_cast<int32_t>(col));
      hitVal.push_back(valBuf[static_cast<size_t>(k)]);
    }
  }
  // Counting sort by row; columns stay ascending within each row.
  b.indptr.assign(static_cast<size_t>(n + 1), 0);
  for (int32_t r : hitRow) ++b.indptr[static_cast<size_t>(r + 1)];
  for (int64_t r = 0; r < n; ++r)
    b.indptr[static_cast<size_t>(r + 1)] += b.indptr[static_cast<size_t>(r)];
  std::vector<int64_t> next(b.indptr.begin(), b.indptr.end() - 1);
  b.indices.resize(hitRow.size());
  b.values.resize(hitRow.size());
  for (size_t j = 0; j < hitRow.size(); ++j) {
    const auto p = static_cast<size_t>(next[static_cast<size_t>(hitRow[j])]++);
    b.indices[p] = hitCol[j];
    b.values[p] = hitVal[j];
  }
}

void H5adDataset::readDense(const Matrix& m, int64_t row0, int64_t n, CsrBlock& b) const {
  const int64_t cols = m.info.cols;
  const int64_t sliceRows = std::max<int64_t>(1, kSliceEntries / std::max<int64_t>(cols, 1));
  std::vector<float> buf;
  b.indptr.assign(1, 0);
  b.indptr.reserve(static_cast<size_t>(n + 1));
  b.indices.clear();
  b.values.clear();
  Handle fileSpace(H5Dget_space(m.dense));
  if (!fileSpace.valid()) unreadable(m.info.key);
  for (int64_t r = 0; r < n; r += sliceRows) {
    const int64_t count = std::min(sliceRows, n - r);
    buf.resize(static_cast<size_t>(count * cols));
    if (cols > 0) {
      const hsize_t start[2] = {static_cast<hsize_t>(row0 + r), 0};
      const hsize_t extent[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(cols)};
      Handle memSpace(H5Screate_simple(2, extent, nullptr));
      if (H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start, nullptr, extent, nullptr) < 0 ||
          H5Dread(m.dense, H5T_NATIVE_FLOAT, memSpace, fileSpace, H5P_DEFAULT, buf.data()) < 0)
        unreadable(m.info.key);
    }
    for (int64_t i = 0; i < count; ++i) {
      const float* row = buf.data() + i * cols;
      for (int64_t c = 0; c < cols; ++c)
        if (row[c] != 0.0f) {
          b.indices.push_back(static_cast<int32_t>(c));
          b.values.push_back(row[c]);
        }
      b.indptr.push_back(static_cast<int64_t>(b.values.size()));
    }
  }
}

// ---- obs / var ------------------------------------------------------------------------------

template <typename T>
std::vector<T> H5adDataset::readVector(hid_t dset, hid_t memType, const std::string& what) const {
  std::vector<hsize_t> dims = dimsOf(dset, what);
  if (dims.size() > 1) fail(ErrorKind::Shape, path_, "'" + what + "' is not a 1-dimensional array");
  Handle type(H5Dget_type(dset));
  if (!type.valid()) unreadable(what);
  const H5T_class_t cls = H5Tget_class(type);
  if (!isNumericClass(cls) && cls != H5T_ENUM)
    fail(ErrorKind::Unsupported, path_, "'" + what + "' holds text or records, not numbers");
  std::vector<T> out(dims.empty() ? 1 : static_cast<size_t>(dims[0]));
  if (!out.empty() && H5Dread(dset, memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    unreadable(what);
  return out;
}

// Row names or category labels: strings, or numbers written as pandas shows them.
std::vector<std::string> H5adDataset::readLabels(hid_t dset, const std::string& what) const {
  Handle type(H5Dget_type(dset));
  if (!type.valid()) unreadable(what);
  std::vector<std::string> out;
  switch (H5Tget_class(type)) {
    case H5T_STRING:
      if (dimsOf(dset, what).size() > 1)
        fail(ErrorKind::Shape, path_, "'" + what + "' is not a 1-dimensional array");
      if (!h5::readStringDataset(dset, out)) unreadable(what);
      return out;
    case H5T_INTEGER:
      for (int64_t v : readVector<int64_t>(dset, H5T_NATIVE_INT64, what))
        out.push_back(std::to_string(v));
      return out;
    case H5T_FLOAT:
      for (double v : readVector<double>(dset, H5T_NATIVE_DOUBLE, what))
        out.push_back(floatLabel(v));
      return out;
    case H5T_ENUM:
      if (isBoolType(type)) {
        for (int8_t v : readVector<int8_t>(dset, H5T_NATIVE_INT8, what))
          out.push_back(v ? "True" : "False");
        return out;
      }
      break;
    default:
      break;
  }
  fail(ErrorKind::Unsupported, path_,
       "'" + what + "' holds labels of a type this reader does not read");
}

std::vector<int32_t> H5adDataset::readCodes(hid_t dset, const std::string& what) const {
  Handle type(H5Dget_type(dset));
  if (!type.valid()) unreadable(what);
  if (H5Tget_class(type) != H5T_INTEGER)
    fail(ErrorKind::Unsupported, path_, "category codes '" + what + "' are not integers");
  return readVector<int32_t>(dset, H5T_NATIVE_INT32, what);
}

void H5adDataset::checkCodes(const Column& c, const std::string& what) const {
  const auto ncat = static_cast<int64_t>(c.categories.size());
  for (int32_t code : c.codes)
    if (code < -1 || code >= ncat)
      fail(ErrorKind::BadIndex, path_,
           "categorical column '" + what + "' has code " + std::to_string(code) + " but only " +
               std::to_string(ncat) + " categories");
}

// anndata 0.7: the codes dataset carries an HDF5 object reference to its categories, which
// live in <frame>/__categories/<column> with an 'ordered' attribute.
bool H5adDataset::readLegacyCategorical(hid_t codes, const std::string& what, Column& c) const {
  Handle attr(H5Aopen(codes, "categories", H5P_DEFAULT));
  if (!attr.valid()) unreadable(what);
  Handle attrType(H5Aget_type(attr));
  if (!attrType.valid() || H5Tget_class(attrType) != H5T_REFERENCE) return false;
  hobj_ref_t ref{};
  if (H5Aread(attr, H5T_STD_REF_OBJ, &ref) < 0) unreadable(what + " categories");
  Handle cats(H5Rdereference2(codes, H5P_DEFAULT, H5R_OBJECT, &ref));
  if (!cats.valid() || H5Iget_type(cats) != H5I_DATASET) unreadable(what + " categories");
  c.kind = ColumnKind::Categorical;
  c.categories = readLabels(cats, what + " categories");
  bool ordered = false;
  h5::readAttrBool(cats, "ordered", ordered);
  c.ordered = ordered;
  c.codes = readCodes(codes, what);
  checkCodes(c, what);
  return true;
}

// Fills c from obs/var member `name`; false when its encoding is not one this reader decodes.
bool H5adDataset::readColumn(hid_t group, const std::string& gpath, const std::string& name,
                             Column& c) const {
  const std::string what = gpath + "/" + name;
  if (h5::isGroup(group, name)) {
    Handle g(H5Gopen2(group, name.c_str(), H5P_DEFAULT));
    if (!g.valid()) unreadable(what);
    std::string encoding;
    h5::readAttrString(g, "encoding-type", encoding);
    if (encoding == "categorical") {
      if (!h5::isDataset(g, "categories") || !h5::isDataset(g, "codes")) return false;
      c.kind = ColumnKind::Categorical;
      c.categories =
          readLabels(openDataset(g, "categories", what + "/categories"), what + "/categories");
      c.codes = readCodes(openDataset(g, "codes", what + "/codes"), what + "/codes");
      bool ordered = false;
      h5::readAttrBool(g, "ordered", ordered);
      c.ordered = ordered;
      checkCodes(c, what);
      return true;
    }
    if (encoding == "nullable-integer" || encoding == "nullable-boolean") {
      if (!h5::isDataset(g, "values") || !h5::isDataset(g, "mask")) return false;
      Handle values = openDataset(g, "values", what + "/values");
      if (encoding == "nullable-integer") {
        c.kind = ColumnKind::Int;
        c.ints = readVector<int64_t>(values, H5T_NATIVE_INT64, what + "/values");
      } else {
        c.kind = ColumnKind::Bool;
        c.bools = readVector<uint8_t>(values, H5T_NATIVE_UINT8, what + "/values");
        for (auto& v : c.bools) v = v != 0;
      }
      c.missing = readVector<uint8_t>(openDataset(g, "mask", what + "/mask"), H5T_NATIVE_UINT8,
                                      what + "/mask");
      for (auto& v : c.missing) v = v != 0;
      if (c.missing.size() != c.size())
        fail(ErrorKind::Shape, path_,
             "column '" + what + "' has " + std::to_string(c.size()) + " values but " +
                 std::to_string(c.missing.size()) + " mask entries");
      return true;
    }
    return false;
  }
  if (!h5::isDataset(group, name)) return false;
  Handle d = openDataset(group, name, what);
  if (h5::hasAttr(d, "categories")) return readLegacyCategorical(d, what, c);
  if (dimsOf(d, what).size() != 1) return false;
  Handle type(H5Dget_type(d));
  if (!type.valid()) unreadable(what);
  switch (H5Tget_class(type)) {
    case H5T_STRING:
      c.kind = ColumnKind::String;
      if (!h5::readStringDataset(d, c.strings)) unreadable(what);
      return true;
    case H5T_INTEGER:
      c.kind = ColumnKind::Int;
      c.ints = readVector<int64_t>(d, H5T_NATIVE_INT64, what);
      return true;
    case H5T_FLOAT:
      c.kind = ColumnKind::Float;
      c.floats = readVector<double>(d, H5T_NATIVE_DOUBLE, what);
      return true;
    case H5T_ENUM:
      if (!isBoolType(type)) return false;
      c.kind = ColumnKind::Bool;
      c.bools = readVector<uint8_t>(d, H5T_NATIVE_UINT8, what);
      for (auto& v : c.bools) v = v != 0;
      return true;
    default:
      return false;
  }
}

DataFrame H5adDataset::readFrame(const std::string& gpath, int64_t expectedRows) {
  DataFrame df;
  if (!h5::exists(file_, gpath)) {
    df.index = numberedLabels(expectedRows);
    return df;
  }
  if (!h5::isGroup(file_, gpath))
    fail(ErrorKind::Unsupported, path_,
         "'" + gpath +
             "' is in the layout of anndata < 0.7 (a record array); open and save "
             "the file again with anndata >= 0.7");
  Handle g(H5Gopen2(file_, gpath.c_str(), H5P_DEFAULT));
  if (!g.valid()) unreadable(gpath);
  std::string indexName;
  if (!h5::readAttrString(g, "_index", indexName))
    indexName = h5::exists(g, "_index") ? "_index" : "index";
  df.indexName = indexName;
  if (h5::isDataset(g, indexName))
    df.index =
        readLabels(openDataset(g, indexName, gpath + "/" + indexName), gpath + "/" + indexName);
  else
    df.index = numberedLabels(expectedRows);

  std::vector<std::string> order;
  if (!h5::readAttrStrings(g, "column-order", order)) {
    // An empty column-order is written as a float array; no attribute at all means "all".
    if (!h5::hasAttr(g, "column-order"))
      for (const auto& name : h5::children(g))
        if (name != indexName && name != "__categories") order.push_back(name);
  }
  for (const auto& name : order) {
    if (name == indexName) continue;
    Column c;
    c.name = name;
    if (!h5::exists(g, name) || !readColumn(g, gpath, name, c)) {
      skipped_.push_back(gpath + "/" + name);
      continue;
    }
    if (c.size() != df.index.size())
      fail(ErrorKind::Shape, path_,
           "column '" + gpath + "/" + name + "' has " + std::to_string(c.size()) + " values but " +
               gpath + " has " + std::to_string(df.index.size()) + " rows");
    df.columns.push_back(std::move(c));
  }
  return df;
}

// ---- obsm / varm / uns ----------------------------------------------------------------------

void H5adDataset::listArrays(const std::string& gname, std::vector<std::string>& keys) {
  if (!h5::isGroup(file_, gname)) return;
  Handle g(H5Gopen2(file_, gname.c_str(), H5P_DEFAULT));
  if (!g.valid()) return;
  for (const auto& name : h5::children(g)) {
    bool dense = false;
    if (h5::isDataset(g, name)) {
      Handle d(H5Dopen2(g, name.c_str(), H5P_DEFAULT));
      Handle type(d.valid() ? H5Dget_type(d) : H5I_INVALID_HID);
      std::vector<hsize_t> dims;
      dense = type.valid() && isNumericClass(H5Tget_class(type)) && h5::datasetDims(d, dims) &&
              dims.size() == 2;
    }
    if (dense)
      keys.push_back(name);
    else
      skipped_.push_back(gname + "/" + name);  // data frames, sparse arrays, 1-D arrays
  }
}

DenseMatrix H5adDataset::readArray(const std::string& gname, const std::string& key,
                                   int64_t rows) const {
  const std::string what = gname + "/" + key;
  Handle d = openDataset(file_, what, what);
  std::vector<hsize_t> dims = dimsOf(d, what);
  if (dims.size() != 2) fail(ErrorKind::Shape, path_, "'" + what + "' is not a 2-D array");
  if (static_cast<int64_t>(dims[0]) != rows)
    fail(ErrorKind::Shape, path_,
         "'" + what + "' has " + std::to_string(dims[0]) + " rows but should have " +
             std::to_string(rows));
  DenseMatrix m;
  m.rows = static_cast<int64_t>(dims[0]);
  m.cols = static_cast<int64_t>(dims[1]);
  m.data.resize(static_cast<size_t>(m.rows * m.cols));
  if (!m.data.empty() &&
      H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data.data()) < 0)
    unreadable(what);
  return m;
}

DenseMatrix H5adDataset::readObsm(const std::string& key) const {
  h5::QuietErrors quiet;
  if (std::find(obsmKeys_.begin(), obsmKeys_.end(), key) == obsmKeys_.end())
    return Dataset::readObsm(key);  // throws MissingMatrix
  return readArray("obsm", key, cells_);
}

DenseMatrix H5adDataset::readVarm(const std::string& key) const {
  h5::QuietErrors quiet;
  if (std::find(varmKeys_.begin(), varmKeys_.end(), key) == varmKeys_.end())
    return Dataset::readVarm(key);
  return readArray("varm", key, static_cast<int64_t>(var_.rows()));
}

// Scalars (0-d datasets) of uns, nested dicts flattened to "a/b/c"; arrays and other
// encodings (data frames, sparse matrices) are left out.
void H5adDataset::readUns(hid_t group, const std::string& prefix, int depth) {
  for (const auto& name : h5::children(group)) {
    const std::string key = prefix + name;
    if (h5::isGroup(group, name)) {
      Handle g(H5Gopen2(group, name.c_str(), H5P_DEFAULT));
      std::string encoding;
      if (g.valid()) h5::readAttrString(g, "encoding-type", encoding);
      if (g.valid() && depth < kMaxUnsDepth && (encoding.empty() || encoding == "dict"))
        readUns(g, key + "/", depth + 1);
      else
        skipped_.push_back("uns/" + key);
      continue;
    }
    if (!h5::isDataset(group, name)) continue;
    Handle d(H5Dopen2(group, name.c_str(), H5P_DEFAULT));
    std::vector<hsize_t> dims;
    if (!d.valid() || !h5::datasetDims(d, dims) || !dims.empty()) continue;  // arrays: skipped
    Handle type(H5Dget_type(d));
    if (!type.valid()) continue;
    bool ok = false;
    switch (H5Tget_class(type)) {
      case H5T_STRING: {
        std::vector<std::string> s;
        if ((ok = h5::readStringDataset(d, s) && s.size() == 1)) uns_[key] = UnsValue::str(s[0]);
        break;
      }
      case H5T_INTEGER: {
        int64_t v = 0;
        if ((ok = H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0))
          uns_[key] = UnsValue::integer(v);
        break;
      }
      case H5T_FLOAT: {
        double v = 0;
        if ((ok = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0))
          uns_[key] = UnsValue::real(v);
        break;
      }
      case H5T_ENUM: {
        int8_t v = 0;
        if ((ok = isBoolType(type) &&
                  H5Dread(d, H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0))
          uns_[key] = UnsValue::boolean(v != 0);
        break;
      }
      default:
        break;
    }
    if (!ok) skipped_.push_back("uns/" + key);
  }
}

}  // namespace

std::unique_ptr<Dataset> openH5ad(const std::string& path) {
  try {
    return std::make_unique<H5adDataset>(path);
  } catch (const std::bad_alloc&) {
    fail(ErrorKind::Truncated, path,
         "the file declares arrays too large to load; it is corrupt, or needs more memory");
  }
}

}  // namespace uce
