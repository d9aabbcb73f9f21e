// libFuzzer target for the file readers. Each input is opened three ways:
//   1. as matrix.mtx of a Matrix Market folder (features/barcodes sized from its size line);
//   2. as a dense .csv, cells as rows and genes as rows;
//   3. as HDF5, structured: the bytes choose the shapes, index arrays, value types and names
//      of a 10x .h5 and an .h5ad that are written with the HDF5 API and read back.
// Every matrix is read to the end. uce::Error is the readers' way to refuse an input; any
// other exception escapes and is reported (std::terminate), as are crashes and sanitizer
// findings.
//
// Raw bytes are not handed to libhdf5 by default: HDF5 1.10's decoder is not hardened against
// malformed files (it crashes or reads out of bounds inside the library), which no reader can
// guard against. Set UCE_FUZZ_RAW_HDF5=1 to also open the input bytes as an HDF5 file.
#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "uce/core/dataset.h"
#include "uce/core/error.h"

namespace {

namespace fs = std::filesystem;

std::string gDir;  // per-process scratch folder
bool gRawHdf5 = false;

void removeScratch() {
  std::error_code ec;
  if (!gDir.empty()) fs::remove_all(gDir, ec);
}

void writeFile(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}
void writeFile(const std::string& path, const std::string& text) { writeFile(path, text.data(), text.size()); }

// Touches everything a caller of Dataset can touch, reading all rows in small blocks.
void readEverything(const uce::Dataset& ds) {
  (void)ds.format();
  (void)ds.obs().rows();
  for (const auto& c : ds.var().columns)
    for (size_t i = 0; i < c.size(); ++i) (void)c.valueAsString(i);
  for (const auto& c : ds.obs().columns)
    for (size_t i = 0; i < c.size(); ++i) (void)c.valueAsString(i);
  for (const auto& [k, v] : ds.uns()) (void)v.toString();
  for (const auto& m : ds.matrices()) {
    (void)ds.varFor(m.key);
    uce::RowStream stream(ds, m.key, 3);
    uce::CsrBlock b;
    while (stream.next(b)) {
    }
  }
  for (const auto& k : ds.obsmKeys()) (void)ds.readObsm(k);
  for (const auto& k : ds.varmKeys()) (void)ds.readVarm(k);
}

// Per input kind: how many were read to the end / refused, printed at exit with
// UCE_FUZZ_STATS=1 to see whether the fuzzer gets past the first checks.
std::map<std::string, std::pair<long, long>> gStats;
bool gVerbose = false;  // UCE_FUZZ_STATS=2 also prints each refusal

void printStats() {
  for (const auto& [kind, n] : gStats)
    std::fprintf(stderr, "uce-fuzz %-8s read %ld, refused %ld\n", kind.c_str(), n.first, n.second);
}

void openAndRead(const std::string& kind, const std::string& path, bool genesAsRows = false) {
  std::unique_ptr<uce::Dataset> ds;
  try {
    uce::OpenOptions o;
    o.csvGenesAsRows = genesAsRows;
    ds = uce::openDataset(path, o);
    readEverything(*ds);
    ++gStats[kind].first;
  } catch (const uce::Error& e) {
    ++gStats[kind].second;  // a refused input: the expected outcome for most of them
    if (gVerbose) std::fprintf(stderr, "uce-fuzz %s: %s\n", kind.c_str(), e.what());
    return;
  }
  try {
    (void)uce::chooseCountsMatrix(*ds);
  } catch (const uce::Error&) {
    // not raw counts: a valid answer, not a refusal of the file
  }
}

// ---- Matrix Market -------------------------------------------------------------------------

// Reads "genes cells" from the first non-comment line after the banner, so the side files
// can match it and the fuzzer reaches the entries; other sizes test the mismatch checks.
void mtxSize(const uint8_t* data, size_t size, long& genes, long& cells) {
  std::string text(reinterpret_cast<const char*>(data), std::min<size_t>(size, 4096));
  size_t pos = text.find('\n');
  while (pos != std::string::npos && pos + 1 < text.size() && text[pos + 1] == '%')
    pos = text.find('\n', pos + 1);
  genes = 3;
  cells = 2;
  if (pos == std::string::npos) return;
  long g = 0, c = 0;
  if (std::sscanf(text.c_str() + pos + 1, "%ld %ld", &g, &c) == 2 && g >= 1 && g <= 300 && c >= 1 &&
      c <= 300) {
    genes = g;
    cells = c;
  }
}

void fuzzMtx(const uint8_t* data, size_t size) {
  const std::string dir = gDir + "/mtx";
  fs::create_directories(dir);
  long genes, cells;
  mtxSize(data, size, genes, cells);
  std::string features, barcodes;
  for (long g = 0; g < genes; ++g)
    features += "ENSG" + std::to_string(g) + "\tGENE" + std::to_string(g) +
                (g == 1 ? "\tAntibody Capture\n" : "\tGene Expression\n");
  for (long c = 0; c < cells; ++c) barcodes += "CELL" + std::to_string(c) + "-1\n";
  writeFile(dir + "/features.tsv", features);
  writeFile(dir + "/barcodes.tsv", barcodes);
  writeFile(dir + "/matrix.mtx", data, size);
  openAndRead("mtx", dir);
}

// ---- CSV / TSV -----------------------------------------------------------------------------

void fuzzDelimited(const uint8_t* data, size_t size) {
  const std::string csv = gDir + "/table.csv", tsv = gDir + "/table.tsv";
  writeFile(csv, data, size);
  openAndRead("csv", csv, false);
  writeFile(tsv, data, size);
  openAndRead("tsv", tsv, true);
}

// ---- HDF5, structured ----------------------------------------------------------------------

struct H5Out {
  hid_t id;
  explicit H5Out(hid_t i) : id(i) {}
  ~H5Out() {
    if (id < 0) return;
    switch (H5Iget_type(id)) {
      case H5I_FILE: H5Fclose(id); break;
      case H5I_GROUP: H5Gclose(id); break;
      case H5I_DATASET: H5Dclose(id); break;
      case H5I_DATASPACE: H5Sclose(id); break;
      case H5I_DATATYPE: H5Tclose(id); break;
      case H5I_ATTR: H5Aclose(id); break;
      default: break;
    }
  }
  operator hid_t() const { return id; }
};

template <typename T>
void writeArray(hid_t loc, const char* name, hid_t fileType, hid_t memType, const std::vector<T>& v) {
  hsize_t n = v.size();
  H5Out space(H5Screate_simple(1, &n, nullptr));
  H5Out ds(H5Dcreate2(loc, name, fileType, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (n) H5Dwrite(ds, memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
}

void writeStrings(hid_t loc, const char* name, const std::vector<std::string>& v, bool variable) {
  H5Out type(H5Tcopy(H5T_C_S1));
  hsize_t n = v.size();
  H5Out space(H5Screate_simple(1, &n, nullptr));
  if (variable) {
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    std::vector<const char*> p;
    for (const auto& s : v) p.push_back(s.c_str());
    H5Out ds(H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (n) H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data());
  } else {
    size_t len = 1;
    for (const auto& s : v) len = std::max(len, s.size());
    H5Tset_size(type, len);
    std::vector<char> buf(len * v.size(), '\0');
    for (size_t i = 0; i < v.size(); ++i) std::memcpy(buf.data() + i * len, v[i].data(), v[i].size());
    H5Out ds(H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (n) H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
  }
}

void attrString(hid_t obj, const char* name, const std::string& value) {
  H5Out type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  H5Out space(H5Screate(H5S_SCALAR));
  H5Out a(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  H5Awrite(a, type, &p);
}

void attrInts(hid_t obj, const char* name, const std::vector<int64_t>& v) {
  hsize_t n = v.size();
  H5Out space(H5Screate_simple(1, &n, nullptr));
  H5Out a(H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT));
  if (n) H5Awrite(a, H5T_NATIVE_INT64, v.data());
}

// Decisions are written so that an exhausted provider (which returns the minimum) takes the
// valid path: corruptions are rare and picked by the maximum of a range.
bool rarely(FuzzedDataProvider& p, int oneIn) { return p.ConsumeIntegralInRange<int>(1, oneIn) == oneIn; }

// A length close to `n`: usually n, sometimes one off, so the shape checks are reached.
size_t around(FuzzedDataProvider& p, size_t n) {
  switch (p.ConsumeIntegralInRange<int>(0, 15)) {
    case 15: return n + 1;
    case 14: return n > 0 ? n - 1 : 0;
    default: return n;
  }
}

// The sparse content both HDF5 layouts are built from: CSR over `outer` with `inner` columns.
struct Sparse {
  int64_t outer = 0, inner = 0;
  std::vector<int64_t> indptr, indices;
  std::vector<double> values;
  hid_t valueType = H5T_NATIVE_FLOAT;  // file type for the values
  std::vector<std::string> outerNames, innerNames;
};

Sparse makeSparse(FuzzedDataProvider& p) {
  Sparse s;
  s.outer = p.ConsumeIntegralInRange<int64_t>(0, 12);
  s.inner = p.ConsumeIntegralInRange<int64_t>(0, 12);
  s.indptr.push_back(rarely(p, 16) ? p.ConsumeIntegralInRange<int64_t>(-2, 3) : 0);
  for (int64_t r = 0; r < s.outer; ++r) {
    int64_t step = p.ConsumeIntegralInRange<int64_t>(0, 4);
    if (rarely(p, 32)) step = p.ConsumeIntegralInRange<int64_t>(-5, 1000);
    s.indptr.push_back(s.indptr.back() + step);
  }
  const int64_t nnz = std::max<int64_t>(0, std::min<int64_t>(s.indptr.back(), 80));
  for (int64_t k = 0; k < nnz; ++k) {
    s.indices.push_back(rarely(p, 64) || s.inner == 0 ? p.ConsumeIntegralInRange<int64_t>(-1, s.inner + 1)
                                                     : p.ConsumeIntegralInRange<int64_t>(0, s.inner - 1));
    switch (p.ConsumeIntegralInRange<int>(0, 7)) {
      case 7: {
        uint64_t bits = p.ConsumeIntegral<uint64_t>();
        double d;
        std::memcpy(&d, &bits, sizeof d);  // any double, NaN and Inf included
        s.values.push_back(d);
        break;
      }
      case 6: s.values.push_back(p.ConsumeFloatingPointInRange<double>(-10, 10)); break;
      default: s.values.push_back(static_cast<double>(p.ConsumeIntegralInRange<int>(0, 50)));
    }
  }
  s.indices.resize(around(p, s.indices.size()), 0);
  s.values.resize(around(p, s.values.size()), 1.0);
  s.indptr.resize(around(p, s.indptr.size()), s.indptr.empty() ? 0 : s.indptr.back());
  const hid_t types[] = {H5T_NATIVE_FLOAT, H5T_NATIVE_DOUBLE, H5T_NATIVE_INT32, H5T_NATIVE_INT64,
                         H5T_NATIVE_UINT16, H5T_NATIVE_UINT8};
  s.valueType = types[p.ConsumeIntegralInRange<size_t>(0, std::size(types) - 1)];
  auto names = [&](int64_t n, const char* stem) {
    std::vector<std::string> v;
    for (int64_t i = 0; i < n; ++i)
      v.push_back(rarely(p, 10) ? p.ConsumeRandomLengthString(12) : stem + std::to_string(i));
    v.resize(around(p, v.size()), stem);
    return v;
  };
  s.outerNames = names(s.outer, "CELL");
  s.innerNames = names(s.inner, "GENE");
  return s;
}

void fuzzTenx(FuzzedDataProvider& p) {
  const Sparse s = makeSparse(p);
  const std::string path = gDir + "/tenx.h5";
  {
    H5Out f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    H5Out g(H5Gcreate2(f, "matrix", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    const bool vlen = p.ConsumeBool();
    writeStrings(g, "barcodes", s.outerNames, vlen);
    writeArray(g, "data", s.valueType, H5T_NATIVE_DOUBLE, s.values);
    writeArray(g, "indices", H5T_STD_I64LE, H5T_NATIVE_INT64, s.indices);
    writeArray(g, "indptr", H5T_STD_I64LE, H5T_NATIVE_INT64, s.indptr);
    std::vector<int64_t> shape = {s.inner, s.outer};
    if (rarely(p, 10)) shape[0] += p.ConsumeIntegralInRange<int64_t>(-2, 2);
    shape.resize(around(p, shape.size()), 1);
    writeArray(g, "shape", H5T_STD_I32LE, H5T_NATIVE_INT64, shape);
    H5Out ft(H5Gcreate2(g, "features", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    std::vector<std::string> ids, types;
    for (size_t i = 0; i < s.innerNames.size(); ++i) {
      ids.push_back("ENSG" + std::to_string(i));
      types.push_back(rarely(p, 6) ? "Antibody Capture" : "Gene Expression");
    }
    writeStrings(ft, "name", s.innerNames, vlen);
    if (!rarely(p, 10)) writeStrings(ft, "id", ids, vlen);
    if (!rarely(p, 10)) writeStrings(ft, "feature_type", types, vlen);
  }
  openAndRead("10x-h5", path);
}

void fuzzH5ad(FuzzedDataProvider& p) {
  const Sparse s = makeSparse(p);
  const std::string path = gDir + "/data.h5ad";
  {
    H5Out f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    attrString(f, "encoding-type", "anndata");
    attrString(f, "encoding-version", "0.1.0");
    const bool csc = rarely(p, 4);
    H5Out x(H5Gcreate2(f, "X", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    attrString(x, "encoding-type", csc ? "csc_matrix" : "csr_matrix");
    attrString(x, "encoding-version", "0.1.0");
    std::vector<int64_t> shape = csc ? std::vector<int64_t>{s.inner, s.outer}
                                     : std::vector<int64_t>{s.outer, s.inner};
    if (rarely(p, 10)) shape[1] += p.ConsumeIntegralInRange<int64_t>(-2, 2);
    shape.resize(around(p, shape.size()), 1);
    attrInts(x, "shape", shape);
    writeArray(x, "data", s.valueType, H5T_NATIVE_DOUBLE, s.values);
    writeArray(x, "indices", p.ConsumeBool() ? H5T_STD_I32LE : H5T_STD_I64LE, H5T_NATIVE_INT64, s.indices);
    writeArray(x, "indptr", H5T_STD_I64LE, H5T_NATIVE_INT64, s.indptr);
    const bool vlen = p.ConsumeBool();
    auto frame = [&](const char* name, const std::vector<std::string>& index) {
      H5Out g(H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      attrString(g, "encoding-type", "dataframe");
      attrString(g, "encoding-version", "0.2.0");
      attrString(g, "_index", "_index");
      H5Out t(H5Tcopy(H5T_C_S1));
      H5Tset_size(t, H5T_VARIABLE);
      hsize_t zero = 0;
      H5Out space(H5Screate_simple(1, &zero, nullptr));
      H5Out co(H5Acreate2(g, "column-order", t, space, H5P_DEFAULT, H5P_DEFAULT));
      writeStrings(g, "_index", index, vlen);
    };
    // For CSC the stored outer axis is genes: obs gets the inner names.
    frame("obs", csc ? s.innerNames : s.outerNames);
    frame("var", csc ? s.outerNames : s.innerNames);
  }
  openAndRead("h5ad", path);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // TMPDIR lets the runner put the scratch files on a RAM disk: each input writes several.
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/uce-fuzz-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    std::abort();
  }
  gDir = tmpl;
  std::atexit(removeScratch);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // the readers report errors themselves
  const char* stats = std::getenv("UCE_FUZZ_STATS");
  if (stats && (std::strcmp(stats, "1") == 0 || std::strcmp(stats, "2") == 0)) std::atexit(printStats);
  gVerbose = stats && std::strcmp(stats, "2") == 0;
  const char* raw = std::getenv("UCE_FUZZ_RAW_HDF5");
  gRawHdf5 = raw && std::strcmp(raw, "1") == 0;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzzMtx(data, size);
  fuzzDelimited(data, size);
  {
    FuzzedDataProvider p(data, size);
    fuzzTenx(p);
  }
  {
    // The same bytes read from the end first, so both layouts see different shapes.
    std::vector<uint8_t> reversed(data, data + size);
    std::reverse(reversed.begin(), reversed.end());
    FuzzedDataProvider p(reversed.data(), reversed.size());
    fuzzH5ad(p);
  }
  if (gRawHdf5) {
    const std::string path = gDir + "/raw.h5ad";
    writeFile(path, data, size);
    openAndRead("raw-h5", path);
  }
  return 0;
}
